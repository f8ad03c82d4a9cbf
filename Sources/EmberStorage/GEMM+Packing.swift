import CEmberKernels

// Packing: copy blocks of A and B into the contiguous, zero-padded strips the micro-kernels read.
//
// Packing reads any strides (row-major, transposed, expanded), so callers never copy operands
// first. Each routine picks the loop order that reads memory contiguously when one stride is 1.
// Strip widths are the kernels' tile sizes (4 to 32); the common ones are passed as literals
// through `@inline(__always)` helpers so the inner loops compile to fixed-size moves instead of
// calls to `memcpy`/`memset` per row, which dominated small products.

extension GEMM {
    /// ``packB(k:n:_:rowStride:colStride:into:nr:)`` for float32, for packers outside this module
    /// (``sgemm(m:n:k:a:rowOffsets:beta:c:ldc:path:packB:)``'s callers).
    package static func packFloatB(k: Int, n: Int, _ b: UnsafePointer<Float>, rowStride: Int, colStride: Int,
                                   into dst: UnsafeMutablePointer<Float>, nr: Int) {
        packB(k: k, n: n, b, rowStride: rowStride, colStride: colStride, into: dst, nr: nr)
    }

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
    @inline(never)
    static func packB<T: GEMMScalar>(
        k: Int, n: Int, _ b: UnsafePointer<T>, rowStride: Int, colStride: Int,
        into dst: UnsafeMutablePointer<T>, nr: Int
    ) {
        var strip = dst
        var j0 = 0
        if colStride == 1 && T.self == Float.self && n >= nr {
            // The full strips of a row-major float32 B, read row by row.
            let strips = n / nr
            ember_pack_b_strips_f32(Int32(GEMMKernelPath.best.rawValue), k, strips, nr,
                                    UnsafeRawPointer(b).assumingMemoryBound(to: Float.self), rowStride,
                                    UnsafeMutableRawPointer(dst).assumingMemoryBound(to: Float.self))
            strip += strips * k * nr
            j0 = strips * nr
        }
        while j0 < n {
            let width = min(nr, n - j0)
            let src = b + j0 * colStride
            if width == nr && colStride == 1 {
                // Full strip of contiguous rows: fixed-size row copies.
                switch nr {
                case 8: copyRows(k, width: 8, from: src, stride: rowStride, to: strip)
                case 12: copyRows(k, width: 12, from: src, stride: rowStride, to: strip)
                case 16: copyRows(k, width: 16, from: src, stride: rowStride, to: strip)
                case 32: copyRows(k, width: 32, from: src, stride: rowStride, to: strip)
                default: copyRows(k, width: nr, from: src, stride: rowStride, to: strip)
                }
            } else if colStride == 1 {
                // Edge strip of contiguous rows: the valid part of each row, then zeros.
                for p in 0..<k {
                    let s = src + p &* rowStride, d = strip + p &* nr
                    var j = 0
                    while j < width { d[j] = s[j]; j &+= 1 }
                    while j < nr { d[j] = 0; j &+= 1 }
                }
            } else if rowStride == 1 && T.self == Float.self && hasAVX2 {
                // Columns contiguous (a transposed view, e.g. a Linear weight): 8 x 8 register
                // transposes (GEMM+RowVector.swift).
                if width < nr { strip.update(repeating: 0, count: k * nr) }
                ember_spack_b_columns_avx2(k, width, UnsafeRawPointer(src).assumingMemoryBound(to: Float.self),
                                           colStride, UnsafeMutableRawPointer(strip).assumingMemoryBound(to: Float.self), nr)
            } else {
                // Columns contiguous (a transposed view) or nothing is: walk down each column
                // into a zeroed strip.
                if width < nr { strip.update(repeating: 0, count: k * nr) }
                for j in 0..<width {
                    let s = src + j * colStride, d = strip + j
                    for p in 0..<k { d[p &* nr] = s[p &* rowStride] }
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
    @inline(never)
    static func packA<T: GEMMScalar>(
        m: Int, k: Int, _ a: UnsafePointer<T>, rowStride: Int, colStride: Int,
        into dst: UnsafeMutablePointer<T>, mr: Int
    ) {
        var strip = dst
        var i0 = 0
        while i0 < m {
            let height = min(mr, m - i0)
            let src = a + i0 * rowStride
            if colStride == 1 && T.self == Float.self && hasAVX2 {
                // Rows contiguous (row-major A): 8 x 8 register transposes, as for B's columns.
                if height < mr { strip.update(repeating: 0, count: k * mr) }
                ember_spack_b_columns_avx2(k, height, UnsafeRawPointer(src).assumingMemoryBound(to: Float.self),
                                           rowStride, UnsafeMutableRawPointer(strip).assumingMemoryBound(to: Float.self), mr)
            } else if height == mr && rowStride == 1 {
                // Columns contiguous (a transposed view, e.g. a gradient's transpose): each step
                // along k copies `mr` consecutive elements.
                switch mr {
                case 6: copyRows(k, width: 6, from: src, stride: colStride, to: strip)
                case 8: copyRows(k, width: 8, from: src, stride: colStride, to: strip)
                case 14: copyRows(k, width: 14, from: src, stride: colStride, to: strip)
                default: copyRows(k, width: mr, from: src, stride: colStride, to: strip)
                }
            } else if height == mr {
                switch mr {
                case 4: interleaveRows(4, k, from: src, rowStride, colStride, to: strip)
                case 6: interleaveRows(6, k, from: src, rowStride, colStride, to: strip)
                case 8: interleaveRows(8, k, from: src, rowStride, colStride, to: strip)
                case 14: interleaveRows(14, k, from: src, rowStride, colStride, to: strip)
                default: interleaveRows(mr, k, from: src, rowStride, colStride, to: strip)
                }
            } else {
                // Edge strip: the valid rows into a zeroed strip.
                strip.update(repeating: 0, count: k * mr)
                for i in 0..<height {
                    let s = src + i * rowStride, d = strip + i
                    for p in 0..<k { d[p &* mr] = s[p &* colStride] }
                }
            }
            strip += k * mr
            i0 += mr
        }
    }

    /// `dst[p * width + j] = src[p * stride + j]` for `p < rows`, `j < width`.
    ///
    /// Rows of at least 16 bytes are moved as 16-byte vectors, the last one ending at the row's
    /// end (it may overlap the one before: the same bytes are written twice): Swift cannot prove
    /// that `src` and `dst` do not overlap, so an element loop would stay scalar.
    @inline(__always)
    private static func copyRows<T>(
        _ rows: Int, width: Int, from src: UnsafePointer<T>, stride: Int, to dst: UnsafeMutablePointer<T>
    ) {
        let bytes = width * MemoryLayout<T>.stride
        guard bytes >= 16 else {
            for p in 0..<rows {
                let s = src + p &* stride, d = dst + p &* width
                for j in 0..<width { d[j] = s[j] }
            }
            return
        }
        for p in 0..<rows {
            let s = UnsafeRawPointer(src + p &* stride), d = UnsafeMutableRawPointer(dst + p &* width)
            var offset = 0
            while offset + 16 <= bytes {
                let v = s.loadUnaligned(fromByteOffset: offset, as: SIMD4<UInt32>.self)
                d.storeBytes(of: v, toByteOffset: offset, as: SIMD4<UInt32>.self)
                offset += 16
            }
            if offset < bytes {
                let v = s.loadUnaligned(fromByteOffset: bytes - 16, as: SIMD4<UInt32>.self)
                d.storeBytes(of: v, toByteOffset: bytes - 16, as: SIMD4<UInt32>.self)
            }
        }
    }

    /// `dst[p * rows + i] = src[i * rowStride + p * colStride]` for `i < rows`, `p < k`: one
    /// pass along `p` reading `rows` streams, writing contiguously.
    @inline(__always)
    private static func interleaveRows<T>(
        _ rows: Int, _ k: Int, from src: UnsafePointer<T>, _ rowStride: Int, _ colStride: Int,
        to dst: UnsafeMutablePointer<T>
    ) {
        var d = dst, s = src
        for _ in 0..<k {
            for i in 0..<rows { d[i] = s[i &* rowStride] }
            d += rows
            s += colStride
        }
    }
}
