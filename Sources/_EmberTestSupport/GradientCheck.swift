import Ember

/// Compares the gradients autograd computes for `f` with float64 central finite differences.
///
/// Every input is converted to float64 and made a leaf that requires grad. The output is reduced
/// to a scalar as `sum(f(x) * w)` with fixed pseudo-random weights `w`, so every output element's
/// gradient path is exercised (a plain `sum` would hide errors that cancel). For each input
/// element, `(L(x + eps) - L(x - eps)) / 2 eps` is compared with the analytic gradient under
/// `|a - n| <= atol + rtol * |n|`.
///
/// - Parameters:
///   - inputs: the points to check at (any float dtype; int64 inputs are passed through unchanged
///     and not differentiated).
///   - f: the function under test.
/// - Returns: `nil` when all gradients agree, else a report naming the input and the worst element.
public func checkGradients(
    _ inputs: [Tensor], eps: Double = 1e-6, atol: Double = 1e-5, rtol: Double = 1e-3,
    _ f: ([Tensor]) -> Tensor
) -> Mismatch? {
    let xs = inputs.map { $0.dtype.isFloatingPoint ? $0.detached().to(.float64).contiguous() : $0 }
    // Fixed weights from a simple LCG so the check is reproducible without a global RNG.
    func weights(_ shape: Shape) -> Tensor {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let n = shape.elementCount
        var w = [Double](repeating: 0, count: n)
        for i in 0..<n {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            w[i] = 0.5 + Double(state >> 11) / Double(1 << 53)  // in [0.5, 1.5)
        }
        return Tensor(w, shape: shape)
    }
    let probe = withNoGrad { f(xs) }
    let w = weights(probe.shape)
    func loss(_ args: [Tensor]) -> Double {
        withNoGrad { (f(args).to(.float64) * w).sum().doubleValue }
    }

    let leaves = xs.map { $0.dtype.isFloatingPoint ? $0.requiringGrad() : $0 }
    let out = (f(leaves).to(.float64) * w).sum()
    guard out.requiresGrad else { return Mismatch(message: "output does not require grad: no input reaches it through recorded ops") }
    out.backward()

    for (k, x) in xs.enumerated() where x.dtype.isFloatingPoint {
        let analytic = leaves[k].grad ?? Tensor.zeros(x.shape, dtype: .float64)
        var values = x.scalars(as: Double.self)
        var numeric = [Double](repeating: 0, count: values.count)
        for i in 0..<values.count {
            let orig = values[i]
            var args = xs
            values[i] = orig + eps
            args[k] = Tensor(values, shape: x.shape)
            let plus = loss(args)
            values[i] = orig - eps
            args[k] = Tensor(values, shape: x.shape)
            let minus = loss(args)
            values[i] = orig
            numeric[i] = (plus - minus) / (2 * eps)
        }
        if let m = compare(analytic, Tensor(numeric, shape: x.shape), atol: atol, rtol: rtol) {
            return Mismatch(message: "gradient of input \(k) (shape \(x.shape)): \(m.message)")
        }
    }
    return nil
}
