import EmberAutograd
import EmberTensor

/// Power-average pooling: `(sum over the window of x^p)^(1/p)` for each window.
///
/// Computed as PyTorch does: an average pool of `x^p` (no padding), scaled back to a sum by the
/// window size, then `sign(s) relu(|s|)` before the `1/p` power, so the gradient is 0 where a
/// window sums to 0 (and NaN, as in PyTorch, where it is 0 with `p < 1`). `p = inf` pools the
/// largest magnitude `|x|` of each window (as PyTorch computes it); `p = 1` is sum pooling.
///
/// PyTorch parity: `torch.nn.functional.lp_pool1d/lp_pool2d(input, norm_type, kernel_size,
/// stride=None, ceil_mode=False)`.
public func lpPool1d(_ input: Tensor, normType: Double, kernelSize: SpatialSize, stride: SpatialSize? = nil,
                     ceilMode: Bool = false) -> Tensor {
    lpPool(input, dims: 1, normType: normType, kernelSize: kernelSize, stride: stride, ceilMode: ceilMode,
           context: { "lp_pool1d" })
}

/// Power-average pooling over `[N, C, H, W]` or `[C, H, W]`. See ``lpPool1d(_:normType:kernelSize:stride:ceilMode:)``.
///
/// PyTorch parity: `torch.nn.functional.lp_pool2d`.
public func lpPool2d(_ input: Tensor, normType: Double, kernelSize: SpatialSize, stride: SpatialSize? = nil,
                     ceilMode: Bool = false) -> Tensor {
    lpPool(input, dims: 2, normType: normType, kernelSize: kernelSize, stride: stride, ceilMode: ceilMode,
           context: { "lp_pool2d" })
}

package func lpPool(_ input: Tensor, dims: Int, normType p: Double, kernelSize: SpatialSize, stride: SpatialSize?,
                    ceilMode: Bool, context: () -> String) -> Tensor {
    precondition(p > 0 && !p.isNaN, "\(context()): norm_type must be positive, got \(p)")
    if p == .infinity {
        // PyTorch pools the magnitudes: the largest |x| of each window.
        return maxPool(input.abs(), dims: dims, kernelSize: kernelSize, stride: stride, padding: 0, dilation: 1,
                       ceilMode: ceilMode, needIndices: false, context: context).output
    }
    let window = kernelSize.expanded(to: dims, "kernel_size", op: context()).reduce(1, *)
    let average = avgPool(input.pow(p), dims: dims, kernelSize: kernelSize, stride: stride, padding: 0,
                          ceilMode: ceilMode, countIncludePad: true, divisorOverride: nil, context: context)
    let magnitude = average.abs().relu()
    let signed = Tensor.where(average.gt(0), magnitude, -magnitude)
    return (signed * Double(window)).pow(1 / p)
}
