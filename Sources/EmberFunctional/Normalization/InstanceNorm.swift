import EmberAutograd
import EmberStorage
import EmberTensor

/// Normalises each channel of each sample over its spatial positions:
/// `y = (x - mean_nc) / sqrt(var_nc + eps) * weight_c + bias_c` with the biased variance.
///
/// With `useInputStats: false` the running statistics replace each instance's (evaluation with
/// tracked statistics). When running statistics are given and `useInputStats` is true, they are
/// updated with the batch average of the instance means and unbiased variances:
/// `running = (1 - momentum) running + momentum mean_n(stat_nc)`.
///
/// PyTorch parity: `torch.nn.functional.instance_norm(input, running_mean=None, running_var=None,
/// weight=None, bias=None, use_input_stats=True, momentum=0.1, eps=1e-05)`, computed as PyTorch
/// does: batch normalization of the input viewed as `[1, N * C, ...]`.
public func instanceNorm(_ input: Tensor, runningMean: inout Tensor?, runningVar: inout Tensor?, weight: Tensor? = nil,
                         bias: Tensor? = nil, useInputStats: Bool = true, momentum: Double = 0.1, eps: Double = 1e-5) -> Tensor {
    instanceNorm(input, runningMean: &runningMean, runningVar: &runningVar, weight: weight, bias: bias,
                 useInputStats: useInputStats, momentum: momentum, eps: eps, context: { "instance_norm" })
}

package func instanceNorm(_ input: Tensor, runningMean: inout Tensor?, runningVar: inout Tensor?, weight: Tensor?,
                          bias: Tensor?, useInputStats: Bool, momentum: Double, eps: Double, context: () -> String) -> Tensor {
    precondition(input.rank >= 2, "\(context()): expected an input with a batch and a channel dimension, got shape \(input.shape)")
    let n = input.shape[0], c = input.shape[1]
    let spatial = input.count / max(n * c, 1)
    precondition(!useInputStats || spatial > 1 || input.count == 0,
                 "\(context()): Expected more than 1 spatial element when training, got input size \(input.shape)")
    func repeated(_ t: Tensor?) -> Tensor? {
        guard let t else { return nil }
        precondition(t.shape == [c], "\(context()): expected a statistic or affine parameter of shape [\(c)], got \(t.shape)")
        return t.unsqueezed(axis: 0).expanded(to: [n, c]).reshaped([n * c])
    }
    var folded = [1, n * c]
    folded.append(contentsOf: input.shape.dropFirst(2))
    var rm = repeated(runningMean).map { $0.contiguous() }, rv = repeated(runningVar).map { $0.contiguous() }
    let out = batchNorm(input.reshaped(Shape(folded)), runningMean: &rm, runningVar: &rv, weight: repeated(weight),
                        bias: repeated(bias), training: useInputStats, momentum: momentum, eps: eps, context: context)
    if useInputStats, runningMean != nil, let rm, let rv {
        runningMean = withNoGrad { rm.reshaped([n, c]).mean(axis: 0) }
        runningVar = withNoGrad { rv.reshaped([n, c]).mean(axis: 0) }
    }
    return out.reshaped(input.shape)
}
