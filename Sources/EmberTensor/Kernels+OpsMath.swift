import EmberStorage
import RealModule

// Raw (graph-free) kernels for the element-wise math of issue #13 (trigonometric, hyperbolic,
// erf, rounding, remainders, NaN tests), the scans (cumsum, cumprod and cumprod's backward) and
// the structural copies (triu/tril, flip) and views (diagonal). Element formulas follow PyTorch's
// CPU kernels, so values at ties, signed zeros, NaN and infinities match.

// MARK: - Element formulas

/// Python's (and PyTorch's) floor division for floats: `div_floor_floating` in ATen, exact where
/// `floor(a / b)` would round the quotient first.
@inline(__always) package func floorDivideValue<T: TensorFloat>(_ a: T, _ b: T) -> T {
    if b == 0 { return a / b }
    let mod = a.truncatingRemainder(dividingBy: b)
    var div = (a - mod) / b
    if mod != 0 && (b < 0) != (mod < 0) { div -= 1 }
    if div != 0 {
        var floordiv = div.rounded(.down)
        if div - floordiv > T(0.5) { floordiv += 1 }
        return floordiv
    }
    return T(signOf: a / b, magnitudeOf: 0)
}

/// Python's remainder (the sign of the divisor): ATen's CPU `remainder` for floats.
@inline(__always) package func remainderValue<T: TensorFloat>(_ a: T, _ b: T) -> T {
    var mod = a.truncatingRemainder(dividingBy: b)
    if mod != 0 && (b < 0) != (mod < 0) { mod += b }
    return mod
}

/// PyTorch's `sign`: `(0 < x) - (x < 0)`, so NaN and both zeros give (+)0.
@inline(__always) package func signValue<T: TensorFloat>(_ x: T) -> T {
    (x > 0 ? 1 : 0) - (x < 0 ? 1 : 0)
}

/// PyTorch's `round(decimals:)`: `nearbyint(x * 10^d) / 10^d` (or `nearbyint(x / 10^-d) * 10^-d`
/// for negative `d`), in the tensor's dtype.
@inline(__always) package func roundDecimalsValue<T: TensorFloat>(_ x: T, _ decimals: Int) -> T {
    let neg = decimals < 0
    let scale = T(cPow(Double(10), Double(Swift.abs(decimals))))
    return neg ? (x / scale).rounded(.toNearestOrEven) * scale : (x * scale).rounded(.toNearestOrEven) / scale
}

// MARK: - Element-wise forward kernels

extension Kernels {
    package static func sin(_ x: Tensor) -> Tensor { floatMap(x, f32: { Float.sin($0) }, f64: { Double.sin($0) }) }
    package static func cos(_ x: Tensor) -> Tensor { floatMap(x, f32: { Float.cos($0) }, f64: { Double.cos($0) }) }
    package static func tan(_ x: Tensor) -> Tensor { floatMap(x, f32: { Float.tan($0) }, f64: { Double.tan($0) }) }
    package static func asin(_ x: Tensor) -> Tensor { floatMap(x, f32: { Float.asin($0) }, f64: { Double.asin($0) }) }
    package static func acos(_ x: Tensor) -> Tensor { floatMap(x, f32: { Float.acos($0) }, f64: { Double.acos($0) }) }
    package static func atan(_ x: Tensor) -> Tensor { floatMap(x, f32: { Float.atan($0) }, f64: { Double.atan($0) }) }
    package static func sinh(_ x: Tensor) -> Tensor { floatMap(x, f32: { Float.sinh($0) }, f64: { Double.sinh($0) }) }
    package static func cosh(_ x: Tensor) -> Tensor { floatMap(x, f32: { Float.cosh($0) }, f64: { Double.cosh($0) }) }
    package static func erf(_ x: Tensor) -> Tensor { floatMap(x, f32: { Float.erf($0) }, f64: { Double.erf($0) }) }

    /// The float dtype two operands of a float-only binary op compute in (integers give float32).
    package static func floatResultType(_ a: Tensor, _ b: Tensor) -> DType {
        let dt = promotedDType(a, b)
        return dt.isFloatingPoint ? dt : .float32
    }

    /// `atan2(a, b)` (the angle of the point `(b, a)`), broadcasting; integers give float32.
    package static func atan2(_ a: Tensor, _ b: Tensor) -> Tensor {
        let dt = floatResultType(a, b)
        return floatBinary(a.dtype == dt ? a : a.convertedRaw(to: dt), b.dtype == dt ? b : b.convertedRaw(to: dt),
                           op: "atan2", f32: { Float.atan2(y: $0, x: $1) }, f64: { Double.atan2(y: $0, x: $1) })
    }

    /// Rounds with `rule`; int64 and bool tensors are copied unchanged (as PyTorch).
    package static func rounded(_ x: Tensor, _ rule: FloatingPointRoundingRule) -> Tensor {
        switch x.dtype {
        case .float32: return map(x, Float.self, Float.self) { $0.rounded(rule) }
        case .float64: return map(x, Double.self, Double.self) { $0.rounded(rule) }
        case .int64, .bool: return x.contiguousCopy()
        }
    }

    /// `round(x, decimals)` for float tensors; int64 and bool are copied unchanged.
    package static func rounded(_ x: Tensor, decimals: Int) -> Tensor {
        switch x.dtype {
        case .float32: return map(x, Float.self, Float.self) { roundDecimalsValue($0, decimals) }
        case .float64: return map(x, Double.self, Double.self) { roundDecimalsValue($0, decimals) }
        case .int64, .bool: return x.contiguousCopy()
        }
    }

    /// `sign(x)`: -1, 0 or 1 in `x`'s dtype (bool stays bool, unchanged).
    package static func sign(_ x: Tensor) -> Tensor {
        switch x.dtype {
        case .float32: return map(x, Float.self, Float.self) { signValue($0) }
        case .float64: return map(x, Double.self, Double.self) { signValue($0) }
        case .int64: return map(x, Int64.self, Int64.self) { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }
        case .bool: return x.contiguousCopy()
        }
    }

    /// Python-convention remainder (result has the divisor's sign), with promotion; int64 division
    /// by zero stops with PyTorch's "ZeroDivisionError".
    package static func remainder(_ a: Tensor, _ b: Tensor) -> Tensor {
        numericBinary(a, b, op: "remainder", f32: { remainderValue($0, $1) }, f64: { remainderValue($0, $1) }, i64: { x, y in
            precondition(y != 0, "remainder: ZeroDivisionError (integer remainder by zero; shapes \(a.shape) and \(b.shape))")
            let r = x.remainderReportingOverflow(dividingBy: y).partialValue
            return r != 0 && (r < 0) != (y < 0) ? r &+ y : r
        })
    }

    /// C-convention remainder (`fmod`: the dividend's sign), with promotion.
    package static func fmod(_ a: Tensor, _ b: Tensor) -> Tensor {
        numericBinary(a, b, op: "fmod", f32: { $0.truncatingRemainder(dividingBy: $1) },
                      f64: { $0.truncatingRemainder(dividingBy: $1) }, i64: { x, y in
            precondition(y != 0, "fmod: ZeroDivisionError (integer remainder by zero; shapes \(a.shape) and \(b.shape))")
            return x.remainderReportingOverflow(dividingBy: y).partialValue
        })
    }

    /// `-floor_divide(a, b)` (floats of the common dtype): the divisor gradient factor of remainder.
    package static func negatedFloorDivide(_ a: Tensor, _ b: Tensor) -> Tensor {
        floatBinary(a, b, op: "remainder", f32: { -floorDivideValue($0, $1) }, f64: { -floorDivideValue($0, $1) })
    }

    /// `-trunc(a / b)` (floats of the common dtype): the divisor gradient factor of fmod.
    package static func negatedTruncDivide(_ a: Tensor, _ b: Tensor) -> Tensor {
        floatBinary(a, b, op: "fmod", f32: { -($0 / $1).rounded(.towardZero) }, f64: { -($0 / $1).rounded(.towardZero) })
    }

    /// Element-wise test giving bool; int64/bool inputs give `integerAnswer` everywhere.
    package static func floatTest(_ x: Tensor, integerAnswer: Bool, f32: (Float) -> Bool, f64: (Double) -> Bool) -> Tensor {
        switch x.dtype {
        case .float32: return map(x, Float.self, Bool.self, f32)
        case .float64: return map(x, Double.self, Bool.self, f64)
        case .int64, .bool: return Tensor.full(x.shape, integerAnswer ? 1 : 0, dtype: .bool)
        }
    }

    /// `nan_to_num`: NaN, `+inf` and `-inf` replaced; int64/bool copied unchanged.
    package static func nanToNum(_ x: Tensor, nan: Double, posinf: Double?, neginf: Double?) -> Tensor {
        switch x.dtype {
        case .float32:
            let n = Float(nan), p = posinf.map { Float($0) } ?? Float.greatestFiniteMagnitude
            let m = neginf.map { Float($0) } ?? -Float.greatestFiniteMagnitude
            return map(x, Float.self, Float.self) { $0.isNaN ? n : ($0 == .infinity ? p : ($0 == -.infinity ? m : $0)) }
        case .float64:
            let p = posinf ?? Double.greatestFiniteMagnitude, m = neginf ?? -Double.greatestFiniteMagnitude
            return map(x, Double.self, Double.self) { $0.isNaN ? nan : ($0 == .infinity ? p : ($0 == -.infinity ? m : $0)) }
        case .int64, .bool: return x.contiguousCopy()
        }
    }
}

// MARK: - Scans

extension Kernels {
    /// Calls `body(source, destination, count, stride)` for every line along the normalised
    /// `axis` of the contiguous `x` and of a new tensor of the same shape and dtype.
    @inline(__always)
    package static func alongLines<T: TensorScalar>(
        _ x: Tensor, axis: Int, _: T.Type,
        _ body: (UnsafePointer<T>, UnsafeMutablePointer<T>, Int, Int) -> Void
    ) -> Tensor {
        let src = x.contiguousRaw
        let out = Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        if x.count == 0 { return out }
        let n = x.rank == 0 ? 1 : x.shape[axis]
        let inner = x.rank == 0 ? 1 : x.shape[(axis + 1)...].reduce(1, *)
        let outer = x.count / (n * inner)
        let ps = src.pointer(as: T.self), po = out.mutablePointer(as: T.self)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * n * inner + i
                body(ps + base, po + base, n, inner)
            }
        }
        return out
    }

    /// The dtype a scan computes in: floats keep theirs, int64 and bool give int64.
    package static func scanDType(_ x: Tensor) -> Tensor { x.dtype == .bool ? x.convertedRaw(to: .int64) : x }

    /// Inclusive running sum along the normalised `axis` (floats keep their dtype, integers give
    /// int64). Sums sequentially, as PyTorch's CPU kernel (in double for float32 values, as its
    /// `acc_type`).
    package static func cumsum(_ x: Tensor, axis: Int) -> Tensor {
        let s = scanDType(x)
        switch s.dtype {
        case .float32:
            return alongLines(s, axis: axis, Float.self) { p, q, n, st in
                var acc = 0.0
                for j in 0..<n { acc += Double(p[j * st]); q[j * st] = Float(acc) }
            }
        case .float64:
            return alongLines(s, axis: axis, Double.self) { p, q, n, st in
                var acc = 0.0
                for j in 0..<n { acc += p[j * st]; q[j * st] = acc }
            }
        default:
            return alongLines(s, axis: axis, Int64.self) { p, q, n, st in
                var acc: Int64 = 0
                for j in 0..<n { acc = acc &+ p[j * st]; q[j * st] = acc }
            }
        }
    }

    /// Running sum from the end of each line (the adjoint of ``cumsum(_:axis:)``).
    package static func reverseCumsum(_ x: Tensor, axis: Int) -> Tensor {
        switch x.dtype {
        case .float32:
            return alongLines(x, axis: axis, Float.self) { p, q, n, st in
                var acc = 0.0
                for j in stride(from: n - 1, through: 0, by: -1) { acc += Double(p[j * st]); q[j * st] = Float(acc) }
            }
        default:
            return alongLines(x.dtype == .float64 ? x : x.convertedRaw(to: .float64), axis: axis, Double.self) { p, q, n, st in
                var acc = 0.0
                for j in stride(from: n - 1, through: 0, by: -1) { acc += p[j * st]; q[j * st] = acc }
            }
        }
    }

    /// Inclusive running product along the normalised `axis` (floats keep their dtype, integers
    /// give int64).
    package static func cumprod(_ x: Tensor, axis: Int) -> Tensor {
        let s = scanDType(x)
        switch s.dtype {
        case .float32:
            return alongLines(s, axis: axis, Float.self) { p, q, n, st in
                var acc = 1.0
                for j in 0..<n { acc *= Double(p[j * st]); q[j * st] = Float(acc) }
            }
        case .float64:
            return alongLines(s, axis: axis, Double.self) { p, q, n, st in
                var acc = 1.0
                for j in 0..<n { acc *= p[j * st]; q[j * st] = acc }
            }
        default:
            return alongLines(s, axis: axis, Int64.self) { p, q, n, st in
                var acc: Int64 = 1
                for j in 0..<n { acc = acc &* p[j * st]; q[j * st] = acc }
            }
        }
    }

    /// The gradient of ``cumprod(_:axis:)``, exact when a line holds zeros: before the first zero
    /// `sum_{j>=k} g_j y_j / x_k` over the positions before that zero, at the first zero the
    /// product of the other factors times the running products after it, after it 0.
    /// `g` and `x` are float tensors of one dtype and shape.
    package static func cumprodBackward(_ g: Tensor, _ x: Tensor, axis: Int) -> Tensor {
        precondition(g.shape == x.shape && g.dtype == x.dtype, "cumprodBackward: internal shape mismatch")
        func lines<T: TensorFloat>(_: T.Type) -> Tensor {
            let xs = x.contiguousRaw
            let px = xs.pointer(as: T.self)
            let gs = g.contiguousRaw
            let pg = gs.pointer(as: T.self)
            return alongLines(gs, axis: axis, T.self) { p, q, n, st in
                let xl = px + (p - pg)  // the same line of x
                var z = n
                for j in 0..<n where xl[j * st] == 0 { z = j; break }
                // y_j = prod_{i <= j} x_i for j < z; sum_{k <= j < z} g_j y_j by a reverse scan.
                var y = [T](repeating: 1, count: z)
                var running: T = 1
                for j in 0..<z { running *= xl[j * st]; y[j] = running }
                var acc: T = 0
                for k in stride(from: z - 1, through: 0, by: -1) {
                    acc += p[k * st] * y[k]
                    q[k * st] = acc / xl[k * st]
                }
                if z < n {
                    let before: T = z > 0 ? y[z - 1] : 1
                    var run: T = 1, sum: T = 0
                    for j in z..<n {
                        if j > z { run *= xl[j * st] }
                        sum += p[j * st] * run
                    }
                    q[z * st] = before * sum
                    for j in (z + 1)..<n { q[j * st] = 0 }
                }
            }
        }
        return g.dtype == .float32 ? lines(Float.self) : lines(Double.self)
    }
}

// MARK: - Structure

extension Kernels {
    /// A copy of `x` (rank >= 2) with the elements outside a triangle of the last two dimensions
    /// set to zero: `lower` keeps `col - row <= diagonal`, otherwise `col - row >= diagonal`.
    package static func triangle(_ x: Tensor, diagonal: Int, lower: Bool) -> Tensor {
        func run<T: TensorScalar>(_: T.Type) -> Tensor {
            let out = x.contiguousCopy()
            if out.count == 0 { return out }
            let rows = x.shape[x.rank - 2], cols = x.shape[x.rank - 1]
            let p = out.mutablePointer(as: T.self)
            let zero = T(fromDouble: 0)
            for b in 0..<(out.count / (rows * cols)) {
                let m = p + b * rows * cols
                for i in 0..<rows {
                    for j in 0..<cols {
                        let keep = lower ? j - i <= diagonal : j - i >= diagonal
                        if !keep { m[i * cols + j] = zero }
                    }
                }
            }
            return out
        }
        switch x.dtype {
        case .float32: return run(Float.self)
        case .float64: return run(Double.self)
        case .int64: return run(Int64.self)
        case .bool: return run(Bool.self)
        }
    }

    /// A copy of `x` reversed along each of the normalised `axes`.
    package static func flip(_ x: Tensor, axes: [Int]) -> Tensor {
        var out = x
        for a in axes where x.shape[a] > 1 {
            let n = x.shape[a]
            out = indexSelect(out, axis: a, index: Tensor((0..<n).reversed().map { Int64($0) }, shape: [n]))
        }
        return out.isContiguous && out.storage !== x.storage ? out : out.contiguousCopy()
    }
}

extension Tensor {
    /// The view of the diagonal `offset` of the plane spanned by the normalised axes `axis1` and
    /// `axis2` (which are removed; the diagonal becomes the last dimension).
    ///
    /// PyTorch parity: `torch.diagonal`'s geometry (`at::diagonal`), including its size 0 for an
    /// offset beyond the plane and "diagonal dimensions cannot be identical".
    package func diagonalRaw(offset: Int, axis1: Int, axis2: Int) -> Tensor {
        precondition(axis1 != axis2, "diagonal: diagonal dimensions cannot be identical \(axis1), \(axis2) (shape \(shape))")
        var size: Int
        var start = self.offset
        if offset >= 0 {
            size = Swift.max(Swift.min(shape[axis1], shape[axis2] - offset), 0)
        } else {
            size = Swift.max(Swift.min(shape[axis1] + offset, shape[axis2]), 0)
        }
        if size > 0 {
            start += offset >= 0 ? offset * strides[axis2] : -offset * strides[axis1]
        } else {
            size = 0
        }
        var s = Shape(), st = Shape()
        for i in 0..<rank where i != axis1 && i != axis2 { s.append(shape[i]); st.append(strides[i]) }
        s.append(size)
        st.append(strides[axis1] + strides[axis2])
        return Tensor(storage: storage, shape: s, strides: st, offset: start, dtype: dtype)
    }
}
