import EmberAutograd
import EmberStorage
import EmberTensor

/// Extracts sliding blocks: `[N, C, H, W]` (or `[C, H, W]`) to `[N, C kH kW, L]`, column `l` holding
/// the block at output position `l` (row-major over the output grid), zeros where it covers the
/// padding. Its gradient is ``fold(_:outputSize:kernelSize:dilation:padding:stride:)``.
///
/// PyTorch parity: `torch.nn.functional.unfold(input, kernel_size, dilation=1, padding=0, stride=1)`.
public func unfold(_ input: Tensor, kernelSize: SpatialSize, dilation: SpatialSize = 1, padding: SpatialSize = 0,
                   stride: SpatialSize = 1) -> Tensor {
    let setup = ConvolutionSetup(input, dims: 2, name: "unfold", context: { "unfold" })
    let g = blockGeometry(spatial: setup.spatial, kernelSize: kernelSize, dilation: dilation, padding: padding, stride: stride,
                          context: { "unfold" })
    let x = setup.input
    return setup.finish(blocks(x, geometry: g, channels: x.shape[1], unfolding: true))
}

/// Sums sliding blocks back into an image: `[N, C kH kW, L]` (or `[C kH kW, L]`) to
/// `[N, C, outputSize...]`; overlapping blocks add up. The adjoint of
/// ``unfold(_:kernelSize:dilation:padding:stride:)``.
///
/// PyTorch parity: `torch.nn.functional.fold(input, output_size, kernel_size, dilation=1,
/// padding=0, stride=1)`.
public func fold(_ input: Tensor, outputSize: SpatialSize, kernelSize: SpatialSize, dilation: SpatialSize = 1,
                 padding: SpatialSize = 0, stride: SpatialSize = 1) -> Tensor {
    precondition(input.rank == 2 || input.rank == 3,
                 "fold: Expected 2D or 3D (batch mode) tensor for input with possibly 0 batch size and non-zero dimensions for input, but got: \(input.shape)")
    let x = input.rank == 3 ? input : input.unsqueezed(axis: 0)
    let size = outputSize.expanded(to: 2, "output_size", op: "fold")
    let g = blockGeometry(spatial: size, kernelSize: kernelSize, dilation: dilation, padding: padding, stride: stride,
                          context: { "fold" })
    let k = g.kernelVolume
    precondition(x.shape[1] % k == 0,
                 "fold: Expected size of input's dimension 1 to be divisible by the product of kernel_size, but got input.size(1)=\(x.shape[1]) and kernel_size=\(Array(g.kernel.suffix(2)))")
    precondition(x.shape[2] == g.outputPlane,
                 "fold: Given output_size=\(size), kernel_size=\(Array(g.kernel.suffix(2))), dilation=\(Array(g.dilation.suffix(2))), padding=\(Array(g.padBefore.suffix(2))), stride=\(Array(g.stride.suffix(2))), expected size of input's dimension 2 to match the calculated number of sliding blocks \(g.output[1]) * \(g.output[2]) = \(g.outputPlane), but got input.size(2)=\(x.shape[2]).")
    let out = blocks(x, geometry: g, channels: x.shape[1] / k, unfolding: false)
    return input.rank == 3 ? out : out.squeezed(axis: 0)
}

private func blockGeometry(spatial: [Int], kernelSize: SpatialSize, dilation: SpatialSize, padding: SpatialSize,
                           stride: SpatialSize, context: () -> String) -> WindowGeometry {
    let p = padding.expanded(to: 2, "padding", op: context())
    return WindowGeometry.convolution(input: spatial, kernel: kernelSize.expanded(to: 2, "kernel_size", op: context()),
                                      stride: stride.expanded(to: 2, "stride", op: context()), padBefore: p, padAfter: p,
                                      dilation: dilation.expanded(to: 2, "dilation", op: context()), describe: context)
}

/// `unfolding`: `[N, channels, image]` to `[N, channels K, L]`; else the reverse, adding.
private func blocks(_ x: Tensor, geometry g: WindowGeometry, channels: Int, unfolding: Bool) -> Tensor {
    let n = x.shape[0], k = g.kernelVolume, image = g.inputPlane, columns = g.outputPlane
    let xc = x.contiguousRaw
    let shape: Shape = unfolding ? [n, channels * k, columns] : Shape([n, channels] + Array(g.input.suffix(2)))
    let out = unfolding ? Tensor(uninitializedShape: shape, dtype: x.dtype) : Tensor(zeroedShape: shape, dtype: x.dtype)
    func run<T: TensorFloat>(_: T.Type, _ src: Tensor, _ dst: Tensor, forward: Bool) {
        let s = src.pointer(as: T.self), d = dst.mutablePointer(as: T.self)
        for i in 0..<n {
            if forward {
                ColumnMatrix.im2col(s + i * channels * image, channels: channels, g, into: d + i * channels * k * columns)
            } else {
                ColumnMatrix.col2im(s + i * channels * k * columns, channels: channels, g, into: d + i * channels * image)
            }
        }
    }
    func apply(_ src: Tensor, _ dst: Tensor, forward: Bool) {
        if src.dtype == .float32 { run(Float.self, src, dst, forward: forward) } else { run(Double.self, src, dst, forward: forward) }
    }
    apply(xc, out, forward: unfolding)
    return out.recorded(unfolding ? "unfold" : "fold", x, twice: true) { grad in
        // Each direction's backward is the other direction (both linear), recorded in turn.
        if creatingGraph { return [blocks(grad, geometry: g, channels: channels, unfolding: !unfolding)] }
        let gc = grad.contiguousRaw
        let dx = unfolding ? Tensor(zeroedShape: x.shape, dtype: x.dtype) : Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        apply(gc, dx, forward: !unfolding)
        return [dx]
    }
}
