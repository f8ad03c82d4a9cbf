import EmberTensor

/// One epoch of a ``Trainer/fit(_:validation:options:scheduler:generator:resumingFrom:shouldStop:onBatch:onEpoch:)``
/// run: the numbers a report plots. Timings are left out on purpose, so that checkpoints holding
/// the history stay byte-identical between runs.
public struct EpochRecord: Codable, Sendable, Equatable {
    /// The epoch, from 1.
    public var epoch: Int
    /// Mean training loss per sample (training mode, as the batches were trained).
    public var trainLoss: Double
    /// Mean validation loss per sample in evaluation mode (`nil` without validation data).
    public var validationLoss: Double?
    public var validationAccuracy: Double?
    /// The same validation run on a copy of the model left in training mode: what validation
    /// would have reported had `eval()` been forgotten (`nil` when not measured).
    public var forgottenEvalLoss: Double?
    public var forgottenEvalAccuracy: Double?

    public init(epoch: Int, trainLoss: Double, validationLoss: Double? = nil, validationAccuracy: Double? = nil,
                forgottenEvalLoss: Double? = nil, forgottenEvalAccuracy: Double? = nil) {
        self.epoch = epoch
        self.trainLoss = trainLoss
        self.validationLoss = validationLoss
        self.validationAccuracy = validationAccuracy
        self.forgottenEvalLoss = forgottenEvalLoss
        self.forgottenEvalAccuracy = forgottenEvalAccuracy
    }
}

/// Where a run stopped inside an epoch, so that resuming replays the epoch's order and continues
/// after the last completed batch.
public struct EpochPosition: Codable, Sendable, Equatable {
    /// The epoch in progress, from 1.
    public var epoch: Int
    /// Batches of it already trained (at least 1, fewer than the epoch's batch count).
    public var batch: Int
    /// The generator's state when the epoch began, before the loader drew the epoch's order.
    public var epochStartGenerator: Generator.State
    /// The epoch's training loss so far, summed over samples, and the sample count.
    public var lossSum: Double
    public var samples: Int

    public init(epoch: Int, batch: Int, epochStartGenerator: Generator.State, lossSum: Double, samples: Int) {
        self.epoch = epoch
        self.batch = batch
        self.epochStartGenerator = epochStartGenerator
        self.lossSum = lossSum
        self.samples = samples
    }
}

/// A fit's history and, for a checkpoint written mid-epoch, where in the epoch it stopped.
/// Stored in checkpoints under the `ember.progress` metadata key.
public struct TrainingProgress: Codable, Sendable, Equatable {
    /// One record per completed epoch, in order.
    public var history: [EpochRecord]
    /// `nil` when the checkpoint was written at the end of an epoch.
    public var position: EpochPosition?

    public init(history: [EpochRecord] = [], position: EpochPosition? = nil) {
        self.history = history
        self.position = position
    }

    /// The problems that make this progress record unusable for a checkpoint at `epoch`
    /// completed epochs (empty when it is consistent).
    public func problems(completedEpochs epoch: Int) -> [String] {
        var found: [String] = []
        if history.count != epoch {
            found.append("the history holds \(history.count) epochs but the checkpoint says \(epoch) were completed")
        }
        for (i, record) in history.enumerated() where record.epoch != i + 1 {
            found.append("history entry \(i) is for epoch \(record.epoch), expected \(i + 1)")
            break
        }
        if let position {
            if position.epoch != epoch + 1 { found.append("the position is in epoch \(position.epoch), expected \(epoch + 1)") }
            if position.batch < 1 { found.append("the position's batch is \(position.batch), expected at least 1") }
            if position.samples < 0 || !position.lossSum.isFinite {
                found.append("the position's loss sum \(position.lossSum) over \(position.samples) samples is not valid")
            }
        }
        return found
    }
}
