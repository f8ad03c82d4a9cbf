import EmberTensor
import EmberStorage

extension Tensor {
    /// A 0-d tensor holding `value` in a dtype suited to combine with `self` (PyTorch's rule for
    /// Python scalars: they do not widen a tensor's float dtype; a fractional value promotes an
    /// integer tensor to float32).
    package func scalarOperand(_ value: Double) -> Tensor {
        let dt: DType
        switch dtype {
        case .float32, .float64: dt = dtype
        case .int64, .bool: dt = value.rounded() == value ? .int64 : .float32
        }
        return Tensor.full([], value, dtype: dt)
    }

    /// Element-wise sum with broadcasting. PyTorch parity: `torch.add` (`a + b`).
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        Kernels.add(a, b).recorded("add", a, b, twice: true) { g in
            [a.tracksGrad ? g.summed(toShape: a.shape) : nil,
             b.tracksGrad ? g.summed(toShape: b.shape) : nil]
        }
    }

    /// Element-wise difference with broadcasting. PyTorch parity: `torch.sub`, including its
    /// refusal of bool operands.
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        precondition(a.dtype != .bool && b.dtype != .bool,
                     "sub: Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.")
        return Kernels.sub(a, b).recorded("sub", a, b, twice: true) { g in
            [a.tracksGrad ? g.summed(toShape: a.shape) : nil,
             b.tracksGrad ? (-g).summed(toShape: b.shape) : nil]
        }
    }

    /// Element-wise product with broadcasting. PyTorch parity: `torch.mul`.
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        Kernels.mul(a, b).recorded("mul", a, b, twice: true) { g in
            [a.tracksGrad ? (g * b).summed(toShape: a.shape) : nil,
             b.tracksGrad ? (g * a).summed(toShape: b.shape) : nil]
        }
    }

    /// Element-wise true division with broadcasting. PyTorch parity: `torch.div` (integer operands
    /// give float32).
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        Kernels.div(a, b).recorded("div", a, b, twice: true) { g in
            let gb = g / b
            return [a.tracksGrad ? gb.summed(toShape: a.shape) : nil,
                    b.tracksGrad ? (-(gb * (a / b))).summed(toShape: b.shape) : nil]
        }
    }

    /// Negation. PyTorch parity: `torch.neg`.
    public static prefix func - (x: Tensor) -> Tensor {
        precondition(x.dtype != .bool, "neg: Negation, the `-` operator, on a bool tensor is not supported. If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.")
        return Kernels.neg(x).recorded("neg", x, twice: true) { g in [-g] }
    }

    public static func + (a: Tensor, b: Double) -> Tensor { a + a.scalarOperand(b) }
    public static func + (a: Double, b: Tensor) -> Tensor { b.scalarOperand(a) + b }
    public static func - (a: Tensor, b: Double) -> Tensor { a - a.scalarOperand(b) }
    public static func - (a: Double, b: Tensor) -> Tensor { b.scalarOperand(a) - b }
    public static func * (a: Tensor, b: Double) -> Tensor { a * a.scalarOperand(b) }
    public static func * (a: Double, b: Tensor) -> Tensor { b.scalarOperand(a) * b }
    public static func / (a: Tensor, b: Double) -> Tensor { a / a.scalarOperand(b) }
    public static func / (a: Double, b: Tensor) -> Tensor { b.scalarOperand(a) / b }

    public static func += (a: inout Tensor, b: Tensor) { a = a + b }
    public static func -= (a: inout Tensor, b: Tensor) { a = a - b }
    public static func *= (a: inout Tensor, b: Tensor) { a = a * b }
    public static func /= (a: inout Tensor, b: Tensor) { a = a / b }
    public static func += (a: inout Tensor, b: Double) { a = a + b }
    public static func -= (a: inout Tensor, b: Double) { a = a - b }
    public static func *= (a: inout Tensor, b: Double) { a = a * b }
    public static func /= (a: inout Tensor, b: Double) { a = a / b }

    /// Converts to `dtype`; differentiable between float dtypes. PyTorch parity: `Tensor.to(dtype)`.
    public func to(_ target: DType) -> Tensor {
        if target == dtype { return self }
        let out = convertedRaw(to: target)
        guard target.isFloatingPoint && dtype.isFloatingPoint else { return out }
        let source = dtype
        return out.recorded("to", self, twice: true) { g in [g.to(source)] }
    }
}
