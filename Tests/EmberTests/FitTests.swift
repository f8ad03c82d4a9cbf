import Ember
import Foundation
import SeedNetwork
import Testing
import _EmberTestSupport

/// 4 separable classes in 6 dimensions, `n` samples.
private func fitData(_ n: Int) -> TensorDataset { blobs(n, seed: 5) }

private func temporaryPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("ember-fit-\(UUID().uuidString)-\(name)").path
}

/// One `fit` call on a fresh model, optionally resuming, stopping when `stop(epoch, batch)` says so.
/// Returns the result and the checkpoint file's bytes.
private func runFit(epochs: Int, data: TensorDataset, validation: TensorDataset, path: String, lr: Double = 0.01,
                    resume: Checkpoint? = nil, stop: @escaping (Int, Int) -> Bool = { _, _ in false }) throws -> FitResult {
    let generator = Generator(seed: 11)
    return try withGenerator(generator) {
        let model = SeedNetwork(inputs: 6, hidden: 12, outputs: 4, dropout: 0.3)
        let optimizer = SGD(model.parameters(), lr: lr, momentum: 0.9)
        let trainer = Trainer(model: model, optimizer: optimizer) { crossEntropy($0, target: $1) }
        let schedule = CosineAnnealingLR(optimizer, tMax: epochs)
        let loader = DataLoader(data, batchSize: 8, shuffle: true)
        let validationLoader = DataLoader(validation, batchSize: 8)
        var position = (epoch: 0, batch: 0)
        return try trainer.fit(
            loader, validation: validationLoader,
            options: FitOptions(epochs: epochs, checkpointPath: path, metadata: ["run": "fit-test"],
                                makeModelCopy: { SeedNetwork(inputs: 6, hidden: 12, outputs: 4, dropout: 0.3) }, forgottenEvalSeed: 3),
            scheduler: schedule, generator: generator, resumingFrom: resume,
            shouldStop: { stop(position.epoch, position.batch) },
            onBatch: { epoch, p in position = (epoch, p.batch) })
    }
}

@Suite struct FitTests {
    /// Stopping anywhere (mid-epoch, at an epoch's end, after the first batch) and resuming from the
    /// checkpoint ends with a checkpoint file byte-identical to an uninterrupted run's.
    @Test(arguments: [(1, 1), (2, 3), (2, 7), (3, 2)])
    func stoppingAndResumingEndsBitwiseAsAnUninterruptedRun(stopEpoch: Int, stopBatch: Int) throws {
        let data = fitData(61), validation = fitData(17)  // 8 batches of 8 (the last of 5); validation ends with 1
        let straightPath = temporaryPath("straight"), stoppedPath = temporaryPath("stopped")
        defer { for p in [straightPath, stoppedPath] { try? FileManager.default.removeItem(atPath: p) } }
        let straight = try runFit(epochs: 4, data: data, validation: validation, path: straightPath)
        #expect(straight.outcome == .completed)
        #expect(straight.history.count == 4)

        let stopped = try runFit(epochs: 4, data: data, validation: validation, path: stoppedPath) { e, b in e == stopEpoch && b == stopBatch }
        guard case .stopped(let done, let position) = stopped.outcome else {
            Issue.record("the run did not stop: \(stopped.outcome)")
            return
        }
        #expect(done == stopEpoch - 1)
        #expect(position?.batch == stopBatch)
        let checkpoint = try Checkpoint.read(from: stoppedPath)
        #expect(checkpoint.progress?.position?.epoch == stopEpoch)
        let resumed = try runFit(epochs: 4, data: data, validation: validation, path: stoppedPath, resume: checkpoint)
        #expect(resumed.outcome == .completed)
        #expect(resumed.history == straight.history)
        let a = try Data(contentsOf: URL(fileURLWithPath: straightPath)), b = try Data(contentsOf: URL(fileURLWithPath: stoppedPath))
        #expect(a == b, "the resumed run's checkpoint differs from the uninterrupted run's")
    }

    @Test func stoppingAtAnEpochsEndCheckpointsWithoutAPosition() throws {
        let data = fitData(61), validation = fitData(17)
        let path = temporaryPath("epoch-end")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try runFit(epochs: 4, data: data, validation: validation, path: path) { e, b in e == 2 && b == 8 }
        #expect(result.outcome == .stopped(completedEpochs: 2, position: nil))
        let checkpoint = try Checkpoint.read(from: path)
        #expect(checkpoint.epoch == 2 && checkpoint.progress?.position == nil && checkpoint.progress?.history.count == 2)
    }

    /// The forgotten-eval copy runs in training mode, where BatchNorm cannot take the final
    /// one-sample validation batch: fit merges it into the batch before (17 = 8 + 8 + 1).
    @Test func forgottenEvalMergesAFinalOneSampleBatch() throws {
        let path = temporaryPath("singleton")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try runFit(epochs: 1, data: fitData(61), validation: fitData(17), path: path)
        #expect(result.history.first?.forgottenEvalAccuracy != nil)
        #expect(result.history.first?.validationAccuracy != nil)
    }

    @Test func aNonFiniteLossStopsBeforeItsStepAndKeepsTheLastCheckpoint() throws {
        let data = fitData(61), validation = fitData(17)
        let path = temporaryPath("diverge")
        defer { try? FileManager.default.removeItem(atPath: path) }
        // A poisoned sample: its NaN features make the loss NaN in the first epoch that reaches it.
        var features = Tensor(data.inputs).scalars(as: Float.self)
        features[0] = .nan
        let poisoned = TensorDataset(features: features, featureShape: [6], labels: Tensor(data.labels).scalars(as: Int64.self))
        _ = try runFit(epochs: 1, data: data, validation: validation, path: path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(throws: FitError.self) { try runFit(epochs: 2, data: poisoned, validation: validation, path: path) }
        do {
            _ = try runFit(epochs: 2, data: poisoned, validation: validation, path: path)
        } catch let error as FitError {
            guard case .diverged(let epoch, _, _, _, let loss, _) = error else {
                Issue.record("expected .diverged, got \(error)")
                return
            }
            #expect(epoch == 1 && loss.isNaN)
            #expect(error.description.contains("epoch 1"))
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == good, "the good checkpoint was replaced")
    }

    /// A parameter that holds NaN while the loss stays finite (here one the forward never uses):
    /// the epoch's checkpoint is refused rather than written.
    @Test func aCheckpointWithNonFiniteStateIsNeverWritten() throws {
        final class WithUnused: Module {
            let net = Linear(6, 4)
            let unused = Parameter(Tensor([Float.nan]))
            override func forward(_ input: Tensor) -> Tensor { net(input) }
        }
        let path = temporaryPath("nonfinite")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let data = fitData(32)
        let generator = Generator(seed: 2)
        let error = withGenerator(generator) { () -> FitError? in
            let model = WithUnused()
            let trainer = Trainer(model: model, optimizer: SGD(model.net.parameters(), lr: 0.01)) { crossEntropy($0, target: $1) }
            do {
                _ = try trainer.fit(DataLoader(data, batchSize: 8), validation: DataLoader(data, batchSize: 8),
                                    options: FitOptions(epochs: 1, checkpointPath: path), scheduler: nil as StepLR?, generator: generator)
                return nil
            } catch let error as FitError { return error } catch { return nil }
        }
        guard case .nonFiniteState(_, let name, _) = error else {
            Issue.record("expected .nonFiniteState, got \(String(describing: error))")
            return
        }
        #expect(name == "unused")
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func aTrainStepWithANonFiniteLossLeavesTheWeightsUntouched() {
        let model = Linear(2, 1)
        let before = model.stateDict()
        let trainer = Trainer(model: model, optimizer: SGD(model.parameters(), lr: 0.1)) { out, _ in out.sum() * Double.nan }
        let loss = trainer.trainStep(on: Batch(inputs: Tensor([Float(1), 2], shape: [1, 2]), labels: Tensor([Int64(0)])))
        #expect(loss.isNaN)
        #expect(trainer.steps == 0)
        for ((k, x), (_, y)) in zip(model.stateDict(), before) { expectBitwiseEqual(x, y, k) }
    }

    @Test func resumingRejectsACheckpointThatDoesNotFitTheRun() throws {
        let data = fitData(61), validation = fitData(17)
        let path = temporaryPath("mismatch")
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try runFit(epochs: 3, data: data, validation: validation, path: path)
        let finished = try Checkpoint.read(from: path)
        #expect(throws: FitError.self) { try runFit(epochs: 2, data: data, validation: validation, path: path, resume: finished) }
        var inconsistent = finished
        inconsistent.progress?.history.removeLast()
        #expect(throws: FitError.self) { try runFit(epochs: 3, data: data, validation: validation, path: path, resume: inconsistent) }
    }
}
