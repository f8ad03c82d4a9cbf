import EmberStorage

/// PyTorch's type promotion for two tensor operands: bool < int64 < float32 < float64.
package func promotedDType(_ a: DType, _ b: DType) -> DType {
    func rank(_ d: DType) -> Int {
        switch d { case .bool: 0; case .int64: 1; case .float32: 2; case .float64: 3 }
    }
    return rank(a) >= rank(b) ? a : b
}

/// PyTorch's `result_type` for two tensor operands: a 0-d tensor only decides the result when it
/// is of a higher category (bool < integer < float) than the dimensioned operand, so
/// `float32[3] + float64[]` is float32 but `int64[3] + float64[]` is float64. Two operands of the
/// same kind (both 0-d or both dimensioned) promote normally.
package func promotedDType(_ a: Tensor, _ b: Tensor) -> DType {
    let aZero = a.rank == 0, bZero = b.rank == 0
    if aZero == bZero { return promotedDType(a.dtype, b.dtype) }
    let dim = aZero ? b.dtype : a.dtype, zero = aZero ? a.dtype : b.dtype
    if dim.isFloatingPoint { return dim }
    if dim == .bool || zero.isFloatingPoint { return promotedDType(dim, zero) }
    return dim
}

extension Kernels {
    /// Applies a numeric binary op after promoting both operands to a common dtype.
    @_transparent
    package static func numericBinary(
        _ a: Tensor, _ b: Tensor, op: String,
        f32: (Float, Float) -> Float, f64: (Double, Double) -> Double, i64: ((Int64, Int64) -> Int64)?
    ) -> Tensor {
        // Fast path: same dtype needs no conversion (and no tensor copies).
        if a.dtype == b.dtype {
            switch a.dtype {
            case .float32: return zip(a, b, Float.self, Float.self, Float.self, op: op, f32)
            case .float64: return zip(a, b, Double.self, Double.self, Double.self, op: op, f64)
            default: break
            }
        }
        var dt = promotedDType(a, b)
        if dt == .bool { dt = .int64 }
        let a2 = a.dtype == dt ? a : a.convertedRaw(to: dt)
        let b2 = b.dtype == dt ? b : b.convertedRaw(to: dt)
        switch dt {
        case .float32: return zip(a2, b2, Float.self, Float.self, Float.self, op: op, f32)
        case .float64: return zip(a2, b2, Double.self, Double.self, Double.self, op: op, f64)
        case .int64:
            guard let i64 else { preconditionFailure("\(op): not supported for integer tensors; convert to a float dtype first") }
            return zip(a2, b2, Int64.self, Int64.self, Int64.self, op: op, i64)
        case .bool: fatalError("unreachable")
        }
    }

    /// `a + b`; two bool tensors give their logical or, as in PyTorch.
    package static func add(_ a: Tensor, _ b: Tensor) -> Tensor {
        if a.dtype == .bool && b.dtype == .bool { return zip(a, b, Bool.self, Bool.self, Bool.self, op: "add") { $0 || $1 } }
        return numericBinary(a, b, op: "add", f32: { $0 + $1 }, f64: { $0 + $1 }, i64: { $0 &+ $1 })
    }
    package static func sub(_ a: Tensor, _ b: Tensor) -> Tensor {
        numericBinary(a, b, op: "sub", f32: { $0 - $1 }, f64: { $0 - $1 }, i64: { $0 &- $1 })
    }
    /// `a * b`; two bool tensors give their logical and, as in PyTorch.
    package static func mul(_ a: Tensor, _ b: Tensor) -> Tensor {
        if a.dtype == .bool && b.dtype == .bool { return zip(a, b, Bool.self, Bool.self, Bool.self, op: "mul") { $0 && $1 } }
        return numericBinary(a, b, op: "mul", f32: { $0 * $1 }, f64: { $0 * $1 }, i64: { $0 &* $1 })
    }
    /// True division: integer operands give float32, as PyTorch's `/` does.
    package static func div(_ a: Tensor, _ b: Tensor) -> Tensor {
        let dt = promotedDType(a, b)
        if dt == .int64 || dt == .bool {
            return div(a.convertedRaw(to: .float32), b.convertedRaw(to: .float32))
        }
        return numericBinary(a, b, op: "div", f32: { $0 / $1 }, f64: { $0 / $1 }, i64: nil)
    }

    /// `x * scalar` in x's dtype.
    package static func scale(_ x: Tensor, _ s: Double) -> Tensor {
        switch x.dtype {
        case .float32: let f = Float(s); return map(x, Float.self, Float.self) { $0 * f }
        case .float64: return map(x, Double.self, Double.self) { $0 * s }
        case .int64: let f = Int64(fromDouble: s); return map(x, Int64.self, Int64.self) { $0 &* f }
        case .bool: return scale(x.convertedRaw(to: .int64), s)
        }
    }

    /// Sums `g` over broadcast dimensions so it has `shape` (the backward of broadcasting).
    package static func sumToShape(_ g: Tensor, _ shape: Shape) -> Tensor {
        if g.shape == shape { return g }
        let lead = g.rank - shape.count
        precondition(lead >= 0, "sumToShape: cannot reduce \(g.shape) to \(shape)")
        var axes: [Int] = Array(0..<lead)
        for i in 0..<shape.count where shape[i] == 1 && g.shape[lead + i] != 1 { axes.append(lead + i) }
        let s = sum(g, axes: axes, keepDim: true)
        return s.reshapedRaw(shape)
    }
}
