import EmberStorage

/// An element-wise comparison.
package enum ComparisonOp: String, Sendable {
    case eq, ne, lt, le, gt, ge
}

/// An element-wise logical connective.
package enum LogicalOp: String, Sendable {
    case and, or, xor
}

extension Kernels {
    /// Compares `a` and `b` element-wise (broadcasting, after PyTorch's type promotion) into a
    /// bool tensor. Comparisons with NaN are false except `ne`, as IEEE 754 says.
    package static func compare(_ a: Tensor, _ b: Tensor, _ op: ComparisonOp) -> Tensor {
        let dt = promotedDType(a.dtype, b.dtype)
        let a2 = a.dtype == dt ? a : a.convertedRaw(to: dt)
        let b2 = b.dtype == dt ? b : b.convertedRaw(to: dt)
        switch dt {
        case .float32: return compareTyped(a2, b2, op, Float.self)
        case .float64: return compareTyped(a2, b2, op, Double.self)
        case .int64: return compareTyped(a2, b2, op, Int64.self)
        case .bool:
            // false < true, as PyTorch orders bools.
            let name = op.rawValue
            switch op {
            case .eq: return zip(a2, b2, Bool.self, Bool.self, Bool.self, op: name) { $0 == $1 }
            case .ne: return zip(a2, b2, Bool.self, Bool.self, Bool.self, op: name) { $0 != $1 }
            case .lt: return zip(a2, b2, Bool.self, Bool.self, Bool.self, op: name) { !$0 && $1 }
            case .le: return zip(a2, b2, Bool.self, Bool.self, Bool.self, op: name) { !$0 || $1 }
            case .gt: return zip(a2, b2, Bool.self, Bool.self, Bool.self, op: name) { $0 && !$1 }
            case .ge: return zip(a2, b2, Bool.self, Bool.self, Bool.self, op: name) { $0 || !$1 }
            }
        }
    }

    @inline(__always)
    private static func compareTyped<T: TensorNumeric>(_ a: Tensor, _ b: Tensor, _ op: ComparisonOp, _: T.Type) -> Tensor {
        let name = op.rawValue
        switch op {
        case .eq: return zip(a, b, T.self, T.self, Bool.self, op: name) { $0 == $1 }
        case .ne: return zip(a, b, T.self, T.self, Bool.self, op: name) { $0 != $1 }
        case .lt: return zip(a, b, T.self, T.self, Bool.self, op: name) { $0 < $1 }
        case .le: return zip(a, b, T.self, T.self, Bool.self, op: name) { $0 <= $1 }
        case .gt: return zip(a, b, T.self, T.self, Bool.self, op: name) { $0 > $1 }
        case .ge: return zip(a, b, T.self, T.self, Bool.self, op: name) { $0 >= $1 }
        }
    }

    /// The truth value of every element (non-zero is true; NaN is true), as PyTorch's logical ops.
    package static func truthValues(_ x: Tensor) -> Tensor {
        x.dtype == .bool ? x : x.convertedRaw(to: .bool)
    }

    /// Logical NOT of the truth values of `x`, as a bool tensor.
    package static func logicalNot(_ x: Tensor) -> Tensor {
        switch x.dtype {
        case .bool: return map(x, Bool.self, Bool.self) { !$0 }
        case .float32: return map(x, Float.self, Bool.self) { $0 == 0 }
        case .float64: return map(x, Double.self, Bool.self) { $0 == 0 }
        case .int64: return map(x, Int64.self, Bool.self) { $0 == 0 }
        }
    }

    /// A logical connective of the truth values of `a` and `b` (broadcasting), as a bool tensor.
    package static func logical(_ a: Tensor, _ b: Tensor, _ op: LogicalOp) -> Tensor {
        let a2 = truthValues(a), b2 = truthValues(b)
        let name = "logical_\(op.rawValue)"
        switch op {
        case .and: return zip(a2, b2, Bool.self, Bool.self, Bool.self, op: name) { $0 && $1 }
        case .or: return zip(a2, b2, Bool.self, Bool.self, Bool.self, op: name) { $0 || $1 }
        case .xor: return zip(a2, b2, Bool.self, Bool.self, Bool.self, op: name) { $0 != $1 }
        }
    }

    /// `condition ? a : b` element-wise with broadcasting over all three; `a` and `b` are promoted
    /// to a common dtype. `condition` must be bool, as PyTorch requires.
    package static func select(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(condition.dtype == .bool,
                     "where: where expected condition to be a boolean tensor, but got a tensor with dtype \(pyTorchTypeName(condition.dtype)) (shape \(condition.shape)); compare with .!= 0 to make a mask")
        let dt = promotedDType(a.dtype, b.dtype)
        let a2 = a.dtype == dt ? a : a.convertedRaw(to: dt)
        let b2 = b.dtype == dt ? b : b.convertedRaw(to: dt)
        switch dt {
        case .float32: return ternary(condition, a2, b2, Bool.self, Float.self, Float.self, Float.self, op: "where") { $0 ? $1 : $2 }
        case .float64: return ternary(condition, a2, b2, Bool.self, Double.self, Double.self, Double.self, op: "where") { $0 ? $1 : $2 }
        case .int64: return ternary(condition, a2, b2, Bool.self, Int64.self, Int64.self, Int64.self, op: "where") { $0 ? $1 : $2 }
        case .bool: return ternary(condition, a2, b2, Bool.self, Bool.self, Bool.self, Bool.self, op: "where") { $0 ? $1 : $2 }
        }
    }

    /// `g` where `condition` is `keep`, else 0, at the broadcast shape of both (the gradient of
    /// `where` for one branch).
    package static func maskedGradient(_ g: Tensor, _ condition: Tensor, keep: Bool) -> Tensor {
        switch g.dtype {
        case .float32: return zip(condition, g, Bool.self, Float.self, Float.self, op: "where_backward") { $0 == keep ? $1 : 0 }
        case .float64: return zip(condition, g, Bool.self, Double.self, Double.self, op: "where_backward") { $0 == keep ? $1 : 0 }
        default: preconditionFailure("where_backward: gradient must be a float tensor, got \(g.dtype)")
        }
    }
}
