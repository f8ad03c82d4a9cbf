import EmberAutograd
import Foundation
import EmberTensor
import EmberStorage

/// Scales the gradients of `parameters` in place so that their total norm is at most `maxNorm`,
/// and returns the total norm before clipping.
///
/// The total norm is the `normType`-norm of all gradients together (as if concatenated into one
/// vector): per-gradient norms first, then the norm of those. Every gradient is multiplied by
/// `min(maxNorm / (totalNorm + 1e-6), 1)`. Parameters without a gradient are ignored; with no
/// gradients at all, nothing is clipped and the norm is 0. A non-finite total norm propagates
/// into the gradients, as in PyTorch: check the returned value (`isFinite`) to skip such a step.
///
/// - Parameters:
///   - parameters: the parameters whose gradients are clipped.
///   - maxNorm: the largest total norm allowed.
///   - normType: the norm's order `p > 0` (`sum |x|^p)^(1/p)`), or `.infinity` (largest magnitude).
/// - Returns: the total norm of the gradients before clipping. Norms are accumulated in double
///   precision.
///
/// PyTorch parity: `torch.nn.utils.clip_grad_norm_(parameters, max_norm, norm_type=2.0)`, with the
/// same clipping coefficient; it returns a `Double` instead of a 0-d tensor, and has no
/// `error_if_nonfinite` (use the returned value).
///
/// See also: ``clipGradValue(_:clipValue:)``.
@discardableResult
public func clipGradNorm(_ parameters: [Parameter], maxNorm: Double, normType: Double = 2) -> Double {
    precondition(normType > 0, "clipGradNorm: normType must be positive or .infinity, got \(normType)")
    let withGrad = parameters.filter { $0.grad != nil }
    if withGrad.isEmpty { return 0 }
    let norms = withGrad.map { norm(of: $0.grad!, order: normType) }
    let total = norm(norms, order: normType)
    let coefficient = maxNorm / (total + 1e-6)
    let clamped = coefficient.isNaN ? coefficient : Swift.min(coefficient, 1)
    for p in withGrad {
        mutateGradient(p) { g in
            if g.dtype == .float32 {
                scale(Float.self, g, by: clamped)
            } else {
                scale(Double.self, g, by: clamped)
            }
        }
    }
    return total
}

/// Clamps every gradient element of `parameters` in place to `[-clipValue, clipValue]` (NaN
/// stays NaN).
///
/// PyTorch parity: `torch.nn.utils.clip_grad_value_(parameters, clip_value)`: clamps to
/// `-clipValue` from below, then to `clipValue` from above.
///
/// See also: ``clipGradNorm(_:maxNorm:normType:)``.
public func clipGradValue(_ parameters: [Parameter], clipValue: Double) {
    for p in parameters where p.grad != nil {
        mutateGradient(p) { g in
            if g.dtype == .float32 {
                clamp(Float.self, g, clipValue)
            } else {
                clamp(Double.self, g, clipValue)
            }
        }
    }
}

/// Runs `body` on `p`'s gradient made unique and contiguous, so it may be written in place.
private func mutateGradient(_ p: Parameter, _ body: (Tensor) -> Void) {
    guard let meta = p.value.autograd, meta.grad != nil else { return }
    precondition(meta.grad!.dtype.isFloatingPoint, "clipGrad: gradients must be floating point, got \(meta.grad!.dtype)")
    meta.grad!.makeUniqueContiguous()
    body(meta.grad!)
}

/// The `order`-norm of `t`, accumulated in double precision.
private func norm(of t: Tensor, order: Double) -> Double {
    switch t.dtype {
    case .float32: return norm(Float.self, t.contiguousRaw, order: order)
    case .float64: return norm(Double.self, t.contiguousRaw, order: order)
    default: preconditionFailure("clipGradNorm: gradients must be floating point, got \(t.dtype)")
    }
}

private func norm<T: TensorFloat>(_: T.Type, _ t: Tensor, order: Double) -> Double {
    let x = t.pointer(as: T.self), n = t.count
    if order == .infinity {
        var m = 0.0
        for i in 0..<n {
            let v = x[i].doubleValue
            if v.isNaN { return .nan }
            m = Swift.max(m, abs(v))
        }
        return m
    }
    if order == 2 {
        // Four partial sums: independent additions the CPU can overlap.
        var s = (0.0, 0.0, 0.0, 0.0)
        var i = 0
        while i + 4 <= n {
            let a = x[i].doubleValue, b = x[i + 1].doubleValue, c = x[i + 2].doubleValue, d = x[i + 3].doubleValue
            s.0 += a * a; s.1 += b * b; s.2 += c * c; s.3 += d * d
            i += 4
        }
        while i < n {
            let a = x[i].doubleValue
            s.0 += a * a
            i += 1
        }
        let sum = (s.0 + s.1) + (s.2 + s.3)
        if sum.isFinite || sum.isNaN { return sum.squareRoot() }
        // Infinite: a true infinity, or overflow of squares of float64 values beyond 1e154
        // (then the sum of squares scaled by the largest magnitude).
        let m = norm(T.self, t, order: .infinity)
        if m.isInfinite { return m }
        var scaled = 0.0
        for j in 0..<n {
            let v = x[j].doubleValue / m
            scaled += v * v
        }
        return m * scaled.squareRoot()
    }
    var sum = 0.0
    for i in 0..<n { sum += Foundation.pow(abs(x[i].doubleValue), order) }
    return order == 1 ? sum : Foundation.pow(sum, 1 / order)
}

/// The `order`-norm of `values` (the per-gradient norms), in double precision.
private func norm(_ values: [Double], order: Double) -> Double {
    norm(Double.self, Tensor(values), order: order)
}

private func scale<T: TensorFloat>(_: T.Type, _ g: Tensor, by coefficient: Double) {
    let x = g.mutablePointer(as: T.self)
    let c: T = scalar(coefficient)
    forEachChunk(g.count) { range in
        for i in range { x[i] = x[i] * c }
    }
}

private func clamp<T: TensorFloat>(_: T.Type, _ g: Tensor, _ clipValue: Double) {
    let x = g.mutablePointer(as: T.self)
    let lo: T = scalar(-clipValue), hi: T = scalar(clipValue)
    forEachChunk(g.count) { range in
        for i in range {
            var v = x[i]
            if v.isNaN { continue }
            if v < lo { v = lo }
            if v > hi { v = hi }
            x[i] = v
        }
    }
}
