import _EmberTestSupport
import Ember
import Foundation
import Testing

/// `Trainer(distributed:)` over in-process ranks (threads): each rank passes the same batches and
/// trains on its slice; the result must be the single-process run on the whole batches.
@Suite("Data-parallel Trainer")
struct DistributedTrainerTests {
    /// Linear(6, 8) - BatchNorm1d(8) - ReLU - Linear(8, 3), float64, the same initial weights everywhere.
    static func model() -> Module {
        let g = Generator(seed: 11)
        return Sequential(Linear(6, 8, dtype: .float64, generator: g), BatchNorm1d(8, dtype: .float64), ReLU(),
                          Linear(8, 3, dtype: .float64, generator: g))
    }

    /// Batches of 5 samples (uneven slices over 2 ranks: 2 and 3 rows) and one of 7.
    static func batches() -> [Batch] {
        let g = Generator(seed: 12)
        return [5, 5, 7, 5].map { n in
            Batch(inputs: Tensor.normal([n, 6], dtype: .float64, generator: g),
                  labels: Tensor.randint(high: 3, shape: [n], generator: g))
        }
    }

    static func flat(_ model: Module) -> [Double] { DistributedScenarios.flatState(model) }

    static func loss(_ logits: Tensor, _ labels: Tensor) -> Tensor { crossEntropy(logits, target: labels) }

    @Test("2 ranks with uneven slices end where one process on the whole batches ends; the losses are the whole batches'")
    func equalsOneProcess() throws {
        let reference = Self.model()
        let single = Trainer(model: reference, optimizer: SGD(reference.parameters(), lr: 0.1, momentum: 0.9), loss: Self.loss)
        let expectedLosses = Self.batches().map { single.trainStep(on: $0) }
        let expected = Self.flat(reference)

        let results = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            try withGenerator(Generator(seed: 3)) {
                let model = Self.model().convertSyncBatchNorm(processGroup: g)
                let trainer = Trainer(model: model, optimizer: SGD(model.parameters(), lr: 0.1, momentum: 0.9), loss: Self.loss,
                                      distributed: try DistributedDataParallel(model, processGroup: g))
                let losses = Self.batches().map { trainer.trainStep(on: $0) }
                return (losses, Self.flat(model))
            }
        })
        #expect(results.count == 2)
        for (losses, state) in results {
            for (a, b) in zip(losses, expectedLosses) { #expect(abs(a - b) < 1e-12, "loss \(a) vs \(b)") }
            let difference = zip(state, expected).reduce(0) { max($0, abs($1.0 - $1.1)) }
            #expect(difference < 1e-12, "max state difference \(difference)")
        }
        // Every rank holds bit-identical weights and statistics.
        #expect(results.count == 2 && results[0].1 == results[1].1)
    }

    @Test("a non-finite loss on one rank's slice skips the step on every rank")
    func nonFiniteLossIsAgreed() throws {
        let results = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            let clean = Self.batches()[0]
            var inputs = clean.inputs.scalars(as: Double.self)
            inputs[4 * 6] = .nan  // row 4: rank 1's slice (rows 2..<5)
            let batch = Batch(inputs: Tensor(inputs, shape: [5, 6]), labels: clean.labels)
            // No BatchNorm, so the NaN stays in rank 1's loss: rank 0's own loss is finite.
            let model = Sequential(Linear(6, 8, dtype: .float64, generator: Generator(seed: 1)), ReLU(),
                                   Linear(8, 3, dtype: .float64, generator: Generator(seed: 2)))
            let trainer = Trainer(model: model, optimizer: SGD(model.parameters(), lr: 0.1), loss: Self.loss,
                                  distributed: try DistributedDataParallel(model, processGroup: g))
            let weights = { model.parameters().flatMap { $0.value.scalars(as: Double.self) } }
            let before = weights()
            let loss = trainer.trainStep(on: batch)
            return (loss, before == weights(), trainer.steps)
        })
        #expect(results.count == 2)
        for (loss, unchanged, steps) in results {
            #expect(!loss.isFinite)
            #expect(unchanged && steps == 0)
        }
    }

    @Test("fit: a batch smaller than the number of ranks is a typed error on every rank, not a hang")
    func batchSmallerThanRanks() throws {
        let results = values(runRanks(ProcessGroup.inProcess(worldSize: 3)) { g in
            let model = Self.model().convertSyncBatchNorm(processGroup: g)
            let trainer = Trainer(model: model, optimizer: SGD(model.parameters(), lr: 0.1), loss: Self.loss,
                                  distributed: try DistributedDataParallel(model, processGroup: g))
            let data = TensorDataset(inputs: Tensor.normal([2, 6], dtype: .float64, generator: Generator(seed: 1)),
                                     labels: Tensor([Int64(0), 1]))
            do {
                _ = try trainer.fit(DataLoader(data, batchSize: 2), validation: [Batch](), options: FitOptions(epochs: 1),
                                    scheduler: nil as StepLR?, generator: Generator(seed: 0))
                return "no error"
            } catch {
                return "\(error)"
            }
        })
        #expect(results.count == 3)
        for message in results {
            #expect(message.contains("data-parallel training") && message.contains("a batch of 2 samples"), "\(message)")
        }
    }

    @Test("each rank draws its own dropout masks; the run's generator stays where it was")
    func dropoutMasksDifferPerRank() throws {
        let results = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            let generator = Generator(seed: 9)
            return try withGenerator(generator) {
                let dropout = Dropout(0.5)
                let model = Sequential(dropout, Linear(16, 3, dtype: .float64, generator: Generator(seed: 2)))
                var kept: [Double] = []
                let handle = dropout.registerForwardHook { _, _, output in
                    kept = output.scalars(as: Double.self)
                    return nil
                }
                defer { handle.remove() }
                let trainer = Trainer(model: model, optimizer: SGD(model.parameters(), lr: 0.1), loss: Self.loss,
                                      distributed: try DistributedDataParallel(model, processGroup: g))
                // Every row alike, so both ranks' slices are equal and only the masks can differ.
                let batch = Batch(inputs: Tensor.ones([4, 16], dtype: .float64), labels: Tensor([Int64(0), 1, 2, 0]))
                let before = generator.state
                trainer.trainStep(on: batch)
                return (kept, before == generator.state)
            }
        })
        #expect(results.count == 2)
        guard results.count == 2 else { return }
        #expect(results[0].0.count == 32 && results[0].0 != results[1].0, "the ranks' masks differ")
        #expect(results[0].1 && results[1].1)
    }

    @Test("fit: a stop asked on one rank only stops every rank after the same batch")
    func stopIsAgreed() throws {
        let results = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            let generator = Generator(seed: 8)
            return try withGenerator(generator) {
                let model = Self.model().convertSyncBatchNorm(processGroup: g)
                let trainer = Trainer(model: model, optimizer: SGD(model.parameters(), lr: 0.1), loss: Self.loss,
                                      distributed: try DistributedDataParallel(model, processGroup: g))
                let data = TensorDataset(inputs: Tensor.normal([12, 6], dtype: .float64, generator: Generator(seed: 4)),
                                         labels: Tensor.randint(high: 3, shape: [12], generator: Generator(seed: 6)))
                var asked = 0
                let result = try trainer.fit(DataLoader(data, batchSize: 4, shuffle: true), validation: [Batch](),
                                             options: FitOptions(epochs: 3), scheduler: nil as StepLR?, generator: generator,
                                             shouldStop: { asked += 1; return g.rank == 1 && asked == 2 })
                return (result.outcome, trainer.steps)
            }
        })
        #expect(results.count == 2)
        for (outcome, steps) in results {
            guard case .stopped(let epochs, let position) = outcome else {
                Issue.record("a rank did not stop: \(outcome)")
                continue
            }
            #expect(epochs == 0 && position?.batch == 2 && steps == 2)
        }
        #expect(results.count == 2 && results[0].0 == results[1].0)
    }

    @Test("fit: only rank 0 writes the checkpoint, and the run's generator stays identical on every rank")
    func rankZeroWrites() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ember-dp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let results = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            let generator = Generator(seed: 5)
            return try withGenerator(generator) {
                let model = Sequential(Linear(6, 8, dtype: .float64, generator: Generator(seed: 1)), Dropout(0.5),
                                       Linear(8, 3, dtype: .float64, generator: Generator(seed: 2)))
                let trainer = Trainer(model: model, optimizer: SGD(model.parameters(), lr: 0.1), loss: Self.loss,
                                      distributed: try DistributedDataParallel(model, processGroup: g))
                let data = TensorDataset(inputs: Tensor.normal([12, 6], dtype: .float64, generator: Generator(seed: 4)),
                                         labels: Tensor.randint(high: 3, shape: [12], generator: Generator(seed: 6)))
                // Rank 1 writes into a folder of its own: it must stay empty.
                let path = folder.appendingPathComponent("rank\(g.rank).safetensors").path
                let result = try trainer.fit(DataLoader(data, batchSize: 4, shuffle: true), validation: [Batch](),
                                             options: FitOptions(epochs: 2, checkpointPath: path),
                                             scheduler: nil as StepLR?, generator: generator)
                return (FileManager.default.fileExists(atPath: path), generator.state, result.history.map(\.trainLoss), Self.flat(model))
            }
        })
        #expect(results.count == 2)
        guard results.count == 2 else { return }
        #expect(results[0].0 && !results[1].0)
        #expect(results[0].1 == results[1].1)
        #expect(results[0].2 == results[1].2)
        #expect(results[0].3 == results[1].3)
    }
}
