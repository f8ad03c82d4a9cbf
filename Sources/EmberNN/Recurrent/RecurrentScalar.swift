import EmberAutograd

// The element type of the fused recurrent kernels: 8-lane activations and the matrix multiply,
// so each kernel is written once for float32 and float64.

/// `Float` or `Double`, with the 8-lane activations and the matrix multiply the recurrent kernels
/// use. Float uses Ember's vectorised `exp`/`tanh` (the same functions `Tensor.sigmoid()` and
/// `Tensor.tanh()` use); Double uses libm lane by lane (it only runs in tests and gradient checks).
protocol RecurrentFloat: TensorFloat, SIMDScalar, Codable {
    static func sigmoid8(_ x: SIMD8<Self>) -> SIMD8<Self>
    static func tanh8(_ x: SIMD8<Self>) -> SIMD8<Self>
    /// `C = A B + beta C` (see `GEMM`).
    static func gemm(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Self>, rowStrideA: Int, colStrideA: Int,
        b: UnsafePointer<Self>, rowStrideB: Int, colStrideB: Int,
        beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
}

extension Float: RecurrentFloat {
    @inline(__always) static func sigmoid8(_ x: SIMD8<Float>) -> SIMD8<Float> { sigmoidVector(x) }
    @inline(__always) static func tanh8(_ x: SIMD8<Float>) -> SIMD8<Float> { tanhVector(x) }
    @inline(__always) static func gemm(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, rowStrideA: Int, colStrideA: Int,
        b: UnsafePointer<Float>, rowStrideB: Int, colStrideB: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        GEMM.sgemm(m: m, n: n, k: k, alpha: 1, a: a, rowStrideA: rowStrideA, colStrideA: colStrideA,
                   b: b, rowStrideB: rowStrideB, colStrideB: colStrideB, beta: beta, c: c, ldc: ldc)
    }
}

extension Double: RecurrentFloat {
    @inline(__always) static func sigmoid8(_ x: SIMD8<Double>) -> SIMD8<Double> {
        var r = SIMD8<Double>()
        for l in 0..<8 { r[l] = 1 / (1 + Double.exp(-x[l])) }
        return r
    }
    @inline(__always) static func tanh8(_ x: SIMD8<Double>) -> SIMD8<Double> {
        var r = SIMD8<Double>()
        for l in 0..<8 { r[l] = Double.tanh(x[l]) }
        return r
    }
    @inline(__always) static func gemm(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Double>, rowStrideA: Int, colStrideA: Int,
        b: UnsafePointer<Double>, rowStrideB: Int, colStrideB: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        GEMM.dgemm(m: m, n: n, k: k, alpha: 1, a: a, rowStrideA: rowStrideA, colStrideA: colStrideA,
                   b: b, rowStrideB: rowStrideB, colStrideB: colStrideB, beta: beta, c: c, ldc: ldc)
    }
}

/// Loads `count` (1...8) consecutive elements; missing lanes are zero.
@inline(__always)
func load8<T: RecurrentFloat>(_ p: UnsafePointer<T>, _ count: Int) -> SIMD8<T> {
    if count == 8 { return UnsafeRawPointer(p).loadUnaligned(as: SIMD8<T>.self) }
    var v = SIMD8<T>()
    for l in 0..<count { v[l] = p[l] }
    return v
}

/// Loads `count` elements, or zeros when `p` is nil (an absent bias or a zero initial state).
@inline(__always)
func load8OrZero<T: RecurrentFloat>(_ p: UnsafePointer<T>?, _ count: Int) -> SIMD8<T> {
    guard let p else { return SIMD8<T>() }
    return load8(p, count)
}

/// Stores the first `count` (1...8) lanes of `v`.
@inline(__always)
func store8<T: RecurrentFloat>(_ v: SIMD8<T>, _ p: UnsafeMutablePointer<T>, _ count: Int) {
    if count == 8 {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<T>.self)
        return
    }
    for l in 0..<count { p[l] = v[l] }
}

/// `dst[j] += src[j]` for `rows` rows of `width` elements (row strides in elements).
@inline(__always)
func addRows<T: RecurrentFloat>(
    rows: Int, width: Int, _ src: UnsafePointer<T>, srcStride: Int, into dst: UnsafeMutablePointer<T>, dstStride: Int
) {
    for r in 0..<rows {
        let s = src + r * srcStride, d = dst + r * dstStride
        var j = 0
        while j < width {
            let n = Swift.min(8, width - j)
            store8(load8(d + j, n) + load8(s + j, n), d + j, n)
            j += 8
        }
    }
}

/// Copies `rows` rows of `width` elements between strided row layouts.
@inline(__always)
func copyRows<T>(rows: Int, width: Int, _ src: UnsafePointer<T>, srcStride: Int, into dst: UnsafeMutablePointer<T>, dstStride: Int) {
    for r in 0..<rows { (dst + r * dstStride).update(from: src + r * srcStride, count: width) }
}

/// `out[j] = sum over rows of m[r * width + j]` (a contiguous `rows x width` matrix), as one
/// matrix-vector product with a broadcast row of ones.
@inline(__always)
func columnSums<T: RecurrentFloat>(_ m: UnsafePointer<T>, rows: Int, width: Int, into out: UnsafeMutablePointer<T>) {
    withUnsafeTemporaryAllocation(of: T.self, capacity: 1) { one in
        one[0] = 1
        T.gemm(m: 1, n: width, k: rows, a: UnsafePointer(one.baseAddress!), rowStrideA: 0, colStrideA: 0,
               b: m, rowStrideB: width, colStrideB: 1, beta: 0, c: out, ldc: width)
    }
}
