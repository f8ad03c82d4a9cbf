import EmberAutograd
import EmberFunctional
import EmberTensor
import EmberStorage

/// The shared implementation of the convolution modules (``Conv1d``, ``Conv2d``, ``Conv3d``)
/// and the transposed ones (``ConvTranspose1d``, ``ConvTranspose2d``, ``ConvTranspose3d``).
///
/// - `weight`: `[outChannels, inChannels / groups, k...]` for a convolution,
///   `[inChannels, outChannels / groups, k...]` for a transposed one; initialised
///   `U(-1/sqrt(fanIn), 1/sqrt(fanIn))` with `fanIn = weight.shape[1] * prod(k)` (PyTorch's
///   `kaiming_uniform_(a=sqrt(5))`).
/// - `bias`: `[outChannels]`, the same bound; `nil` when `bias: false`.
///
/// PyTorch parity: `torch.nn.modules.conv._ConvNd`: same arguments, checks, initial bounds,
/// state-dict keys (`weight`, `bias`) and listing.
open class ConvBase: Module {
    public let inChannels: Int
    public let outChannels: Int
    public let kernelSize: [Int]
    public let stride: [Int]
    public let padding: ConvPadding
    public let dilation: [Int]
    public let groups: Int
    public let paddingMode: PaddingMode
    /// Extra size added to one side of a transposed convolution's output (0 for convolutions).
    public let outputPadding: [Int]
    public let transposed: Bool
    /// Spatial dimensions: 1, 2 or 3.
    let dims: Int
    public let weight: Parameter
    /// `nil` without a bias; set (internally) when a BatchNorm is folded into a bias-less layer.
    public internal(set) var bias: Parameter?

    init(dims: Int, _ inChannels: Int, _ outChannels: Int, _ kernelSize: SpatialSize, stride: SpatialSize,
         padding: ConvPadding, dilation: SpatialSize, groups: Int, bias: Bool, paddingMode: PaddingMode,
         outputPadding: SpatialSize, transposed: Bool, dtype: DType, generator: Generator) {
        let name = transposed ? "ConvTranspose\(dims)d" : "Conv\(dims)d"
        precondition(groups > 0, "\(name): groups must be a positive integer, got \(groups)")
        precondition(inChannels >= 0 && outChannels >= 0, "\(name): channel counts must be non-negative, got \(inChannels) -> \(outChannels)")
        precondition(inChannels % groups == 0, "\(name): in_channels must be divisible by groups (in_channels=\(inChannels), groups=\(groups))")
        precondition(outChannels % groups == 0, "\(name): out_channels must be divisible by groups (out_channels=\(outChannels), groups=\(groups))")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize.expanded(to: dims, "kernel_size", op: name)
        self.stride = stride.expanded(to: dims, "stride", op: name)
        self.dilation = dilation.expanded(to: dims, "dilation", op: name)
        self.outputPadding = outputPadding.expanded(to: dims, "output_padding", op: name)
        precondition(self.kernelSize.allSatisfy { $0 > 0 }, "\(name): kernel_size must be positive, got \(self.kernelSize)")
        switch padding {
        case .explicit(let v):
            let p = SpatialSize(v).expanded(to: dims, "padding", op: name)
            precondition(p.allSatisfy { $0 >= 0 }, "\(name): negative padding is not supported (padding=\(p))")
            self.padding = .explicit(p)
        case .same:
            precondition(!transposed, "\(name): padding='same' is not supported for transposed convolutions")
            precondition(self.stride.allSatisfy { $0 == 1 }, "\(name): padding='same' is not supported for strided convolutions")
            self.padding = .same
        case .valid:
            self.padding = .valid
        }
        precondition(!transposed || paddingMode == .zeros, "\(name): Only \"zeros\" padding mode is supported for \(name)")
        self.groups = groups
        self.paddingMode = paddingMode
        self.transposed = transposed
        self.dims = dims
        let shape = transposed ? [inChannels, outChannels / groups] + self.kernelSize : [outChannels, inChannels / groups] + self.kernelSize
        let fanIn = shape[1] * self.kernelSize.reduce(1, *)
        let bound = fanIn > 0 ? 1 / Double(fanIn).squareRoot() : 0
        weight = Parameter(.uniform(Shape(shape), low: -bound, high: bound, dtype: dtype, generator: generator))
        self.bias = bias ? Parameter(.uniform([outChannels], low: -bound, high: bound, dtype: dtype, generator: generator)) : nil
        super.init()
    }

    open override func forward(_ input: Tensor) -> Tensor {
        convolution(input, weight: weight.value, bias: bias?.value, dims: dims, stride: SpatialSize(stride), padding: padding,
                    dilation: SpatialSize(dilation), groups: groups, paddingMode: paddingMode, weightCache: weightCache,
                    context: { self.errorContext })
    }

    /// The weight packed for the forward, kept between calls that record no gradient (inference);
    /// discovery does not look inside it.
    let weightCache = ConvolutionWeightCache()

    /// The explicit padding sizes (zeros for `.valid`; `.same` has none until an input is seen).
    var explicitPadding: [Int] {
        if case .explicit(let p) = padding { return p }
        return Array(repeating: 0, count: kernelSize.count)
    }

    open override var extraDescription: String {
        var s = "\(inChannels), \(outChannels), kernel_size=\(pythonTuple(kernelSize)), stride=\(pythonTuple(stride))"
        switch padding {
        case .explicit(let p) where p.contains { $0 != 0 }: s += ", padding=\(pythonTuple(p))"
        case .same: s += ", padding=same"
        case .valid: s += ", padding=valid"
        default: break
        }
        if dilation.contains(where: { $0 != 1 }) { s += ", dilation=\(pythonTuple(dilation))" }
        if outputPadding.contains(where: { $0 != 0 }) { s += ", output_padding=\(pythonTuple(outputPadding))" }
        if groups != 1 { s += ", groups=\(groups)" }
        if bias == nil { s += ", bias=False" }
        if paddingMode != .zeros { s += ", padding_mode=\(paddingMode.rawValue)" }
        return s
    }
}

/// A Python tuple's text: `(3,)`, `(3, 3)`.
func pythonTuple(_ v: [Int]) -> String {
    v.count == 1 ? "(\(v[0]),)" : "(\(v.map(String.init).joined(separator: ", ")))"
}

/// Convolution over the one spatial dimension of `[N, C_in, L]` (or unbatched `[C_in, L]`) input.
///
/// PyTorch parity: `torch.nn.Conv1d(in_channels, out_channels, kernel_size, stride=1, padding=0,
/// dilation=1, groups=1, bias=True, padding_mode='zeros')`. See ``ConvBase``.
public final class Conv1d: ConvBase {
    public init(_ inChannels: Int, _ outChannels: Int, _ kernelSize: SpatialSize, stride: SpatialSize = 1,
                padding: ConvPadding = 0, dilation: SpatialSize = 1, groups: Int = 1, bias: Bool = true,
                paddingMode: PaddingMode = .zeros, dtype: DType = .float32, generator: Generator = .default) {
        super.init(dims: 1, inChannels, outChannels, kernelSize, stride: stride, padding: padding, dilation: dilation,
                   groups: groups, bias: bias, paddingMode: paddingMode, outputPadding: 0, transposed: false,
                   dtype: dtype, generator: generator)
    }

}

/// Convolution over the two spatial dimensions of `[N, C_in, H, W]` (or unbatched `[C_in, H, W]`)
/// input.
///
/// PyTorch parity: `torch.nn.Conv2d`. See ``Conv1d`` and ``ConvBase``.
public final class Conv2d: ConvBase {
    public init(_ inChannels: Int, _ outChannels: Int, _ kernelSize: SpatialSize, stride: SpatialSize = 1,
                padding: ConvPadding = 0, dilation: SpatialSize = 1, groups: Int = 1, bias: Bool = true,
                paddingMode: PaddingMode = .zeros, dtype: DType = .float32, generator: Generator = .default) {
        super.init(dims: 2, inChannels, outChannels, kernelSize, stride: stride, padding: padding, dilation: dilation,
                   groups: groups, bias: bias, paddingMode: paddingMode, outputPadding: 0, transposed: false,
                   dtype: dtype, generator: generator)
    }

}

/// Convolution over the three spatial dimensions of `[N, C_in, D, H, W]` (or unbatched) input.
///
/// PyTorch parity: `torch.nn.Conv3d`. See ``Conv1d`` and ``ConvBase``.
public final class Conv3d: ConvBase {
    public init(_ inChannels: Int, _ outChannels: Int, _ kernelSize: SpatialSize, stride: SpatialSize = 1,
                padding: ConvPadding = 0, dilation: SpatialSize = 1, groups: Int = 1, bias: Bool = true,
                paddingMode: PaddingMode = .zeros, dtype: DType = .float32, generator: Generator = .default) {
        super.init(dims: 3, inChannels, outChannels, kernelSize, stride: stride, padding: padding, dilation: dilation,
                   groups: groups, bias: bias, paddingMode: paddingMode, outputPadding: 0, transposed: false,
                   dtype: dtype, generator: generator)
    }

}

/// The shared forward of the transposed convolution modules.
open class ConvTransposeBase: ConvBase {
    init(dims: Int, _ inChannels: Int, _ outChannels: Int, _ kernelSize: SpatialSize, stride: SpatialSize,
         padding: SpatialSize, outputPadding: SpatialSize, groups: Int, bias: Bool, dilation: SpatialSize,
         dtype: DType, generator: Generator) {
        super.init(dims: dims, inChannels, outChannels, kernelSize, stride: stride, padding: .explicit(padding.values),
                   dilation: dilation, groups: groups, bias: bias, paddingMode: .zeros, outputPadding: outputPadding,
                   transposed: true, dtype: dtype, generator: generator)
    }

    public override func forward(_ input: Tensor) -> Tensor { forward(input, outputSize: nil) }

    /// The forward with the output's spatial size chosen among those the stride allows (PyTorch's
    /// `output_size` argument); it replaces `outputPadding` for this call.
    public func forward(_ input: Tensor, outputSize: [Int]?) -> Tensor {
        transposedConvolution(input, weight: weight.value, bias: bias?.value, dims: dims, stride: SpatialSize(stride),
                              padding: SpatialSize(explicitPadding), outputPadding: SpatialSize(outputPadding), groups: groups,
                              dilation: SpatialSize(dilation), outputSize: outputSize, context: { self.errorContext })
    }

    /// `forward(input, outputSize:)` as a call.
    public func callAsFunction(_ input: Tensor, outputSize: [Int]?) -> Tensor { forward(input, outputSize: outputSize) }
}

/// Transposed convolution over one spatial dimension (the adjoint of ``Conv1d``).
///
/// PyTorch parity: `torch.nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride=1,
/// padding=0, output_padding=0, groups=1, bias=True, dilation=1)`, weight `[in, out / groups, k]`.
public final class ConvTranspose1d: ConvTransposeBase {
    public init(_ inChannels: Int, _ outChannels: Int, _ kernelSize: SpatialSize, stride: SpatialSize = 1,
                padding: SpatialSize = 0, outputPadding: SpatialSize = 0, groups: Int = 1, bias: Bool = true,
                dilation: SpatialSize = 1, dtype: DType = .float32, generator: Generator = .default) {
        super.init(dims: 1, inChannels, outChannels, kernelSize, stride: stride, padding: padding, outputPadding: outputPadding,
                   groups: groups, bias: bias, dilation: dilation, dtype: dtype, generator: generator)
    }
}

/// Transposed convolution over two spatial dimensions (the adjoint of ``Conv2d``).
///
/// PyTorch parity: `torch.nn.ConvTranspose2d`; see ``ConvTranspose1d``.
public final class ConvTranspose2d: ConvTransposeBase {
    public init(_ inChannels: Int, _ outChannels: Int, _ kernelSize: SpatialSize, stride: SpatialSize = 1,
                padding: SpatialSize = 0, outputPadding: SpatialSize = 0, groups: Int = 1, bias: Bool = true,
                dilation: SpatialSize = 1, dtype: DType = .float32, generator: Generator = .default) {
        super.init(dims: 2, inChannels, outChannels, kernelSize, stride: stride, padding: padding, outputPadding: outputPadding,
                   groups: groups, bias: bias, dilation: dilation, dtype: dtype, generator: generator)
    }
}

/// Transposed convolution over three spatial dimensions (the adjoint of ``Conv3d``).
///
/// PyTorch parity: `torch.nn.ConvTranspose3d`; see ``ConvTranspose1d``.
public final class ConvTranspose3d: ConvTransposeBase {
    public init(_ inChannels: Int, _ outChannels: Int, _ kernelSize: SpatialSize, stride: SpatialSize = 1,
                padding: SpatialSize = 0, outputPadding: SpatialSize = 0, groups: Int = 1, bias: Bool = true,
                dilation: SpatialSize = 1, dtype: DType = .float32, generator: Generator = .default) {
        super.init(dims: 3, inChannels, outChannels, kernelSize, stride: stride, padding: padding, outputPadding: outputPadding,
                   groups: groups, bias: bias, dilation: dilation, dtype: dtype, generator: generator)
    }
}

extension Conv2d {
    /// This layer and the `MaxPool2d(2)` at the start of `next` (2x2 windows, stride 2, no padding,
    /// floor mode), with a `ReLU` between them or not, as one op
    /// (`convolutionMaxPool2x2`: the convolution's output pooled sample by sample while in cache,
    /// never stored), the ReLU after the pooling (``Sequential/forward(_:)`` explains why that is
    /// the same). Returns the output and how many layers of `next` it covered, or `nil` where the
    /// op does not apply or a hook or anomaly detection would see the values in between.
    func forwardPooling(_ input: Tensor, _ next: ArraySlice<Module>) -> (output: Tensor, covered: Int)? {
        guard hookTable == nil, !AnomalyDetection.isActive, var i = next.indices.first else { return nil }
        let relu = next[i] is ReLU && next[i].hookTable == nil
        if relu { i += 1 }
        let two = [SpatialSize(2), SpatialSize([2, 2])]
        guard i < next.endIndex, let pool = next[i] as? MaxPool2d, pool.hookTable == nil, two.contains(pool.kernelSize),
              two.contains(pool.stride), [SpatialSize(0), SpatialSize([0, 0])].contains(pool.padding),
              [SpatialSize(1), SpatialSize([1, 1])].contains(pool.dilation), !pool.ceilMode,
              let pooled = convolutionMaxPool2x2(input, weight: weight.value, bias: bias?.value, stride: SpatialSize(stride),
                                                 padding: padding, dilation: SpatialSize(dilation), groups: groups,
                                                 paddingMode: paddingMode, context: { self.errorContext }) else { return nil }
        return (relu ? next[i - 1](pooled) : pooled, i + 1 - next.startIndex)
    }
}

extension ConvolutionWeightCache: ModuleTreeLeaf {}
