import EmberStorage

extension Tensor {
    /// A tensor holding `scalars` in row-major order with the given shape.
    ///
    /// PyTorch parity: `torch.tensor(data).reshape(shape)`.
    public init<T: TensorScalar>(_ scalars: [T], shape: Shape) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor.init: negative dimension in shape \(shape)")
        precondition(scalars.count == shape.elementCount,
                     "Tensor.init: \(scalars.count) values cannot fill shape \(shape) (\(shape.elementCount) elements)")
        self.init(uninitializedShape: shape, dtype: T.dtype)
        let p = mutablePointer(as: T.self)
        scalars.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { p.update(from: base, count: src.count) }
        }
    }

    /// A 1-D tensor holding `scalars`.
    public init<T: TensorScalar>(_ scalars: [T]) { self.init(scalars, shape: [scalars.count]) }

    /// A 1-D int64 tensor from `Int`s (labels, indices).
    public init(_ scalars: [Int], shape: Shape? = nil) {
        self.init(scalars.map { Int64($0) }, shape: shape ?? [scalars.count])
    }

    /// A 0-dimensional tensor holding one value.
    public init<T: TensorScalar>(_ scalar: T) { self.init([scalar], shape: []) }

    /// A 2-D tensor from rows of equal length.
    public init<T: TensorScalar>(rows: [[T]]) {
        let cols = rows.first?.count ?? 0
        precondition(rows.allSatisfy { $0.count == cols },
                     "Tensor.init(rows:): rows have different lengths \(rows.map(\.count))")
        self.init(rows.flatMap { $0 }, shape: [rows.count, cols])
    }

    /// A tensor of `shape` with every element `value`.
    ///
    /// PyTorch parity: `torch.full`.
    public static func full(_ shape: Shape, _ value: Double, dtype: DType = .float32) -> Tensor {
        var t = Tensor(uninitializedShape: shape, dtype: dtype)
        t.fillRaw(value)
        return t
    }

    /// Zeros. PyTorch parity: `torch.zeros`.
    public static func zeros(_ shape: Shape, dtype: DType = .float32) -> Tensor {
        Tensor(zeroedShape: shape, dtype: dtype)
    }

    /// Ones. PyTorch parity: `torch.ones`.
    public static func ones(_ shape: Shape, dtype: DType = .float32) -> Tensor { full(shape, 1, dtype: dtype) }

    /// Zeros with this tensor's shape and (by default) dtype. PyTorch parity: `torch.zeros_like`.
    public func zerosLike(dtype: DType? = nil) -> Tensor { .zeros(shape, dtype: dtype ?? self.dtype) }
    /// Ones like this tensor. PyTorch parity: `torch.ones_like`.
    public func onesLike(dtype: DType? = nil) -> Tensor { .ones(shape, dtype: dtype ?? self.dtype) }
    /// A constant like this tensor. PyTorch parity: `torch.full_like`.
    public func fullLike(_ value: Double, dtype: DType? = nil) -> Tensor { .full(shape, value, dtype: dtype ?? self.dtype) }

    /// `start, start + step, ...` up to but excluding `end`.
    ///
    /// PyTorch parity: `torch.arange`; the count is `ceil((end - start) / step)`. The default dtype
    /// is int64 when all arguments are whole numbers and `dtype` is not given, as PyTorch infers.
    public static func arange(_ start: Double = 0, _ end: Double, step: Double = 1, dtype: DType? = nil) -> Tensor {
        precondition(step != 0, "arange: step must be nonzero")
        precondition((end - start) / step >= 0 || start == end,
                     "arange: upper bound and larger bound inconsistent with step sign")
        let n = Swift.max(0, Int(((end - start) / step).rounded(.up)))
        let whole = start.rounded() == start && end.rounded() == end && step.rounded() == step
        let dt = dtype ?? (whole ? .int64 : .float32)
        var t = Tensor(uninitializedShape: [n], dtype: dt)
        t.fillRaw { i in start + Double(i) * step }
        return t
    }

    /// `steps` evenly spaced values from `start` to `end` inclusive.
    ///
    /// PyTorch parity: `torch.linspace` (computes from both ends symmetrically, as PyTorch does).
    public static func linspace(_ start: Double, _ end: Double, steps: Int, dtype: DType = .float32) -> Tensor {
        precondition(steps >= 0, "linspace: number of steps must be non-negative")
        var t = Tensor(uninitializedShape: [steps], dtype: dtype)
        let step = steps > 1 ? (end - start) / Double(steps - 1) : 0
        let half = steps / 2
        t.fillRaw { i in i < half ? start + step * Double(i) : end - step * Double(steps - 1 - i) }
        return t
    }

    /// The `n x m` identity matrix (`m` defaults to `n`). PyTorch parity: `torch.eye`.
    public static func eye(_ n: Int, _ m: Int? = nil, dtype: DType = .float32) -> Tensor {
        let cols = m ?? n
        var t = Tensor.zeros([n, cols], dtype: dtype)
        let diag = Swift.min(n, cols)
        t.fillRaw { i in (i % cols == i / cols && i / cols < diag) ? 1 : 0 }
        return t
    }

    /// Writes `value` into every element of this fresh contiguous tensor.
    package mutating func fillRaw(_ value: Double) {
        makeUniqueContiguous()
        let n = count
        switch dtype {
        case .float32: mutablePointer(as: Float.self).update(repeating: Float(value), count: n)
        case .float64: mutablePointer(as: Double.self).update(repeating: value, count: n)
        case .int64: mutablePointer(as: Int64.self).update(repeating: Int64(fromDouble: value), count: n)
        case .bool: mutablePointer(as: Bool.self).update(repeating: value != 0, count: n)
        }
    }

    /// Writes `f(i)` into element `i` (row-major) of this contiguous tensor.
    package mutating func fillRaw(_ f: (Int) -> Double) {
        makeUniqueContiguous()
        let n = count
        switch dtype {
        case .float32: let p = mutablePointer(as: Float.self); for i in 0..<n { p[i] = Float(f(i)) }
        case .float64: let p = mutablePointer(as: Double.self); for i in 0..<n { p[i] = f(i) }
        case .int64: let p = mutablePointer(as: Int64.self); for i in 0..<n { p[i] = Int64(fromDouble: f(i)) }
        case .bool: let p = mutablePointer(as: Bool.self); for i in 0..<n { p[i] = f(i) != 0 }
        }
    }
}
