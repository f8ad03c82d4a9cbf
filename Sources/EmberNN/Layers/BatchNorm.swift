import EmberAutograd
import EmberFunctional
import Foundation
import EmberTensor
import EmberStorage

/// Batch normalization over channel dimension 1; the shared implementation of ``BatchNorm1d``,
/// ``BatchNorm2d`` and ``BatchNorm3d``.
///
/// Training mode: `y = (x - mean_B) / sqrt(var_B + eps) * weight + bias` with the batch's mean and
/// biased variance per channel, and (when tracking) `running = (1 - f) running + f batch` with the
/// unbiased batch variance, `f = momentum`, or `f = 1 / numBatchesTracked` when `momentum` is `nil`
/// (a cumulative average); `num_batches_tracked` increments on every tracked training call.
/// Evaluation mode: the running statistics replace the batch's, so each sample's output is
/// independent of the rest of the batch. Without running statistics (`trackRunningStats: false` at
/// construction) batch statistics are used in both modes.
///
/// PyTorch parity: `torch.nn.BatchNorm{1,2,3}d` with the same defaults (eps 1e-5, momentum 0.1
/// weighting the new batch, weight 1, bias 0, running mean 0, running variance 1), the same
/// state-dict keys and error texts. As in PyTorch, whether eval uses running statistics depends on
/// whether the buffers exist, not on the current `trackRunningStats` value.
open class BatchNormBase: Module {
    public let numFeatures: Int
    public let eps: Double
    /// The update factor for running statistics; `nil` means a cumulative moving average.
    public var momentum: Double?
    public let affine: Bool
    /// Whether training-mode calls update the running statistics.
    public var trackRunningStats: Bool

    public let weight: Parameter?
    public let bias: Parameter?
    public let runningMean: Buffer?
    public let runningVar: Buffer?
    public let numBatchesTracked: Buffer?

    /// Whether this layer's normalization was folded into the layer before it by
    /// ``Module/fusedForInference(folding:rebuilding:)``: it then returns its input unchanged (its
    /// parameters and statistics stay, unused, so the state dict keeps its keys).
    public internal(set) var isFolded = false

    /// Computes training-mode normalization over the global batch of several processes; set by
    /// EmberDistributed (`SyncBatchNorm`, `convertSyncBatchNorm`). `nil`: this process's batch.
    package var synchronizer: (any BatchNormSynchronizer)?

    /// Whether training-mode statistics are those of the global batch over all ranks of a process
    /// group (a `SyncBatchNorm`, or a BatchNorm converted by `convertSyncBatchNorm`). Evaluation
    /// mode never communicates.
    public var isSynchronized: Bool { synchronizer != nil }

    /// Input ranks this layer accepts and how to say so in errors.
    open var acceptedRanks: Set<Int> { [] }
    /// ``acceptedRanks``, built once: a subclass returns a literal set, which Swift rebuilds
    /// (allocating and hashing) on every read, and the check runs on every forward pass.
    private lazy var acceptedRankSet: Set<Int> = acceptedRanks
    open var rankDescription: String { "" }

    public init(_ numFeatures: Int, eps: Double = 1e-5, momentum: Double? = 0.1, affine: Bool = true,
                trackRunningStats: Bool = true, dtype: DType = .float32) {
        precondition(numFeatures > 0, "BatchNorm: numFeatures must be positive, got \(numFeatures)")
        self.numFeatures = numFeatures
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.trackRunningStats = trackRunningStats
        weight = affine ? Parameter(.ones([numFeatures], dtype: dtype)) : nil
        bias = affine ? Parameter(.zeros([numFeatures], dtype: dtype)) : nil
        runningMean = trackRunningStats ? Buffer(.zeros([numFeatures], dtype: dtype)) : nil
        runningVar = trackRunningStats ? Buffer(.ones([numFeatures], dtype: dtype)) : nil
        numBatchesTracked = trackRunningStats ? Buffer(.zeros([], dtype: .int64)) : nil
        super.init()
    }

    /// Resets running mean to 0, running variance to 1 and the counter to 0; parameters untouched.
    ///
    /// PyTorch parity: `reset_running_stats()`.
    public func resetRunningStats() {
        runningMean?.value = .zeros([numFeatures], dtype: runningMean!.value.dtype)
        runningVar?.value = .ones([numFeatures], dtype: runningVar!.value.dtype)
        numBatchesTracked?.value = .zeros([], dtype: .int64)
    }

    open override func forward(_ input: Tensor) -> Tensor { forward(input, adding: nil, relu: false) }

    /// Whether the forward normalises with the batch's statistics computed here (training, or no
    /// running statistics; not folded, and no synchronizer gathering them across processes).
    var normalizesWithBatchStatistics: Bool {
        !isFolded && (isTraining ? synchronizer == nil : runningMean == nil)
    }

    /// `relu?(forward(input) + residual)`, the sum and the ReLU applied to each plane as it is
    /// normalised (EmberFunctional's `batchNorm(...adding:relu:)`, bitwise the separate ops, their
    /// gradients included) when `residual` has the input's shape and dtype and no synchronizer is
    /// set; otherwise as separate ops after this forward. Hooks are the caller's business: this is
    /// the forward, without them.
    ///
    /// `moments`: the input's plane moments from the convolution that produced it
    /// (EmberFunctional's `convolutionWithMoments`), used for the batch statistics.
    func forward(_ input: Tensor, adding residual: Tensor?, relu: Bool, moments: PlaneMoments? = nil) -> Tensor {
        if isFolded && residual == nil && !relu { return input }
        let fusable = residual.map { $0.shape == input.shape && $0.dtype == input.dtype } ?? true
        if residual != nil || relu, isFolded || !fusable || (isTraining && synchronizer != nil) {
            var y = forward(input, adding: nil, relu: false, moments: moments)
            if let residual { y = y + residual }
            return relu ? y.relu() : y
        }
        precondition(acceptedRankSet.contains(input.rank),
                     "\(errorContext): expected \(rankDescription) input (got \(input.rank)D input), shape \(input.shape)")
        precondition(input.shape[1] == numFeatures,
                     "\(errorContext): running_mean should contain \(input.shape[1]) elements not \(numFeatures) (input shape \(input.shape); the layer was built for \(numFeatures) channels)")
        if isModeDependent {
            checkTrainingWithoutGrad()
            if !isTraining && !checkedInitialStatistics {
                checkedInitialStatistics = true
                if hasInitialStatistics { reportUntrainedStatistics() }
            }
        }
        var factor = momentum ?? 0
        let update = isTraining && trackRunningStats && runningMean != nil
        if update, let counter = numBatchesTracked {
            counter.value = Tensor(counter.value.item(as: Int64.self) + 1)
            if momentum == nil { factor = 1 / Double(counter.value.item(as: Int64.self)) }
        }
        var rm: Tensor? = runningMean?.value, rv: Tensor? = runningVar?.value
        // Training without tracking passes no statistics, so none are updated or used.
        let useRunning = !isTraining || update
        if !useRunning { rm = nil; rv = nil }
        let out: Tensor
        if isTraining, let synchronizer {
            out = synchronizer.batchNorm(input, runningMean: &rm, runningVar: &rv, weight: weight?.value, bias: bias?.value,
                                         momentum: factor, eps: eps, context: { errorContext })
        } else {
            out = batchNorm(input, runningMean: &rm, runningVar: &rv, weight: weight?.value, bias: bias?.value,
                            training: isTraining || rm == nil, momentum: factor, eps: eps, adding: residual, relu: relu,
                            moments: moments, context: { errorContext })
        }
        if update, let rm, let rv {
            runningMean?.value = rm
            runningVar?.value = rv
        }
        return noteEvalModeOutput(out)
    }

    /// This layer's eval-mode map of an input of `inputShape` (`[N, numFeatures, ...]`) as a
    /// per-feature scale and shift (bitwise what its forward computes), after the report its
    /// forward makes on first use, for a product's epilogue to apply (a ``Linear`` or ``Conv2d``
    /// before it); `nil` when its forward would do something else or be observed: training, no
    /// running statistics, folded, hooks, anomaly detection, a rank it does not accept.
    package func evalScaleShift(inputShape: Shape, dtype: DType) -> (scale: Tensor, shift: Tensor)? {
        guard !isTraining, !isFolded, hookTable == nil, !AnomalyDetection.isActive,
              acceptedRankSet.contains(inputShape.count), inputShape.count >= 2, inputShape[1] == numFeatures,
              let mean = runningMean?.value, let variance = runningVar?.value else { return nil }
        if !checkedInitialStatistics {
            checkedInitialStatistics = true
            if hasInitialStatistics { reportUntrainedStatistics() }
        }
        return batchNormEvalScaleShift(runningMean: mean, runningVar: variance, weight: weight?.value,
                                       bias: bias?.value, eps: eps, dtype: dtype)
    }

    /// With running statistics, evaluation mode normalises with them instead of the batch's.
    public override var isModeDependent: Bool { runningMean != nil && !isFolded }

    /// Whether the running statistics are still their initial values: no tracked batch, mean 0,
    /// variance 1.
    public var hasInitialStatistics: Bool {
        guard let counter = numBatchesTracked?.value, counter.item(as: Int64.self) == 0,
              let mean = runningMean?.value, let variance = runningVar?.value else { return false }
        let m = mean.to(.float64).scalars(as: Double.self), v = variance.to(.float64).scalars(as: Double.self)
        return m.allSatisfy { $0 == 0 } && v.allSatisfy { $0 == 1 }
    }

    open override var extraDescription: String {
        "\(numFeatures), eps=\(formatPython(eps)), momentum=\(momentum.map(formatPython) ?? "None"), affine=\(affine ? "True" : "False"), track_running_stats=\(trackRunningStats ? "True" : "False")"
    }
}

/// Training-mode batch normalization over the batches of all ranks of a process group (implemented
/// in EmberDistributed). Updates `runningMean`/`runningVar` in place when given (with the global
/// batch's statistics, unbiased variance from the global count).
package protocol BatchNormSynchronizer: AnyObject {
    func batchNorm(_ input: Tensor, runningMean: inout Tensor?, runningVar: inout Tensor?, weight: Tensor?, bias: Tensor?,
                   momentum: Double, eps: Double, context: () -> String) -> Tensor
}

/// Batch normalization for `[N, C]` or `[N, C, L]` input. See ``BatchNormBase``.
///
/// PyTorch parity: `torch.nn.BatchNorm1d`, including "expected 2D or 3D input (got 4D input)".
public final class BatchNorm1d: BatchNormBase {
    public override var acceptedRanks: Set<Int> { [2, 3] }
    public override var rankDescription: String { "2D or 3D" }
}

/// Batch normalization for `[N, C, H, W]` input. See ``BatchNormBase``.
///
/// PyTorch parity: `torch.nn.BatchNorm2d`, including "expected 4D input (got 3D input)".
public final class BatchNorm2d: BatchNormBase {
    public override var acceptedRanks: Set<Int> { [4] }
    public override var rankDescription: String { "4D" }
}

/// Batch normalization for `[N, C, D, H, W]` input. See ``BatchNormBase``.
///
/// PyTorch parity: `torch.nn.BatchNorm3d`.
public final class BatchNorm3d: BatchNormBase {
    public override var acceptedRanks: Set<Int> { [5] }
    public override var rankDescription: String { "5D" }
}

/// Formats a number as Python's `repr` would for simple values: `1e-05`, `0.1`, `1.0`.
func formatPython(_ x: Double) -> String {
    if x == x.rounded() && abs(x) < 1e16 { return String(format: "%.1f", x) }
    if abs(x) < 1e-4 && x != 0 {
        // Python: 1e-05 style (two-digit exponent).
        let s = String(format: "%g", x)
        return s
    }
    return "\(x)"
}
