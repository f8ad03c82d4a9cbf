import EmberAutograd
import EmberTensor
import EmberStorage

/// Which implementation cross entropy uses; tests force the general one to check the fused one.
package enum CrossEntropyPath {
    /// The fused kernel for `[N, C]`/`[C]` input without class weights, else the general path.
    case automatic
    /// Always `logSoftmax` followed by the NLL kernel.
    case general
}

/// Cross entropy between logits and a target given as class indices or class probabilities.
///
/// With `lp = logSoftmax(input)` over the class dimension (1, or 0 for an unbatched `[C]` input),
/// `C` classes, class weights `w` (all 1 when `nil`) and label smoothing `e`:
///
/// - **Class indices** (int64 target, shape `[N]`, `[N, d1, ...]` for input `[N, C, d1, ...]`,
///   or 0-d for input `[C]`): for a sample with target `t`,
///   `l = (1 - e) (-w_t lp_t) + (e / C) (-sum_c w_c lp_c)`, and 0 when `t == ignoreIndex`.
///   `.mean` divides the sum by `sum of w_t over non-ignored samples` (the count of non-ignored
///   samples without weights), for both terms: the weighted mean. All samples ignored gives NaN.
/// - **Class probabilities** (float target of the input's shape): with
///   `y' = (1 - e) y + e / C`, `l = -sum_c w_c y'_c lp_c`; `.mean` divides the sum by the number
///   of samples `input.count / C` (not by the weights).
///
/// Stable for any logits (log-sum-exp, no `exp` overflow): ±1000 gives exact finite losses.
/// `.none` returns one loss per sample (the target's shape for class indices).
///
/// For `[N, C]` (or `[C]`) input with class indices and no class weights, forward and backward run
/// as one fused kernel (one pass per row each way; the gradient is
/// `(softmax - (1 - e) onehot - e / C)` scaled by the incoming gradient, over the number of kept
/// samples for `.mean`). Everything else runs `logSoftmax` then a fused NLL kernel.
///
/// - Parameters:
///   - input: logits `[N, C]`, `[N, C, d1, ...]` or unbatched `[C]`, float.
///   - target: int64 class indices, or float probabilities of `input`'s shape.
///   - weight: class weights `[C]`, `input`'s dtype; a constant (no gradient) for class indices.
///   - ignoreIndex: a class-index target value that contributes nothing (default -100); must stay
///     negative with probability targets.
///   - reduction: `.mean` (default), `.sum` or `.none`.
///   - labelSmoothing: `e` in `[0, 1]` (default 0).
///
/// PyTorch parity: `torch.nn.functional.cross_entropy(input, target, weight=None,
/// ignore_index=-100, reduction='mean', label_smoothing=0.0)`: the same values and gradients
/// (including PyTorch's weighted-mean normalisation of the smoothing term and NaN when every target
/// is ignored) and the same errors: "Target 5 is out of bounds.", "Expected input batch_size (3)
/// to match target batch_size (4).", "expected target dtype to be Long or Byte, but got Float",
/// "Expected floating point type for target with class probabilities, got Long", "ignore_index is
/// not supported for floating point target", "weight tensor should be defined either for all 5
/// classes or no classes ...". Deliberate difference: a negative `labelSmoothing` stops with
/// PyTorch's "label_smoothing must be between 0.0 and 1.0" message, where PyTorch silently
/// treats it as 0.
///
/// See also: ``CrossEntropyLoss``, ``nllLoss(_:target:weight:ignoreIndex:reduction:)``,
/// ``Tensor/logSoftmax(axis:)``.
public func crossEntropy(
    _ input: Tensor, target: Tensor, weight: Tensor? = nil, ignoreIndex: Int = -100, reduction: Reduction = .mean,
    labelSmoothing: Double = 0
) -> Tensor {
    crossEntropy(input, target, weight, ignoreIndex, reduction, labelSmoothing, op: "crossEntropy", path: .automatic)
}

package func validateLabelSmoothing(_ e: Double, op: String) {
    precondition(e >= 0 && e <= 1, "\(op): label_smoothing must be between 0.0 and 1.0. Got: \(formatPythonShort(e))")
}

package func crossEntropy(
    _ input: Tensor, _ target: Tensor, _ weight: Tensor?, _ ignoreIndex: Int, _ reduction: Reduction,
    _ labelSmoothing: Double, op: String, path: CrossEntropyPath
) -> Tensor {
    reduction.validate(op)
    validateLabelSmoothing(labelSmoothing, op: op)
    if input.shape == target.shape {
        return crossEntropyWithProbabilities(input, target, weight, ignoreIndex, reduction, labelSmoothing, op: op)
    }
    let layout = classIndexLayout(input, target, weight: weight, op: op)
    Kernels.requireFloat(input, op: op, kernel: "log_softmax_lastdim_kernel_impl")
    let (targets, kept) = checkClassTargets(target, classes: layout.classes, ignoreIndex: ignoreIndex, op: op)
    if path == .automatic && input.rank <= 2 && weight == nil {
        return fusedCrossEntropy(input, targets: targets, kept: kept, layout: layout, ignoreIndex: ignoreIndex,
                                 labelSmoothing: labelSmoothing, reduction: reduction)
    }
    let logProbs = input.logSoftmax(axis: layout.classAxis)
    return negativeLogLikelihood(logProbs, targets: targets, weight: weight, layout: layout, ignoreIndex: ignoreIndex,
                                 labelSmoothing: labelSmoothing, reduction: reduction, name: "crossEntropy")
}

/// The class-probability form, composed from differentiable ops (so the target gets a gradient too).
private func crossEntropyWithProbabilities(
    _ input: Tensor, _ target: Tensor, _ weight: Tensor?, _ ignoreIndex: Int, _ reduction: Reduction,
    _ labelSmoothing: Double, op: String
) -> Tensor {
    precondition(target.dtype.isFloatingPoint,
                 "\(op): Expected floating point type for target with class probabilities, got \(pyTorchTypeName(target.dtype)). (Input and target have the same shape \(input.shape), so the target is read as class probabilities; class indices have one dimension less: [N] for input [N, C].)")
    precondition(ignoreIndex < 0, "\(op): ignore_index is not supported for floating point target (got ignoreIndex \(ignoreIndex))")
    precondition(input.rank >= 1, "\(op): Expected 1 or more dimensions (got 0) (input shape \(input.shape)); the input holds one score per class")
    Kernels.requireFloat(input, op: op, kernel: "log_softmax_lastdim_kernel_impl")
    let classAxis = input.rank == 1 ? 0 : 1
    let classes = input.shape[classAxis]
    var probabilities = target
    if labelSmoothing > 0 {
        probabilities = probabilities * (1 - labelSmoothing) + labelSmoothing / Double(classes)
    }
    var terms = input.logSoftmax(axis: classAxis) * probabilities
    if let weight {
        precondition(weight.rank == 1 && weight.count == classes,
                     "\(op): cross_entropy: weight tensor should be defined either for all \(classes) classes or no classes but got weight tensor of shape: \(weight.shape)")
        var shape = Shape(repeating: 1, count: input.rank)
        shape[classAxis] = classes
        terms = terms * weight.reshaped(shape)
    }
    switch reduction {
    case .none: return -terms.sum(axis: classAxis)
    case .sum: return -terms.sum()
    default: return -terms.sum() / (Double(input.count) / Double(classes))
    }
}

/// Negative log likelihood of class-index targets given log-probabilities.
///
/// For a sample with target `t` and class weights `w` (all 1 when `nil`): `l = -w_t input[t]`, and
/// 0 when `t == ignoreIndex`. `.mean` divides the sum by the sum of `w_t` over non-ignored samples
/// (NaN when every target is ignored).
///
/// Gradient: `-w_t` at each sample's target (over the weight sum for `.mean`), 0 elsewhere.
///
/// - Parameters:
///   - input: log-probabilities `[N, C]`, `[N, C, d1, ...]` or unbatched `[C]`, float (usually
///     from ``Tensor/logSoftmax(axis:)``; ``crossEntropy(_:target:weight:ignoreIndex:reduction:labelSmoothing:)``
///     does both in one step).
///   - target: int64 class indices `[N]`, `[N, d1, ...]`, or 0-d for `[C]`.
///   - weight: class weights `[C]`, `input`'s dtype; a constant (no gradient).
///   - ignoreIndex: a target value that contributes nothing (default -100).
///   - reduction: `.mean` (default), `.sum` or `.none` (the target's shape).
///
/// PyTorch parity: `torch.nn.functional.nll_loss(input, target, weight=None, ignore_index=-100,
/// reduction='mean')`, with its values, gradients and error texts ("Target 5 is out of bounds.",
/// "Expected input batch_size (3) to match target batch_size (4).", ...).
///
/// See also: ``NLLLoss``.
public func nllLoss(
    _ input: Tensor, target: Tensor, weight: Tensor? = nil, ignoreIndex: Int = -100, reduction: Reduction = .mean
) -> Tensor {
    nllLoss(input, target, weight, ignoreIndex, reduction, op: "nllLoss")
}

package func nllLoss(_ input: Tensor, _ target: Tensor, _ weight: Tensor?, _ ignoreIndex: Int, _ reduction: Reduction, op: String) -> Tensor {
    reduction.validate(op)
    let layout = classIndexLayout(input, target, weight: weight, op: op)
    Kernels.requireFloat(input, op: op, kernel: input.rank <= 2 ? "nll_loss_out_frame" : "nll_loss2d_forward_out_frame")
    let (targets, _) = checkClassTargets(target, classes: layout.classes, ignoreIndex: ignoreIndex, op: op)
    return negativeLogLikelihood(input, targets: targets, weight: weight, layout: layout, ignoreIndex: ignoreIndex,
                                 labelSmoothing: 0, reduction: reduction, name: "nllLoss")
}
