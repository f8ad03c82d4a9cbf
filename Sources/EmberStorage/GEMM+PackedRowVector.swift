import CEmberKernels

// Single-row products against a weight packed once and kept (batch-1 inference that runs the same
// `Linear` again and again).
//
// The unpacked row-vector kernel (`GEMM+RowVector.swift`) transposes 8 x 8 blocks of the weight in
// registers on every call: 24 shuffles per 64 multiply-adds. Packed into strips of 32 columns
// (`[k][32]` each), the same chains need one contiguous load per eight multiply-adds and run at
// memory speed (BENCHMARKS.md, batch-1 latency). The chains and panels are the unpacked kernel's, so the result
// is bitwise the same: a row computed alone still equals that row computed in a batch.

/// A float32 `[n, k]` weight (a `Linear` weight, `y = x W^T`) packed for
/// ``GEMM/rowVectorProduct(packed:x:beta:y:)``, with the identity of what it was packed from.
///
/// It keeps a reference to the source storage, so the source cannot be freed and its address
/// reused while the packing exists, and a copy-on-write write to the source (an optimizer step,
/// `loadStateDict`) sees a shared storage and copies it: the source's identity changes whenever
/// its contents could. ``matches(storage:offset:n:k:rowStride:colStride:)`` is therefore an exact
/// staleness check.
public final class RowVectorPackedWeight: @unchecked Sendable {
    /// Immutable after `init`; read concurrently.
    private let source: TensorStorage
    private let offset: Int, rowStride: Int, colStride: Int
    /// Output features (rows of W) and input features (columns).
    public let n: Int, k: Int
    let kc: Int
    let packed: UnsafeMutablePointer<Float>
    /// Bytes of the packed copy.
    public let byteCount: Int

    /// Packs `W(j, p) = w[offset + j * rowStride + p * colStride]` for `j < n`, `p < k` of `storage`.
    ///
    /// - Precondition: ``GEMM/packsRowVectorWeights``.
    package init(storage: TensorStorage, offset: Int, n: Int, k: Int, rowStride: Int, colStride: Int) {
        precondition(GEMM.packsRowVectorWeights, "RowVectorPackedWeight: needs the AVX2 kernel path")
        self.source = storage
        (self.offset, self.n, self.k, self.rowStride, self.colStride) = (offset, n, k, rowStride, colStride)
        kc = Float.microKernel(for: GEMMKernelPath.best).kc
        let strips = (n + 31) / 32
        let count = Swift.max(strips * 32 * k, 1)
        byteCount = count * MemoryLayout<Float>.stride
        packed = .allocate(capacity: count)
        packed.initialize(repeating: 0, count: count)
        let w = storage.baseAddress.assumingMemoryBound(to: Float.self) + offset
        for s in 0..<strips {
            let j0 = s * 32, width = Swift.min(32, n - j0)
            let dst = packed + j0 * k
            if colStride == 1 {
                ember_spack_b_columns_avx2(k, width, w + j0 * rowStride, rowStride, dst, 32)
            } else {
                for c in 0..<width {
                    for p in 0..<k { dst[p * 32 + c] = w[(j0 + c) * rowStride + p * colStride] }
                }
            }
        }
    }

    deinit { packed.deallocate() }

    /// Whether this packing was made from exactly this view of exactly this storage.
    package func matches(storage: TensorStorage, offset: Int, n: Int, k: Int, rowStride: Int, colStride: Int) -> Bool {
        source === storage && self.offset == offset && self.n == n && self.k == k
            && self.rowStride == rowStride && self.colStride == colStride
    }
}

extension GEMM {
    /// Whether single-row products can use a ``RowVectorPackedWeight`` on this CPU (the AVX2 or
    /// AVX-512 path; elsewhere the blocked driver runs).
    package static var packsRowVectorWeights: Bool {
        hasAVX2 && (GEMMKernelPath.best == .avx2 || GEMMKernelPath.best == .avx512)
    }

    /// `y = x W^T + beta y` for one row `x` of `k` floats and `beta` 0 or 1: bitwise what
    /// ``sgemm(m:n:k:alpha:a:rowStrideA:colStrideA:b:rowStrideB:colStrideB:beta:c:ldc:)`` gives
    /// for `m == 1`, `alpha == 1` and `B = W^T`. Splits the columns over threads like the unpacked
    /// row-vector path.
    package static func rowVectorProduct(packed w: RowVectorPackedWeight, x: UnsafePointer<Float>, beta: Float,
                                         y: UnsafeMutablePointer<Float>) {
        precondition(beta == 0 || beta == 1, "GEMM.rowVectorProduct: beta must be 0 or 1, got \(beta)")
        let n = w.n, k = w.k
        if n == 0 { return }
        if k == 0 {
            if beta == 0 { y.update(repeating: 0, count: n) }
            return
        }
        let accumulate: Int32 = beta == 1 ? 1 : 0
        let threads = n * k < parallelWorkThreshold ? 1 : min(Threading.maxThreads, n / rowVectorColumnsPerThread)
        if threads <= 1 {
            ember_sgemv_packed_avx2(n, k, w.kc, x, w.packed, y, accumulate)
            return
        }
        // Chunk t computes columns [j0, j1) only (whole strips): disjoint writes.
        let per = roundUp((n + threads - 1) / threads, to: 32)
        Threading.parallelFor(chunks: threads) { t in
            let j0 = min(n, t * per), j1 = min(n, j0 + per)
            if j0 < j1 { ember_sgemv_packed_avx2(j1 - j0, k, w.kc, x, w.packed + j0 * k, y + j0, accumulate) }
        }
    }
}
