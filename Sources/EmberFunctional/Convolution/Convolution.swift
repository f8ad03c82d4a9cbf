import EmberAutograd
import EmberStorage
import EmberTensor

/// 1-D convolution of `[N, C_in, L]` (or unbatched `[C_in, L]`) input with a
/// `[C_out, C_in / groups, k]` weight.
///
/// PyTorch parity: `torch.nn.functional.conv1d(input, weight, bias=None, stride=1, padding=0,
/// dilation=1, groups=1)`: same output sizes, `"same"`/`"valid"` padding and error texts.
/// `paddingMode` is the module's `padding_mode`, offered here too.
public func conv1d(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: SpatialSize = 1,
                   padding: ConvPadding = 0, dilation: SpatialSize = 1, groups: Int = 1,
                   paddingMode: PaddingMode = .zeros) -> Tensor {
    convolution(input, weight: weight, bias: bias, dims: 1, stride: stride, padding: padding, dilation: dilation,
                groups: groups, paddingMode: paddingMode, context: { "conv1d" })
}

/// 2-D convolution of `[N, C_in, H, W]` (or unbatched `[C_in, H, W]`) input with a
/// `[C_out, C_in / groups, kH, kW]` weight.
///
/// PyTorch parity: `torch.nn.functional.conv2d`; see ``conv1d(_:weight:bias:stride:padding:dilation:groups:paddingMode:)``.
public func conv2d(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: SpatialSize = 1,
                   padding: ConvPadding = 0, dilation: SpatialSize = 1, groups: Int = 1,
                   paddingMode: PaddingMode = .zeros) -> Tensor {
    convolution(input, weight: weight, bias: bias, dims: 2, stride: stride, padding: padding, dilation: dilation,
                groups: groups, paddingMode: paddingMode, context: { "conv2d" })
}

/// 3-D convolution of `[N, C_in, D, H, W]` (or unbatched `[C_in, D, H, W]`) input with a
/// `[C_out, C_in / groups, kD, kH, kW]` weight.
///
/// PyTorch parity: `torch.nn.functional.conv3d`; see ``conv1d(_:weight:bias:stride:padding:dilation:groups:paddingMode:)``.
public func conv3d(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: SpatialSize = 1,
                   padding: ConvPadding = 0, dilation: SpatialSize = 1, groups: Int = 1,
                   paddingMode: PaddingMode = .zeros) -> Tensor {
    convolution(input, weight: weight, bias: bias, dims: 3, stride: stride, padding: padding, dilation: dilation,
                groups: groups, paddingMode: paddingMode, context: { "conv3d" })
}

/// The convolution behind `conv1d`/`conv2d`/`conv3d` and the `Conv` modules, over `dims` spatial
/// dimensions; `context` names the caller in messages (the module path for modules). A module
/// passes its `weightCache` (its packed weight, kept between calls that record no gradient).
package func convolution(_ input: Tensor, weight: Tensor, bias: Tensor?, dims: Int, stride: SpatialSize,
                         padding: ConvPadding, dilation: SpatialSize, groups: Int, paddingMode: PaddingMode,
                         weightCache: ConvolutionWeightCache? = nil, context: () -> String) -> Tensor {
    let (setup, padded, g, outShape) = convolutionGeometry(input, weight: weight, bias: bias, dims: dims, stride: stride, padding: padding,
                                                           dilation: dilation, groups: groups, paddingMode: paddingMode, context: context)
    return setup.finish(convolutionOp(padded, weight: weight, bias: bias, geometry: g, groups: groups, outShape: outShape, transposed: false,
                                      moments: false, weightCache: weightCache).output)
}

/// The packed weight for the stride-1 float32 forward from `cache` (``ConvolutionWeightCache``),
/// or `nil` without a cache or where that path does not run.
func cachedWeights(_ cache: ConvolutionWeightCache?, weight: Tensor, bias: Tensor?, sizes: ConvolutionKernel.Sizes,
                   geometry g: WindowGeometry) -> [GEMM.PackedSingleA]? {
    guard let cache, weight.dtype == .float32, ConvolutionKernel.usesPaddedForward(Float.self, sizes, g) else { return nil }
    return cache.packed(weight: weight, bias: bias, groups: sizes.groups) {
        let wc = weight.contiguousRaw, bc = bias?.contiguousRaw
        return ConvolutionKernel.packedWeights(wc.pointer(as: Float.self), bias: bc?.pointer(as: Float.self), sizes, g)
    }
}

/// ``convolution(_:weight:bias:dims:stride:padding:dilation:groups:paddingMode:context:)`` (the same
/// output, recorded the same way) and, where the batched float32 stride-1 path runs, the moments
/// of its output planes, taken from each sample's output as it is written, while it is in cache:
/// for a BatchNorm in training after it (``batchNorm(_:runningMean:runningVar:weight:bias:training:momentum:eps:adding:relu:moments:context:)``),
/// which then makes no pass over the output for its statistics.
package func convolutionWithMoments(_ input: Tensor, weight: Tensor, bias: Tensor?, dims: Int, stride: SpatialSize,
                                    padding: ConvPadding, dilation: SpatialSize, groups: Int, paddingMode: PaddingMode,
                                    context: () -> String) -> (output: Tensor, moments: PlaneMoments?) {
    let (setup, padded, g, outShape) = convolutionGeometry(input, weight: weight, bias: bias, dims: dims, stride: stride, padding: padding,
                                                           dilation: dilation, groups: groups, paddingMode: paddingMode, context: context)
    let (out, moments) = convolutionOp(padded, weight: weight, bias: bias, geometry: g, groups: groups, outShape: outShape,
                                       transposed: false, moments: input.rank == dims + 2)
    return (setup.finish(out), moments)
}

/// The moments of a float32 `[N, C, plane]` tensor's planes: each plane's sum and the sum of its
/// squared deviations from its own mean (`ember_bn_plane_moments_f32`, what
/// `BatchNormPlanes.statistics` computes), `[N, C]` of each.
package struct PlaneMoments {
    let batch: Int, channels: Int, plane: Int
    /// The sums, then the squared deviations.
    let values: [Double]
}

/// The checks, padding and geometry of ``convolution(_:weight:bias:dims:stride:padding:dilation:groups:paddingMode:context:)``:
/// the batched input (padded first for padding modes other than zeros), the window geometry and
/// the output shape.
func convolutionGeometry(_ input: Tensor, weight: Tensor, bias: Tensor?, dims: Int, stride: SpatialSize,
                         padding: ConvPadding, dilation: SpatialSize, groups: Int, paddingMode: PaddingMode,
                         context: () -> String) -> (setup: ConvolutionSetup, input: Tensor, geometry: WindowGeometry, outShape: Shape) {
    let name = "conv\(dims)d"
    let setup = ConvolutionSetup(input, dims: dims, name: name, context: context)
    let x = setup.input
    checkWeight(weight, bias: bias, input: x, dims: dims, groups: groups, transposed: false, context: context)
    let kernel = Array(weight.shape.dropFirst(2))
    let s = stride.expanded(to: dims, "stride", op: context())
    let d = dilation.expanded(to: dims, "dilation", op: context())
    var before: [Int], after: [Int]
    switch padding {
    case .explicit(let v):
        before = SpatialSize(v).expanded(to: dims, "padding", op: context())
        after = before
    case .valid:
        before = Array(repeating: 0, count: dims)
        after = before
    case .same:
        precondition(s.allSatisfy { $0 == 1 }, "\(context()): padding='same' is not supported for strided convolutions")
        let total = (0..<dims).map { d[$0] * (kernel[$0] - 1) }
        before = total.map { $0 / 2 }
        after = (0..<dims).map { total[$0] - before[$0] }
    }
    var padded = x
    if paddingMode != .zeros && (before + after).contains(where: { $0 != 0 }) {
        // PyTorch pads with the mode first (last dimension first in the list), then convolves
        // without padding.
        let list = (0..<dims).reversed().flatMap { [before[$0], after[$0]] }
        padded = pad(x, list, mode: PadMode(rawValue: paddingMode.rawValue)!, context: context)
        before = Array(repeating: 0, count: dims)
        after = before
    }
    let g = WindowGeometry.convolution(input: Array(padded.shape.dropFirst(2)), kernel: kernel, stride: s,
                                       padBefore: before, padAfter: after, dilation: d, describe: context)
    let outShape = [padded.shape[0], weight.shape[0]] + Array(g.output.suffix(dims))
    return (setup, padded, g, Shape(outShape))
}

/// The bias gradient of a convolution: `gy` (contiguous `[N, C, ...]`) summed over samples and
/// positions per channel. Float32 planes are summed in Double lanes in place (the general
/// reduction copied `gy` into channel-major order first).
func biasGradient(_ gy: Tensor, batch: Int, channels: Int, planeSums: [Double]? = nil) -> Tensor {
    let plane = gy.count / max(batch * channels, 1)
    guard gy.dtype == .float32 else {
        return Kernels.sum(gy.reshapedRaw([batch, channels, plane]), axes: [0, 2], keepDim: false)
    }
    let p = gy.pointer(as: Float.self)
    var sums = [Double](repeating: 0, count: channels)
    for n in 0..<batch {
        for c in 0..<channels {
            sums[c] += planeSums?[n * channels + c] ?? ConvolutionKernel.biasPlaneSum(p + (n * channels + c) * plane, plane)
        }
    }
    return Tensor(sums.map { Float($0) }, shape: [channels])
}

/// PyTorch's weight, bias and channel checks for a (transposed) convolution.
func checkWeight(_ weight: Tensor, bias: Tensor?, input x: Tensor, dims: Int, groups: Int, transposed: Bool,
                 context: () -> String) {
    precondition(groups > 0, "\(context()): non-positive groups is not supported (groups=\(groups))")
    precondition(weight.rank == dims + 2,
                 "\(context()): Expected \(weight.rank)-dimensional input for \(weight.rank)-dimensional weight \(weight.shape), but got \(x.rank)-dimensional input of size \(x.shape) instead")
    precondition(weight.dtype == x.dtype,
                 "\(context()): Input type (\(x.dtype)) and weight type (\(weight.dtype)) should be the same")
    let channels = x.shape[1]
    if transposed {
        precondition(weight.shape[0] == channels,
                     "\(context()): Given transposed=1, weight of size \(weight.shape), expected input\(x.shape) to have \(weight.shape[0]) channels, but got \(channels) channels instead")
        precondition(channels % groups == 0,
                     "\(context()): Given groups=\(groups), expected weight to be divisible by \(groups) at dimension 0, but got weight of size \(weight.shape) instead")
    } else {
        precondition(weight.shape[0] % groups == 0,
                     "\(context()): Given groups=\(groups), expected weight to be divisible by \(groups) at dimension 0, but got weight of size \(weight.shape) instead")
        precondition(channels == weight.shape[1] * groups,
                     "\(context()): Given groups=\(groups), weight of size \(weight.shape), expected input\(x.shape) to have \(weight.shape[1] * groups) channels, but got \(channels) channels instead")
    }
    if let bias {
        let outChannels = transposed ? weight.shape[1] * groups : weight.shape[0]
        precondition(bias.rank == 1 && bias.shape[0] == outChannels,
                     "\(context()): Given weight of size \(weight.shape), expected bias to be 1-dimensional with \(outChannels) elements, but got bias of size \(bias.shape) instead")
        precondition(bias.dtype == x.dtype, "\(context()): Input type (\(x.dtype)) and bias type (\(bias.dtype)) should be the same")
    }
}

/// The recorded op: one forward over the whole batch and one backward for input, weight and bias.
func convolutionOp(_ x: Tensor, weight: Tensor, bias: Tensor?, geometry g: WindowGeometry, groups: Int,
                   outShape: Shape, transposed: Bool) -> Tensor {
    convolutionOp(x, weight: weight, bias: bias, geometry: g, groups: groups, outShape: outShape, transposed: transposed,
                  moments: false).output
}

/// ``convolutionOp(_:weight:bias:geometry:groups:outShape:transposed:)``, with the output planes'
/// moments when `moments` asks for them and the float32 stride-1 path runs (``PlaneMoments``).
func convolutionOp(_ x: Tensor, weight: Tensor, bias: Tensor?, geometry g: WindowGeometry, groups: Int,
                   outShape: Shape, transposed: Bool, moments wanted: Bool,
                   weightCache: ConvolutionWeightCache? = nil) -> (output: Tensor, moments: PlaneMoments?) {
    let xc = x.contiguousRaw, wc = weight.contiguousRaw, bc = bias?.contiguousRaw
    let sizes = ConvolutionKernel.Sizes(batch: x.shape[0], inChannels: x.shape[1], outChannels: outShape[1], groups: groups)
    let out = Tensor(uninitializedShape: outShape, dtype: x.dtype)
    let packed = transposed ? nil : cachedWeights(weightCache, weight: weight, bias: bias, sizes: sizes, geometry: g)
    var moments: PlaneMoments?
    func run<T: TensorFloat>(_: T.Type) {
        let bp = bc?.pointer(as: T.self)
        if transposed {
            ConvolutionKernel.transposedForward(x: xc.pointer(as: T.self), w: wc.pointer(as: T.self), bias: bp,
                                                y: out.mutablePointer(as: T.self), sizes, g)
        } else if wanted && T.self == Float.self {
            let planes = sizes.batch * sizes.outChannels, plane = g.outputPlane, channels = sizes.outChannels
            var values = [Double](repeating: 0, count: 2 * planes)
            let written = values.withUnsafeMutableBufferPointer { buffer in
                let sums = buffer.baseAddress!, deviations = sums + planes
                return ConvolutionKernel.forward(x: xc.pointer(as: T.self), w: wc.pointer(as: T.self), bias: bp,
                                                 y: out.mutablePointer(as: T.self), sizes, g, packed: packed) { n, sample in
                    BatchNormPlanes.momentsOfPlanes(sample, planes: channels, s: plane, sums: sums + n * channels,
                                                    deviations: deviations + n * channels)
                }
            }
            if written { moments = PlaneMoments(batch: sizes.batch, channels: channels, plane: plane, values: values) }
        } else {
            ConvolutionKernel.forward(x: xc.pointer(as: T.self), w: wc.pointer(as: T.self), bias: bp,
                                      y: out.mutablePointer(as: T.self), sizes, g, packed: packed)
        }
    }
    if x.dtype == .float32 { run(Float.self) } else { run(Double.self) }
    let opName = transposed ? "convolution_transpose" : "convolution"
    let backward = convolutionBackward(x, weight: weight, bias: bias, geometry: g, groups: groups, outShape: outShape,
                                       transposed: transposed, output: out)
    if let bias { return (out.recorded(opName, x, weight, bias, twice: true, backward: backward), moments) }
    return (out.recorded(opName, x, weight, twice: true, backward: backward), moments)
}

/// The backward of ``convolutionOp(_:weight:bias:geometry:groups:outShape:transposed:)``: from the
/// output's gradient, those of `x`, `weight` and (when given) `bias`. `output` (the op's output)
/// is read for its shape by a transposed convolution's double backward.
func convolutionBackward(_ x: Tensor, weight: Tensor, bias: Tensor?, geometry g: WindowGeometry, groups: Int,
                         outShape: Shape, transposed: Bool, output out: Tensor?) -> (Tensor) -> [Tensor?] {
    let xc = x.contiguousRaw, wc = weight.contiguousRaw
    let sizes = ConvolutionKernel.Sizes(batch: x.shape[0], inChannels: x.shape[1], outChannels: outShape[1], groups: groups)
    return { grad in
        if creatingGraph {
            var grads: [Tensor?]
            if transposed {
                // A transposed convolution is the input gradient of the convolution from its output
                // to its input (same geometry and weight layout): its gradients are that
                // convolution, and that convolution's weight gradient with the roles swapped.
                let family = ConvolutionFamily(
                    sizes: .init(batch: sizes.batch, inChannels: sizes.outChannels, outChannels: sizes.inChannels, groups: groups),
                    geometry: g, input: out!, weight: wc, outShape: x.shape)
                grads = [x.tracksGrad ? family.convolve(grad, weight) : nil,
                         weight.tracksGrad ? family.weightGradient(grad, x) : nil]
            } else {
                let family = ConvolutionFamily(sizes: sizes, geometry: g, input: xc, weight: wc, outShape: outShape)
                grads = [x.tracksGrad ? family.inputGradient(grad, weight) : nil,
                         weight.tracksGrad ? family.weightGradient(x, grad) : nil]
            }
            if let bias {
                grads.append(bias.tracksGrad ? grad.reshaped([sizes.batch, sizes.outChannels, grad.count / max(sizes.batch * sizes.outChannels, 1)])
                    .sum(axes: [0, 2]) : nil)
            }
            return grads
        }
        let gy = grad.contiguousRaw
        let dx: Tensor? = x.tracksGrad ? Tensor(uninitializedShape: x.shape, dtype: x.dtype) : nil
        let dw: Tensor? = weight.tracksGrad ? Tensor(uninitializedShape: weight.shape, dtype: x.dtype) : nil
        // The weight gradient's pass over gy also sums its planes for the bias gradient.
        var planeSums = bias?.tracksGrad == true && !transposed && x.dtype == .float32
            ? [Double](repeating: 0, count: sizes.batch * sizes.outChannels) : nil
        var summed = false
        func back<T: TensorFloat>(_: T.Type) {
            let dxp = dx?.mutablePointer(as: T.self), dwp = dw?.mutablePointer(as: T.self)
            if transposed {
                ConvolutionKernel.transposedBackward(x: xc.pointer(as: T.self), w: wc.pointer(as: T.self), gy: gy.pointer(as: T.self),
                                                     dx: dxp, dw: dwp, sizes, g)
            } else if planeSums != nil {
                summed = planeSums!.withUnsafeMutableBufferPointer { sums in
                    ConvolutionKernel.backward(x: xc.pointer(as: T.self), w: wc.pointer(as: T.self), gy: gy.pointer(as: T.self),
                                               dx: dxp, dw: dwp, sizes, g, planeSums: sums.baseAddress)
                }
            } else {
                ConvolutionKernel.backward(x: xc.pointer(as: T.self), w: wc.pointer(as: T.self), gy: gy.pointer(as: T.self),
                                           dx: dxp, dw: dwp, sizes, g)
            }
        }
        if dx != nil || dw != nil {
            if x.dtype == .float32 { back(Float.self) } else { back(Double.self) }
        }
        var grads: [Tensor?] = [dx, dw]
        if let bias {
            grads.append(bias.tracksGrad ? biasGradient(gy, batch: sizes.batch, channels: sizes.outChannels,
                                                        planeSums: summed ? planeSums : nil) : nil)
        }
        return grads
    }
}

/// A convolution and its two adjoints, as recorded ops whose backwards are each other: what a
/// convolution's backward computes under `createGraph` (gradients of gradients).
///
/// With `C(x, w)` the convolution (bilinear in `x` and `w`), `Cx(g, w)` its adjoint in `x` (the
/// input gradient) and `Cw(x, g)` its adjoint in `w` (the weight gradient):
/// - `C`'s gradients are `Cx(g, w)` and `Cw(x, g)`;
/// - `Cx(g, w)`'s, for an incoming `u` of the input's shape, are `C(u, w)` and `Cw(u, g)`;
/// - `Cw(x, g)`'s, for an incoming `v` of the weight's shape, are `Cx(g, v)` and `C(x, v)`.
/// All three use the one geometry; `input` and `weight` only give shapes where a kernel takes a
/// pointer it does not read.
struct ConvolutionFamily {
    let sizes: ConvolutionKernel.Sizes
    let geometry: WindowGeometry
    let input: Tensor, weight: Tensor
    let outShape: Shape

    private func raw(_ shape: Shape, _ dtype: DType, _ body: (Tensor) -> Void) -> Tensor {
        let out = Tensor(uninitializedShape: shape, dtype: dtype)
        body(out)
        return out
    }

    func convolve(_ x: Tensor, _ w: Tensor) -> Tensor {
        let xc = x.contiguousRaw, wc = w.contiguousRaw
        let y = raw(outShape, x.dtype) { y in
            func run<T: TensorFloat>(_: T.Type) {
                ConvolutionKernel.forward(x: xc.pointer(as: T.self), w: wc.pointer(as: T.self), bias: nil,
                                          y: y.mutablePointer(as: T.self), sizes, geometry)
            }
            if x.dtype == .float32 { run(Float.self) } else { run(Double.self) }
        }
        return y.recorded("convolution", x, w, twice: true) { g in
            [x.tracksGrad ? inputGradient(g, w) : nil, w.tracksGrad ? weightGradient(x, g) : nil]
        }
    }

    func inputGradient(_ gy: Tensor, _ w: Tensor) -> Tensor {
        let gc = gy.contiguousRaw, wc = w.contiguousRaw
        let dx = raw(input.shape, gy.dtype) { dx in
            func run<T: TensorFloat>(_: T.Type) {
                ConvolutionKernel.backward(x: input.pointer(as: T.self), w: wc.pointer(as: T.self), gy: gc.pointer(as: T.self),
                                           dx: dx.mutablePointer(as: T.self), dw: nil, sizes, geometry)
            }
            if gy.dtype == .float32 { run(Float.self) } else { run(Double.self) }
        }
        return dx.recorded("convolutionInputGradient", gy, w, twice: true) { u in
            [gy.tracksGrad ? convolve(u, w) : nil, w.tracksGrad ? weightGradient(u, gy) : nil]
        }
    }

    func weightGradient(_ x: Tensor, _ gy: Tensor) -> Tensor {
        let xc = x.contiguousRaw, gc = gy.contiguousRaw
        let dw = raw(weight.shape, x.dtype) { dw in
            func run<T: TensorFloat>(_: T.Type) {
                ConvolutionKernel.backward(x: xc.pointer(as: T.self), w: weight.pointer(as: T.self), gy: gc.pointer(as: T.self),
                                           dx: nil, dw: dw.mutablePointer(as: T.self), sizes, geometry)
            }
            if x.dtype == .float32 { run(Float.self) } else { run(Double.self) }
        }
        return dw.recorded("convolutionWeightGradient", x, gy, twice: true) { v in
            [x.tracksGrad ? inputGradient(gy, v) : nil, gy.tracksGrad ? convolve(x, v) : nil]
        }
    }
}
