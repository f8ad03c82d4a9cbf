import EmberAutograd
import EmberFunctional
import EmberTensor
import EmberStorage

/// Layer normalization over the trailing `normalizedShape` dimensions of each sample.
///
/// `y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias`, statistics over the normalised
/// dimensions, biased variance. The mode never changes it and it owns no buffers.
///
/// PyTorch parity: `torch.nn.LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True, bias=True)`:
/// weight ones, bias zeros, the same state-dict keys.
public final class LayerNorm: Module {
    public let normalizedShape: Shape
    public let eps: Double
    public let weight: Parameter?
    public let bias: Parameter?

    public init(_ normalizedShape: Shape, eps: Double = 1e-5, elementwiseAffine: Bool = true, bias: Bool = true,
                dtype: DType = .float32) {
        self.normalizedShape = normalizedShape
        self.eps = eps
        weight = elementwiseAffine ? Parameter(.ones(normalizedShape, dtype: dtype)) : nil
        self.bias = elementwiseAffine && bias ? Parameter(.zeros(normalizedShape, dtype: dtype)) : nil
        super.init()
    }

    public convenience init(_ features: Int, eps: Double = 1e-5, elementwiseAffine: Bool = true, bias: Bool = true) {
        self.init([features], eps: eps, elementwiseAffine: elementwiseAffine, bias: bias)
    }

    public override func forward(_ input: Tensor) -> Tensor {
        layerNorm(input, normalizedShape: normalizedShape, weight: weight?.value, bias: bias?.value, eps: eps, context: errorContext)
    }

    /// `self(a + b)` (a residual connection's sum, then this normalization), with the sum built row
    /// by row inside the normalization when nothing can observe it or needs its gradient (no hooks,
    /// no anomaly detection, no gradient recorded): the same bits, one pass over the activations
    /// fewer.
    package func forwardOfSum(_ a: Tensor, _ b: Tensor) -> Tensor {
        let recording = GradMode.isEnabled && [a, b, weight?.value, bias?.value].contains { $0?.requiresGrad ?? false }
        guard hookTable == nil, !AnomalyDetection.isActive, !recording else { return self(a + b) }
        return layerNormOfSum(a, b, normalizedShape: normalizedShape, weight: weight?.value, bias: bias?.value, eps: eps,
                              context: errorContext)
    }

    public override var extraDescription: String {
        "\(pythonTuple(normalizedShape)), eps=\(formatPython(eps)), elementwise_affine=\(weight != nil ? "True" : "False")"
    }
}

/// Root-mean-square normalization over the trailing `normalizedShape` dimensions, with a learnable
/// per-element scale `weight` (initialised to ones) and no bias.
///
/// PyTorch parity: `torch.nn.RMSNorm(normalized_shape, eps=None, elementwise_affine=True)`:
/// `eps = nil` uses the input dtype's machine epsilon; state-dict key `weight`; the mode never
/// changes it.
public final class RMSNorm: Module {
    public let normalizedShape: Shape
    /// `nil`: the machine epsilon of the input's dtype.
    public let eps: Double?
    public let weight: Parameter?

    public init(_ normalizedShape: Shape, eps: Double? = nil, elementwiseAffine: Bool = true, dtype: DType = .float32) {
        precondition(!normalizedShape.isEmpty, "RMSNorm: normalized_shape must have at least one dimension")
        precondition(dtype.isFloatingPoint, "RMSNorm: parameters must be float32 or float64, got \(dtype)")
        self.normalizedShape = normalizedShape
        self.eps = eps
        weight = elementwiseAffine ? Parameter(.ones(normalizedShape, dtype: dtype)) : nil
        super.init()
    }

    public convenience init(_ features: Int, eps: Double? = nil, elementwiseAffine: Bool = true, dtype: DType = .float32) {
        self.init([features], eps: eps, elementwiseAffine: elementwiseAffine, dtype: dtype)
    }

    public override func forward(_ input: Tensor) -> Tensor {
        rmsNorm(input, normalizedShape: normalizedShape, weight: weight?.value, eps: eps, context: errorContext)
    }

    public override var extraDescription: String {
        "\(pythonTuple(normalizedShape)), eps=\(eps.map(formatPython) ?? "None"), elementwise_affine=\(weight != nil ? "True" : "False")"
    }
}

/// Group normalization: channels split into groups, each sample's group normalised on its own.
///
/// PyTorch parity: `torch.nn.GroupNorm(num_groups, num_channels, eps=1e-5, affine=True)`, including
/// the divisibility error; works with batch size 1; the mode never changes it.
public final class GroupNorm: Module {
    public let numGroups: Int
    public let numChannels: Int
    public let eps: Double
    public let weight: Parameter?
    public let bias: Parameter?

    public init(_ numGroups: Int, _ numChannels: Int, eps: Double = 1e-5, affine: Bool = true, dtype: DType = .float32) {
        precondition(numGroups > 0 && numChannels % numGroups == 0,
                     "GroupNorm: num_channels must be divisible by num_groups (got num_channels=\(numChannels), num_groups=\(numGroups))")
        self.numGroups = numGroups
        self.numChannels = numChannels
        self.eps = eps
        weight = affine ? Parameter(.ones([numChannels], dtype: dtype)) : nil
        bias = affine ? Parameter(.zeros([numChannels], dtype: dtype)) : nil
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        precondition(input.rank >= 2 && input.shape[1] == numChannels,
                     "\(errorContext): expected input with \(numChannels) channels in dimension 1, got shape \(input.shape)")
        return groupNorm(input, numGroups: numGroups, weight: weight?.value, bias: bias?.value, eps: eps, context: errorContext)
    }

    public override var extraDescription: String {
        "\(numGroups), \(numChannels), eps=\(formatPython(eps)), affine=\(weight != nil ? "True" : "False")"
    }
}

/// A shape as Python prints a tuple: `(3,)`, `(4, 5)`.
func pythonTuple(_ shape: Shape) -> String {
    shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
}
