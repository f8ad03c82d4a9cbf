import Ember
import Foundation

/// The models of the memory group, each trained for a few epochs in a fresh process.
enum MemoryModel: String, CaseIterable, Codable {
    /// The benchmark MLP, batch 128, 784 features.
    case mlp
    /// The LeNet of the convolution workloads (issue #19), batch 64, 1x28x28 images.
    case lenet

    var title: String { self == .mlp ? "MLP" : "LeNet" }
    var batch: Int { self == .mlp ? 128 : 64 }
    var sampleShape: Shape { self == .mlp ? [784] : [1, 28, 28] }
}

/// What a memory run reports (the peer scripts print the same keys).
struct MemoryResult: Codable, Equatable {
    var peak_rss_bytes: Int
    var seconds: Double
    var final_loss: Double
    /// A peer's peak right after importing its framework (Ember's process has nothing to import).
    var import_rss_bytes: Int?
    var version: String?
}

/// Trains `model` for `epochs` epochs on `samples` synthetic samples (uniform features, 10
/// classes), shuffled, as a user would: a `TensorDataset`, a `DataLoader` with its default
/// prefetching, SGD with momentum. Runs with one kernel thread, as the peer scripts do.
func emberMemoryRun(model kind: MemoryModel, samples: Int, epochs: Int) -> MemoryResult {
    Threading.withThreads(1) {
        let g = Generator(seed: 0)
        // Data straight into the array the dataset keeps (no intermediate tensor), as
        // `TensorDataset(torch.rand(...), ...)` keeps PyTorch's tensor without a copy.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func nextUnit() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) * 0x1p-24
        }
        let featureCount = kind.sampleShape.reduce(1, *)
        let features = [Float](unsafeUninitializedCapacity: samples * featureCount) { buffer, count in
            for i in 0..<buffer.count { buffer[i] = nextUnit() }
            count = buffer.count
        }
        let labels = (0..<samples).map { _ in Int64(nextUnit() * 10) }
        let dataset = TensorDataset(features: features, featureShape: kind.sampleShape, labels: labels)
        let loader = DataLoader(dataset, batchSize: kind.batch, shuffle: true, generator: g)
        let model = withGenerator(g) { kind == .mlp ? makeMLP() : makeLeNet() }
        let optimizer = SGD(model.parameters(), lr: 0.01, momentum: 0.9)
        model.train()
        let start = nowNanoseconds()
        var loss = Tensor(Float(0))
        withGenerator(g) {
            for _ in 0..<epochs {
                for batch in loader { loss = trainStep(model, optimizer, batch.inputs, batch.labels) }
            }
        }
        let seconds = Double(nowNanoseconds() - start) * 1e-9
        return MemoryResult(peak_rss_bytes: peakResidentBytes(), seconds: seconds, final_loss: Double(loss.item(as: Float.self)))
    }
}

/// Runs this executable again with `--memory-run` and decodes the child's report, so the peak is
/// that of a fresh process doing nothing but the training run.
func emberMemoryRunInChild(model: MemoryModel, samples: Int, epochs: Int) throws -> MemoryResult {
    var executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    if !FileManager.default.fileExists(atPath: executable.path) {
        executable = URL(fileURLWithPath: CommandLine.arguments[0])
    }
    let data = try runProcess(executable, ["--memory-run", "--model", model.rawValue,
                                           "--samples", "\(samples)", "--epochs", "\(epochs)"])
    return try JSONDecoder().decode(MemoryResult.self, from: data)
}
