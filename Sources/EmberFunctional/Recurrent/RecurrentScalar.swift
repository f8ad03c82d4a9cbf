import EmberAutograd
import EmberTensor
import EmberStorage

// The element type of the fused recurrent kernels: 8-lane activations and the matrix multiply,
// so each kernel is written once for float32 and float64.

/// `Float` or `Double`, with the 8-lane activations and the matrix multiply the recurrent kernels
/// use. Float uses the vectorised `exp`/`tanh` of `Tensor.sigmoid()` and `Tensor.tanh()` (inlined
/// copies, see `RecurrentMath.swift`); Double uses libm lane by lane (it only runs in tests and
/// gradient checks).
protocol RecurrentFloat: TensorFloat, SIMDScalar, Codable {
    static func sigmoid8(_ x: SIMD8<Self>) -> SIMD8<Self>
    static func tanh8(_ x: SIMD8<Self>) -> SIMD8<Self>
    /// `C = A B + beta C` (see `GEMM`).
    static func gemm(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Self>, rowStrideA: Int, colStrideA: Int,
        b: UnsafePointer<Self>, rowStrideB: Int, colStrideB: Int,
        beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)

    // Native (C, AVX2) versions of the cell passes, bitwise equal to the Swift ones: each runs the
    // pass and returns true, or returns false when it cannot (no AVX2, float64, a layout it does not
    // take) and the caller runs the Swift pass. See `RecurrentNative.swift`.

    /// `LSTMSequence.cellForward`.
    static func nativeLSTMForward(
        rows: Int, gateStride: Int, cols: Int, gates: Block<Self>, bias: Block<Self>, activations: Block<Self>?,
        cPrev: Block<Self>, cOut: Block<Self>, tanhC: Block<Self>, h: Block<Self>) -> Bool
    /// `LSTMSequence.cellBackward`.
    static func nativeLSTMBackward(
        rows: Int, gateStride: Int, cols: Int, gates: Block<Self>, cPrev: Block<Self>, tanhC: Block<Self>,
        dH: Block<Self>, dC: Block<Self>, dGates: Block<Self>) -> Bool
    /// `GRUSequence.cellForward`.
    static func nativeGRUForward(
        rows: Int, gateStride: Int, cols: Int, gates: Block<Self>, inputBias: Block<Self>, hiddenGates: Block<Self>?,
        hiddenBias: Block<Self>, hPrev: Block<Self>?, activations: Block<Self>?, hiddenNew: Block<Self>, h: Block<Self>) -> Bool
    /// `RNNSequence.cellForward`.
    static func nativeRNNForward(rows: Int, cols: Int, pre: Block<Self>, bias: Block<Self>, relu: Bool, h: Block<Self>) -> Bool
    /// `addOutputGradient`: `target += source` over a `rows x cols` block.
    static func nativeAdd(rows: Int, cols: Int, _ source: Block<Self>, into target: Block<Self>) -> Bool
}

extension Float: RecurrentFloat {
    @_transparent static func sigmoid8(_ x: SIMD8<Float>) -> SIMD8<Float> { sigmoidVector(x) }
    @_transparent static func tanh8(_ x: SIMD8<Float>) -> SIMD8<Float> { tanhVector(x) }
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
    // float64 runs only in tests and gradient checks: always the Swift passes.
    @inline(__always) static func nativeLSTMForward(
        rows: Int, gateStride: Int, cols: Int, gates: Block<Double>, bias: Block<Double>, activations: Block<Double>?,
        cPrev: Block<Double>, cOut: Block<Double>, tanhC: Block<Double>, h: Block<Double>
    ) -> Bool { false }
    @inline(__always) static func nativeLSTMBackward(
        rows: Int, gateStride: Int, cols: Int, gates: Block<Double>, cPrev: Block<Double>, tanhC: Block<Double>,
        dH: Block<Double>, dC: Block<Double>, dGates: Block<Double>
    ) -> Bool { false }
    @inline(__always) static func nativeGRUForward(
        rows: Int, gateStride: Int, cols: Int, gates: Block<Double>, inputBias: Block<Double>, hiddenGates: Block<Double>?,
        hiddenBias: Block<Double>, hPrev: Block<Double>?, activations: Block<Double>?, hiddenNew: Block<Double>, h: Block<Double>
    ) -> Bool { false }
    @inline(__always) static func nativeRNNForward(
        rows: Int, cols: Int, pre: Block<Double>, bias: Block<Double>, relu: Bool, h: Block<Double>
    ) -> Bool { false }
    @inline(__always) static func nativeAdd(rows: Int, cols: Int, _ source: Block<Double>, into target: Block<Double>) -> Bool {
        false
    }
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

/// Stores the first `count` (1...8) lanes of `v`.
@inline(__always)
func store8<T: RecurrentFloat>(_ v: SIMD8<T>, _ p: UnsafeMutablePointer<T>, _ count: Int) {
    if count == 8 {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<T>.self)
        return
    }
    for l in 0..<count { p[l] = v[l] }
}

/// Copies `rows` rows of `width` elements between strided row layouts.
@inline(__always)
func copyRows<T>(rows: Int, width: Int, _ src: UnsafePointer<T>, srcStride: Int, into dst: UnsafeMutablePointer<T>, dstStride: Int) {
    for r in 0..<rows { (dst + r * dstStride).update(from: src + r * srcStride, count: width) }
}
