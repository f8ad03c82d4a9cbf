import EmberData
import EmberNN
import EmberOptim
import Foundation
import EmberFunctional
import EmberIO
import EmberAutograd
import EmberTensor
import EmberStorage
import EmberDistributed

/// The outcome of running a model over a dataset.
public struct Evaluation: Sendable {
    /// Mean loss per sample.
    public var loss: Double
    /// Fraction of correct argmax predictions (classification).
    public var accuracy: Double
    public var samples: Int
    public var confusion: ConfusionMatrix?
}

/// Runs `model` over `batches` in evaluation mode without recording gradients, then restores
/// every module's previous mode (also when the model's forward stops).
///
/// - Parameters:
///   - mode: the mode to run in; `.training` shows what validation would report had `eval()` been
///     forgotten (running statistics of BatchNorm layers then move, so use a copy of the model).
///   - loss: a per-batch mean loss (for example `{ crossEntropy($0, target: $1) }`); the result is
///     weighted by batch size.
///   - classes: when given, a confusion matrix is collected.
///
/// PyTorch parity: the hand-written `model.eval(); with torch.no_grad(): ...; model.train()` loop,
/// except that the previous per-module modes (and pins) are restored rather than set to train.
public func evaluate<S: Sequence>(
    _ model: Module, on batches: S, classes: Int? = nil, mode: Mode = .evaluation, loss: (Tensor, Tensor) -> Tensor
) -> Evaluation where S.Element == Batch {
    // A training-mode run here is deliberate (the forgotten-eval measurement): no mode report.
    let diagnostics: DiagnosticsSetting = mode == .training ? .off : Diagnostics.current
    return model.withMode(mode) {
        withDiagnostics(diagnostics) {
            withNoGrad {
                var total = 0.0, correct = 0.0, n = 0
                var confusion = classes.map { ConfusionMatrix(classes: $0) }
                for batch in batches {
                    let logits = model(batch.inputs)
                    let count = batch.labels.shape.first ?? 0
                    total += loss(logits, batch.labels).doubleValue * Double(count)
                    if logits.rank == 2 && batch.labels.rank == 1 {
                        correct += accuracy(logits: logits, labels: batch.labels) * Double(count)
                        confusion?.add(logits: logits, labels: batch.labels)
                    }
                    n += count
                }
                return Evaluation(loss: n == 0 ? 0 : total / Double(n), accuracy: n == 0 ? 0 : correct / Double(n),
                                  samples: n, confusion: confusion)
            }
        }
    }
}

/// One batch's numbers, reported while an epoch trains.
public struct BatchProgress: Sendable {
    public var batch: Int
    public var batches: Int
    public var loss: Double
    public var samplesSoFar: Int
}

/// Trains a model with an optimizer and a loss, one epoch at a time, and warns when the model
/// is stepped in evaluation mode.
///
/// The modules are listed once, at construction, so the per-step mode check costs a flag read per
/// module rather than a reflection walk.
public final class Trainer {
    public let model: Module
    public let optimizer: any Optimizer
    public let loss: (Tensor, Tensor) -> Tensor
    /// The data-parallel wrapper of ``model`` when this trainer is one rank of several (see
    /// ``init(model:optimizer:loss:distributed:)``).
    public let distributed: DistributedDataParallel?
    /// Optimizer steps taken.
    public internal(set) var steps = 0
    private let checked: [(path: String, module: Module)]
    private var warned = false

    /// - Parameter distributed: `model` wrapped in ``DistributedDataParallel``, to train data-parallel:
    ///   every rank runs the same trainer on the same batches (the same data, seed and loader), and
    ///   each trains on its slice of every batch (see ``trainStep(on:)``); rank 0 alone writes
    ///   checkpoints. Convert BatchNorms first (``Module/convertSyncBatchNorm(processGroup:)``) for
    ///   the global batch's statistics.
    public init(model: Module, optimizer: any Optimizer, loss: @escaping (Tensor, Tensor) -> Tensor,
                distributed: DistributedDataParallel? = nil) {
        if let distributed {
            precondition(distributed.module === model, "Trainer: distributed must wrap the trained model itself (DistributedDataParallel(model, ...))")
        }
        self.model = model
        self.optimizer = optimizer
        self.loss = loss
        self.distributed = distributed
        // Modules under a pin are expected to stay in their pinned mode: leave them out.
        var pinned = Set<String>()
        var list: [(String, Module)] = []
        for (path, m) in model.namedModules() {
            if pinned.contains(where: { path == $0 || path.hasPrefix($0 + ".") || $0.isEmpty }) { continue }
            if m.pinnedMode != nil { pinned.insert(path); continue }
            list.append((path, m))
        }
        checked = list
    }

    /// Steps the optimizer; the first time any unpinned module is found in evaluation mode, prints
    /// one warning naming it (dropout off and BatchNorm frozen while training is the classic bug of
    /// forgetting `train()` after validation).
    public func step() {
        if !warned, let (path, m) = checked.first(where: { !$0.module.isTraining && $0.module.isModeDependent && $0.module.reportsModeMistakes }),
           Diagnostics.isEnabled {
            warned = true
            // The optimizer's own report of the same mistake would repeat this one.
            for p in optimizer.parameters { p.reportedEvalModeGradient = true }
            Diagnostics.report(Diagnostic(
                kind: .forgottenTrain, modules: [path],
                message: "Ember warning: optimizer step while \(path.isEmpty ? "the model" : "'\(path)'") (\(m.typeName)) is in eval mode; call model.train() before training (pin modules that should stay in eval)."))
        }
        optimizer.step()
        steps += 1
    }

    /// Trains on one batch: clears gradients, runs forward and the loss, and, when the loss is
    /// finite, backward and an optimizer step. Returns the batch's loss (a NaN or infinite loss
    /// takes no step, so it never reaches the weights).
    ///
    /// Data-parallel (``distributed`` over more than one rank), every rank passes the same batch
    /// and trains on its slice of it (see ``dataParallelStep(on:_:)``); the loss returned is the
    /// whole batch's, the same on every rank, and every rank skips a non-finite one together.
    /// A failed collective stops the rank (`mpirun` then ends the others); ``fit(_:validation:options:scheduler:generator:resumingFrom:shouldStop:onBatch:onEpoch:)``
    /// throws it as ``FitError/distributed(_:)`` instead.
    @discardableResult
    public func trainStep(on batch: Batch) -> Double {
        do { return try checkedStep(on: batch) } catch {
            fatalError("Trainer.trainStep: \(error)")
        }
    }

    /// ``trainStep(on:)`` with collective failures thrown.
    func checkedStep(on batch: Batch) throws(FitError) -> Double {
        if let distributed, distributed.processGroup.worldSize > 1 {
            return try dataParallelStep(on: batch, distributed)
        }
        optimizer.zeroGrad()
        let value = loss(model(batch.inputs), batch.labels)
        let l = value.doubleValue
        guard l.isFinite else { return l }
        value.backward()
        step()
        return l
    }

    /// Trains one epoch: puts the model in training mode (pins respected), then for each batch
    /// clears gradients, runs forward and the loss, backward, and an optimizer step.
    ///
    /// - Returns: the mean training loss per sample over the epoch.
    @discardableResult
    public func trainEpoch<S: Sequence>(on batches: S, batchCount: Int? = nil,
                                        onBatch: (BatchProgress) -> Void = { _ in }) -> Double where S.Element == Batch {
        model.train()
        var total = 0.0, n = 0, index = 0
        for batch in batches {
            let l = trainStep(on: batch)
            let count = batch.labels.shape.first ?? 0
            total += l * Double(count)
            n += count
            index += 1
            onBatch(BatchProgress(batch: index, batches: batchCount ?? index, loss: l, samplesSoFar: n))
        }
        return n == 0 ? 0 : total / Double(n)
    }
}
