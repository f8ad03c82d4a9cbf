import Ember
import Foundation
import SeedNetwork
import Testing
import _EmberTestSupport

/// A small deterministic classification problem: 4 Gaussian-ish blobs in 6 dimensions.
func blobs(_ n: Int, seed: UInt64 = 99) -> TensorDataset {
    withGenerator(Generator(seed: seed)) {
        let labels = Tensor.randint(low: 0, high: 4, shape: [n]).scalars(as: Int64.self)
        let noise = Tensor.normal([n, 6]).floats
        var features = [Float](repeating: 0, count: n * 6)
        for i in 0..<n { for j in 0..<6 { features[i * 6 + j] = noise[i * 6 + j] * 0.5 + (j % 4 == Int(labels[i]) ? 2 : 0) } }
        return TensorDataset(features: features, featureShape: [6], labels: labels)
    }
}

/// Trains `epochs` epochs from `checkpoint` (or from scratch) and returns the final checkpoint.
private func train(epochs: Int, from checkpoint: Checkpoint?, data: TensorDataset) throws -> Checkpoint {
    let generator = Generator(seed: 7)
    return try withGenerator(generator) {
        let model = SeedNetwork(inputs: 6, hidden: 16, outputs: 4, dropout: 0.3)
        let optimizer = Adam(model.parameters(), lr: 0.01)
        let schedule = StepLR(optimizer, stepSize: 2, gamma: 0.5)
        var done = 0
        if let checkpoint {
            try checkpoint.restore(model: model, optimizer: optimizer, scheduler: schedule, generator: generator)
            done = checkpoint.epoch
        }
        let trainer = Trainer(model: model, optimizer: optimizer) { crossEntropy($0, target: $1) }
        let loader = DataLoader(data, batchSize: 16, shuffle: true)
        for _ in done..<(done + epochs) {
            trainer.trainEpoch(on: loader)
            schedule.step()
            _ = evaluate(model, on: DataLoader(data, batchSize: 32), loss: { crossEntropy($0, target: $1) })
        }
        return Checkpoint(model: model, optimizer: optimizer, scheduler: schedule, generator: generator,
                          epoch: done + epochs, step: (checkpoint?.step ?? 0) + trainer.steps)
    }
}

@Suite struct TrainingWorkflowTests {
    @Test func sameSeedGivesBitwiseIdenticalWeights() throws {
        let data = blobs(96)
        let a = try train(epochs: 2, from: nil, data: data), b = try train(epochs: 2, from: nil, data: data)
        for ((k, x), (_, y)) in zip(a.model, b.model) { expectBitwiseEqual(x, y, k) }
    }

    @Test func resumingFromAWrittenCheckpointContinuesBitwiseIdentically() throws {
        let data = blobs(96)
        let uninterrupted = try train(epochs: 4, from: nil, data: data)
        let half = try train(epochs: 2, from: nil, data: data)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ember-ckpt-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try half.write(to: path)
        let reread = try Checkpoint.read(from: path)
        #expect(reread.epoch == 2 && reread.step == half.step && reread.generator == half.generator)
        let resumed = try train(epochs: 2, from: reread, data: data)
        #expect(resumed.model.keys == uninterrupted.model.keys)
        for ((k, x), (_, y)) in zip(resumed.model, uninterrupted.model) { expectBitwiseEqual(x, y, k) }
        #expect(resumed.step == uninterrupted.step && resumed.generator == uninterrupted.generator)
        for (k, v) in uninterrupted.optimizer!.tensors() { expectBitwiseEqual(resumed.optimizer!.tensors()[k]!, v, k) }
    }

    @Test func checkpointKeepsModesAndPins() throws {
        let model = SeedNetwork()
        model.bn1.pin(.evaluation)
        model.dropout.eval()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ember-modes-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Checkpoint(model: model.stateDict(), modes: model.modeRecords()).write(to: path)
        let fresh = SeedNetwork()
        try Checkpoint.read(from: path).restore(model: fresh, optimizer: nil, scheduler: nil as StepLR?, generator: nil)
        #expect(fresh.modeRecords() == model.modeRecords())
        #expect(fresh.bn1.pinnedMode == .evaluation && !fresh.dropout.isTraining && fresh.fc1.isTraining)
    }

    @Test func plainWeightsFileIsNotACheckpoint() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ember-w-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try SeedNetwork().saveSafetensors(path)
        #expect { try Checkpoint.read(from: path) } throws: { "\($0)".contains("not an Ember checkpoint") }
        #expect(throws: CheckpointError.self) { try Checkpoint.read(from: path + ".missing") }
    }

    @Test func evaluateRestoresModesAndUsesEvalMode() {
        let model = SeedNetwork(inputs: 6, hidden: 8, outputs: 4)
        model.dropout.eval()
        let before = model.modeRecords()
        let data = blobs(32)
        let a = evaluate(model, on: DataLoader(data, batchSize: 8), classes: 4, loss: { crossEntropy($0, target: $1) })
        let b = evaluate(model, on: DataLoader(data, batchSize: 32), classes: 4, loss: { crossEntropy($0, target: $1) })
        #expect(model.modeRecords() == before)
        #expect(abs(a.loss - b.loss) < 1e-6, "eval mode: the batch size does not change per-sample results")
        #expect(a.confusion?.total == 32 && a.samples == 32)
        #expect(abs(a.accuracy - a.confusion!.accuracy) < 1e-12)
    }

    @Test func stepInEvalModeWarnsOnceNamingTheModule() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let model = SeedNetwork(inputs: 6, hidden: 8, outputs: 4)
            let trainer = Trainer(model: model, optimizer: SGD(model.parameters(), lr: 0.1)) { crossEntropy($0, target: $1) }
            model.bn1.eval()
            trainer.step()
            trainer.step()
            fatalError("done")
        }
        let text = standardErrorText(result)
        #expect(text.contains("optimizer step while 'bn1' (BatchNorm1d) is in eval mode"))
        #expect(text.components(separatedBy: "Ember warning").count == 2, "warned exactly once")
    }

    @Test func confusionMatrixCounts() {
        var m = ConfusionMatrix(classes: 3)
        m.add(logits: Tensor(rows: [[5, 0, 0], [0, 5, 0], [0, 5, 0], [0, 0, 5]] as [[Float]]), labels: Tensor([0, 1, 2, 2] as [Int]))
        #expect(m[0, 0] == 1 && m[1, 1] == 1 && m[2, 1] == 1 && m[2, 2] == 1 && m.total == 4)
        #expect(m.accuracy == 0.75)
    }
}
