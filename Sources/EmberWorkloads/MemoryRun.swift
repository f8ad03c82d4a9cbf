import Ember
import Foundation

/// What a memory run reports (the PyTorch script prints the same keys).
struct MemoryResult: Codable {
    var peak_rss_bytes: Int
    var seconds: Double
    var final_loss: Double
}

/// Trains the benchmark MLP for `epochs` epochs on `samples` synthetic MNIST-sized samples
/// (784 uniform features, 10 classes), batch 128, shuffled, as a user would: a `TensorDataset`, a
/// `DataLoader` with its default prefetching, SGD with momentum. Runs with one kernel thread, as
/// the PyTorch script does.
func emberMemoryRun(samples: Int, epochs: Int) -> MemoryResult {
    Threading.withThreads(1) {
        let g = Generator(seed: 0)
        // Data straight into the array the dataset keeps (no intermediate tensor), as
        // `TensorDataset(torch.rand(...), ...)` keeps PyTorch's tensor without a copy.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func nextUnit() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) * 0x1p-24
        }
        let features = [Float](unsafeUninitializedCapacity: samples * 784) { buffer, count in
            for i in 0..<buffer.count { buffer[i] = nextUnit() }
            count = buffer.count
        }
        let labels = (0..<samples).map { _ in Int64(nextUnit() * 10) }
        let dataset = TensorDataset(features: features, featureShape: [784], labels: labels)
        let loader = DataLoader(dataset, batchSize: 128, shuffle: true, generator: g)
        let model = withGenerator(g) { makeMLP() }
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
func emberMemoryRunInChild(samples: Int, epochs: Int) throws -> MemoryResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    if !FileManager.default.fileExists(atPath: process.executableURL!.path) {
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    }
    process.arguments = ["--memory-run", "--samples", "\(samples)", "--epochs", "\(epochs)"]
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw TorchRunner.Failure(description: "ember-workloads --memory-run exited with status \(process.terminationStatus)")
    }
    return try JSONDecoder().decode(MemoryResult.self, from: data)
}
