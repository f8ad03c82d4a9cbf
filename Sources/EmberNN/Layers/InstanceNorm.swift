import EmberAutograd
import EmberFunctional
import EmberTensor
import EmberStorage

/// Instance normalization: each channel of each sample normalised over its own spatial positions;
/// the shared implementation of ``InstanceNorm1d``, ``InstanceNorm2d`` and ``InstanceNorm3d``.
///
/// Defaults differ from BatchNorm's, as in PyTorch: `affine: false`, `trackRunningStats: false`.
/// Without running statistics the layer behaves the same in both modes. With them
/// (`trackRunningStats: true`), training updates them (momentum 0.1, averaged over the batch) and
/// evaluation normalises with them instead of each instance's statistics.
///
/// PyTorch parity: `torch.nn.InstanceNorm{1,2,3}d(num_features, eps=1e-05, momentum=0.1,
/// affine=False, track_running_stats=False)`: state-dict keys `weight`, `bias`, `running_mean`,
/// `running_var`, `num_batches_tracked` (kept for the state dict; as in PyTorch, instance norm never
/// counts batches), the same formulas and rank errors.
open class InstanceNormBase: Module {
    public let numFeatures: Int
    public let eps: Double
    public var momentum: Double
    public let affine: Bool
    public let trackRunningStats: Bool
    public let weight: Parameter?
    public let bias: Parameter?
    public let runningMean: Buffer?
    public let runningVar: Buffer?
    public let numBatchesTracked: Buffer?
    let dims: Int

    init(dims: Int, _ numFeatures: Int, eps: Double, momentum: Double, affine: Bool, trackRunningStats: Bool, dtype: DType) {
        precondition(numFeatures > 0, "InstanceNorm\(dims)d: numFeatures must be positive, got \(numFeatures)")
        self.dims = dims
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

    public override func forward(_ input: Tensor) -> Tensor {
        precondition(input.rank == dims + 1 || input.rank == dims + 2,
                     "\(errorContext): expected \(dims + 1)D or \(dims + 2)D input (got \(input.rank)D input), shape \(input.shape)")
        let batched = input.rank == dims + 2 ? input : input.unsqueezed(axis: 0)
        if affine || trackRunningStats {
            precondition(batched.shape[1] == numFeatures,
                         "\(errorContext): expected input's size at dim=\(input.rank - dims - 1) to match num_features (\(numFeatures)), but got: \(batched.shape[1]).")
        }
        if isModeDependent { checkTrainingWithoutGrad() }
        let useInputStats = isTraining || runningMean == nil
        var rm = runningMean?.value, rv = runningVar?.value
        let out = instanceNorm(batched, runningMean: &rm, runningVar: &rv, weight: weight?.value, bias: bias?.value,
                               useInputStats: useInputStats, momentum: momentum, eps: eps, context: { self.errorContext })
        if isTraining, let rm, let rv {
            runningMean?.value = rm
            runningVar?.value = rv
        }
        return noteEvalModeOutput(input.rank == dims + 2 ? out : out.squeezed(axis: 0))
    }

    /// With running statistics, evaluation mode normalises with them.
    public override var isModeDependent: Bool { runningMean != nil }

    open override var extraDescription: String {
        "\(numFeatures), eps=\(formatPython(eps)), momentum=\(formatPython(momentum)), affine=\(affine ? "True" : "False"), track_running_stats=\(trackRunningStats ? "True" : "False")"
    }
}

/// Instance normalization of `[N, C, L]` or `[C, L]`. PyTorch parity: `torch.nn.InstanceNorm1d`.
public final class InstanceNorm1d: InstanceNormBase {
    public init(_ numFeatures: Int, eps: Double = 1e-5, momentum: Double = 0.1, affine: Bool = false,
                trackRunningStats: Bool = false, dtype: DType = .float32) {
        super.init(dims: 1, numFeatures, eps: eps, momentum: momentum, affine: affine, trackRunningStats: trackRunningStats, dtype: dtype)
    }
}

/// Instance normalization of `[N, C, H, W]` or `[C, H, W]`. PyTorch parity: `torch.nn.InstanceNorm2d`.
public final class InstanceNorm2d: InstanceNormBase {
    public init(_ numFeatures: Int, eps: Double = 1e-5, momentum: Double = 0.1, affine: Bool = false,
                trackRunningStats: Bool = false, dtype: DType = .float32) {
        super.init(dims: 2, numFeatures, eps: eps, momentum: momentum, affine: affine, trackRunningStats: trackRunningStats, dtype: dtype)
    }
}

/// Instance normalization of `[N, C, D, H, W]` or `[C, D, H, W]`. PyTorch parity: `torch.nn.InstanceNorm3d`.
public final class InstanceNorm3d: InstanceNormBase {
    public init(_ numFeatures: Int, eps: Double = 1e-5, momentum: Double = 0.1, affine: Bool = false,
                trackRunningStats: Bool = false, dtype: DType = .float32) {
        super.init(dims: 3, numFeatures, eps: eps, momentum: momentum, affine: affine, trackRunningStats: trackRunningStats, dtype: dtype)
    }
}
