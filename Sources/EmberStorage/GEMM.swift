/// Matrix multiply on raw pointers: `C = alpha * A * B + beta * C`.
///
/// `A` is `m x k` with element `(i, p)` at `a[i * rowStrideA + p * colStrideA]`, `B` is `k x n`
/// likewise, and `C` is `m x n` row-major with leading dimension `ldc`. Arbitrary strides let
/// transposed views multiply without a copy. When `beta == 0`, `C` is not read (NaNs in it do not
/// propagate), as BLAS specifies. `C` must not overlap `A` or `B`.
///
/// The work is a cache-blocked, packed product (Goto/BLIS style, see `GEMM+Driver.swift`) around
/// SIMD micro-kernels in `CEmberKernels`, chosen once per process for the CPU (AVX-512F, AVX2+FMA,
/// NEON, or portable C). Products of at least 64^3 multiply-adds are split over up to
/// `Threading.maxThreads` threads.
public enum GEMM {
    /// Single-precision matrix multiply, `C = alpha * A * B + beta * C`.
    ///
    /// - Parameters:
    ///   - m: Rows of A and C.
    ///   - n: Columns of B and C.
    ///   - k: Columns of A, rows of B.
    ///   - alpha: Scale of the product.
    ///   - a: Element `(0, 0)` of A; `(i, p)` is at `a[i * rowStrideA + p * colStrideA]`.
    ///   - b: Element `(0, 0)` of B; `(p, j)` is at `b[p * rowStrideB + j * colStrideB]`.
    ///   - beta: Scale of the existing C; `0` means C is write-only.
    ///   - c: Row-major `m x n` output, row `i` starting at `c + i * ldc`.
    ///
    /// PyTorch parity: `torch.addmm(C, A, B, beta=beta, alpha=alpha)` (BLAS `sgemm`).
    public static func sgemm(
        m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, rowStrideA: Int, colStrideA: Int,
        b: UnsafePointer<Float>, rowStrideB: Int, colStrideB: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        gemm(m: m, n: n, k: k, alpha: alpha, a: a, rowStrideA: rowStrideA, colStrideA: colStrideA,
             b: b, rowStrideB: rowStrideB, colStrideB: colStrideB, beta: beta, c: c, ldc: ldc,
             path: GEMMKernelPath.best)
    }

    /// Double-precision matrix multiply, `C = alpha * A * B + beta * C`.
    ///
    /// Parameters as in ``sgemm(m:n:k:alpha:a:rowStrideA:colStrideA:b:rowStrideB:colStrideB:beta:c:ldc:)``.
    ///
    /// PyTorch parity: `torch.addmm` on float64 tensors (BLAS `dgemm`).
    public static func dgemm(
        m: Int, n: Int, k: Int, alpha: Double,
        a: UnsafePointer<Double>, rowStrideA: Int, colStrideA: Int,
        b: UnsafePointer<Double>, rowStrideB: Int, colStrideB: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        gemm(m: m, n: n, k: k, alpha: alpha, a: a, rowStrideA: rowStrideA, colStrideA: colStrideA,
             b: b, rowStrideB: rowStrideB, colStrideB: colStrideB, beta: beta, c: c, ldc: ldc,
             path: GEMMKernelPath.best)
    }

    /// ``sgemm(m:n:k:alpha:a:rowStrideA:colStrideA:b:rowStrideB:colStrideB:beta:c:ldc:)`` on a
    /// chosen micro-kernel path (tests run every path the CPU supports; others pass `.best`),
    /// followed by `epilogue` on C (applied tile by tile while each is in registers or cache).
    ///
    /// - Precondition: `path.isSupported`.
    package static func sgemm(
        m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, rowStrideA: Int, colStrideA: Int,
        b: UnsafePointer<Float>, rowStrideB: Int, colStrideB: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, path: GEMMKernelPath,
        epilogue: GEMMEpilogue<Float> = .none
    ) {
        gemm(m: m, n: n, k: k, alpha: alpha, a: a, rowStrideA: rowStrideA, colStrideA: colStrideA,
             b: b, rowStrideB: rowStrideB, colStrideB: colStrideB, beta: beta, c: c, ldc: ldc, path: path,
             epilogue: epilogue)
    }

    /// ``dgemm(m:n:k:alpha:a:rowStrideA:colStrideA:b:rowStrideB:colStrideB:beta:c:ldc:)`` on a
    /// chosen micro-kernel path (tests run every path the CPU supports; others pass `.best`),
    /// followed by `epilogue` on C (applied tile by tile while each is in registers or cache).
    ///
    /// - Precondition: `path.isSupported`.
    package static func dgemm(
        m: Int, n: Int, k: Int, alpha: Double,
        a: UnsafePointer<Double>, rowStrideA: Int, colStrideA: Int,
        b: UnsafePointer<Double>, rowStrideB: Int, colStrideB: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int, path: GEMMKernelPath,
        epilogue: GEMMEpilogue<Double> = .none
    ) {
        gemm(m: m, n: n, k: k, alpha: alpha, a: a, rowStrideA: rowStrideA, colStrideA: colStrideA,
             b: b, rowStrideB: rowStrideB, colStrideB: colStrideB, beta: beta, c: c, ldc: ldc, path: path,
             epilogue: epilogue)
    }
}
