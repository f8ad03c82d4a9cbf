import EmberAutograd
import EmberTensor
import EmberStorage

// MARK: - Element formulas (PyTorch's CPU kernels)

/// `(x - y)^2`.
struct SquaredError: ElementwiseLoss {
    @inline(__always) func value<T: TensorFloat>(_ x: T, _ y: T, _: T) -> T { let d = x - y; return d * d }
    @inline(__always) func inputDerivative<T: TensorFloat>(_ x: T, _ y: T, _: T) -> T { 2 * (x - y) }
    @inline(__always) func targetDerivative<T: TensorFloat>(_ x: T, _ y: T, _: T) -> T { -2 * (x - y) }
    var supportsDoubleBackward: Bool { true }
    func recordedDerivatives(_ x: Tensor, _ y: Tensor) -> (input: Tensor, target: Tensor)? {
        let d = x - y
        return (d * 2, d * -2)
    }
}

/// `|x - y|`; the derivative is `sign(x - y)` (0 where they are equal, NaN for NaN).
struct AbsoluteError: ElementwiseLoss {
    @inline(__always) func value<T: TensorFloat>(_ x: T, _ y: T, _: T) -> T { Swift.abs(x - y) }
    @inline(__always) func inputDerivative<T: TensorFloat>(_ x: T, _ y: T, _: T) -> T { signum(x - y) }
    @inline(__always) func targetDerivative<T: TensorFloat>(_ x: T, _ y: T, _: T) -> T { -signum(x - y) }
    var supportsDoubleBackward: Bool { true }
    func recordedDerivatives(_ x: Tensor, _ y: Tensor) -> (input: Tensor, target: Tensor)? {
        // sign(x - y) is piecewise constant: a fixed tensor, whose own derivative is 0.
        let d = withNoGrad { x - y }
        let sign = d.gt(0).to(d.dtype) - d.lt(0).to(d.dtype)
        return (sign, -sign)
    }
}

@inline(__always) private func signum<T: TensorFloat>(_ d: T) -> T { d > 0 ? 1 : (d < 0 ? -1 : (d.isNaN ? d : 0)) }

/// `0.5 z^2 / beta` for `z = |x - y| < beta`, else `z - 0.5 beta` (`beta > 0`).
struct SmoothL1Error: ElementwiseLoss {
    let beta: Double
    @inline(__always) func value<T: TensorFloat>(_ x: T, _ y: T, _: T) -> T {
        let z = Swift.abs(x - y), b = T(beta)
        return z < b ? T(0.5) * z * z / b : z - T(0.5) * b
    }
    @inline(__always) func inputDerivative<T: TensorFloat>(_ x: T, _ y: T, _: T) -> T {
        let d = x - y, b = T(beta)
        return d <= -b ? -1 : (d >= b ? 1 : d / b)
    }
    @inline(__always) func targetDerivative<T: TensorFloat>(_ x: T, _ y: T, _ p: T) -> T { -inputDerivative(x, y, p) }
    var supportsDoubleBackward: Bool { true }
    func recordedDerivatives(_ x: Tensor, _ y: Tensor) -> (input: Tensor, target: Tensor)? {
        // d / beta inside the band, its sign (a fixed tensor) outside.
        let d = x - y
        let inside = withNoGrad { d.abs().lt(beta).to(d.dtype) }
        let sign = withNoGrad { d.gt(0).to(d.dtype) - d.lt(0).to(d.dtype) }
        let derivative = d * (inside / beta) + sign * (1 - inside)
        return (derivative, -derivative)
    }
}

/// `0.5 z^2` for `z = |x - y| < delta`, else `delta (z - 0.5 delta)`.
struct HuberError: ElementwiseLoss {
    let delta: Double
    @inline(__always) func value<T: TensorFloat>(_ x: T, _ y: T, _: T) -> T {
        let z = Swift.abs(x - y), dl = T(delta)
        return z < dl ? T(0.5) * z * z : dl * (z - T(0.5) * dl)
    }
    @inline(__always) func inputDerivative<T: TensorFloat>(_ x: T, _ y: T, _: T) -> T {
        let d = x - y, dl = T(delta)
        return d <= -dl ? -dl : (d >= dl ? dl : d)
    }
    @inline(__always) func targetDerivative<T: TensorFloat>(_ x: T, _ y: T, _ p: T) -> T { -inputDerivative(x, y, p) }
    var supportsDoubleBackward: Bool { true }
    func recordedDerivatives(_ x: Tensor, _ y: Tensor) -> (input: Tensor, target: Tensor)? {
        // d inside the band, delta times its sign (a fixed tensor) outside.
        let d = x - y
        let inside = withNoGrad { d.abs().lt(delta).to(d.dtype) }
        let sign = withNoGrad { d.gt(0).to(d.dtype) - d.lt(0).to(d.dtype) }
        let derivative = d * inside + sign * (1 - inside) * delta
        return (derivative, -derivative)
    }
}

// MARK: - Functional forms

/// Mean squared error: `l_i = (x_i - y_i)^2`, then reduced.
///
/// Gradient: `2 (x - y)` for the input, `-2 (x - y)` for the target, times `1 / N` for `.mean`.
///
/// - Parameters:
///   - input: predictions, any shape, float (an int64/bool operand is promoted as PyTorch does).
///   - target: same shape as `input`.
///   - reduction: `.mean` (default), `.sum` or `.none` (the element-wise losses, `input`'s shape).
///
/// PyTorch parity: `torch.nn.functional.mse_loss(input, target, reduction='mean')`: same values,
/// gradients (also for the target) and dtype promotion; an empty `.mean` is NaN. Deliberate
/// difference: a target of another shape stops with an error, where PyTorch warns "Using a target
/// size ... that is different to the input size" and broadcasts (`[N, 1]` against `[N]` silently
/// becomes an `[N, N]` loss).
///
/// See also: ``MSELoss``, ``l1Loss(_:target:reduction:)``, ``huberLoss(_:target:reduction:delta:)``.
public func mseLoss(_ input: Tensor, target: Tensor, reduction: Reduction = .mean) -> Tensor {
    mseLoss(input, target, reduction, op: "mseLoss")
}

package func mseLoss(_ input: Tensor, _ target: Tensor, _ reduction: Reduction, op: String) -> Tensor {
    reduction.validate(op)
    requireSameShape(input, target, op: op, rule: .pyTorchWarnsAndBroadcasts)
    let (x, y) = promotedFloatPair(input, target, op: op, notFloat: "\"mse_cpu\" not implemented for '\(pyTorchTypeName(input.dtype))'")
    return elementwiseLoss(SquaredError(), name: "mseLoss", x, y, reduction: reduction)
}

/// Mean absolute error: `l_i = |x_i - y_i|`, then reduced.
///
/// Gradient: `sign(x - y)` for the input (0 where `x == y`), its negation for the target.
///
/// - Parameters:
///   - input: predictions, any shape, float (an int64/bool operand is promoted as PyTorch does).
///   - target: same shape as `input`.
///   - reduction: `.mean` (default), `.sum` or `.none`.
///
/// PyTorch parity: `torch.nn.functional.l1_loss(input, target, reduction='mean')`. Deliberate
/// differences: a target of another shape stops with an error (PyTorch warns and broadcasts), and
/// two integer operands stop too (PyTorch returns an integer loss for `'none'` and fails for
/// `'mean'`).
///
/// See also: ``L1Loss``, ``smoothL1Loss(_:target:reduction:beta:)``.
public func l1Loss(_ input: Tensor, target: Tensor, reduction: Reduction = .mean) -> Tensor {
    l1Loss(input, target, reduction, op: "l1Loss")
}

package func l1Loss(_ input: Tensor, _ target: Tensor, _ reduction: Reduction, op: String) -> Tensor {
    reduction.validate(op)
    requireSameShape(input, target, op: op, rule: .pyTorchWarnsAndBroadcasts)
    let (x, y) = promotedFloatPair(input, target, op: op, notFloat: "mean(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. Got: \(pyTorchTypeName(input.dtype))")
    return elementwiseLoss(AbsoluteError(), name: "l1Loss", x, y, reduction: reduction)
}

/// Smooth L1 loss: with `z = |x - y|`, `l = 0.5 z^2 / beta` if `z < beta`, else `z - 0.5 beta`;
/// `beta = 0` is exactly ``l1Loss(_:target:reduction:)``.
///
/// Gradient: `(x - y) / beta` inside the band, `±1` outside.
///
/// - Parameters:
///   - input: predictions, any shape, float (an int64/bool operand is promoted as PyTorch does).
///   - target: same shape as `input`.
///   - reduction: `.mean` (default), `.sum` or `.none`.
///   - beta: where the quadratic part ends; must be `>= 0` (default 1).
///
/// PyTorch parity: `torch.nn.functional.smooth_l1_loss(input, target, reduction='mean', beta=1.0)`,
/// including "smooth_l1_loss does not support negative values for beta." and the switch to
/// `l1_loss` at `beta = 0`. Deliberate difference: a target of another shape stops with an error
/// (PyTorch warns and broadcasts).
///
/// See also: ``SmoothL1Loss``, ``huberLoss(_:target:reduction:delta:)``.
public func smoothL1Loss(_ input: Tensor, target: Tensor, reduction: Reduction = .mean, beta: Double = 1) -> Tensor {
    smoothL1Loss(input, target, reduction, beta: beta, op: "smoothL1Loss")
}

package func validateSmoothL1Beta(_ beta: Double, op: String) {
    precondition(beta >= 0, "\(op): smooth_l1_loss does not support negative values for beta. (got beta \(beta))")
}

package func smoothL1Loss(_ input: Tensor, _ target: Tensor, _ reduction: Reduction, beta: Double, op: String) -> Tensor {
    reduction.validate(op)
    validateSmoothL1Beta(beta, op: op)
    requireSameShape(input, target, op: op, rule: .pyTorchWarnsAndBroadcasts)
    let (x, y) = promotedFloatPair(input, target, op: op, notFloat: "\"smooth_l1_cpu\" not implemented for '\(pyTorchTypeName(input.dtype))'")
    if beta == 0 { return elementwiseLoss(AbsoluteError(), name: "smoothL1Loss", x, y, reduction: reduction) }
    return elementwiseLoss(SmoothL1Error(beta: beta), name: "smoothL1Loss", x, y, reduction: reduction)
}

/// Huber loss: with `z = |x - y|`, `l = 0.5 z^2` if `z < delta`, else `delta (z - 0.5 delta)`
/// (smooth L1 scaled by `delta`).
///
/// Gradient: `x - y` inside the band, `±delta` outside.
///
/// - Parameters:
///   - input: predictions, any shape, float.
///   - target: same shape as `input` (an int64/bool target is promoted).
///   - reduction: `.mean` (default), `.sum` or `.none`.
///   - delta: where the quadratic part ends; must be `> 0` (default 1).
///
/// PyTorch parity: `torch.nn.functional.huber_loss(input, target, reduction='mean', delta=1.0)`,
/// including "huber_loss does not support non-positive values for delta." Deliberate
/// difference: a target of another shape stops with an error (PyTorch warns and broadcasts).
///
/// See also: ``HuberLoss``, ``smoothL1Loss(_:target:reduction:beta:)``.
public func huberLoss(_ input: Tensor, target: Tensor, reduction: Reduction = .mean, delta: Double = 1) -> Tensor {
    huberLoss(input, target, reduction, delta: delta, op: "huberLoss")
}

package func validateHuberDelta(_ delta: Double, op: String) {
    precondition(delta > 0, "\(op): huber_loss does not support non-positive values for delta. (got delta \(delta))")
}

package func huberLoss(_ input: Tensor, _ target: Tensor, _ reduction: Reduction, delta: Double, op: String) -> Tensor {
    reduction.validate(op)
    validateHuberDelta(delta, op: op)
    requireSameShape(input, target, op: op, rule: .pyTorchWarnsAndBroadcasts)
    precondition(input.dtype.isFloatingPoint,
                 target.dtype.isFloatingPoint
                     ? "\(op): result type \(pyTorchTypeName(target.dtype)) can't be cast to the desired output type \(pyTorchTypeName(input.dtype)) (the input must be a float tensor)"
                     : "\(op): \"huber_cpu\" not implemented for '\(pyTorchTypeName(input.dtype))'")
    let (x, y) = promotedFloatPair(input, target, op: op, notFloat: "")
    return elementwiseLoss(HuberError(delta: delta), name: "huberLoss", x, y, reduction: reduction)
}
