import EmberAutograd
import EmberStorage
import EmberTensor

/// `maxPool2d(conv2d(input, ...), kernelSize: 2)` as one op, or `nil` where it does not apply
/// (the caller then runs the two). It applies to a batched float32 2-D convolution on the
/// stride-1 path (``PaddedColumns``) with zero padding, whose output is at least 2 x 2, on a CPU
/// with the AVX2 pooling kernel: each sample's convolution output is pooled on the thread that
/// computed it, while it is in cache, and never stored (LeNet's first layer writes 5.5 MB and the
/// pooling read them back).
///
/// The values, the indices behind the gradients, and the gradients of input, weight and bias are
/// bit for bit those of the two ops: the same kernels run in the same order, only the
/// convolution's output is not kept. The backward spreads the gradient over the convolution's
/// output with the pooling's backward and runs the convolution's (under `createGraph`, as the
/// recorded ops those two backwards use). Checks and messages are the convolution's.
package func convolutionMaxPool2x2(_ input: Tensor, weight: Tensor, bias: Tensor?, stride: SpatialSize, padding: ConvPadding,
                                   dilation: SpatialSize, groups: Int, paddingMode: PaddingMode,
                                   context: () -> String) -> Tensor? {
    guard input.rank == 4, input.dtype == .float32, weight.dtype == .float32, paddingMode == .zeros,
          PoolKernel.native2x2 else { return nil }
    let (_, x, g, convShape) = convolutionGeometry(input, weight: weight, bias: bias, dims: 2, stride: stride, padding: padding,
                                                   dilation: dilation, groups: groups, paddingMode: paddingMode, context: context)
    guard PaddedColumns.applies(g), !g.isPointwise, g.output[1] >= 2, g.output[2] >= 2, x.shape[0] > 0, weight.count > 0 else {
        return nil
    }
    let windows = PoolWindows.sliding(input: [g.output[1], g.output[2]], kernel: [2, 2], stride: [2, 2], padding: [0, 0],
                                      dilation: [1, 1], ceilMode: false, planes: convShape[1], describe: context)
    guard PoolKernel.is2x2(windows) else { return nil }
    let sizes = ConvolutionKernel.Sizes(batch: x.shape[0], inChannels: x.shape[1], outChannels: convShape[1], groups: groups)
    let planes = sizes.outChannels, pooledPlane = windows.outputPlane
    let shape = Shape([sizes.batch, planes, windows.output[1], windows.output[2]])
    let out = Tensor(uninitializedShape: shape, dtype: .float32)
    let record = shouldRecord(bias.map { [x, weight, $0] } ?? [x, weight])
    let indices: Tensor? = record ? Tensor(uninitializedShape: shape, dtype: .int64) : nil
    let xc = x.contiguousRaw, wc = weight.contiguousRaw, bc = bias?.contiguousRaw
    let y = out.mutablePointer(as: Float.self), at = indices?.mutablePointer(as: Int64.self)
    ConvolutionKernel.paddedForward(x: xc.pointer(as: Float.self), w: wc.pointer(as: Float.self), bias: bc?.pointer(as: Float.self),
                                    y: nil, sizes, g) { n, sample in
        PoolKernel.max2x2Native(sample, y + n * planes * pooledPlane, at.map { $0 + n * planes * pooledPlane }, planes: planes, windows)
    }
    guard let indices else { return out }
    let convolutionGradients = convolutionBackward(x, weight: weight, bias: bias, geometry: g, groups: groups, outShape: convShape,
                                                   transposed: false, output: nil)
    // The pooling's backward: the gradient spread to each window's maximum (a gather the other way).
    let scatter = { (gp: Tensor) -> Tensor in
        let gc = gp.contiguousRaw
        let gy = Tensor(uninitializedShape: convShape, dtype: .float32)
        PoolKernel.scatter2x2Native(gc.pointer(as: Float.self), indices.pointer(as: Int64.self), gy.mutablePointer(as: Float.self),
                                    planes: sizes.batch * planes, windows)
        return gy
    }
    let backward: (Tensor) -> [Tensor?] = { gp in
        guard creatingGraph else { return convolutionGradients(scatter(gp)) }
        let total = sizes.batch * planes
        return convolutionGradients(gp.linearMap("max_pool2dBackward", scatter, adjoint: { u in
            u.reshaped([total, windows.inputPlane]).gather(axis: 1, index: indices.reshaped([total, pooledPlane])).reshaped(shape)
        }))
    }
    if let bias { return out.recorded("convolution_max_pool2d", x, weight, bias, twice: true, backward: backward) }
    return out.recorded("convolution_max_pool2d", x, weight, twice: true, backward: backward)
}
