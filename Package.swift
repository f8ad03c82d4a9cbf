// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Ember",
    platforms: [.macOS(.v15), .iOS(.v18)],
    products: [
        .library(name: "Ember", targets: ["Ember"]),
        .executable(name: "ember", targets: ["EmberCLI"]),
        .executable(name: "ember-bench", targets: ["EmberBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
    ],
    targets: [
        // Innermost SIMD micro-kernels in C, chosen at run time by CPU feature checks.
        .target(name: "CEmberKernels"),
        // Raw memory, dtypes, shapes and the matrix-multiply driver.
        .target(name: "EmberStorage", dependencies: ["CEmberKernels"], exclude: ["README.md"]),
        // The Tensor value type: creation, raw (graph-free) compute, RNG, printing.
        .target(
            name: "EmberTensor",
            dependencies: ["EmberStorage", .product(name: "RealModule", package: "swift-numerics")]
        ),
        // Differentiable op API, the backward engine, Parameter, no-grad scopes.
        .target(name: "EmberAutograd", dependencies: ["EmberTensor"]),
        // Files: safetensors.
        .target(name: "EmberIO", dependencies: ["EmberAutograd"]),
        // Umbrella: re-exports the public targets.
        .target(name: "Ember", dependencies: ["EmberStorage", "EmberTensor", "EmberAutograd", "EmberIO"]),
        .target(name: "_EmberTestSupport", dependencies: ["Ember"]),
        .executableTarget(
            name: "EmberCLI",
            dependencies: ["Ember", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "EmberBench", dependencies: ["Ember"]),
        .testTarget(
            name: "EmberTests",
            dependencies: ["Ember", "_EmberTestSupport"],
            resources: [.copy("Fixtures")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
