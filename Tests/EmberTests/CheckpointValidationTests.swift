import Ember
import Foundation
import Testing
import _EmberTestSupport

/// Issue #10: every field of a checkpoint is range-checked when it is read, and a restore that
/// throws leaves the model, the optimizer, the schedule and the generator exactly as they were.

/// A model with parameters, buffers (BatchNorm) and a pinned module, its Adam optimizer (with
/// per-parameter state after `steps` steps), a StepLR schedule and a generator.
private struct Run {
    let model: Sequential
    let optimizer: Adam
    let schedule: StepLR
    let generator: Generator

    init(seed: UInt64, steps: Int) {
        generator = Generator(seed: seed)
        (model, optimizer, schedule) = withGenerator(generator) {
            let model = Sequential(Linear(3, 4), BatchNorm1d(4), Dropout(0.2), Linear(4, 2))
            let optimizer = Adam(model.parameters(), lr: 0.01)
            let schedule = StepLR(optimizer, stepSize: 2, gamma: 0.5)
            for _ in 0..<steps {
                optimizer.zeroGrad()
                crossEntropy(model(Tensor.normal([8, 3])), target: Tensor([0, 1, 1, 0, 1, 0, 0, 1] as [Int64])).backward()
                optimizer.step()
                schedule.step()
            }
            return (model, optimizer, schedule)
        }
        model.layers[2].pin(.evaluation)
    }

    var checkpoint: Checkpoint {
        Checkpoint(model: model, optimizer: optimizer, scheduler: schedule, generator: generator, epoch: 3, step: 7)
    }

    /// Everything a restore may change, to compare bit for bit.
    struct Snapshot: Equatable, CustomStringConvertible {
        var weights: [String: [UInt64]]
        var modes: [ModeRecord]
        var optimizerHeader: OptimizerState.Header
        var optimizerTensors: [String: [UInt64]]
        var schedule: StepLR.State
        var generator: Generator.State

        var description: String {
            "Snapshot(weights: \(weights.count) tensors, optimizer: \(optimizerTensors.count) tensors, lr: \(optimizerHeader.groups.map { $0.hyperparameters["lr"].map { "\($0)" } ?? "-" }), schedule: \(schedule), generator: \(generator))"
        }
    }

    var snapshot: Snapshot {
        func bits(_ t: Tensor) -> [UInt64] { t.doubles.map(\.bitPattern) }
        let o = optimizer.state()
        return Snapshot(
            weights: Dictionary(uniqueKeysWithValues: model.stateDict().map { ($0.key, bits($0.value)) }),
            modes: model.modeRecords(), optimizerHeader: o.header,
            optimizerTensors: o.tensors().mapValues(bits), schedule: schedule.state(), generator: generator.state)
    }

    func restore(_ c: Checkpoint) throws(CheckpointError) {
        try c.restore(model: model, optimizer: optimizer, scheduler: schedule, generator: generator)
    }
}

private func temporaryPath() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("ember-ckpt-check-\(UUID().uuidString).safetensors").path
}

/// Writes `checkpoint` with `edit` applied to its metadata, and reads it back.
private func readBack(_ checkpoint: Checkpoint, editing edit: (inout [String: String]) -> Void = { _ in }) throws -> Result<Checkpoint, CheckpointError> {
    let path = temporaryPath()
    defer { try? FileManager.default.removeItem(atPath: path) }
    try checkpoint.write(to: path)
    var contents = try Safetensors.read(contentsOf: path)
    edit(&contents.metadata)
    try Safetensors.write(contents.names.map { ($0, contents.tensors[$0]!) }, metadata: contents.metadata, to: path)
    return Result { () throws(CheckpointError) in try Checkpoint.read(from: path) }
}

private func detail(_ r: Result<Checkpoint, CheckpointError>) -> String? {
    guard case .failure(.invalid(_, let d)) = r else { return nil }
    return d
}

@Suite struct CheckpointValidationTests {
    // MARK: restore is all or nothing

    @Test func aRestoreThatFailsOnTheModesChangesNothing() throws {
        var c = Run(seed: 1, steps: 3).checkpoint
        c.modes.append(ModeRecord(path: "9", mode: .training, pinnedMode: nil))
        let target = Run(seed: 2, steps: 1)
        let before = target.snapshot
        #expect(throws: CheckpointError.self) { try target.restore(c) }
        #expect(target.snapshot == before)
    }

    @Test func aRestoreThatFailsOnTheOptimizerChangesNothing() throws {
        var c = Run(seed: 1, steps: 3).checkpoint
        c.optimizer?.optimizer = "SGD"
        let target = Run(seed: 2, steps: 1)
        let before = target.snapshot
        do {
            try target.restore(c)
            Issue.record("restored an SGD state into Adam")
        } catch {
            guard case .optimizer(.wrongOptimizer) = error else { Issue.record("\(error)"); return }
        }
        #expect(target.snapshot == before)
    }

    @Test func aRestoreThatFailsOnTheScheduleChangesNothing() throws {
        let target = Run(seed: 2, steps: 1)
        let before = target.snapshot
        for bad in ["{\"stepSize\": 2}", "not json", "{\"stepSize\":2,\"gamma\":0.5,\"progress\":{\"baseLearningRates\":[0.1,0.1],\"lastEpoch\":1,\"stepCount\":2,\"lastLearningRates\":[0.1,0.1]}}"] {
            var c = Run(seed: 1, steps: 3).checkpoint
            c.scheduler = Data(bad.utf8)
            #expect(throws: CheckpointError.self, "\(bad)") { try target.restore(c) }
            #expect(target.snapshot == before, "\(bad)")
        }
    }

    @Test func aScheduleStateTheScheduleWouldTrapOnIsATypedError() throws {
        let target = Run(seed: 2, steps: 1)
        let before = target.snapshot
        var c = Run(seed: 1, steps: 3).checkpoint
        var state = Run(seed: 1, steps: 3).schedule.state()
        state.stepSize = 0
        c.scheduler = try JSONEncoder().encode(state)
        do {
            try target.restore(c)
            Issue.record("restored stepSize 0")
        } catch {
            #expect(error.description == "invalid checkpoint: schedule state of StepLR: stepSize must be positive, found 0")
        }
        #expect(target.snapshot == before)
    }

    @Test func aRestoreThatFailsOnTheWeightsChangesNothing() throws {
        var c = Run(seed: 1, steps: 3).checkpoint
        c.model["3.bias"] = Tensor([1, 2] as [Int64])
        let target = Run(seed: 2, steps: 1)
        let before = target.snapshot
        do {
            try target.restore(c)
            Issue.record("restored an int64 bias")
        } catch {
            guard case .stateDict(let e) = error else { Issue.record("\(error)"); return }
            #expect(e.dtypeMismatches == [.init(key: "3.bias", checkpointDType: .int64, modelDType: .float32)])
        }
        #expect(target.snapshot == before)
    }

    @Test func aGoodRestoreStillRestoresEverything() throws {
        let source = Run(seed: 1, steps: 3)
        let target = Run(seed: 2, steps: 1)
        try target.restore(source.checkpoint)
        #expect(target.snapshot == source.snapshot)
    }

    // MARK: state dict dtypes

    @Test func loadStateDictConvertsBetweenFloatDTypesButRefusesIntegerAndBool() throws {
        let model = Linear(2, 1)
        try model.loadStateDict(["weight": Tensor([0.5, 0.25] as [Double], shape: [1, 2]), "bias": Tensor([1] as [Double])])
        #expect(model.weight.value.dtype == .float32 && model.weight.value.floats == [0.5, 0.25])
        let before = model.stateDict()
        let bad: StateDict = ["weight": Tensor([1, 2] as [Int64], shape: [1, 2]), "bias": Tensor([true])]
        do {
            try model.loadStateDict(bad)
            Issue.record("loaded int64 and bool into float32")
        } catch {
            #expect(error.dtypeMismatches == [
                .init(key: "weight", checkpointDType: .int64, modelDType: .float32),
                .init(key: "bias", checkpointDType: .bool, modelDType: .float32),
            ])
            #expect(error.description.contains("\tdtype mismatch for weight: copying a param with dtype torch.int64 from checkpoint, the dtype in current model is torch.float32"))
        }
        #expect(throws: StateDictError.self) { try model.validateStateDict(bad) }
        for (k, v) in before { expectBitwiseEqual(model.stateDict()[k]!, v, k) }
        // A float into BatchNorm's int64 counter is refused too.
        let bn = BatchNorm1d(2)
        var sd = bn.stateDict()
        sd["num_batches_tracked"] = Tensor(Float(3))
        #expect(throws: StateDictError.self) { try bn.loadStateDict(sd) }
    }

    // MARK: read checks every field

    @Test func negativeOrHugeCountersAreRefusedAtRead() throws {
        let c = Run(seed: 1, steps: 1).checkpoint
        for (key, value) in [("ember.epoch", "-1"), ("ember.step", "-5"), ("ember.step", "9223372036854775807")] {
            let d = detail(try readBack(c) { $0[key] = value })
            #expect(d == "metadata \(key) must be a count in 0...\(Checkpoint.maxCounter), found \(value)")
        }
        #expect(detail(try readBack(c) { $0["ember.epoch"] = "two" }) != nil)
        if case .failure(let e) = try readBack(c) { Issue.record("a good checkpoint was refused: \(e)") }
    }

    @Test func modeRecordsThatContradictTheirPinOrRepeatAreRefusedAtRead() throws {
        let c = Run(seed: 1, steps: 1).checkpoint
        let contradicting = detail(try readBack(c) {
            $0["ember.modes"] = $0["ember.modes"]!.replacingOccurrences(of: "{\"mode\":\"eval\",\"path\":\"2\",\"pinnedMode\":\"eval\"}",
                                                                        with: "{\"mode\":\"train\",\"path\":\"2\",\"pinnedMode\":\"eval\"}")
        })
        #expect(contradicting == "metadata ember.modes: module '2' is pinned to eval but recorded in train")
        let repeated = detail(try readBack(c) {
            $0["ember.modes"] = "[{\"mode\":\"train\",\"path\":\"\"},{\"mode\":\"eval\",\"path\":\"\"}]"
        })
        #expect(repeated == "metadata ember.modes: two records for the module path ''")
        #expect(detail(try readBack(c) { $0["ember.modes"] = "[{\"mode\":\"sideways\",\"path\":\"\"}]" })?.hasPrefix("metadata ember.modes is not valid") == true)
    }

    @Test func generatorScheduleAndOptimizerMetadataAreCheckedAtRead() throws {
        let c = Run(seed: 1, steps: 1).checkpoint
        #expect(detail(try readBack(c) { $0["ember.generator"] = "{\"seed\":-1,\"offset\":0}" })?.hasPrefix("metadata ember.generator is not valid") == true)
        #expect(detail(try readBack(c) { $0["ember.scheduler"] = "[1, 2" }) == "metadata ember.scheduler is not a JSON object")
        let repeatedIndex = detail(try readBack(c) {
            $0["ember.optimizer"] = $0["ember.optimizer"]!.replacingOccurrences(of: "\"params\":[0,1,2,3,4,5]", with: "\"params\":[0,1,2,3,4,4]")
        })
        #expect(repeatedIndex == "metadata ember.optimizer: parameter group 0 lists the parameter index 4, which is negative or listed before")
    }

    @Test func aNegativeAdamStepCountIsRefusedAtRead() throws {
        let c = Run(seed: 1, steps: 1).checkpoint
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try c.write(to: path)
        var contents = try Safetensors.read(contentsOf: path)
        contents.tensors["optimizer.state.0.step"] = Tensor(Int64(-3))
        try Safetensors.write(contents.names.map { ($0, contents.tensors[$0]!) }, metadata: contents.metadata, to: path)
        do {
            _ = try Checkpoint.read(from: path)
            Issue.record("read a negative step")
        } catch {
            guard case .invalid(_, let d) = error else { Issue.record("\(error)"); return }
            #expect(d.contains("a step must be a whole non-negative number, got -3.0"))
        }
    }
}
