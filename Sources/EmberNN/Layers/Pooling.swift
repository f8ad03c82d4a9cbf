import EmberAutograd
import EmberFunctional
import EmberTensor

/// The shared implementation of ``MaxPool1d``, ``MaxPool2d`` and ``MaxPool3d``.
///
/// PyTorch parity: `torch.nn.MaxPool{1,2,3}d(kernel_size, stride=None, padding=0, dilation=1,
/// return_indices=False, ceil_mode=False)`. `forward` returns the pooled values; `forwardWithIndices`
/// also returns the positions of the maxima (PyTorch's `return_indices=True`), for ``MaxUnpool2d``.
open class MaxPoolBase: Module {
    let dims: Int
    public let kernelSize: SpatialSize
    public let stride: SpatialSize
    public let padding: SpatialSize
    public let dilation: SpatialSize
    public let ceilMode: Bool

    init(dims: Int, _ kernelSize: SpatialSize, stride: SpatialSize?, padding: SpatialSize, dilation: SpatialSize, ceilMode: Bool) {
        self.dims = dims
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
        self.dilation = dilation
        self.ceilMode = ceilMode
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        maxPool(input, dims: dims, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation,
                ceilMode: ceilMode, needIndices: false, context: { self.errorContext }).output
    }

    /// The pooled values and the flat position of each maximum within its input plane.
    public func forwardWithIndices(_ input: Tensor) -> (output: Tensor, indices: Tensor) {
        maxPool(input, dims: dims, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation,
                ceilMode: ceilMode, context: { self.errorContext })
    }

    open override var extraDescription: String {
        "kernel_size=\(kernelSize), stride=\(stride), padding=\(padding), dilation=\(dilation), ceil_mode=\(ceilMode ? "True" : "False")"
    }
}

/// Max pooling over `[N, C, L]` or `[C, L]`. PyTorch parity: `torch.nn.MaxPool1d`; see ``MaxPoolBase``.
public final class MaxPool1d: MaxPoolBase {
    public init(_ kernelSize: SpatialSize, stride: SpatialSize? = nil, padding: SpatialSize = 0, dilation: SpatialSize = 1,
                ceilMode: Bool = false) {
        super.init(dims: 1, kernelSize, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode)
    }
}

/// Max pooling over `[N, C, H, W]` or `[C, H, W]`. PyTorch parity: `torch.nn.MaxPool2d`; see ``MaxPoolBase``.
public final class MaxPool2d: MaxPoolBase {
    public init(_ kernelSize: SpatialSize, stride: SpatialSize? = nil, padding: SpatialSize = 0, dilation: SpatialSize = 1,
                ceilMode: Bool = false) {
        super.init(dims: 2, kernelSize, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode)
    }
}

/// Max pooling over `[N, C, D, H, W]` or `[C, D, H, W]`. PyTorch parity: `torch.nn.MaxPool3d`.
public final class MaxPool3d: MaxPoolBase {
    public init(_ kernelSize: SpatialSize, stride: SpatialSize? = nil, padding: SpatialSize = 0, dilation: SpatialSize = 1,
                ceilMode: Bool = false) {
        super.init(dims: 3, kernelSize, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode)
    }
}

/// The shared implementation of ``AvgPool1d``, ``AvgPool2d`` and ``AvgPool3d``.
///
/// PyTorch parity: `torch.nn.AvgPool{1,2,3}d(kernel_size, stride=None, padding=0, ceil_mode=False,
/// count_include_pad=True, divisor_override=None)` (no `divisor_override` on `AvgPool1d`).
open class AvgPoolBase: Module {
    let dims: Int
    public let kernelSize: SpatialSize
    public let stride: SpatialSize
    public let padding: SpatialSize
    public let ceilMode: Bool
    public let countIncludePad: Bool
    public let divisorOverride: Int?

    init(dims: Int, _ kernelSize: SpatialSize, stride: SpatialSize?, padding: SpatialSize, ceilMode: Bool,
         countIncludePad: Bool, divisorOverride: Int?) {
        self.dims = dims
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
        self.ceilMode = ceilMode
        self.countIncludePad = countIncludePad
        self.divisorOverride = divisorOverride
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        avgPool(input, dims: dims, kernelSize: kernelSize, stride: stride, padding: padding, ceilMode: ceilMode,
                countIncludePad: countIncludePad, divisorOverride: divisorOverride, context: { self.errorContext })
    }

    open override var extraDescription: String {
        "kernel_size=\(kernelSize), stride=\(stride), padding=\(padding)"
    }
}

/// Average pooling over `[N, C, L]` or `[C, L]`. PyTorch parity: `torch.nn.AvgPool1d`; see ``AvgPoolBase``.
public final class AvgPool1d: AvgPoolBase {
    public init(_ kernelSize: SpatialSize, stride: SpatialSize? = nil, padding: SpatialSize = 0, ceilMode: Bool = false,
                countIncludePad: Bool = true) {
        super.init(dims: 1, kernelSize, stride: stride, padding: padding, ceilMode: ceilMode, countIncludePad: countIncludePad,
                   divisorOverride: nil)
    }
}

/// Average pooling over `[N, C, H, W]` or `[C, H, W]`. PyTorch parity: `torch.nn.AvgPool2d`; see ``AvgPoolBase``.
public final class AvgPool2d: AvgPoolBase {
    public init(_ kernelSize: SpatialSize, stride: SpatialSize? = nil, padding: SpatialSize = 0, ceilMode: Bool = false,
                countIncludePad: Bool = true, divisorOverride: Int? = nil) {
        super.init(dims: 2, kernelSize, stride: stride, padding: padding, ceilMode: ceilMode, countIncludePad: countIncludePad,
                   divisorOverride: divisorOverride)
    }
}

/// Average pooling over `[N, C, D, H, W]` or `[C, D, H, W]`. PyTorch parity: `torch.nn.AvgPool3d`.
public final class AvgPool3d: AvgPoolBase {
    public init(_ kernelSize: SpatialSize, stride: SpatialSize? = nil, padding: SpatialSize = 0, ceilMode: Bool = false,
                countIncludePad: Bool = true, divisorOverride: Int? = nil) {
        super.init(dims: 3, kernelSize, stride: stride, padding: padding, ceilMode: ceilMode, countIncludePad: countIncludePad,
                   divisorOverride: divisorOverride)
    }
}

/// The shared implementation of the adaptive pooling modules: each output element pools the
/// window `floor(o L / m) ..< ceil((o + 1) L / m)`; a `nil` size keeps the input's.
///
/// PyTorch parity: `torch.nn.Adaptive{Avg,Max}Pool{1,2}d(output_size)`.
open class AdaptivePoolBase: Module {
    let dims: Int
    let isMax: Bool
    public let outputSize: [Int?]

    init(dims: Int, isMax: Bool, outputSize: [Int?]) {
        precondition(outputSize.count == 1 || outputSize.count == dims,
                     "Adaptive\(isMax ? "Max" : "Avg")Pool\(dims)d: output_size must have 1 or \(dims) elements, got \(outputSize)")
        self.dims = dims
        self.isMax = isMax
        self.outputSize = outputSize
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor { forwardWithIndices(input).output }

    /// The pooled values and, for max pooling, the positions of the maxima.
    public func forwardWithIndices(_ input: Tensor) -> (output: Tensor, indices: Tensor) {
        adaptivePool(input, dims: dims, outputSize: outputSize, max: isMax, context: { self.errorContext })
    }

    open override var extraDescription: String {
        "output_size=\(pythonSizes(outputSize.map { $0.map(String.init) ?? "None" }))"
    }
}

/// PyTorch parity: `torch.nn.AdaptiveAvgPool1d(output_size)`.
public final class AdaptiveAvgPool1d: AdaptivePoolBase {
    public init(_ outputSize: Int) { super.init(dims: 1, isMax: false, outputSize: [outputSize]) }
}

/// PyTorch parity: `torch.nn.AdaptiveAvgPool2d(output_size)`; `AdaptiveAvgPool2d(1)` is global
/// average pooling.
public final class AdaptiveAvgPool2d: AdaptivePoolBase {
    public init(_ outputSize: Int) { super.init(dims: 2, isMax: false, outputSize: [outputSize]) }
    public init(_ outputSize: [Int?]) { super.init(dims: 2, isMax: false, outputSize: outputSize) }
}

/// PyTorch parity: `torch.nn.AdaptiveMaxPool1d(output_size)`.
public final class AdaptiveMaxPool1d: AdaptivePoolBase {
    public init(_ outputSize: Int) { super.init(dims: 1, isMax: true, outputSize: [outputSize]) }
}

/// PyTorch parity: `torch.nn.AdaptiveMaxPool2d(output_size)`.
public final class AdaptiveMaxPool2d: AdaptivePoolBase {
    public init(_ outputSize: Int) { super.init(dims: 2, isMax: true, outputSize: [outputSize]) }
    public init(_ outputSize: [Int?]) { super.init(dims: 2, isMax: true, outputSize: outputSize) }
}

/// The partial inverse of ``MaxPool2d``: each value goes back to the position its index names.
///
/// PyTorch parity: `torch.nn.MaxUnpool2d(kernel_size, stride=None, padding=0)`, called as
/// `unpool(x, indices:, outputSize:)`.
public final class MaxUnpool2d: Module {
    public let kernelSize: SpatialSize
    public let stride: SpatialSize
    public let padding: SpatialSize

    public init(_ kernelSize: SpatialSize, stride: SpatialSize? = nil, padding: SpatialSize = 0) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        preconditionFailure("\(errorContext): MaxUnpool2d needs the indices of the max pooling: call it as unpool(x, indices: i)")
    }

    public func callAsFunction(_ input: Tensor, indices: Tensor, outputSize: [Int]? = nil) -> Tensor {
        maxUnpool(input, indices: indices, dims: 2, kernelSize: kernelSize, stride: stride, padding: padding,
                  outputSize: outputSize, context: { self.errorContext })
    }

    public override var extraDescription: String { "kernel_size=\(kernelSize), stride=\(stride), padding=\(padding)" }
}

/// Resizes images: nearest neighbour, or (bi)linear interpolation with or without aligned corners.
///
/// PyTorch parity: `torch.nn.Upsample(size=None, scale_factor=None, mode='nearest',
/// align_corners=None)`; see ``interpolate(_:size:scaleFactor:mode:alignCorners:)``.
public final class Upsample: Module {
    public let size: [Int]?
    public let scaleFactor: [Double]?
    public let interpolation: InterpolationMode
    public let alignCorners: Bool?

    public init(size: [Int]? = nil, scaleFactor: [Double]? = nil, mode: InterpolationMode = .nearest, alignCorners: Bool? = nil) {
        precondition((size == nil) != (scaleFactor == nil), "Upsample: only one of size or scale_factor should be defined")
        self.size = size
        self.scaleFactor = scaleFactor
        interpolation = mode
        self.alignCorners = alignCorners
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        interpolate(input, size: size, scaleFactor: scaleFactor, mode: interpolation, alignCorners: alignCorners,
                    context: { self.errorContext })
    }

    public override var extraDescription: String {
        let what = size.map { "size=\(pythonSizes($0.map(String.init)))" } ?? "scale_factor=\(pythonSizes(scaleFactor!.map { formatPython($0) }))"
        return "\(what), mode='\(interpolation.rawValue)'"
    }
}

/// PyTorch parity: `torch.nn.PixelShuffle(upscale_factor)`; see ``pixelShuffle(_:upscaleFactor:)``.
public final class PixelShuffle: Module {
    public let upscaleFactor: Int
    public init(_ upscaleFactor: Int) { self.upscaleFactor = upscaleFactor; super.init() }
    public override func forward(_ input: Tensor) -> Tensor { pixelShuffle(input, upscaleFactor: upscaleFactor) }
    public override var extraDescription: String { "upscale_factor=\(upscaleFactor)" }
}

/// PyTorch parity: `torch.nn.PixelUnshuffle(downscale_factor)`.
public final class PixelUnshuffle: Module {
    public let downscaleFactor: Int
    public init(_ downscaleFactor: Int) { self.downscaleFactor = downscaleFactor; super.init() }
    public override func forward(_ input: Tensor) -> Tensor { pixelUnshuffle(input, downscaleFactor: downscaleFactor) }
    public override var extraDescription: String { "downscale_factor=\(downscaleFactor)" }
}

/// PyTorch parity: `torch.nn.Unfold(kernel_size, dilation=1, padding=0, stride=1)`; see
/// ``unfold(_:kernelSize:dilation:padding:stride:)``.
public final class Unfold: Module {
    public let kernelSize: SpatialSize, dilation: SpatialSize, padding: SpatialSize, stride: SpatialSize
    public init(_ kernelSize: SpatialSize, dilation: SpatialSize = 1, padding: SpatialSize = 0, stride: SpatialSize = 1) {
        (self.kernelSize, self.dilation, self.padding, self.stride) = (kernelSize, dilation, padding, stride)
        super.init()
    }
    public override func forward(_ input: Tensor) -> Tensor {
        unfold(input, kernelSize: kernelSize, dilation: dilation, padding: padding, stride: stride)
    }
    public override var extraDescription: String { "kernel_size=\(kernelSize), dilation=\(dilation), padding=\(padding), stride=\(stride)" }
}

/// PyTorch parity: `torch.nn.Fold(output_size, kernel_size, dilation=1, padding=0, stride=1)`; see
/// ``fold(_:outputSize:kernelSize:dilation:padding:stride:)``.
public final class Fold: Module {
    public let outputSize: SpatialSize, kernelSize: SpatialSize, dilation: SpatialSize, padding: SpatialSize, stride: SpatialSize
    public init(_ outputSize: SpatialSize, _ kernelSize: SpatialSize, dilation: SpatialSize = 1, padding: SpatialSize = 0,
                stride: SpatialSize = 1) {
        (self.outputSize, self.kernelSize, self.dilation, self.padding, self.stride) = (outputSize, kernelSize, dilation, padding, stride)
        super.init()
    }
    public override func forward(_ input: Tensor) -> Tensor {
        fold(input, outputSize: outputSize, kernelSize: kernelSize, dilation: dilation, padding: padding, stride: stride)
    }
    public override var extraDescription: String {
        "output_size=\(outputSize), kernel_size=\(kernelSize), dilation=\(dilation), padding=\(padding), stride=\(stride)"
    }
}

/// An `int or tuple` argument as PyTorch prints it: `5` for one value, `(4, 6)` for several.
func pythonSizes(_ v: [String]) -> String { v.count == 1 ? v[0] : "(\(v.joined(separator: ", ")))" }

/// The shared implementation of the power-average pooling modules.
///
/// PyTorch parity: `torch.nn.LPPool1d/LPPool2d(norm_type, kernel_size, stride=None,
/// ceil_mode=False)`, with PyTorch's listing.
open class LPPoolBase: Module {
    let dims: Int
    public let normType: Double
    public let kernelSize: SpatialSize
    public let stride: SpatialSize?
    public let ceilMode: Bool

    init(dims: Int, normType: Double, _ kernelSize: SpatialSize, stride: SpatialSize?, ceilMode: Bool) {
        self.dims = dims
        self.normType = normType
        self.kernelSize = kernelSize
        self.stride = stride
        self.ceilMode = ceilMode
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        lpPool(input, dims: dims, normType: normType, kernelSize: kernelSize, stride: stride, ceilMode: ceilMode,
               context: { self.errorContext })
    }

    open override var extraDescription: String {
        let p = normType == .infinity ? "inf" : formatPythonShort(normType)
        return "norm_type=\(p), kernel_size=\(kernelSize), stride=\(stride.map { "\($0)" } ?? "None"), ceil_mode=\(ceilMode ? "True" : "False")"
    }
}

/// Power-average pooling over `[N, C, L]` or `[C, L]`. PyTorch parity: `torch.nn.LPPool1d`.
public final class LPPool1d: LPPoolBase {
    public init(_ normType: Double, _ kernelSize: SpatialSize, stride: SpatialSize? = nil, ceilMode: Bool = false) {
        super.init(dims: 1, normType: normType, kernelSize, stride: stride, ceilMode: ceilMode)
    }
}

/// Power-average pooling over `[N, C, H, W]` or `[C, H, W]`. PyTorch parity: `torch.nn.LPPool2d`.
public final class LPPool2d: LPPoolBase {
    public init(_ normType: Double, _ kernelSize: SpatialSize, stride: SpatialSize? = nil, ceilMode: Bool = false) {
        super.init(dims: 2, normType: normType, kernelSize, stride: stride, ceilMode: ceilMode)
    }
}
