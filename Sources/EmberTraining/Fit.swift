import EmberData
import EmberNN
import EmberOptim
import Foundation
import EmberFunctional
import EmberIO
import EmberAutograd
import EmberTensor
import EmberStorage

/// How ``Trainer/fit(_:validation:options:scheduler:generator:resumingFrom:shouldStop:onBatch:onEpoch:)``
/// runs: the epoch count, where and how often it checkpoints, and the forgotten-eval measurement.
public struct FitOptions {
    /// Epochs to train in all (a resumed run counts the epochs already done).
    public var epochs: Int
    /// Where checkpoints go (`nil`: none are written).
    public var checkpointPath: String?
    /// A checkpoint every this many epochs, and always after the last epoch and when stopped.
    public var checkpointEvery: Int
    /// Caller metadata saved in every checkpoint (for example the settings that build the model).
    public var metadata: [String: String]
    /// Builds a fresh model of the same architecture; when given, each epoch also measures
    /// validation on a copy of the model left in training mode (what a forgotten `eval()` would
    /// report), under a generator seeded with `forgottenEvalSeed + epoch`, so neither the real
    /// model nor the run's random stream is touched.
    public var makeModelCopy: (() -> Module)?
    public var forgottenEvalSeed: UInt64

    public init(epochs: Int, checkpointPath: String? = nil, checkpointEvery: Int = 1, metadata: [String: String] = [:],
                makeModelCopy: (() -> Module)? = nil, forgottenEvalSeed: UInt64 = 0) {
        self.epochs = epochs
        self.checkpointPath = checkpointPath
        self.checkpointEvery = checkpointEvery
        self.metadata = metadata
        self.makeModelCopy = makeModelCopy
        self.forgottenEvalSeed = forgottenEvalSeed
    }
}

/// How a fit ended without an error.
public enum FitOutcome: Equatable, Sendable {
    /// Every epoch ran.
    case completed
    /// `shouldStop` asked for a stop; the state was checkpointed (when a path was given) at this
    /// position: `nil` at an epoch's end.
    case stopped(completedEpochs: Int, position: EpochPosition?)
}

/// What a fit did.
public struct FitResult {
    public var outcome: FitOutcome
    /// One record per completed epoch, including those of the run that was resumed.
    public var history: [EpochRecord]
    /// The last checkpoint written by this call (`nil` when none was).
    public var lastCheckpoint: (path: String, epoch: Int)?
}

/// Why a fit stopped with an error. The last checkpoint written before it is kept.
public enum FitError: Error, CustomStringConvertible {
    /// The loss became NaN or infinite; no step was taken with it.
    case diverged(epoch: Int, step: Int, batch: Int, batches: Int, loss: Double, lastCheckpoint: (path: String, epoch: Int)?)
    /// A parameter or buffer holds NaN or infinity at the end of an epoch; no checkpoint is
    /// written over the last good one.
    case nonFiniteState(epoch: Int, name: String, lastCheckpoint: (path: String, epoch: Int)?)
    /// A checkpoint could not be written or restored.
    case checkpoint(CheckpointError)
    /// The checkpoint to resume from does not fit this run.
    case cannotResume(String)
    /// Data-parallel training failed: a collective, or a batch too small to give every rank a sample.
    case distributed(String)

    public var description: String {
        func kept(_ last: (path: String, epoch: Int)?) -> String {
            last.map { "; the last good checkpoint, after epoch \($0.epoch), is kept at \($0.path)" } ?? "; no checkpoint was written"
        }
        switch self {
        case .diverged(let epoch, let step, let batch, let batches, let loss, let last):
            return "training diverged at epoch \(epoch), step \(step) (batch \(batch) of \(batches)): the loss is \(loss)\(kept(last))"
        case .nonFiniteState(let epoch, let name, let last):
            return "training diverged in epoch \(epoch): '\(name)' holds NaN or infinite values\(kept(last))"
        case .checkpoint(let e): return e.description
        case .cannotResume(let why): return "cannot resume: \(why)"
        case .distributed(let why): return "data-parallel training: \(why)"
        }
    }
}

extension Trainer {
    /// Trains for ``FitOptions/epochs`` epochs: each epoch trains on `loader` in training mode,
    /// steps `scheduler` (``LRScheduler/step()``, or ``ReduceLROnPlateau/step(metric:)`` with the
    /// validation loss), validates in evaluation mode, measures the forgotten-eval figure when
    /// asked, and writes a checkpoint every ``FitOptions/checkpointEvery`` epochs.
    ///
    /// - Parameters:
    ///   - loader: the training batches; its generator must be `generator` (the default when the
    ///     loader was created inside `withGenerator(generator)`).
    ///   - validation: the validation batches (empty: no validation).
    ///   - generator: the run's random source (shuffles, dropout); its state is checkpointed.
    ///   - checkpoint: a checkpoint of this run to continue from. Its model state, modes,
    ///     optimizer, schedule and generator are restored first (everything is checked before
    ///     anything changes); a checkpoint written mid-epoch replays that epoch's order and
    ///     continues after its last trained batch, so the run ends bitwise as an uninterrupted one.
    ///   - shouldStop: asked after every batch and every epoch; when it returns `true` the run
    ///     checkpoints where it is and returns ``FitOutcome/stopped(completedEpochs:position:)``
    ///     (a signal handler sets the flag it reads).
    ///
    /// A loss that is NaN or infinite stops the run before its step (``FitError/diverged``), and
    /// no checkpoint with non-finite parameters or buffers is ever written.
    ///
    /// The forgotten-eval measurement runs a training-mode copy over `validation`; a final
    /// validation batch of one sample is merged into the previous batch there, since BatchNorm
    /// cannot compute batch statistics of one value per channel (with one batch of one sample in
    /// all, the measurement is skipped).
    ///
    /// PyTorch parity: the hand-written epoch loop of PyTorch tutorials (`model.train()`, the batch
    /// loop, `scheduler.step()`, `model.eval()` + `torch.no_grad()` validation, `torch.save`),
    /// plus what they leave to the user: divergence checks, atomic checkpoints and exact resume.
    public func fit<Source: Dataset, V: Sequence, S: SavableSchedule>(
        _ loader: DataLoader<Source, HostBatch>,
        validation: V,
        options: FitOptions,
        scheduler: S?,
        generator: Generator,
        resumingFrom checkpoint: Checkpoint? = nil,
        shouldStop: () -> Bool = { false },
        onBatch: (_ epoch: Int, BatchProgress) -> Void = { _, _ in },
        onEpoch: (EpochRecord) -> Void = { _ in }
    ) throws(FitError) -> FitResult where V.Element == Batch, Source.Sample == Example {
        precondition(options.epochs >= 1, "Trainer.fit: epochs must be at least 1, got \(options.epochs)")
        precondition(options.checkpointEvery >= 1, "Trainer.fit: checkpointEvery must be at least 1, got \(options.checkpointEvery)")
        var history: [EpochRecord] = []
        var firstEpoch = 1
        var resumePosition: EpochPosition?
        var lastCheckpoint: (path: String, epoch: Int)?
        if let checkpoint {
            let progress = checkpoint.progress ?? TrainingProgress()
            if let problem = progress.problems(completedEpochs: checkpoint.epoch).first { throw .cannotResume(problem) }
            guard checkpoint.epoch <= options.epochs else {
                throw .cannotResume("the checkpoint is after epoch \(checkpoint.epoch), beyond the run's \(options.epochs) epochs")
            }
            if let position = progress.position, position.batch >= loader.count {
                throw .cannotResume("the checkpoint stopped after batch \(position.batch) of an epoch that has \(loader.count) batches")
            }
            do { try checkpoint.restore(model: model, optimizer: optimizer, scheduler: scheduler, generator: generator) } catch {
                throw .checkpoint(error)
            }
            steps = checkpoint.step
            history = progress.history
            firstEpoch = checkpoint.epoch + 1
            resumePosition = progress.position
        }

        func save(completedEpochs: Int, position: EpochPosition?) throws(FitError) {
            guard let path = options.checkpointPath else { return }
            if let bad = nonFiniteEntry() {
                throw .nonFiniteState(epoch: completedEpochs + (position == nil ? 0 : 1), name: bad, lastCheckpoint: lastCheckpoint)
            }
            let file = Checkpoint(model: model, optimizer: optimizer, scheduler: scheduler, generator: generator,
                                  epoch: completedEpochs, step: steps,
                                  progress: TrainingProgress(history: history, position: position), metadata: options.metadata)
            try writeOnWritingRank(file, to: path)
            lastCheckpoint = (path, completedEpochs)
        }

        let batches = loader.count
        guard firstEpoch <= options.epochs else {
            return FitResult(outcome: .completed, history: history, lastCheckpoint: nil)
        }
        for epoch in firstEpoch...options.epochs {
            model.train()
            var epochStart = generator.state
            var iterator: DataLoader<Source, HostBatch>.Iterator
            var lossSum = 0.0, samples = 0, index = 0
            if let position = resumePosition {
                // Replay the epoch's draws (its order and batch seed), skip the trained batches,
                // then continue from the generator state saved after the last of them.
                let current = generator.state
                epochStart = position.epochStartGenerator
                generator.state = epochStart
                iterator = loader.makeIterator()
                for _ in 0..<position.batch { _ = iterator.next() }
                generator.state = current
                (lossSum, samples, index) = (position.lossSum, position.samples, position.batch)
                resumePosition = nil
            } else {
                iterator = loader.makeIterator()
            }
            while let batch = iterator.next() {
                let loss = try checkedStep(on: batch)
                index += 1
                guard loss.isFinite else {
                    throw .diverged(epoch: epoch, step: steps + 1, batch: index, batches: batches, loss: loss, lastCheckpoint: lastCheckpoint)
                }
                let count = batch.labels.shape.first ?? 0
                lossSum += loss * Double(count)
                samples += count
                onBatch(epoch, BatchProgress(batch: index, batches: batches, loss: loss, samplesSoFar: samples))
                if index < batches, try agreedStop(shouldStop()) {
                    let position = EpochPosition(epoch: epoch, batch: index, epochStartGenerator: epochStart,
                                                 lossSum: lossSum, samples: samples)
                    try save(completedEpochs: epoch - 1, position: position)
                    return FitResult(outcome: .stopped(completedEpochs: epoch - 1, position: position), history: history,
                                     lastCheckpoint: lastCheckpoint)
                }
            }
            var record = EpochRecord(epoch: epoch, trainLoss: samples == 0 ? 0 : lossSum / Double(samples))
            let validated = evaluate(model, on: validation, loss: loss)
            if validated.samples > 0 {
                record.validationLoss = validated.loss
                record.validationAccuracy = validated.accuracy
                if let forgotten = forgottenEvaluation(options: options, epoch: epoch, on: validation) {
                    record.forgottenEvalLoss = forgotten.loss
                    record.forgottenEvalAccuracy = forgotten.accuracy
                }
            }
            if let plateau = scheduler as? ReduceLROnPlateau {
                plateau.step(metric: record.validationLoss ?? record.trainLoss)
            } else if let schedule = scheduler as? any LRScheduler {
                schedule.step()
            }
            history.append(record)
            onEpoch(record)
            let stopping = try agreedStop(epoch < options.epochs && shouldStop())
            if epoch == options.epochs || epoch % options.checkpointEvery == 0 || stopping {
                try save(completedEpochs: epoch, position: nil)
            }
            if stopping {
                return FitResult(outcome: .stopped(completedEpochs: epoch, position: nil), history: history, lastCheckpoint: lastCheckpoint)
            }
        }
        return FitResult(outcome: .completed, history: history, lastCheckpoint: lastCheckpoint)
    }

    /// The first parameter or buffer (by state-dict key) holding NaN or infinity.
    private func nonFiniteEntry() -> String? {
        for (key, tensor) in model.stateDict() {
            switch tensor.dtype {
            case .float32: if !tensor.scalars(as: Float.self).allSatisfy(\.isFinite) { return key }
            case .float64: if !tensor.scalars(as: Double.self).allSatisfy(\.isFinite) { return key }
            default: continue
            }
        }
        return nil
    }

    private func forgottenEvaluation<V: Sequence>(options: FitOptions, epoch: Int, on validation: V) -> Evaluation?
        where V.Element == Batch
    {
        guard let make = options.makeModelCopy else { return nil }
        let batches = SingletonMergingBatches(validation)
        guard batches.hasBatchOfMoreThanOne else { return nil }
        return withGenerator(Generator(seed: options.forgottenEvalSeed &+ UInt64(epoch))) {
            let copy = make()
            do { try copy.loadStateDict(model.stateDict()) } catch {
                preconditionFailure("Trainer.fit: makeModelCopy built a model whose state dict differs from the trained one: \(error)")
            }
            return evaluate(copy, on: batches.merged, mode: .training, loss: loss)
        }
    }
}

/// Validation batches with a final one-sample batch merged into the one before it.
struct SingletonMergingBatches {
    let merged: [Batch]

    init<V: Sequence>(_ batches: V) where V.Element == Batch {
        var list = Array(batches)
        if list.count >= 2, let last = list.last, last.labels.shape.first == 1 {
            let previous = list[list.count - 2]
            list.removeLast(2)
            list.append(Batch(inputs: Tensor.cat([previous.inputs, last.inputs], axis: 0),
                              labels: Tensor.cat([previous.labels, last.labels], axis: 0)))
        }
        merged = list
    }

    var hasBatchOfMoreThanOne: Bool { merged.contains { ($0.labels.shape.first ?? 0) > 1 } }
}
