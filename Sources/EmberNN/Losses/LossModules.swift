import EmberAutograd
import EmberFunctional
import EmberTensor
import EmberStorage

/// Cross entropy between logits and class indices or class probabilities, as a module.
///
/// `loss(input, target)` is ``crossEntropy(_:target:weight:ignoreIndex:reduction:labelSmoothing:)``
/// with this module's settings; see there for the formulas and shapes.
///
/// PyTorch parity: `torch.nn.CrossEntropyLoss(weight=None, ignore_index=-100, reduction='mean',
/// label_smoothing=0.0)`: the class weights are a persistent buffer, so `stateDict()` has the key
/// `weight` exactly when weights were given.
public final class CrossEntropyLoss: Loss {
    /// Class weights `[C]`, or `nil`.
    public let weight: Buffer?
    /// A target value that contributes nothing.
    public let ignoreIndex: Int
    /// Label smoothing `e` in `[0, 1]`.
    public let labelSmoothing: Double

    /// - Parameters:
    ///   - weight: class weights `[C]` (stored as a buffer), or `nil`.
    ///   - ignoreIndex: a class-index target value that contributes nothing (default -100).
    ///   - reduction: `.mean` (default), `.sum` or `.none`.
    ///   - labelSmoothing: in `[0, 1]` (default 0); stops otherwise.
    public init(weight: Tensor? = nil, ignoreIndex: Int = -100, reduction: Reduction = .mean, labelSmoothing: Double = 0) {
        reduction.validate("CrossEntropyLoss")
        validateLabelSmoothing(labelSmoothing, op: "CrossEntropyLoss")
        self.weight = weight.map { Buffer($0) }
        self.ignoreIndex = ignoreIndex
        self.labelSmoothing = labelSmoothing
        super.init(reduction: reduction)
    }

    /// The loss of `input` (logits) against `target` (class indices or probabilities).
    public func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor {
        crossEntropy(input, target, weight?.value, ignoreIndex, reduction, labelSmoothing, op: errorContext, path: .automatic)
    }
}

/// Negative log likelihood of class indices given log-probabilities, as a module.
///
/// `loss(input, target)` is ``nllLoss(_:target:weight:ignoreIndex:reduction:)``.
///
/// PyTorch parity: `torch.nn.NLLLoss(weight=None, ignore_index=-100, reduction='mean')`, with
/// `weight` a persistent buffer (state-dict key `weight` when given).
public final class NLLLoss: Loss {
    /// Class weights `[C]`, or `nil`.
    public let weight: Buffer?
    /// A target value that contributes nothing.
    public let ignoreIndex: Int

    /// - Parameters:
    ///   - weight: class weights `[C]` (stored as a buffer), or `nil`.
    ///   - ignoreIndex: a target value that contributes nothing (default -100).
    ///   - reduction: `.mean` (default), `.sum` or `.none`.
    public init(weight: Tensor? = nil, ignoreIndex: Int = -100, reduction: Reduction = .mean) {
        reduction.validate("NLLLoss")
        self.weight = weight.map { Buffer($0) }
        self.ignoreIndex = ignoreIndex
        super.init(reduction: reduction)
    }

    /// The loss of `input` (log-probabilities) against `target` (class indices).
    public func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor {
        nllLoss(input, target, weight?.value, ignoreIndex, reduction, op: errorContext)
    }
}

/// Mean squared error, as a module: ``mseLoss(_:target:reduction:)``.
///
/// PyTorch parity: `torch.nn.MSELoss(reduction='mean')`; a target of another shape stops with an
/// error (PyTorch warns and broadcasts).
public final class MSELoss: Loss {
    /// - Parameter reduction: `.mean` (default), `.sum` or `.none`.
    public override init(reduction: Reduction = .mean) {
        reduction.validate("MSELoss")
        super.init(reduction: reduction)
    }

    /// The loss of `input` against `target` (same shape).
    public func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor {
        mseLoss(input, target, reduction, op: errorContext)
    }
}

/// Mean absolute error, as a module: ``l1Loss(_:target:reduction:)``.
///
/// PyTorch parity: `torch.nn.L1Loss(reduction='mean')`; a target of another shape stops with an
/// error (PyTorch warns and broadcasts).
public final class L1Loss: Loss {
    /// - Parameter reduction: `.mean` (default), `.sum` or `.none`.
    public override init(reduction: Reduction = .mean) {
        reduction.validate("L1Loss")
        super.init(reduction: reduction)
    }

    /// The loss of `input` against `target` (same shape).
    public func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor {
        l1Loss(input, target, reduction, op: errorContext)
    }
}

/// Smooth L1 loss, as a module: ``smoothL1Loss(_:target:reduction:beta:)``.
///
/// PyTorch parity: `torch.nn.SmoothL1Loss(reduction='mean', beta=1.0)`; a negative `beta` stops
/// at construction (PyTorch stops at the first call, with the same message).
public final class SmoothL1Loss: Loss {
    /// Where the quadratic part ends.
    public let beta: Double

    /// - Parameters:
    ///   - reduction: `.mean` (default), `.sum` or `.none`.
    ///   - beta: where the quadratic part ends, `>= 0` (default 1).
    public init(reduction: Reduction = .mean, beta: Double = 1) {
        reduction.validate("SmoothL1Loss")
        validateSmoothL1Beta(beta, op: "SmoothL1Loss")
        self.beta = beta
        super.init(reduction: reduction)
    }

    /// The loss of `input` against `target` (same shape).
    public func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor {
        smoothL1Loss(input, target, reduction, beta: beta, op: errorContext)
    }
}

/// Huber loss, as a module: ``huberLoss(_:target:reduction:delta:)``.
///
/// PyTorch parity: `torch.nn.HuberLoss(reduction='mean', delta=1.0)`; a non-positive `delta` stops
/// at construction (PyTorch stops at the first call, with the same message).
public final class HuberLoss: Loss {
    /// Where the quadratic part ends.
    public let delta: Double

    /// - Parameters:
    ///   - reduction: `.mean` (default), `.sum` or `.none`.
    ///   - delta: where the quadratic part ends, `> 0` (default 1).
    public init(reduction: Reduction = .mean, delta: Double = 1) {
        reduction.validate("HuberLoss")
        validateHuberDelta(delta, op: "HuberLoss")
        self.delta = delta
        super.init(reduction: reduction)
    }

    /// The loss of `input` against `target` (same shape).
    public func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor {
        huberLoss(input, target, reduction, delta: delta, op: errorContext)
    }
}

/// Binary cross entropy on probabilities, as a module: ``binaryCrossEntropy(_:target:weight:reduction:)``.
///
/// PyTorch parity: `torch.nn.BCELoss(weight=None, reduction='mean')`, with `weight` a persistent
/// buffer (state-dict key `weight` when given).
public final class BCELoss: Loss {
    /// Per-element weights, broadcastable to the input, or `nil`.
    public let weight: Buffer?

    /// - Parameters:
    ///   - weight: per-element weights broadcastable to the input (stored as a buffer), or `nil`.
    ///   - reduction: `.mean` (default), `.sum` or `.none`.
    public init(weight: Tensor? = nil, reduction: Reduction = .mean) {
        reduction.validate("BCELoss")
        self.weight = weight.map { Buffer($0) }
        super.init(reduction: reduction)
    }

    /// The loss of `input` (probabilities) against `target`.
    public func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor {
        binaryCrossEntropy(input, target, weight?.value, reduction, op: errorContext)
    }
}

/// Binary cross entropy on logits, as a module:
/// ``binaryCrossEntropyWithLogits(_:target:weight:reduction:posWeight:)``.
///
/// PyTorch parity: `torch.nn.BCEWithLogitsLoss(weight=None, reduction='mean', pos_weight=None)`;
/// both weights are persistent buffers (state-dict keys `weight` and `pos_weight`, each present
/// when given).
public final class BCEWithLogitsLoss: Loss {
    /// Per-element weights, broadcastable to the input, or `nil`.
    public let weight: Buffer?
    /// Positive-class weights, broadcastable to the input (typically `[C]`), or `nil`.
    public let posWeight: Buffer?

    /// - Parameters:
    ///   - weight: per-element weights broadcastable to the input (stored as a buffer), or `nil`.
    ///   - reduction: `.mean` (default), `.sum` or `.none`.
    ///   - posWeight: positive-class weights broadcastable to the input (stored as a buffer), or `nil`.
    public init(weight: Tensor? = nil, reduction: Reduction = .mean, posWeight: Tensor? = nil) {
        reduction.validate("BCEWithLogitsLoss")
        self.weight = weight.map { Buffer($0) }
        self.posWeight = posWeight.map { Buffer($0) }
        super.init(reduction: reduction)
    }

    /// The loss of `input` (logits) against `target`.
    public func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor {
        binaryCrossEntropyWithLogits(input, target, weight?.value, reduction, posWeight?.value, op: errorContext)
    }
}

/// Kullback-Leibler divergence, as a module: ``klDiv(_:target:reduction:logTarget:)``.
///
/// Use `reduction: .batchMean` for the mathematical KL divergence per sample; the default `.mean`
/// also divides by the number of classes (kept for PyTorch parity).
///
/// PyTorch parity: `torch.nn.KLDivLoss(reduction='mean', log_target=False)`, without the warning
/// PyTorch prints for `'mean'` on every call.
public final class KLDivLoss: Loss {
    /// Whether the target is given as log-probabilities.
    public let logTarget: Bool

    /// - Parameters:
    ///   - reduction: `.mean` (default), `.batchMean`, `.sum` or `.none`.
    ///   - logTarget: whether targets are log-probabilities (default `false`).
    public init(reduction: Reduction = .mean, logTarget: Bool = false) {
        reduction.validate("KLDivLoss", allowsBatchMean: true)
        self.logTarget = logTarget
        super.init(reduction: reduction)
    }

    /// The divergence of `target` from `input` (log-probabilities).
    public func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor {
        klDiv(input, target, reduction, logTarget: logTarget, op: errorContext)
    }
}
