import EmberAutograd
import EmberTensor
import EmberStorage

/// `y log y - y x` (`0` where `y = 0`), or `exp(y) (y - x)` for a log-space target.
struct KLDivergenceElement: ElementwiseLoss {
    let logTarget: Bool
    @inline(__always) func value<T: TensorFloat>(_ x: T, _ y: T, _: T) -> T {
        logTarget ? T.exp(y) * (y - x) : xlogy(y, y) - y * x
    }
    @inline(__always) func inputDerivative<T: TensorFloat>(_ x: T, _ y: T, _: T) -> T {
        logTarget ? -T.exp(y) : -y
    }
    /// `exp(y) (y - x + 1)`, or `log y + 1 - x` (PyTorch's `xlogy` gradient gives NaN at `y = 0`).
    @inline(__always) func targetDerivative<T: TensorFloat>(_ x: T, _ y: T, _: T) -> T {
        if logTarget { return T.exp(y) * (y - x + 1) }
        return (y != 0 ? T.log(y) : 0) + y / y - x
    }
    var supportsDoubleBackward: Bool { true }
    func recordedDerivatives(_ x: Tensor, _ y: Tensor) -> (input: Tensor, target: Tensor)? {
        if logTarget { return (-y.exp(), y.exp() * (y - x + 1)) }
        // log y where y != 0 (0 there, whose own derivative is then 0), plus y / y (NaN at 0, as PyTorch).
        let nonzero = withNoGrad { y.ne(0) }
        let safe = Tensor.where(nonzero, y, y.scalarOperand(1))
        return (-y, Tensor.where(nonzero, safe.log(), y.scalarOperand(0)) + y / y - x)
    }
}

/// PyTorch's `xlogy`: `0` where `a == 0` (unless `b` is NaN), else `a log b`.
@inline(__always) private func xlogy<T: TensorFloat>(_ a: T, _ b: T) -> T {
    if b.isNaN { return b }
    return a == 0 ? 0 : a * T.log(b)
}

/// Kullback-Leibler divergence of the target distribution from the input, with the input in log
/// space: `l_i = y_i (log y_i - x_i)` (`0` where `y_i = 0`), or with `logTarget`
/// `l_i = exp(y_i) (y_i - x_i)`, then reduced.
///
/// `.batchMean` gives the true KL divergence per sample: the sum divided by the batch size
/// (`input`'s first dimension; a 0-d input is not divided). `.mean` divides by the number of
/// elements, so it is smaller by a factor of the number of classes; PyTorch keeps it as the
/// default for compatibility and warns about it on every call. Ember keeps the default and the
/// values, and prints no warning (this note is the warning).
///
/// Gradient: `-y` for the input (`-exp(y)` with `logTarget`); for the target `log y + 1 - x`
/// (`exp(y) (y - x + 1)`); times the reduction's factor.
///
/// - Parameters:
///   - input: log-probabilities, float, any shape (usually `[N, C]` from `logSoftmax(axis: 1)`).
///   - target: probabilities (log-probabilities with `logTarget`), same shape; dtypes promote.
///   - reduction: `.mean` (default), `.batchMean`, `.sum` or `.none`.
///   - logTarget: whether `target` is given in log space (more stable for tiny probabilities).
///
/// PyTorch parity: `torch.nn.functional.kl_div(input, target, reduction='mean', log_target=False)`:
/// the same values for each reduction, NaN for a negative target, and "kl_div: Integral inputs
/// not supported." Deliberate difference: a target of another shape stops with an error where
/// PyTorch broadcasts silently.
///
/// See also: ``KLDivLoss``, ``crossEntropy(_:target:weight:ignoreIndex:reduction:labelSmoothing:)``.
public func klDiv(_ input: Tensor, target: Tensor, reduction: Reduction = .mean, logTarget: Bool = false) -> Tensor {
    klDiv(input, target, reduction, logTarget: logTarget, op: "klDiv")
}

package func klDiv(_ input: Tensor, _ target: Tensor, _ reduction: Reduction, logTarget: Bool, op: String) -> Tensor {
    reduction.validate(op, allowsBatchMean: true)
    requireSameShape(input, target, op: op, rule: .pyTorchBroadcastsSilently)
    precondition(input.dtype.isFloatingPoint && target.dtype.isFloatingPoint,
                 "\(op): kl_div: Integral inputs not supported. (input \(input.dtype), target \(target.dtype))")
    let (x, y) = promotedFloatPair(input, target, op: op, notFloat: "")
    return elementwiseLoss(KLDivergenceElement(logTarget: logTarget), name: "klDiv", x, y, reduction: reduction)
}
