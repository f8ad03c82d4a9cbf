// Packing: copy blocks of A and B into the contiguous, zero-padded strips the micro-kernels read.
//
// Packing reads any strides (row-major, transposed, expanded), so callers never copy operands
// first. Each routine picks the loop order that reads memory contiguously when one stride is 1.

extension GEMM {
    /// Packs the `k x n` block of B at `b` into `ceil(n / nr)` strips of `k x nr`, zero padded.
    ///
    /// Strip `s` holds element `(p, j)` of the block at `dst[s * k * nr + p * nr + (j - s * nr)]`.
    ///
    /// - Parameters:
    ///   - k: Rows of the block (the panel depth).
    ///   - n: Columns of the block.
    ///   - b: Element `(0, 0)` of the block; element `(p, j)` is at `b[p * rowStride + j * colStride]`.
    ///   - dst: Room for `ceil(n / nr) * nr * k` elements.
    ///   - nr: Strip width (the micro-kernel's tile columns).
    @inline(__always)
    static func packB<T: GEMMScalar>(
        k: Int, n: Int, _ b: UnsafePointer<T>, rowStride: Int, colStride: Int,
        into dst: UnsafeMutablePointer<T>, nr: Int
    ) {
        var strip = dst
        var j0 = 0
        while j0 < n {
            let width = min(nr, n - j0)
            let src = b + j0 * colStride
            if colStride == 1 {
                // Rows of B are contiguous: copy `width` elements per row.
                for p in 0..<k {
                    let s = src + p * rowStride, d = strip + p * nr
                    for j in 0..<width { d[j] = s[j] }
                    for j in width..<nr { d[j] = 0 }
                }
            } else {
                // Columns are contiguous (a transposed view) or nothing is: walk down each column.
                for j in 0..<width {
                    let s = src + j * colStride, d = strip + j
                    for p in 0..<k { d[p &* nr] = s[p &* rowStride] }
                }
                if width < nr {
                    for p in 0..<k {
                        let d = strip + p * nr
                        for j in width..<nr { d[j] = 0 }
                    }
                }
            }
            strip += k * nr
            j0 += nr
        }
    }

    /// Packs the `m x k` block of A at `a` into `ceil(m / mr)` strips of `mr x k`, zero padded.
    ///
    /// Strip `s` holds element `(i, p)` of the block at `dst[s * mr * k + p * mr + (i - s * mr)]`.
    ///
    /// - Parameters:
    ///   - m: Rows of the block.
    ///   - k: Columns of the block (the panel depth).
    ///   - a: Element `(0, 0)` of the block; element `(i, p)` is at `a[i * rowStride + p * colStride]`.
    ///   - dst: Room for `ceil(m / mr) * mr * k` elements.
    ///   - mr: Strip height (the micro-kernel's tile rows).
    @inline(__always)
    static func packA<T: GEMMScalar>(
        m: Int, k: Int, _ a: UnsafePointer<T>, rowStride: Int, colStride: Int,
        into dst: UnsafeMutablePointer<T>, mr: Int
    ) {
        var strip = dst
        var i0 = 0
        while i0 < m {
            let height = min(mr, m - i0)
            let src = a + i0 * rowStride
            if rowStride == 1 {
                // Columns of A are contiguous (a transposed view): copy `height` elements per column.
                for p in 0..<k {
                    let s = src + p * colStride, d = strip + p * mr
                    for i in 0..<height { d[i] = s[i] }
                    for i in height..<mr { d[i] = 0 }
                }
            } else {
                // Rows are contiguous (row-major) or nothing is: walk along each row.
                for i in 0..<height {
                    let s = src + i * rowStride, d = strip + i
                    for p in 0..<k { d[p &* mr] = s[p &* colStride] }
                }
                if height < mr {
                    for p in 0..<k {
                        let d = strip + p * mr
                        for i in height..<mr { d[i] = 0 }
                    }
                }
            }
            strip += k * mr
            i0 += mr
        }
    }
}
