import EmberAutograd
import EmberStorage
import EmberTensor

// MARK: - Max pooling

/// 1-D max pooling of `[N, C, L]` or `[C, L]` input. `stride` defaults to `kernelSize`.
///
/// PyTorch parity: `torch.nn.functional.max_pool1d(input, kernel_size, stride=None, padding=0,
/// dilation=1, ceil_mode=False)`: same output sizes (ceil mode's last window must start inside
/// the input or its left padding), NaN propagation, tie rule (first maximum), checks and messages.
public func maxPool1d(_ input: Tensor, kernelSize: SpatialSize, stride: SpatialSize? = nil, padding: SpatialSize = 0,
                      dilation: SpatialSize = 1, ceilMode: Bool = false) -> Tensor {
    maxPool(input, dims: 1, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode,
            needIndices: false, context: { "max_pool1d" }).output
}

/// ``maxPool1d(_:kernelSize:stride:padding:dilation:ceilMode:)`` with the position of each
/// maximum within its input row (int64).
///
/// PyTorch parity: `max_pool1d(..., return_indices=True)`.
public func maxPool1dWithIndices(_ input: Tensor, kernelSize: SpatialSize, stride: SpatialSize? = nil, padding: SpatialSize = 0,
                                 dilation: SpatialSize = 1, ceilMode: Bool = false) -> (output: Tensor, indices: Tensor) {
    maxPool(input, dims: 1, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode,
            context: { "max_pool1d" })
}

/// 2-D max pooling of `[N, C, H, W]` or `[C, H, W]` input.
///
/// PyTorch parity: `torch.nn.functional.max_pool2d`; see ``maxPool1d(_:kernelSize:stride:padding:dilation:ceilMode:)``.
public func maxPool2d(_ input: Tensor, kernelSize: SpatialSize, stride: SpatialSize? = nil, padding: SpatialSize = 0,
                      dilation: SpatialSize = 1, ceilMode: Bool = false) -> Tensor {
    maxPool(input, dims: 2, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode,
            needIndices: false, context: { "max_pool2d" }).output
}

/// ``maxPool2d(_:kernelSize:stride:padding:dilation:ceilMode:)`` with the flat position
/// `h * W + w` of each maximum within its input plane (int64).
///
/// PyTorch parity: `max_pool2d(..., return_indices=True)`.
public func maxPool2dWithIndices(_ input: Tensor, kernelSize: SpatialSize, stride: SpatialSize? = nil, padding: SpatialSize = 0,
                                 dilation: SpatialSize = 1, ceilMode: Bool = false) -> (output: Tensor, indices: Tensor) {
    maxPool(input, dims: 2, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode,
            context: { "max_pool2d" })
}

/// 3-D max pooling of `[N, C, D, H, W]` or `[C, D, H, W]` input.
///
/// PyTorch parity: `torch.nn.functional.max_pool3d`.
public func maxPool3d(_ input: Tensor, kernelSize: SpatialSize, stride: SpatialSize? = nil, padding: SpatialSize = 0,
                      dilation: SpatialSize = 1, ceilMode: Bool = false) -> Tensor {
    maxPool(input, dims: 3, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode,
            needIndices: false, context: { "max_pool3d" }).output
}

/// The max pooling behind the functions and modules. Without `needIndices` and without a gradient to
/// record, the indices are not computed (an empty tensor is returned for them), as PyTorch's
/// `max_pool2d` skips them.
package func maxPool(_ input: Tensor, dims: Int, kernelSize: SpatialSize, stride: SpatialSize?, padding: SpatialSize,
                     dilation: SpatialSize, ceilMode: Bool, needIndices: Bool = true,
                     context: () -> String) -> (output: Tensor, indices: Tensor) {
    let setup = PoolSetup(input, dims: dims, context: context)
    let k = kernelSize.expanded(to: dims, "kernel_size", op: context())
    let s = (stride ?? kernelSize).expanded(to: dims, "stride", op: context())
    let w = PoolWindows.sliding(input: setup.spatial, kernel: k, stride: s, padding: padding.expanded(to: dims, "padding", op: context()),
                                dilation: dilation.expanded(to: dims, "dilation", op: context()), ceilMode: ceilMode,
                                planes: setup.planes, describe: context)
    return windowMax(setup, w, opName: "max_pool\(dims)d", needIndices: needIndices)
}

/// The recorded max over windows (sliding or adaptive), with its indices.
private func windowMax(_ setup: PoolSetup, _ w: PoolWindows, opName: String, needIndices: Bool = true) -> (output: Tensor, indices: Tensor) {
    let x = setup.input.contiguousRaw
    let shape = Shape(setup.leading + Array(w.output.suffix(setup.dims)))
    let out = Tensor(uninitializedShape: shape, dtype: x.dtype)
    if !needIndices && !shouldRecord(setup.input), let full = w.fullWindows2d {
        if x.dtype == .float32 {
            PoolKernel.maxValues2d(x.pointer(as: Float.self), out.mutablePointer(as: Float.self), planes: setup.planes, w,
                                   kernel: full.kernel, stride: full.stride)
        } else {
            PoolKernel.maxValues2d(x.pointer(as: Double.self), out.mutablePointer(as: Double.self), planes: setup.planes, w,
                                   kernel: full.kernel, stride: full.stride)
        }
        return (out, Tensor.zeros([0], dtype: .int64))
    }
    let indices = Tensor(uninitializedShape: shape, dtype: .int64)
    let planes = setup.planes
    if x.dtype == .float32 {
        PoolKernel.max(x.pointer(as: Float.self), out.mutablePointer(as: Float.self), indices.mutablePointer(as: Int64.self), planes: planes, w)
    } else {
        PoolKernel.max(x.pointer(as: Double.self), out.mutablePointer(as: Double.self), indices.mutablePointer(as: Int64.self), planes: planes, w)
    }
    let input = setup.input
    let outShape = out.shape
    // The backward scatters g to the selected positions: linear in g, its transpose a gather.
    let tiled = w.fullWindows2d.flatMap { $0.kernel == $0.stride ? $0.kernel.0 : nil }
    let scatter = { (g: Tensor) -> Tensor in
        let gc = g.contiguousRaw
        let idx = indices.pointer(as: Int64.self)
        if let tiled {
            let dx = Tensor(uninitializedShape: input.shape, dtype: input.dtype)
            if input.dtype == .float32 {
                PoolKernel.scatterTiled(gc.pointer(as: Float.self), idx, dx.mutablePointer(as: Float.self), planes: planes, w, kernelHeight: tiled)
            } else {
                PoolKernel.scatterTiled(gc.pointer(as: Double.self), idx, dx.mutablePointer(as: Double.self), planes: planes, w, kernelHeight: tiled)
            }
            return dx
        }
        let dx = Tensor(zeroedShape: input.shape, dtype: input.dtype)
        if input.dtype == .float32 {
            PoolKernel.scatter(gc.pointer(as: Float.self), idx, dx.mutablePointer(as: Float.self), planes: planes, from: w.outputPlane, to: w.inputPlane)
        } else {
            PoolKernel.scatter(gc.pointer(as: Double.self), idx, dx.mutablePointer(as: Double.self), planes: planes, from: w.outputPlane, to: w.inputPlane)
        }
        return dx
    }
    let result = out.recorded(opName, input, twice: true, backward: { g in
        guard creatingGraph else { return [scatter(g)] }
        return [g.linearMap("\(opName)Backward", scatter, adjoint: { u in
            u.reshaped([planes, w.inputPlane]).gather(axis: 1, index: indices.reshaped([planes, w.outputPlane])).reshaped(outShape)
        })]
    })
    return (result, indices)
}

// MARK: - Average pooling

/// 1-D average pooling of `[N, C, L]` or `[C, L]` input.
///
/// Each window's sum is divided by `divisorOverride` when given, else by the window's length
/// counting the padding (`countIncludePad`, the default) or only the input elements it covers.
/// With `ceilMode`, the part of the last window past the input and its padding is never counted.
///
/// PyTorch parity: `torch.nn.functional.avg_pool1d(input, kernel_size, stride=None, padding=0,
/// ceil_mode=False, count_include_pad=True)`.
public func avgPool1d(_ input: Tensor, kernelSize: SpatialSize, stride: SpatialSize? = nil, padding: SpatialSize = 0,
                      ceilMode: Bool = false, countIncludePad: Bool = true, divisorOverride: Int? = nil) -> Tensor {
    avgPool(input, dims: 1, kernelSize: kernelSize, stride: stride, padding: padding, ceilMode: ceilMode,
            countIncludePad: countIncludePad, divisorOverride: divisorOverride, context: { "avg_pool1d" })
}

/// 2-D average pooling of `[N, C, H, W]` or `[C, H, W]` input; see
/// ``avgPool1d(_:kernelSize:stride:padding:ceilMode:countIncludePad:divisorOverride:)``.
///
/// PyTorch parity: `torch.nn.functional.avg_pool2d(..., divisor_override=None)`.
public func avgPool2d(_ input: Tensor, kernelSize: SpatialSize, stride: SpatialSize? = nil, padding: SpatialSize = 0,
                      ceilMode: Bool = false, countIncludePad: Bool = true, divisorOverride: Int? = nil) -> Tensor {
    avgPool(input, dims: 2, kernelSize: kernelSize, stride: stride, padding: padding, ceilMode: ceilMode,
            countIncludePad: countIncludePad, divisorOverride: divisorOverride, context: { "avg_pool2d" })
}

/// 3-D average pooling of `[N, C, D, H, W]` or `[C, D, H, W]` input.
///
/// PyTorch parity: `torch.nn.functional.avg_pool3d`.
public func avgPool3d(_ input: Tensor, kernelSize: SpatialSize, stride: SpatialSize? = nil, padding: SpatialSize = 0,
                      ceilMode: Bool = false, countIncludePad: Bool = true, divisorOverride: Int? = nil) -> Tensor {
    avgPool(input, dims: 3, kernelSize: kernelSize, stride: stride, padding: padding, ceilMode: ceilMode,
            countIncludePad: countIncludePad, divisorOverride: divisorOverride, context: { "avg_pool3d" })
}

package func avgPool(_ input: Tensor, dims: Int, kernelSize: SpatialSize, stride: SpatialSize?, padding: SpatialSize,
                     ceilMode: Bool, countIncludePad: Bool, divisorOverride: Int?, context: () -> String) -> Tensor {
    let setup = PoolSetup(input, dims: dims, context: context)
    precondition(divisorOverride.map { $0 != 0 } ?? true, "\(context()): divisor must be not zero")
    let k = kernelSize.expanded(to: dims, "kernel_size", op: context())
    let s = (stride ?? kernelSize).expanded(to: dims, "stride", op: context())
    let w = PoolWindows.sliding(input: setup.spatial, kernel: k, stride: s, padding: padding.expanded(to: dims, "padding", op: context()),
                                dilation: Array(repeating: 1, count: dims), ceilMode: ceilMode, planes: setup.planes,
                                describe: context)
    let divisor: (Int, Int) -> Int = { clipped, padded in divisorOverride ?? (countIncludePad ? padded : clipped) }
    return windowAverage(setup, w, opName: "avg_pool\(dims)d", divisor: divisor)
}

private func windowAverage(_ setup: PoolSetup, _ w: PoolWindows, opName: String, divisor: @escaping (Int, Int) -> Int) -> Tensor {
    let x = setup.input.contiguousRaw
    let out = Tensor(uninitializedShape: Shape(setup.leading + Array(w.output.suffix(setup.dims))), dtype: x.dtype)
    let planes = setup.planes
    if x.dtype == .float32 {
        PoolKernel.average(x.pointer(as: Float.self), out.mutablePointer(as: Float.self), planes: planes, w, divisor: divisor)
    } else {
        PoolKernel.average(x.pointer(as: Double.self), out.mutablePointer(as: Double.self), planes: planes, w, divisor: divisor)
    }
    let input = setup.input
    let dims = setup.dims
    // The backward spreads g over each window: linear in g, its transpose the average itself.
    let spread = { (g: Tensor) -> Tensor in
        let gc = g.contiguousRaw
        let dx = Tensor(zeroedShape: input.shape, dtype: input.dtype)
        if input.dtype == .float32 {
            PoolKernel.averageBackward(gc.pointer(as: Float.self), dx.mutablePointer(as: Float.self), planes: planes, w, divisor: divisor)
        } else {
            PoolKernel.averageBackward(gc.pointer(as: Double.self), dx.mutablePointer(as: Double.self), planes: planes, w, divisor: divisor)
        }
        return dx
    }
    return out.recorded(opName, input, twice: true, backward: { g in
        guard creatingGraph else { return [spread(g)] }
        return [g.linearMap("\(opName)Backward", spread, adjoint: { u in
            windowAverage(PoolSetup(u, dims: dims, context: { opName }), w, opName: opName, divisor: divisor)
        })]
    })
}

// MARK: - Adaptive pooling

/// Average pooling to a fixed output length: output `o` of `m` averages input elements
/// `floor(o L / m) ..< ceil((o + 1) L / m)`. A `nil` size keeps the input's.
///
/// PyTorch parity: `torch.nn.functional.adaptive_avg_pool1d(input, output_size)`.
public func adaptiveAvgPool1d(_ input: Tensor, outputSize: [Int?]) -> Tensor {
    adaptivePool(input, dims: 1, outputSize: outputSize, max: false, context: { "adaptive_avg_pool1d" }).output
}

/// 2-D adaptive average pooling; `[1]` (or `[1, 1]`) is global average pooling.
///
/// PyTorch parity: `torch.nn.functional.adaptive_avg_pool2d(input, output_size)`, `None` as `nil`.
public func adaptiveAvgPool2d(_ input: Tensor, outputSize: [Int?]) -> Tensor {
    adaptivePool(input, dims: 2, outputSize: outputSize, max: false, context: { "adaptive_avg_pool2d" }).output
}

/// 1-D adaptive max pooling (windows as ``adaptiveAvgPool1d(_:outputSize:)``).
///
/// PyTorch parity: `torch.nn.functional.adaptive_max_pool1d(input, output_size)`.
public func adaptiveMaxPool1d(_ input: Tensor, outputSize: [Int?]) -> Tensor {
    adaptivePool(input, dims: 1, outputSize: outputSize, max: true, context: { "adaptive_max_pool1d" }).output
}

/// ``adaptiveMaxPool1d(_:outputSize:)`` with the positions of the maxima.
public func adaptiveMaxPool1dWithIndices(_ input: Tensor, outputSize: [Int?]) -> (output: Tensor, indices: Tensor) {
    adaptivePool(input, dims: 1, outputSize: outputSize, max: true, context: { "adaptive_max_pool1d" })
}

/// 2-D adaptive max pooling.
///
/// PyTorch parity: `torch.nn.functional.adaptive_max_pool2d(input, output_size)`.
public func adaptiveMaxPool2d(_ input: Tensor, outputSize: [Int?]) -> Tensor {
    adaptivePool(input, dims: 2, outputSize: outputSize, max: true, context: { "adaptive_max_pool2d" }).output
}

/// ``adaptiveMaxPool2d(_:outputSize:)`` with the flat positions of the maxima.
public func adaptiveMaxPool2dWithIndices(_ input: Tensor, outputSize: [Int?]) -> (output: Tensor, indices: Tensor) {
    adaptivePool(input, dims: 2, outputSize: outputSize, max: true, context: { "adaptive_max_pool2d" })
}

package func adaptivePool(_ input: Tensor, dims: Int, outputSize: [Int?], max: Bool,
                          context: () -> String) -> (output: Tensor, indices: Tensor) {
    let setup = PoolSetup(input, dims: dims, context: context)
    let sizes = outputSize.count == 1 ? Array(repeating: outputSize[0], count: dims) : outputSize
    precondition(sizes.count == dims, "\(context()): output_size must have 1 or \(dims) elements, got \(outputSize)")
    let output = (0..<dims).map { sizes[$0] ?? setup.spatial[$0] }
    precondition(output.allSatisfy { $0 >= 0 }, "\(context()): elements of output_size must be greater than or equal to 0 but received \(output)")
    let w = PoolWindows.adaptive(input: setup.spatial, output: output)
    let name = max ? "adaptive_max_pool\(dims)d" : "adaptive_avg_pool\(dims)d"
    if max { return windowMax(setup, w, opName: name) }
    let out = windowAverage(setup, w, opName: name, divisor: { clipped, _ in clipped })
    return (out, Tensor.zeros([0], dtype: .int64))
}

// MARK: - Max unpooling

/// Puts each value of a max pooling's output back at the position its index names, zeros
/// elsewhere. The output size is `(L - 1) stride - 2 padding + kernelSize` per dimension unless
/// `outputSize` (spatial, or with the leading sizes) is given.
///
/// PyTorch parity: `torch.nn.functional.max_unpool1d(input, indices, kernel_size, stride=None,
/// padding=0, output_size=None)`.
public func maxUnpool1d(_ input: Tensor, indices: Tensor, kernelSize: SpatialSize, stride: SpatialSize? = nil,
                        padding: SpatialSize = 0, outputSize: [Int]? = nil) -> Tensor {
    maxUnpool(input, indices: indices, dims: 1, kernelSize: kernelSize, stride: stride, padding: padding,
              outputSize: outputSize, context: { "max_unpool1d" })
}

/// 2-D max unpooling; see ``maxUnpool1d(_:indices:kernelSize:stride:padding:outputSize:)``.
///
/// PyTorch parity: `torch.nn.functional.max_unpool2d`.
public func maxUnpool2d(_ input: Tensor, indices: Tensor, kernelSize: SpatialSize, stride: SpatialSize? = nil,
                        padding: SpatialSize = 0, outputSize: [Int]? = nil) -> Tensor {
    maxUnpool(input, indices: indices, dims: 2, kernelSize: kernelSize, stride: stride, padding: padding,
              outputSize: outputSize, context: { "max_unpool2d" })
}

package func maxUnpool(_ input: Tensor, indices: Tensor, dims: Int, kernelSize: SpatialSize, stride: SpatialSize?,
                       padding: SpatialSize, outputSize: [Int]?, context: () -> String) -> Tensor {
    let setup = PoolSetup(input, dims: dims, context: context)
    precondition(indices.shape == input.shape && indices.dtype == .int64,
                 "\(context()): Expected shape of indices to be same as that of the input tensor (\(input.shape)) and int64, but got indices of shape \(indices.shape) and \(indices.dtype)")
    let k = kernelSize.expanded(to: dims, "kernel_size", op: context())
    let s = (stride ?? kernelSize).expanded(to: dims, "stride", op: context())
    let p = padding.expanded(to: dims, "padding", op: context())
    let spatial = setup.spatial
    var size: [Int] = (0..<dims).map { j -> Int in (spatial[j] - 1) * s[j] - 2 * p[j] + k[j] }
    if var requested = outputSize {
        if requested.count == input.rank { requested = Array(requested.suffix(dims)) }
        precondition(requested.count == dims, "\(context()): output_size must have \(dims) or \(input.rank) elements (got \(requested.count))")
        let lowest: [Int] = (0..<dims).map { j -> Int in size[j] - s[j] + 1 }
        let highest: [Int] = (0..<dims).map { j -> Int in size[j] + s[j] - 1 }
        let fits = (0..<dims).allSatisfy { j in requested[j] >= lowest[j] && requested[j] <= highest[j] }
        precondition(fits, "\(context()): invalid output_size \(requested): each size must be between \(lowest) and \(highest)")
        size = requested
    }
    let outPlane = size.reduce(1, *), inPlane = setup.spatial.reduce(1, *), planes = setup.planes
    let idx = indices.contiguousRaw
    let ip = idx.pointer(as: Int64.self)
    for i in 0..<idx.count {
        precondition(ip[i] >= 0 && Int(ip[i]) < outPlane,
                     "\(context()): Found an invalid max index: \(ip[i]) (output volumes are of size \(size.map(String.init).joined(separator: "x")))")
    }
    let x = setup.input.contiguousRaw
    let out = Tensor(zeroedShape: Shape(setup.leading + size), dtype: x.dtype)
    if x.dtype == .float32 {
        PoolKernel.scatter(x.pointer(as: Float.self), ip, out.mutablePointer(as: Float.self), planes: planes, from: inPlane, to: outPlane, assigning: true)
    } else {
        PoolKernel.scatter(x.pointer(as: Double.self), ip, out.mutablePointer(as: Double.self), planes: planes, from: inPlane, to: outPlane, assigning: true)
    }
    let input = setup.input
    return out.recorded("max_unpool\(dims)d", input, twice: true, backward: { g in
        // The gradient of each input element is the output gradient at its index.
        if creatingGraph {
            return [g.reshaped([planes, outPlane]).gather(axis: 1, index: idx.reshapedRaw([planes, inPlane])).reshaped(input.shape)]
        }
        let flat = g.contiguousRaw.reshapedRaw([planes, outPlane])
        return [Kernels.gather(flat, axis: 1, index: idx.reshapedRaw([planes, inPlane])).reshapedRaw(input.shape)]
    })
}
