import CEmberKernels

// Single-row products (`m == 1`: one sample through a `Linear`) against a transposed B, without
// packing B.
//
// The blocked driver packs all of B for every call: for one row of A that copy costs as much as
// the product itself (a 784 x 512 weight is 400k scattered reads per call). Here each group of
// eight columns of C reads eight contiguous rows of B^T in 8 x 8 blocks, transposes them in
// registers and runs the same fused multiply-add chains the micro-kernels run, so the result is
// bitwise the blocked one (a row computed alone equals that row computed in a batch).
//
// Only for one row: per multiply-add this costs about three times the micro-kernel's, and narrow
// or shallow products pay for scalar edges. Running the seed network's 32-row layers through it
// row by row took 34k instructions per forward pass against 15k on the blocked path.

extension GEMM {
    /// Columns of C per thread below which a row product stays on one thread.
    static let rowVectorColumnsPerThread = 64

    /// Computes `C = A B + beta C` for one row of A and `beta` 0 or 1 when the kernel path and the
    /// operands allow it (float32, AVX2 or AVX-512 path, B with unit row stride, A with unit column
    /// stride); returns whether it did.
    @inline(__always)
    static func rowVectorProduct<T: GEMMScalar>(
        m: Int, n: Int, k: Int, alpha: T,
        a: UnsafePointer<T>, rowStrideA: Int, colStrideA: Int,
        b: UnsafePointer<T>, rowStrideB: Int, colStrideB: Int,
        beta: T, c: UnsafeMutablePointer<T>, kernel: MicroKernel, path: GEMMKernelPath
    ) -> Bool {
        guard m == 1, T.self == Float.self, alpha == 1, beta == 0 || beta == 1,
              rowStrideB == 1, colStrideA == 1, path == .avx2 || path == .avx512, hasAVX2
        else { return false }
        let x = UnsafeRawPointer(a).assumingMemoryBound(to: Float.self)
        let w = UnsafeRawPointer(b).assumingMemoryBound(to: Float.self)
        let y = UnsafeMutableRawPointer(c).assumingMemoryBound(to: Float.self)
        let accumulate: Int32 = beta == 1 ? 1 : 0
        let kc = kernel.kc
        let threads = n * k < parallelWorkThreshold ? 1 : min(Threading.maxThreads, n / rowVectorColumnsPerThread)
        if threads <= 1 {
            ember_sgemv_rows_avx2(n, k, kc, x, w, colStrideB, y, accumulate)
            return true
        }
        // Chunk t computes columns [j0, j1) of C only (multiples of 8 apart): disjoint writes.
        let per = roundUp((n + threads - 1) / threads, to: 8)
        Threading.parallelFor(chunks: threads) { t in
            let j0 = min(n, t * per), j1 = min(n, j0 + per)
            if j0 < j1 { ember_sgemv_rows_avx2(j1 - j0, k, kc, x, w + j0 * colStrideB, colStrideB, y + j0, accumulate) }
        }
        return true
    }

    /// Whether this CPU runs the AVX2 vector kernels.
    static let hasAVX2 = GEMMKernelPath.avx2.isSupported
}
