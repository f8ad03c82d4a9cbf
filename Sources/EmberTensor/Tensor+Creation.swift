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
    /// PyTorch parity: `torch.full`, including its refusal of values the dtype cannot hold
    /// (a finite value beyond float32's range, or a non-finite or out-of-range int64).
    public static func full(_ shape: Shape, _ value: Double, dtype: DType = .float32) -> Tensor {
        switch dtype {
        case .float32:
            precondition(!value.isFinite || Swift.abs(value) <= Double(Float.greatestFiniteMagnitude),
                         "full: value cannot be converted to type float without overflow (value \(value))")
        case .int64:
            precondition(value.isFinite && value >= -0x1p63 && value < 0x1p63,
                         "full: value cannot be converted to type int64_t without overflow (value \(value))")
        case .float64, .bool: break
        }
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
    /// PyTorch parity: `torch.arange`; the count is `ceil((end - start) / step)` in double, and the
    /// default dtype is int64 when all arguments are whole numbers and `dtype` is not given, as
    /// PyTorch infers (Swift cannot tell `2.0` from `2`, so pass `dtype: .float32` for a float
    /// range of whole numbers). Values are bit-identical to PyTorch's CPU kernel, which fills
    /// 256-bit vector blocks (8 float32 or 4 float64 lanes, two blocks at a time) from a base
    /// `fma(step, i, start)` (rounded to the dtype for float32) plus `fma(k, step, base)` for lane
    /// `k`, and the remaining tail elements as `fma(step, i, start)`, all in double. (PyTorch's own
    /// values change in the last bit on AVX-512 machines, and above 32768 elements with its
    /// thread count.) For int64, `start` and `step` are truncated to integers first, as in PyTorch.
    public static func arange(_ start: Double = 0, _ end: Double, step: Double = 1, dtype: DType? = nil) -> Tensor {
        precondition(start.isFinite && end.isFinite, "arange: unsupported range: \(start) -> \(end)")
        precondition(step != 0, "arange: step must be nonzero")
        precondition((step > 0 && end >= start) || (step < 0 && end <= start),
                     "arange: upper bound and lower bound inconsistent with step sign")
        let n = Swift.max(0, Int(((end - start) / step).rounded(.up)))
        let whole = start.rounded() == start && end.rounded() == end && step.rounded() == step
        let dt = dtype ?? (whole ? .int64 : .float32)
        var t = Tensor(uninitializedShape: [n], dtype: dt)
        switch dt {
        case .float32, .float64:
            let lanes = dt == .float32 ? 8 : 4
            let vectorEnd = n / (2 * lanes) * (2 * lanes)
            t.fillRaw { i in
                guard i < vectorEnd else { return start.addingProduct(step, Double(i)) }
                var base = start.addingProduct(step, Double(i - i % lanes))
                if dt == .float32 { base = Double(Float(base)) }
                return base.addingProduct(Double(i % lanes), step)
            }
        case .int64, .bool:
            let s = Int64(fromDouble: start), st = Int64(fromDouble: step)
            t.fillRaw { i in Double(s &+ st &* Int64(i)) }
        }
        return t
    }

    /// `steps` evenly spaced values from `start` to `end` inclusive.
    ///
    /// `step = (end - start) / (steps - 1)`; element `i` is `start + step * i` in the first half
    /// and `end - step * (steps - 1 - i)` in the second, each with one rounding (fused multiply-add)
    /// in the dtype's own arithmetic; `steps == 1` gives `[start]`.
    ///
    /// PyTorch parity: `torch.linspace`, bit for bit (its CPU kernel computes exactly this). For
    /// int64, `start` and `end` are truncated first, the step is computed in double and each value
    /// truncated, as PyTorch does; bool is refused, as in PyTorch.
    public static func linspace(_ start: Double, _ end: Double, steps: Int, dtype: DType = .float32) -> Tensor {
        precondition(steps >= 0, "linspace: number of steps must be non-negative")
        precondition(dtype != .bool, "linspace: \"linspace_cpu\" not implemented for 'Bool'")
        var t = Tensor(uninitializedShape: [steps], dtype: dtype)
        let half = steps / 2
        switch dtype {
        case .float32:
            let s = Float(start), e = Float(end)
            let step = steps > 1 ? (e - s) / Float(steps - 1) : 0
            let p = t.mutablePointer(as: Float.self)
            for i in 0..<steps { p[i] = i < half ? s.addingProduct(step, Float(i)) : e.addingProduct(-step, Float(steps - 1 - i)) }
        case .float64, .int64, .bool:
            let s = dtype == .int64 ? Double(Int64(fromDouble: start)) : start
            let e = dtype == .int64 ? Double(Int64(fromDouble: end)) : end
            let step = steps > 1 ? (e - s) / Double(steps - 1) : 0
            t.fillRaw { i in i < half ? s.addingProduct(step, Double(i)) : e.addingProduct(-step, Double(steps - 1 - i)) }
        }
        if steps == 1 { t.fillRaw(start) }
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
