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

    /// Whether ``transpose(_:rows:cols:into:)`` runs on this CPU.
    package static let hasTranspose = GEMM.hasAVX2

    /// `dst[i * cols + j] = src[i + j * columnStride]` for `i < rows`, `j < cols`: a column-major
    /// float32 matrix (columns `columnStride` apart) copied row-major, through 8 x 8 register
    /// transposes (an exact copy). Requires ``hasTranspose``.
    package static func packColumns(_ src: UnsafePointer<Float>, rows: Int, cols: Int, columnStride: Int,
                                    into dst: UnsafeMutablePointer<Float>) {
        precondition(hasTranspose, "VectorKernels.packColumns: AVX2 is not available on this CPU")
        ember_spack_b_columns_avx2(rows, cols, src, columnStride, dst, cols)
    }

    /// `dst[j * rows + i] = src[i * cols + j]`: the row-major transpose of a row-major `rows x cols`
    /// float32 matrix, eight columns at a time through 8 x 8 register transposes (an exact copy).
    /// Requires ``hasTranspose``.
    package static func transpose(_ src: UnsafePointer<Float>, rows: Int, cols: Int, into dst: UnsafeMutablePointer<Float>) {
        precondition(hasTranspose, "VectorKernels.transpose: AVX2 is not available on this CPU")
        // B(p, j) = src[j * cols + p] for p < cols, j < rows, packed with row length `rows`.
        ember_spack_b_columns_avx2(cols, rows, src, cols, dst, rows)
    }
}
