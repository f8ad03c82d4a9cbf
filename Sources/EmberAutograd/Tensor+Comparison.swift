import EmberTensor

// Element-wise comparisons and logic, giving bool tensors (never differentiable), and `where`.
//
// Swift's `==` keeps its usual meaning; element-wise comparison uses the standard library's
// point-wise operators (`.==`, `.<`, ...), as for SIMD vectors, or the PyTorch-named methods.

extension Tensor {
    /// Element-wise `self == other` as a bool tensor, broadcasting and promoting dtypes.
    /// PyTorch parity: `torch.eq` (`a == b`).
    public func eq(_ other: Tensor) -> Tensor { Kernels.compare(self, other, .eq) }
    /// Element-wise `self != other` (true where either is NaN). PyTorch parity: `torch.ne`.
    public func ne(_ other: Tensor) -> Tensor { Kernels.compare(self, other, .ne) }
    /// Element-wise `self < other`. PyTorch parity: `torch.lt`.
    public func lt(_ other: Tensor) -> Tensor { Kernels.compare(self, other, .lt) }
    /// Element-wise `self <= other`. PyTorch parity: `torch.le`.
    public func le(_ other: Tensor) -> Tensor { Kernels.compare(self, other, .le) }
    /// Element-wise `self > other`. PyTorch parity: `torch.gt`.
    public func gt(_ other: Tensor) -> Tensor { Kernels.compare(self, other, .gt) }
    /// Element-wise `self >= other`. PyTorch parity: `torch.ge`.
    public func ge(_ other: Tensor) -> Tensor { Kernels.compare(self, other, .ge) }

    /// Element-wise `self == value`. PyTorch parity: `torch.eq(x, value)`.
    public func eq(_ value: Double) -> Tensor { eq(scalarOperand(value)) }
    /// Element-wise `self != value`. PyTorch parity: `torch.ne(x, value)`.
    public func ne(_ value: Double) -> Tensor { ne(scalarOperand(value)) }
    /// Element-wise `self < value`. PyTorch parity: `torch.lt(x, value)`.
    public func lt(_ value: Double) -> Tensor { lt(scalarOperand(value)) }
    /// Element-wise `self <= value`. PyTorch parity: `torch.le(x, value)`.
    public func le(_ value: Double) -> Tensor { le(scalarOperand(value)) }
    /// Element-wise `self > value`. PyTorch parity: `torch.gt(x, value)`.
    public func gt(_ value: Double) -> Tensor { gt(scalarOperand(value)) }
    /// Element-wise `self >= value`. PyTorch parity: `torch.ge(x, value)`.
    public func ge(_ value: Double) -> Tensor { ge(scalarOperand(value)) }

    /// `a .== b` is `a.eq(b)`.
    public static func .== (a: Tensor, b: Tensor) -> Tensor { a.eq(b) }
    /// `a .!= b` is `a.ne(b)`.
    public static func .!= (a: Tensor, b: Tensor) -> Tensor { a.ne(b) }
    /// `a .< b` is `a.lt(b)`.
    public static func .< (a: Tensor, b: Tensor) -> Tensor { a.lt(b) }
    /// `a .<= b` is `a.le(b)`.
    public static func .<= (a: Tensor, b: Tensor) -> Tensor { a.le(b) }
    /// `a .> b` is `a.gt(b)`.
    public static func .> (a: Tensor, b: Tensor) -> Tensor { a.gt(b) }
    /// `a .>= b` is `a.ge(b)`.
    public static func .>= (a: Tensor, b: Tensor) -> Tensor { a.ge(b) }

    /// `x .== value` is `x.eq(value)`.
    public static func .== (a: Tensor, b: Double) -> Tensor { a.eq(b) }
    /// `x .!= value` is `x.ne(value)`.
    public static func .!= (a: Tensor, b: Double) -> Tensor { a.ne(b) }
    /// `x .< value` is `x.lt(value)`.
    public static func .< (a: Tensor, b: Double) -> Tensor { a.lt(b) }
    /// `x .<= value` is `x.le(value)`.
    public static func .<= (a: Tensor, b: Double) -> Tensor { a.le(b) }
    /// `x .> value` is `x.gt(value)`.
    public static func .> (a: Tensor, b: Double) -> Tensor { a.gt(b) }
    /// `x .>= value` is `x.ge(value)`.
    public static func .>= (a: Tensor, b: Double) -> Tensor { a.ge(b) }
    /// `value .== x` is `x.eq(value)`.
    public static func .== (a: Double, b: Tensor) -> Tensor { b.eq(a) }
    /// `value .!= x` is `x.ne(value)`.
    public static func .!= (a: Double, b: Tensor) -> Tensor { b.ne(a) }
    /// `value .< x` is `x.gt(value)`.
    public static func .< (a: Double, b: Tensor) -> Tensor { b.gt(a) }
    /// `value .<= x` is `x.ge(value)`.
    public static func .<= (a: Double, b: Tensor) -> Tensor { b.ge(a) }
    /// `value .> x` is `x.lt(value)`.
    public static func .> (a: Double, b: Tensor) -> Tensor { b.lt(a) }
    /// `value .>= x` is `x.le(value)`.
    public static func .>= (a: Double, b: Tensor) -> Tensor { b.le(a) }

    /// Element-wise logical NOT (zero is false, anything else, NaN included, is true), as bool.
    /// PyTorch parity: `torch.logical_not` (`~mask` on a bool tensor).
    public func logicalNot() -> Tensor { Kernels.logicalNot(self) }
    /// Element-wise logical AND of truth values, broadcasting, as bool.
    /// PyTorch parity: `torch.logical_and` (`a & b` on bool tensors).
    public func logicalAnd(_ other: Tensor) -> Tensor { Kernels.logical(self, other, .and) }
    /// Element-wise logical OR of truth values, broadcasting, as bool.
    /// PyTorch parity: `torch.logical_or` (`a | b` on bool tensors).
    public func logicalOr(_ other: Tensor) -> Tensor { Kernels.logical(self, other, .or) }
    /// Element-wise logical XOR of truth values, broadcasting, as bool.
    /// PyTorch parity: `torch.logical_xor` (`a ^ b` on bool tensors).
    public func logicalXor(_ other: Tensor) -> Tensor { Kernels.logical(self, other, .xor) }

    /// `.!mask` is `mask.logicalNot()`.
    public static prefix func .! (x: Tensor) -> Tensor { x.logicalNot() }
    /// `a .& b` is `a.logicalAnd(b)`.
    public static func .& (a: Tensor, b: Tensor) -> Tensor { a.logicalAnd(b) }
    /// `a .| b` is `a.logicalOr(b)`.
    public static func .| (a: Tensor, b: Tensor) -> Tensor { a.logicalOr(b) }
    /// `a .^ b` is `a.logicalXor(b)`.
    public static func .^ (a: Tensor, b: Tensor) -> Tensor { a.logicalXor(b) }

    /// Chooses element-wise: `a` where `condition` is true, else `b`, broadcasting all three.
    ///
    /// Gradient: `g` masked by `condition` to `a`, masked by its negation to `b` (each summed back
    /// over broadcast dimensions); none to `condition`.
    ///
    /// - Parameters:
    ///   - condition: a bool tensor (compare first, e.g. `x .> 0`, to build one).
    ///   - a: values where `condition` holds.
    ///   - b: values elsewhere; `a` and `b` are promoted to a common dtype.
    ///
    /// PyTorch parity: `torch.where(condition, a, b)`, including its error for a non-bool
    /// condition ("where expected condition to be a boolean tensor, ...").
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        let c = condition.detached()
        let aShape = a.shape, bShape = b.shape
        let aTracks = a.tracksGrad, bTracks = b.tracksGrad
        return Kernels.select(condition, a, b).recorded("where", a, b, twice: true) { g in
            if creatingGraph {
                return [aTracks ? g.maskMap("whereBackward") { Kernels.maskedGradient($0, c, keep: true) }.summed(toShape: aShape) : nil,
                        bTracks ? g.maskMap("whereBackward") { Kernels.maskedGradient($0, c, keep: false) }.summed(toShape: bShape) : nil]
            }
            return [aTracks ? Kernels.sumToShape(Kernels.maskedGradient(g, c, keep: true), aShape) : nil,
             bTracks ? Kernels.sumToShape(Kernels.maskedGradient(g, c, keep: false), bShape) : nil]
        }
    }

    /// `where` with a scalar for the false branch (in `a`'s dtype when `a` is float, as PyTorch
    /// treats Python scalars). PyTorch parity: `torch.where(condition, a, value)`.
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Double) -> Tensor {
        Tensor.where(condition, a, a.scalarOperand(b))
    }

    /// `where` with a scalar for the true branch. PyTorch parity: `torch.where(condition, value, b)`.
    public static func `where`(_ condition: Tensor, _ a: Double, _ b: Tensor) -> Tensor {
        Tensor.where(condition, b.scalarOperand(a), b)
    }
}
