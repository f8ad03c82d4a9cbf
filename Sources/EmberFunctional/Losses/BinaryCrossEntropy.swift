import EmberAutograd
import EmberTensor
import EmberStorage

/// `-(y log x + (1 - y) log(1 - x))` with each log clamped to `>= -100`.
struct BinaryCrossEntropyElement: ElementwiseLoss {
    @inline(__always) func value<T: TensorFloat>(_ x: T, _ y: T, _: T) -> T {
        (y - 1) * Swift.max(T.log(onePlus: -x), -100) - y * Swift.max(T.log(x), -100)
    }
    /// `(x - y) / max((1 - x) x, 1e-12)`: finite at `x = 0` and `x = 1`. The epsilon is PyTorch's
    /// float constant (`Float(1e-12)`, also in float64).
    @inline(__always) func inputDerivative<T: TensorFloat>(_ x: T, _ y: T, _: T) -> T {
        (x - y) / Swift.max((1 - x) * x, T(Double(Float(1e-12))))
    }
    /// `-logit(x) = -log(x / (1 - x))` (unclamped).
    @inline(__always) func targetDerivative<T: TensorFloat>(_ x: T, _ y: T, _: T) -> T {
        -T.log(x / (1 - x))
    }
    var supportsDoubleBackward: Bool { true }
    func recordedDerivatives(_ x: Tensor, _ y: Tensor) -> (input: Tensor, target: Tensor)? {
        ((x - y) / ((1 - x) * x).clamp(min: Double(Float(1e-12))), -(x / (1 - x)).log())
    }
}

/// `(1 - y) x - (1 + (p - 1) y) log(sigmoid(x))`, `log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))`.
struct BinaryCrossEntropyWithLogitsElement: ElementwiseLoss {
    let hasPosWeight: Bool
    @inline(__always) func value<T: TensorFloat>(_ x: T, _ y: T, _ p: T) -> T {
        var ls = logSigmoid(x)
        if hasPosWeight { ls *= (p - 1) * y + 1 }
        return (1 - y) * x - ls
    }
    /// `sigmoid(x) - y`, or `(p y + 1 - y) sigmoid(x) - p y` with a positive-class weight.
    @inline(__always) func inputDerivative<T: TensorFloat>(_ x: T, _ y: T, _ p: T) -> T {
        guard hasPosWeight else { return sigmoidValue(x) - y }
        let t = p * y
        return (t + 1 - y) * sigmoidValue(x) - t
    }
    /// `-x`, or `log(sigmoid(-x)) - p log(sigmoid(x))` with a positive-class weight.
    @inline(__always) func targetDerivative<T: TensorFloat>(_ x: T, _ y: T, _ p: T) -> T {
        guard hasPosWeight else { return -x }
        return logSigmoid(-x) - logSigmoid(x) * p
    }
    var supportsDoubleBackward: Bool { true }
    func recordedDerivatives(_ x: Tensor, _ y: Tensor, posWeight p: Tensor?) -> (input: Tensor, target: Tensor)? {
        guard let p else { return (x.sigmoid() - y, -x) }
        // log(sigmoid(z)) = -softplus(-z)
        let t = p * y
        return ((t + 1 - y) * x.sigmoid() - t, -x.softplus() + (-x).softplus() * p)
    }
}

/// `log(sigmoid(x))` without overflow: `min(x, 0) - log1p(exp(-|x|))`.
@inline(__always) func logSigmoid<T: TensorFloat>(_ x: T) -> T {
    Swift.min(x, 0) - T.log(onePlus: T.exp(-Swift.abs(x)))
}

/// Binary cross entropy on probabilities:
/// `l_i = -w_i (y_i log x_i + (1 - y_i) log(1 - x_i))`, each log clamped to `>= -100`, then reduced.
///
/// The clamp keeps the loss finite (at most 100 per element) when a probability is exactly 0 or
/// 1. Prefer ``binaryCrossEntropyWithLogits(_:target:weight:reduction:posWeight:)`` on logits: it
/// is exact where `sigmoid` saturates.
///
/// Gradient: `w (x - y) / max(x (1 - x), eps)` (`eps = Float(1e-12)`, PyTorch's constant) for the input (finite at 0 and 1), `-w logit(x)`
/// for the target; times `1 / N` for `.mean`.
///
/// - Parameters:
///   - input: probabilities in `[0, 1]`, float.
///   - target: same shape and dtype as `input`, values in `[0, 1]`.
///   - weight: per-element rescaling, broadcastable to `input`'s shape; a constant (no gradient).
///   - reduction: `.mean` (default), `.sum` or `.none`.
///
/// PyTorch parity: `torch.nn.functional.binary_cross_entropy(input, target, weight=None,
/// reduction='mean')`: the same clamp at -100 and backward epsilon, and the same errors: "all
/// elements of input should be between 0 and 1" (also for NaN), "all elements of target should be
/// between 0 and 1", "Using a target size (...) that is different to the input size (...) is
/// deprecated. Please ensure they have the same size.", "Found dtype Double but expected Float".
///
/// See also: ``BCELoss``, ``binaryCrossEntropyWithLogits(_:target:weight:reduction:posWeight:)``.
public func binaryCrossEntropy(_ input: Tensor, target: Tensor, weight: Tensor? = nil, reduction: Reduction = .mean) -> Tensor {
    binaryCrossEntropy(input, target, weight, reduction, op: "binaryCrossEntropy")
}

package func binaryCrossEntropy(_ input: Tensor, _ target: Tensor, _ weight: Tensor?, _ reduction: Reduction, op: String) -> Tensor {
    reduction.validate(op)
    requireSameShape(input, target, op: op, rule: .pyTorchRefuses(
        "Using a target size (\(torchSize(target.shape))) that is different to the input size (\(torchSize(input.shape))) is deprecated. Please ensure they have the same size."))
    precondition(input.dtype.isFloatingPoint, "\(op): \"binary_cross_entropy\" not implemented for '\(pyTorchTypeName(input.dtype))'")
    precondition(target.dtype == input.dtype,
                 "\(op): Found dtype \(pyTorchTypeName(target.dtype)) but expected \(pyTorchTypeName(input.dtype)) (the target must have the input's dtype)")
    requireNoGradient(weight, argument: "weight", function: "binary_cross_entropy", op: op)
    requireUnitInterval(input, name: "input", op: op)
    requireUnitInterval(target, name: "target", op: op)
    let w = weight.map { broadcastWeight($0, to: input.shape, dtype: input.dtype, argument: "weight", op: op) }
    return elementwiseLoss(BinaryCrossEntropyElement(), name: "binaryCrossEntropy", input, target, weight: w, reduction: reduction)
}

/// Stops with PyTorch's message unless every element of `x` is in `[0, 1]` (NaN is not).
private func requireUnitInterval(_ x: Tensor, name: String, op: String) {
    func firstOutside<T: TensorFloat>(_: T.Type) -> (Int, Double)? {
        let c = x.contiguousRaw
        let p = c.pointer(as: T.self)
        for i in 0..<c.count where !(p[i] >= 0 && p[i] <= 1) { return (i, Double(p[i])) }
        return nil
    }
    let bad = x.dtype == .float32 ? firstOutside(Float.self) : firstOutside(Double.self)
    if let (i, v) = bad {
        preconditionFailure("\(op): all elements of \(name) should be between 0 and 1 (element \(i) of the flattened \(name) is \(v)\(name == "input" ? "; for logits use binaryCrossEntropyWithLogits" : ""))")
    }
}

/// Binary cross entropy on logits, stable for any magnitude:
/// `l_i = w_i [(1 - y_i) x_i - (1 + (p_i - 1) y_i) log sigmoid(x_i)]`, then reduced, with
/// `log sigmoid(x) = min(x, 0) - log1p(exp(-|x|))`. Without `posWeight` this is
/// `w [(1 - y) x + log(1 + exp(-x))]`, the binary cross entropy of `sigmoid(x)`.
///
/// Gradient: `w (sigmoid(x) - y)` for the input (`w [(p y + 1 - y) sigmoid(x) - p y]` with
/// `posWeight`), and `-w x` for the target (`w [log sigmoid(-x) - p log sigmoid(x)]`); times `1 / N`
/// for `.mean`.
///
/// - Parameters:
///   - input: logits, any shape, float.
///   - target: same shape as `input`, float (dtypes promote); usually in `[0, 1]`.
///   - weight: per-element rescaling, broadcastable to `input`'s shape; a constant (no gradient).
///   - reduction: `.mean` (default), `.sum` or `.none`.
///   - posWeight: the weight of positive examples, broadcastable to `input`'s shape (typically
///     `[C]` for `C` classes on the last axis); a constant (no gradient).
///
/// PyTorch parity: `torch.nn.functional.binary_cross_entropy_with_logits(input, target,
/// weight=None, reduction='mean', pos_weight=None)`: the same formulation, gradients and errors
/// ("Target size (torch.Size([3])) must be the same as input size (torch.Size([3, 1]))"; weights
/// that require a gradient are refused as PyTorch does).
///
/// See also: ``BCEWithLogitsLoss``, ``binaryCrossEntropy(_:target:weight:reduction:)``.
public func binaryCrossEntropyWithLogits(
    _ input: Tensor, target: Tensor, weight: Tensor? = nil, reduction: Reduction = .mean, posWeight: Tensor? = nil
) -> Tensor {
    binaryCrossEntropyWithLogits(input, target, weight, reduction, posWeight, op: "binaryCrossEntropyWithLogits")
}

package func binaryCrossEntropyWithLogits(
    _ input: Tensor, _ target: Tensor, _ weight: Tensor?, _ reduction: Reduction, _ posWeight: Tensor?, op: String
) -> Tensor {
    reduction.validate(op)
    requireSameShape(input, target, op: op, rule: .pyTorchRefuses(
        "Target size (\(torchSize(target.shape))) must be the same as input size (\(torchSize(input.shape)))"))
    precondition(input.dtype.isFloatingPoint, "\(op): \"log_sigmoid_cpu\" not implemented for '\(pyTorchTypeName(input.dtype))'")
    precondition(target.dtype.isFloatingPoint,
                 "\(op): result type Float can't be cast to the desired output type \(pyTorchTypeName(target.dtype)) (the target must be a float tensor)")
    requireNoGradient(weight, argument: "weight", function: "binary_cross_entropy_with_logits", op: op)
    requireNoGradient(posWeight, argument: "pos_weight", function: "binary_cross_entropy_with_logits", op: op)
    let (x, y) = promotedFloatPair(input, target, op: op, notFloat: "")
    let w = weight.map { broadcastWeight($0, to: x.shape, dtype: x.dtype, argument: "weight", op: op) }
    let p = posWeight.map { broadcastWeight($0, to: x.shape, dtype: x.dtype, argument: "posWeight", op: op) }
    return elementwiseLoss(BinaryCrossEntropyWithLogitsElement(hasPosWeight: p != nil), name: "binaryCrossEntropyWithLogits",
                           x, y, weight: w, posWeight: p, reduction: reduction)
}
