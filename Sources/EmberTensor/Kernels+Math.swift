import EmberStorage
import RealModule

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Raw (graph-free) element-wise math: forward kernels and the fused kernels their backward
// passes use. Every public function here makes exactly one allocation (its result) when its
// inputs already have the dtype it computes in. The element formulas are PyTorch's CPU ones, so
// values at kinks, for large magnitudes and for NaN/inf match.

/// PyTorch's spelling of a dtype in its "not implemented for" errors: `'Long'`, `'Bool'`.
package func pyTorchTypeName(_ dtype: DType) -> String {
    switch dtype {
    case .float32: "Float"
    case .float64: "Double"
    case .int64: "Long"
    case .bool: "Bool"
    }
}

// MARK: - Element formulas (generic over Float and Double)

/// Numerically stable logistic function: never evaluates `exp` of a large positive number.
@inline(__always) package func sigmoidValue<T: TensorFloat>(_ x: T) -> T {
    if x >= 0 { return 1 / (1 + T.exp(-x)) }
    let e = T.exp(x)
    return e / (1 + e)
}

/// `sqrt(2 / pi)`, PyTorch's `kBeta` for the tanh approximation of GELU.
@inline(__always) private func geluBeta<T: TensorFloat>() -> T { T(0.797_884_560_802_865_4) }
/// `1 / sqrt(2 * pi)`, the standard normal density's constant.
@inline(__always) private func invSqrt2Pi<T: TensorFloat>() -> T { T(0.398_942_280_401_432_7) }
/// `1 / sqrt(2)`.
@inline(__always) private func invSqrt2<T: TensorFloat>() -> T { T(0.707_106_781_186_547_5) }
private let geluKappa = 0.044715

@inline(__always) package func geluValue<T: TensorFloat>(_ x: T, tanhApproximation: Bool) -> T {
    if tanhApproximation {
        let inner = geluBeta() * (x + T(geluKappa) * x * x * x)
        return T(0.5) * x * (1 + T.tanh(inner))
    }
    return x * T(0.5) * (1 + T.erf(x * invSqrt2()))
}

@inline(__always) package func geluDerivative<T: TensorFloat>(_ x: T, tanhApproximation: Bool) -> T {
    if tanhApproximation {
        let xSq = x * x
        let inner = geluBeta() * (x + T(geluKappa) * xSq * x)
        let t = T.tanh(inner)
        let left = T(0.5) * x
        let right = 1 + t
        let leftDerivative = T(0.5) * right
        let rightDerivative = left * (1 - t * t) * geluBeta() * (1 + 3 * T(geluKappa) * xSq)
        return leftDerivative + rightDerivative
    }
    let cdf = T(0.5) * (1 + T.erf(x * invSqrt2()))
    let pdf = T.exp(T(-0.5) * x * x) * invSqrt2Pi()
    return cdf + x * pdf
}

/// `geluDerivative` for 8 float32 lanes, with the vector `erf`, `exp` and `tanh`.
@inline(__always) package func geluDerivativeVector(_ x: Float8, tanhApproximation: Bool) -> Float8 {
    let beta = Float(0.797_884_560_802_865_4), kappa = Float(geluKappa)
    if tanhApproximation {
        let xSq = x * x
        let t = tanhVector((x + kappa * xSq * x) * beta)
        let left = 0.5 * x
        let right = 1 + t
        return 0.5 * right + left * (1 - t * t) * beta * (1 + 3 * kappa * xSq)
    }
    let cdf = 0.5 * (1 + erfVector(x * Float(0.707_106_781_186_547_5)))
    let pdf = expVector(-0.5 * x * x) * Float(0.398_942_280_401_432_7)
    return cdf + x * pdf
}

@inline(__always) package func softplusValue<T: TensorFloat>(_ x: T, beta: T, threshold: T) -> T {
    x * beta > threshold ? x : T.log(onePlus: T.exp(x * beta)) / beta
}

/// C's `pow` (IEEE semantics: a negative base with an integral exponent is fine). swift-numerics'
/// `Real.pow` returns NaN for every negative base, which is not what PyTorch computes.
@inline(__always) package func cPow<T: TensorFloat>(_ x: T, _ y: T) -> T {
    if T.self == Float.self { return T(powf(Float(x), Float(y))) }
    return T(pow(Double(x), Double(y)))
}

/// Integer power by squaring with wrapping overflow; negative exponents as PyTorch's `powi`.
@inline(__always) package func intPow(_ base: Int64, _ exponent: Int64) -> Int64 {
    if exponent < 0 {
        if base == 1 { return 1 }
        if base == -1 { return exponent & 1 != 0 ? -1 : 1 }
        return 0
    }
    var result: Int64 = 1, b = base, e = exponent
    while e > 0 {
        if e & 1 != 0 { result = result &* b }
        b = b &* b
        e >>= 1
    }
    return result
}

// MARK: - Generic fused helpers

extension Kernels {
    /// `f(a, b)` element-wise for two float tensors of the same dtype (with broadcasting).
    @inline(__always)
    package static func floatBinary(
        _ a: Tensor, _ b: Tensor, op: String, f32: (Float, Float) -> Float, f64: (Double, Double) -> Double
    ) -> Tensor {
        precondition(a.dtype == b.dtype && a.dtype.isFloatingPoint,
                     "\(op): internal dtype mismatch \(a.dtype) vs \(b.dtype)")
        if a.dtype == .float32 { return zip(a, b, Float.self, Float.self, Float.self, op: op, f32) }
        return zip(a, b, Double.self, Double.self, Double.self, op: op, f64)
    }

    /// `f(a, b, c)` element-wise for three float tensors of the same dtype (with broadcasting).
    @inline(__always)
    package static func floatTernary(
        _ a: Tensor, _ b: Tensor, _ c: Tensor, op: String,
        f32: (Float, Float, Float) -> Float, f64: (Double, Double, Double) -> Double
    ) -> Tensor {
        precondition(a.dtype == b.dtype && b.dtype == c.dtype && a.dtype.isFloatingPoint,
                     "\(op): internal dtype mismatch \(a.dtype), \(b.dtype), \(c.dtype)")
        if a.dtype == .float32 { return ternary(a, b, c, Float.self, Float.self, Float.self, Float.self, op: op, f32) }
        return ternary(a, b, c, Double.self, Double.self, Double.self, Double.self, op: op, f64)
    }

    /// `zip3` with a fast path for three contiguous operands of one shape (the common case in
    /// backward passes), which the compiler can vectorise.
    @inline(__always)
    package static func ternary<A: TensorScalar, B: TensorScalar, C: TensorScalar, R: TensorScalar>(
        _ a: Tensor, _ b: Tensor, _ c: Tensor, _: A.Type, _: B.Type, _: C.Type, _: R.Type, op: String,
        _ f: (A, B, C) -> R
    ) -> Tensor {
        if a.shape == b.shape && b.shape == c.shape && a.isContiguous && b.isContiguous && c.isContiguous {
            let out = Tensor(uninitializedShape: a.shape, dtype: R.dtype)
            let po = out.mutablePointer(as: R.self)
            let pa = a.pointer(as: A.self), pb = b.pointer(as: B.self), pc = c.pointer(as: C.self)
            for i in 0..<out.count { po[i] = f(pa[i], pb[i], pc[i]) }
            return out
        }
        return zip3(a, b, c, A.self, B.self, C.self, R.self, op: op, f)
    }

    /// `f` element-wise on a float tensor, int64/bool promoted to float32 first. Not recursive, so
    /// it inlines and the closures vectorise. (Not split
    /// across threads: a closure captured by a parallel body is called indirectly per element,
    /// which costs more than these cheap, bandwidth-bound functions gain.)
    @inline(__always)
    package static func floatMap(_ x: Tensor, f32: (Float) -> Float, f64: (Double) -> Double) -> Tensor {
        let src = x.dtype.isFloatingPoint ? x : x.convertedRaw(to: .float32)
        if src.dtype == .float32 { return map(src, Float.self, Float.self, f32) }
        return map(src, Double.self, Double.self, f64)
    }

    /// Stops with PyTorch's "not implemented for" error unless `x` is a float tensor.
    @inline(__always)
    package static func requireFloat(_ x: Tensor, op: String, kernel: String) {
        precondition(x.dtype.isFloatingPoint,
                     "\(op): \"\(kernel)\" not implemented for '\(pyTorchTypeName(x.dtype))' (shape \(x.shape)); convert to a float dtype first")
    }
}

// MARK: - Forward kernels

extension Kernels {
    /// `-x`; int64 stays int64, bool is refused with PyTorch's message.
    package static func neg(_ x: Tensor) -> Tensor {
        switch x.dtype {
        case .float32: return map(x, Float.self, Float.self) { -$0 }
        case .float64: return map(x, Double.self, Double.self) { -$0 }
        case .int64: return map(x, Int64.self, Int64.self) { 0 &- $0 }
        case .bool:
            preconditionFailure("neg: Negation, the `-` operator, on a bool tensor is not supported. If you are trying to invert a mask, use the `~` or `logical_not()` operator instead. (shape \(x.shape); in Ember: logicalNot() or .!)")
        }
    }

    /// `|x|`; int64 stays int64, bool is refused as in PyTorch.
    package static func abs(_ x: Tensor) -> Tensor {
        switch x.dtype {
        case .float32: return map(x, Float.self, Float.self) { Swift.abs($0) }
        case .float64: return map(x, Double.self, Double.self) { Swift.abs($0) }
        case .int64: return map(x, Int64.self, Int64.self) { $0 < 0 ? 0 &- $0 : $0 }
        case .bool: preconditionFailure("abs: \"abs_cpu\" not implemented for 'Bool' (shape \(x.shape))")
        }
    }

    package static func exp(_ x: Tensor) -> Tensor {
        if x.dtype != .float64 { return mapFloat8(x.dtype == .float32 ? x : x.convertedRaw(to: .float32), ExpFunction()) }
        return map(x, Double.self, Double.self) { Double.exp($0) }
    }
    /// float32: ``logVector(_:)`` (Cephes' polynomial, at most 0.72 ulp measured; libm's scalar
    /// `logf` took 3x PyTorch's time), on the AVX2 row where available; float64: libm.
    package static func log(_ x: Tensor) -> Tensor {
        if x.dtype != .float64 { return mapFloat8(x.dtype == .float32 ? x : x.convertedRaw(to: .float32), LogFunction()) }
        return map(x, Double.self, Double.self) { Double.log($0) }
    }
    package static func log1p(_ x: Tensor) -> Tensor {
        floatMap(x, f32: { Float.log(onePlus: $0) }, f64: { Double.log(onePlus: $0) })
    }
    /// float32 on the AVX2 rows when available (the scalar loop did not vectorise: 3x PyTorch's
    /// time); IEEE square root and division are correctly rounded, so the values are the same.
    package static func sqrt(_ x: Tensor) -> Tensor {
        if x.dtype == .float32 && x.isContiguous && ActivationKernels.isAvailable {
            return mapRows(x) { ActivationKernels.run(.sqrt, $0, into: $1, count: $2) }
        }
        return floatMap(x, f32: { $0.squareRoot() }, f64: { $0.squareRoot() })
    }
    package static func rsqrt(_ x: Tensor) -> Tensor {
        if x.dtype == .float32 && x.isContiguous && ActivationKernels.isAvailable {
            return mapRows(x) { ActivationKernels.run(.rsqrt, $0, into: $1, count: $2) }
        }
        return floatMap(x, f32: { 1 / $0.squareRoot() }, f64: { 1 / $0.squareRoot() })
    }

    /// A contiguous float32 tensor through a row kernel `f(src, dst, count)`, in chunks over threads.
    @inline(__always)
    private static func mapRows(_ x: Tensor, _ f: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        let out = Tensor(uninitializedShape: x.shape, dtype: .float32)
        let src = x.pointer(as: Float.self), dst = out.mutablePointer(as: Float.self)
        forEachChunk(count: x.count) { start, count in f(src + start, dst + start, count) }
        return out
    }
    package static func tanh(_ x: Tensor) -> Tensor {
        if x.dtype != .float64 { return mapFloat8(x.dtype == .float32 ? x : x.convertedRaw(to: .float32), TanhFunction()) }
        return map(x, Double.self, Double.self) { Double.tanh($0) }
    }
    /// float32: `1 / (1 + e^-x)` (0 once `e^-x` overflows, as PyTorch); float64: the stable form.
    package static func sigmoid(_ x: Tensor) -> Tensor {
        if x.dtype != .float64 { return mapFloat8(x.dtype == .float32 ? x : x.convertedRaw(to: .float32), SigmoidFunction()) }
        return map(x, Double.self, Double.self) { sigmoidValue($0) }
    }

    /// `max(x, 0)`; int64 stays int64, bool is refused as in PyTorch. NaN stays NaN.
    package static func relu(_ x: Tensor) -> Tensor {
        switch x.dtype {
        case .float32: return mapFloat8(x, ReluFunction())
        case .float64: return map(x, Double.self, Double.self) { $0 > 0 || $0.isNaN ? $0 : 0 }
        case .int64: return map(x, Int64.self, Int64.self) { $0 > 0 ? $0 : 0 }
        case .bool: preconditionFailure("relu: Boolean inputs not supported for relu (shape \(x.shape))")
        }
    }

    package static func leakyRelu(_ x: Tensor, negativeSlope: Double) -> Tensor {
        requireFloat(x, op: "leakyRelu", kernel: "leaky_relu_cpu")
        let s32 = Float(negativeSlope)
        return floatMap(x, f32: { $0 > 0 ? $0 : $0 * s32 }, f64: { $0 > 0 ? $0 : $0 * negativeSlope })
    }

    package static func gelu(_ x: Tensor, tanhApproximation: Bool) -> Tensor {
        requireFloat(x, op: "gelu", kernel: "GeluKernelImpl")
        if x.dtype == .float32 {
            return tanhApproximation ? mapFloat8(x, GELUTanhFunction()) : mapFloat8(x, GELUFunction())
        }
        if tanhApproximation {
            return floatMap(x, f32: { geluValue($0, tanhApproximation: true) },
                              f64: { geluValue($0, tanhApproximation: true) })
        }
        return floatMap(x, f32: { geluValue($0, tanhApproximation: false) },
                          f64: { geluValue($0, tanhApproximation: false) })
    }

    /// `x / (1 + exp(-x))`, PyTorch's formula (so `silu(-1000) == -0`).
    package static func silu(_ x: Tensor) -> Tensor {
        requireFloat(x, op: "silu", kernel: "silu_cpu")
        if x.dtype == .float32 { return mapFloat8(x, SiLUFunction()) }
        return floatMap(x, f32: { $0 / (1 + Float.exp(-$0)) }, f64: { $0 / (1 + Double.exp(-$0)) })
    }

    package static func softplus(_ x: Tensor, beta: Double, threshold: Double) -> Tensor {
        requireFloat(x, op: "softplus", kernel: "softplus_cpu")
        let b32 = Float(beta), t32 = Float(threshold)
        return floatMap(x, f32: { softplusValue($0, beta: b32, threshold: t32) },
                        f64: { softplusValue($0, beta: beta, threshold: threshold) })
    }

    package static func elu(_ x: Tensor, alpha: Double) -> Tensor {
        requireFloat(x, op: "elu", kernel: "elu_cpu")
        let a32 = Float(alpha)
        return floatMap(x, f32: { $0 > 0 ? $0 : Float.expMinusOne($0) * a32 },
                          f64: { $0 > 0 ? $0 : Double.expMinusOne($0) * alpha })
    }

    /// The dtype PyTorch gives `op(x, scalar)`: float tensors keep theirs; int64/bool give int64
    /// for integral scalars and float32 otherwise.
    package static func scalarResultDType(_ dtype: DType, _ scalars: [Double]) -> DType {
        if dtype.isFloatingPoint { return dtype }
        return scalars.allSatisfy { $0.rounded() == $0 } ? .int64 : .float32
    }

    /// Clamps into `[min, max]` (either optional; `min > max` gives `max` everywhere). NaN stays NaN.
    package static func clamp(_ x: Tensor, min lo: Double?, max hi: Double?) -> Tensor {
        precondition(lo != nil || hi != nil, "clamp: torch.clamp: At least one of 'min' or 'max' must not be None")
        let dt = scalarResultDType(x.dtype, [lo, hi].compactMap { $0 })
        let src = x.dtype == dt ? x : x.convertedRaw(to: dt)
        switch dt {
        case .float32:
            let l = lo.map { Float($0) } ?? -.infinity, h = hi.map { Float($0) } ?? .infinity
            // With numeric bounds the min/max selects alone return a NaN x unchanged (every
            // comparison with it is false), so the loop needs no NaN test and vectorises (3x).
            if !l.isNaN && !h.isNaN { return map(src, Float.self, Float.self) { Swift.min(Swift.max($0, l), h) } }
            return map(src, Float.self, Float.self) { clampValue($0, l, h) }
        case .float64:
            let l = lo ?? -.infinity, h = hi ?? .infinity
            if !l.isNaN && !h.isNaN { return map(src, Double.self, Double.self) { Swift.min(Swift.max($0, l), h) } }
            return map(src, Double.self, Double.self) { clampValue($0, l, h) }
        default:
            let l = lo.map { Int64(fromDouble: $0) } ?? .min, h = hi.map { Int64(fromDouble: $0) } ?? .max
            return map(src, Int64.self, Int64.self) { Swift.min(Swift.max($0, l), h) }
        }
    }

    /// `x^e` for a scalar `e`. int64/bool with an integral `e >= 0` stay integer (int64); a
    /// fractional `e` promotes to float32.
    package static func pow(_ x: Tensor, _ e: Double) -> Tensor {
        let dt = scalarResultDType(x.dtype, [e])
        if dt == .int64 {
            precondition(e >= 0, "pow: Integers to negative integer powers are not allowed. (tensor \(x.dtype) \(x.shape), exponent \(e))")
            let src = x.dtype == .int64 ? x : x.convertedRaw(to: .int64)
            let n = Int64(e)
            return map(src, Int64.self, Int64.self) { intPow($0, n) }
        }
        // The exponent is tested once, outside the loop, and each case is its own small function
        // so its element closure inlines into the loop and vectorises.
        switch e {
        case 0: return PowCase.zero(x)
        case 1: return PowCase.one(x)
        case 2: return PowCase.square(x)
        case 3: return PowCase.cube(x)
        case 0.5: return sqrt(x)
        case -0.5: return rsqrt(x)
        case -1: return PowCase.reciprocal(x)
        case -2: return PowCase.reciprocalSquare(x)
        default: return PowCase.general(x, e)
        }
    }

    /// `a^b` element-wise with broadcasting and PyTorch's type promotion (bool^bool gives int64).
    package static func pow(_ a: Tensor, _ b: Tensor) -> Tensor {
        numericBinary(a, b, op: "pow", f32: { cPow($0, $1) }, f64: { cPow($0, $1) }, i64: { intPow($0, $1) })
    }

    /// Element-wise maximum with broadcasting and promotion; NaN propagates. bool stays bool.
    package static func maximum(_ a: Tensor, _ b: Tensor) -> Tensor {
        if a.dtype == .bool && b.dtype == .bool {
            return zip(a, b, Bool.self, Bool.self, Bool.self, op: "maximum") { $0 || $1 }
        }
        return numericBinary(a, b, op: "maximum", f32: { maximumValue($0, $1) }, f64: { maximumValue($0, $1) },
                             i64: { Swift.max($0, $1) })
    }

    /// Element-wise minimum with broadcasting and promotion; NaN propagates. bool stays bool.
    package static func minimum(_ a: Tensor, _ b: Tensor) -> Tensor {
        if a.dtype == .bool && b.dtype == .bool {
            return zip(a, b, Bool.self, Bool.self, Bool.self, op: "minimum") { $0 && $1 }
        }
        return numericBinary(a, b, op: "minimum", f32: { minimumValue($0, $1) }, f64: { minimumValue($0, $1) },
                             i64: { Swift.min($0, $1) })
    }
}

/// `x^e` for the exponents PyTorch computes exactly (not through `pow`).
private enum PowCase {
    @inline(never) static func zero(_ x: Tensor) -> Tensor { Kernels.floatMap(x, f32: { _ in 1 }, f64: { _ in 1 }) }
    @inline(never) static func one(_ x: Tensor) -> Tensor { Kernels.floatMap(x, f32: { $0 }, f64: { $0 }) }
    @inline(never) static func square(_ x: Tensor) -> Tensor { Kernels.floatMap(x, f32: { $0 * $0 }, f64: { $0 * $0 }) }
    @inline(never) static func cube(_ x: Tensor) -> Tensor {
        Kernels.floatMap(x, f32: { $0 * $0 * $0 }, f64: { $0 * $0 * $0 })
    }
    @inline(never) static func reciprocal(_ x: Tensor) -> Tensor { Kernels.floatMap(x, f32: { 1 / $0 }, f64: { 1 / $0 }) }
    @inline(never) static func reciprocalSquare(_ x: Tensor) -> Tensor {
        Kernels.floatMap(x, f32: { 1 / ($0 * $0) }, f64: { 1 / ($0 * $0) })
    }
    @inline(never) static func general(_ x: Tensor, _ e: Double) -> Tensor {
        let e32 = Float(e)
        return Kernels.floatMap(x, f32: { cPow($0, e32) }, f64: { cPow($0, e) })
    }
}

@inline(__always) private func clampValue<T: TensorFloat>(_ x: T, _ lo: T, _ hi: T) -> T {
    if x.isNaN || lo.isNaN || hi.isNaN { return x + lo + hi }  // NaN, as PyTorch
    return Swift.min(Swift.max(x, lo), hi)
}

@inline(__always) private func maximumValue<T: TensorFloat>(_ a: T, _ b: T) -> T {
    if a.isNaN || b.isNaN { return a + b }
    return a > b ? a : b
}

@inline(__always) private func minimumValue<T: TensorFloat>(_ a: T, _ b: T) -> T {
    if a.isNaN || b.isNaN { return a + b }
    return a < b ? a : b
}

// MARK: - Backward kernels (g is the upstream gradient; x the input; y the forward result)

extension Kernels {
    /// `g * sgn(x)` (0 at 0, as PyTorch).
    package static func absBackward(_ g: Tensor, _ x: Tensor) -> Tensor {
        floatBinary(g, x, op: "abs_backward", f32: { g, x in x > 0 ? g : (x < 0 ? -g : 0 * g) },
                    f64: { g, x in x > 0 ? g : (x < 0 ? -g : 0 * g) })
    }
    /// `g / (1 + x)`.
    package static func log1pBackward(_ g: Tensor, _ x: Tensor) -> Tensor {
        floatBinary(g, x, op: "log1p_backward", f32: { $0 / (1 + $1) }, f64: { $0 / (1 + $1) })
    }
    /// `g / (2 y)` with `y = sqrt(x)`.
    package static func sqrtBackward(_ g: Tensor, _ y: Tensor) -> Tensor {
        floatBinary(g, y, op: "sqrt_backward", f32: { $0 / (2 * $1) }, f64: { $0 / (2 * $1) })
    }
    /// `-0.5 g y^3` with `y = rsqrt(x)`.
    package static func rsqrtBackward(_ g: Tensor, _ y: Tensor) -> Tensor {
        floatBinary(g, y, op: "rsqrt_backward", f32: { -0.5 * $0 * $1 * $1 * $1 }, f64: { -0.5 * $0 * $1 * $1 * $1 })
    }
    /// `g (1 - y^2)` with `y = tanh(x)`.
    package static func tanhBackward(_ g: Tensor, _ y: Tensor) -> Tensor {
        floatBinary(g, y, op: "tanh_backward", f32: { $0 * (1 - $1 * $1) }, f64: { $0 * (1 - $1 * $1) })
    }
    /// `g (1 - y) y` with `y = sigmoid(x)`.
    package static func sigmoidBackward(_ g: Tensor, _ y: Tensor) -> Tensor {
        floatBinary(g, y, op: "sigmoid_backward", f32: { $0 * (1 - $1) * $1 }, f64: { $0 * (1 - $1) * $1 })
    }
    /// `y > 0 ? g : 0` with `y = relu(x)` (PyTorch's `threshold_backward`: 0 at 0).
    package static func reluBackward(_ g: Tensor, _ y: Tensor) -> Tensor {
        if g.dtype == .float32 && y.dtype == .float32 && g.shape == y.shape && g.isContiguous && y.isContiguous {
            // In C at the CPU's vector width (the Swift vector closure compiles to SSE).
            let out = Tensor(uninitializedShape: g.shape, dtype: .float32)
            let pg = g.pointer(as: Float.self), py = y.pointer(as: Float.self), po = out.mutablePointer(as: Float.self)
            forEachChunk(count: g.count) { start, count in
                ActivationKernels.reluBackward(pg + start, py + start, into: po + start, count: count)
            }
            return out
        }
        if g.dtype == .float32 {
            return zipFloat8(g, y, op: "relu_backward", vector: { $0.replacing(with: 0, where: $1 .<= 0) }, scalar: { $1 <= 0 ? 0 : $0 })
        }
        return floatBinary(g, y, op: "relu_backward", f32: { $1 <= 0 ? 0 : $0 }, f64: { $1 <= 0 ? 0 : $0 })
    }
    /// `x > 0 ? g : g * slope`.
    package static func leakyReluBackward(_ g: Tensor, _ x: Tensor, negativeSlope: Double) -> Tensor {
        let s32 = Float(negativeSlope)
        return floatBinary(g, x, op: "leaky_relu_backward", f32: { $1 > 0 ? $0 : $0 * s32 },
                           f64: { $1 > 0 ? $0 : $0 * negativeSlope })
    }
    package static func geluBackward(_ g: Tensor, _ x: Tensor, tanhApproximation: Bool) -> Tensor {
        if g.dtype == .float32 {
            if tanhApproximation {
                return zipFloat8(g, x, op: "gelu_backward", vector: { $0 * geluDerivativeVector($1, tanhApproximation: true) },
                                 scalar: { $0 * geluDerivativeVector(Float8(repeating: $1), tanhApproximation: true)[0] })
            }
            return zipFloat8(g, x, op: "gelu_backward", vector: { $0 * geluDerivativeVector($1, tanhApproximation: false) },
                             scalar: { $0 * geluDerivativeVector(Float8(repeating: $1), tanhApproximation: false)[0] })
        }
        if tanhApproximation {
            return floatBinary(g, x, op: "gelu_backward", f32: { $0 * geluDerivative($1, tanhApproximation: true) },
                               f64: { $0 * geluDerivative($1, tanhApproximation: true) })
        }
        return floatBinary(g, x, op: "gelu_backward", f32: { $0 * geluDerivative($1, tanhApproximation: false) },
                           f64: { $0 * geluDerivative($1, tanhApproximation: false) })
    }
    /// `g s (1 + x (1 - s))` with `s = sigmoid(x)`.
    package static func siluBackward(_ g: Tensor, _ x: Tensor) -> Tensor {
        if g.dtype == .float32 {
            return zipFloat8(g, x, op: "silu_backward",
                             vector: { g, x in let s = 1 / (1 + expVector(-x)); return g * s * (1 + x * (1 - s)) },
                             scalar: { g, x in let s = 1 / (1 + expLane(-x)); return g * s * (1 + x * (1 - s)) })
        }
        return floatBinary(g, x, op: "silu_backward",
                    f32: { g, x in let s = 1 / (1 + Float.exp(-x)); return g * s * (1 + x * (1 - s)) },
                    f64: { g, x in let s = 1 / (1 + Double.exp(-x)); return g * s * (1 + x * (1 - s)) })
    }
    /// `x beta > threshold ? g : g z / (z + 1)` with `z = exp(x beta)`.
    package static func softplusBackward(_ g: Tensor, _ x: Tensor, beta: Double, threshold: Double) -> Tensor {
        let b32 = Float(beta), t32 = Float(threshold)
        if g.dtype == .float32 {
            let b = Float8(repeating: b32), t = Float8(repeating: t32)
            return zipFloat8(g, x, op: "softplus_backward",
                             vector: { g, x in
                                 let z = expVector(x * b)
                                 var r = g * z / (z + 1)
                                 r.replace(with: g, where: x * b .> t)
                                 return r
                             },
                             scalar: { g, x in let z = expLane(x * b32); return x * b32 > t32 ? g : g * z / (z + 1) })
        }
        return floatBinary(g, x, op: "softplus_backward",
                           f32: { g, x in let z = Float.exp(x * b32); return x * b32 > t32 ? g : g * z / (z + 1) },
                           f64: { g, x in let z = Double.exp(x * beta); return x * beta > threshold ? g : g * z / (z + 1) })
    }
    /// `x <= 0 ? g alpha exp(x) : g`.
    package static func eluBackward(_ g: Tensor, _ x: Tensor, alpha: Double) -> Tensor {
        let a32 = Float(alpha)
        return floatBinary(g, x, op: "elu_backward", f32: { g, x in x <= 0 ? g * a32 * Float.exp(x) : g },
                           f64: { g, x in x <= 0 ? g * alpha * Double.exp(x) : g })
    }
    /// `g` where `min < x < max` (strictly: PyTorch 2.15 gives 0 at a scalar bound; an absent
    /// bound always holds), else 0; 0 at NaN.
    package static func clampBackward(_ g: Tensor, _ x: Tensor, min lo: Double?, max hi: Double?) -> Tensor {
        let l = lo ?? -.infinity, h = hi ?? .infinity
        let l32 = Float(l), h32 = Float(h)
        let hasLo = lo != nil, hasHi = hi != nil
        return floatBinary(g, x, op: "clamp_backward",
                           f32: { g, x in (!hasLo || x > l32) && (!hasHi || x < h32) && !x.isNaN ? g : 0 },
                           f64: { g, x in (!hasLo || x > l) && (!hasHi || x < h) && !x.isNaN ? g : 0 })
    }
    /// `e == 0 ? 0 : g e x^(e-1)`.
    package static func powScalarBackward(_ g: Tensor, _ x: Tensor, exponent e: Double) -> Tensor {
        if e == 0 { return Tensor.zeros(broadcastShapes(g.shape, x.shape, op: "pow_backward"), dtype: g.dtype) }
        if e == 2 { return floatBinary(g, x, op: "pow_backward", f32: { $0 * (2 * $1) }, f64: { $0 * (2 * $1) }) }
        let e32 = Float(e)
        return floatBinary(g, pow(x, e - 1), op: "pow_backward", f32: { $0 * (e32 * $1) }, f64: { $0 * (e * $1) })
    }
    /// Gradient of `a^b` for the base: `b == 0 ? 0 : g b a^(b-1)`.
    package static func powBaseBackward(_ g: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        floatTernary(g, a, b, op: "pow_backward_self", f32: { g, a, b in b == 0 ? 0 : g * (b * cPow(a, b - 1)) },
                     f64: { g, a, b in b == 0 ? 0 : g * (b * cPow(a, b - 1)) })
    }
    /// Gradient of `a^b` for the exponent: `(a == 0 && b >= 0) ? 0 : g y log(a)`.
    package static func powExponentBackward(_ g: Tensor, _ a: Tensor, _ b: Tensor, _ y: Tensor) -> Tensor {
        let t = floatTernary(a, b, y, op: "pow_backward_exponent",
                             f32: { a, b, y in a == 0 && b >= 0 ? 0 : y * Float.log(a) },
                             f64: { a, b, y in a == 0 && b >= 0 ? 0 : y * Double.log(a) })
        return floatBinary(g, t, op: "pow_backward_exponent", f32: { $0 * $1 }, f64: { $0 * $1 })
    }
    /// Gradients of `maximum(a, b)` (or `minimum` when `isMax` is false): the larger (smaller)
    /// operand gets `g`, ties split `g / 2` each, and NaN comparisons give both `g`, as PyTorch.
    /// Returns the two gradients at the broadcast shape.
    package static func extremumBackward(_ g: Tensor, _ a: Tensor, _ b: Tensor, isMax: Bool) -> (Tensor, Tensor) {
        // For maximum, a loses where a < b; for minimum where a > b.
        let sign: Double = isMax ? 1 : -1
        func grad(_ x: Tensor, _ y: Tensor) -> Tensor {
            let s32 = Float(sign)
            return floatTernary(g, x, y, op: isMax ? "maximum_backward" : "minimum_backward",
                                f32: { g, x, y in x == y ? g / 2 : (s32 * x < s32 * y ? 0 : g) },
                                f64: { g, x, y in x == y ? g / 2 : (sign * x < sign * y ? 0 : g) })
        }
        let dt = g.dtype
        let a2 = a.dtype == dt ? a : a.convertedRaw(to: dt), b2 = b.dtype == dt ? b : b.convertedRaw(to: dt)
        return (grad(a2, b2), grad(b2, a2))
    }
}
