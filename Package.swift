// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Ember",
    platforms: [.macOS(.v15), .iOS(.v18)],
    products: [
        .library(name: "Ember", targets: ["Ember"]),
        .executable(name: "ember", targets: ["EmberCLI"]),
        .executable(name: "ember-bench", targets: ["EmberBench"]),
        .executable(name: "ember-rnn-bench", targets: ["EmberRNNBench"]),
        .executable(name: "ember-workloads", targets: ["EmberWorkloads"]),
        .executable(name: "ember-charlm", targets: ["CharLM"]),
    ],
    traits: [
        // Data-parallel training over Open MPI (EmberDistributed's MPI engine). Off by default: the
        // default build and `swift test` need nothing installed. `swift build --traits MPI`.
        .trait(name: "MPI", description: "EmberDistributed's process group over Open MPI (needs libopenmpi-dev)"),
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
            dependencies: ["EmberStorage", .product(name: "RealModule", package: "swift-numerics")],
            exclude: ["README.md"]
        ),
        // Differentiable op API, the backward engine, Parameter, no-grad scopes.
        .target(name: "EmberAutograd", dependencies: ["EmberTensor"], exclude: ["README.md"]),
        // PyTorch's torch.nn.functional: differentiable fused ops (linear, normalization, dropout,
        // losses, recurrent layers) with their backward and their loops. Knows no Module.
        .target(name: "EmberFunctional", dependencies: ["EmberAutograd"], exclude: ["README.md"]),
        // Module, layers, modes, state dicts: parameters, options and printing over EmberFunctional.
        .target(name: "EmberNN", dependencies: ["EmberAutograd", "EmberFunctional"], exclude: ["README.md"]),
        // Optimizers, learning-rate schedules and gradient clipping over [Parameter] (never imports EmberNN).
        .target(name: "EmberOptim", dependencies: ["EmberAutograd"], exclude: ["README.md"]),
        // Files: safetensors.
        .target(name: "EmberIO", dependencies: ["EmberNN"], exclude: ["README.md"]),
        // Datasets, loaders, CSV/.npy/IDX readers, the embedded digits.
        .target(name: "EmberData", dependencies: ["EmberAutograd"], exclude: ["README.md"], resources: [.copy("Resources")]),

        // Open MPI's C API (pkg-config ompi-c), reached only with the MPI trait.
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        // Data-parallel training: process group, collectives, DistributedDataParallel,
        // SyncBatchNorm, DistributedSampler. MPI engine behind the MPI trait; without it, a
        // single-process group and an in-process (threads) group for tests.
        .target(
            name: "EmberDistributed",
            dependencies: ["EmberAutograd", "EmberFunctional", "EmberNN", .target(name: "CMPI", condition: .when(traits: ["MPI"]))],
            exclude: ["README.md"]
        ),
        // The training workflow: evaluate, Trainer (also data-parallel, over EmberDistributed),
        // metrics, checkpoints.
        .target(name: "EmberTraining", dependencies: ["EmberFunctional", "EmberNN", "EmberOptim", "EmberData", "EmberIO", "EmberDistributed"], exclude: ["README.md"]),
        // Umbrella: re-exports the public targets.
        .target(
            name: "Ember",
            dependencies: ["EmberStorage", "EmberTensor", "EmberAutograd", "EmberFunctional", "EmberNN", "EmberOptim", "EmberIO", "EmberData", "EmberTraining", "EmberDistributed"],
            exclude: ["README.md"]
        ),
        .target(name: "_EmberTestSupport", dependencies: ["Ember"], exclude: ["README.md"]),
        // The seed network from the classic explanation of model.eval(), for users to copy.
        .target(name: "SeedNetwork", dependencies: ["Ember"], path: "Examples/SeedNetwork", exclude: ["README.md"]),
        .executableTarget(
            name: "EmberCLI",
            dependencies: ["Ember", "SeedNetwork", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            exclude: ["README.md"]
        ),
        .executableTarget(name: "EmberBench", dependencies: ["Ember"], exclude: ["README.md"]),
        // A character-level Transformer language model trained on the shipped Genesis (Examples/CharLM).
        .executableTarget(
            name: "CharLM",
            dependencies: ["Ember", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/CharLM",
            exclude: ["README.md"],
            resources: [.copy("genesis.txt")]
        ),
        // The multi-process checks that Tests/EmberTests/DistributedMPITests.swift runs under
        // `mpirun -n 2` (MPI trait); without the trait it runs one process.
        .executableTarget(name: "EmberDistributedCheck", dependencies: ["Ember", "_EmberTestSupport"], path: "Tools/distributed/EmberDistributedCheck"),
        // LSTM forward/training-step benchmark beside PyTorch (Tools/bench/torch_rnn_bench.py).
        .executableTarget(name: "EmberRNNBench", dependencies: ["Ember"], exclude: ["README.md"]),
        // Whole-workload benchmarks beside PyTorch (BENCHMARKS.md).
        .executableTarget(name: "EmberWorkloads", dependencies: ["Ember", "SeedNetwork"], exclude: ["README.md"]),
        // libFuzzer harness of the readers (Tools/fuzz/README.md); a plain build replays inputs.
        .executableTarget(name: "EmberFuzz", dependencies: ["Ember"], path: "Tools/fuzz/Sources/EmberFuzz"),
        // Units of the benchmark harness (counts, protocol, tables); never timings.
        .testTarget(name: "EmberWorkloadsTests", dependencies: ["EmberWorkloads"]),
        // Units of the command-line tool that need its internals (signal handling).
        .testTarget(name: "EmberCLITests", dependencies: ["EmberCLI"]),
        .testTarget(
            name: "EmberTests",
            dependencies: ["Ember", "_EmberTestSupport", "SeedNetwork"],
            exclude: ["Fixtures"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
