import CEmberKernels

/// Small element-wise kernels in `CEmberKernels` (`vector_x86.c`) that other targets reach through
/// here, with a portable fallback.
package enum VectorKernels {
    /// `v[i] = 1 / sqrt(v[i] + eps)` for `i < count`: correctly rounded IEEE operations, so the
    /// AVX2 path (four at a time) and the fallback give the same values.
    package static func inverseSquareRoot(_ v: UnsafeMutablePointer<Double>, count: Int, plus eps: Double) {
        if GEMM.hasAVX2 {
            ember_inverse_sqrt_plus_avx2(v, count, eps)
            return
        }
        for i in 0..<count { v[i] = 1 / (v[i] + eps).squareRoot() }
    }
}
