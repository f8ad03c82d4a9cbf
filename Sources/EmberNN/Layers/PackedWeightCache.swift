import EmberAutograd
import Synchronization
import EmberTensor
import EmberStorage

/// The packed copy of one `Linear` weight for batch-1 inference (``RowVectorPackedWeight``), made
/// on first use and remade when the weight's storage or view changes.
///
/// Staleness is exact, not a heuristic: the packing holds a reference to the storage it was made
/// from, so any in-place write to the weight (optimizer steps, `loadStateDict`, initializers all
/// write copy-on-write) finds the storage shared and writes to a fresh copy, which no longer
/// matches. Weights above ``maximumElements`` are not packed (the copy doubles their memory).
/// Safe to use from several threads at once (a lock around the lookup).
final class PackedWeightCache: ModuleTreeLeaf, @unchecked Sendable {
    /// Largest weight packed: 8M elements (32 MiB of float32).
    static let maximumElements = 1 << 23

    private let entry = Mutex<RowVectorPackedWeight?>(nil)

    /// The packing of `weight` (`[n, k]` float32), or `nil` when packing does not apply (other
    /// dtypes, CPUs without the AVX2 kernels, weights too large).
    func packed(for weight: Tensor) -> RowVectorPackedWeight? {
        guard weight.dtype == .float32, weight.rank == 2, weight.count <= Self.maximumElements,
              GEMM.packsRowVectorWeights
        else { return nil }
        let (n, k) = (weight.shape[0], weight.shape[1])
        let (rowStride, colStride) = (weight.strides[0], weight.strides[1])
        return entry.withLock { current in
            if let current, current.matches(storage: weight.storage, offset: weight.offset, n: n, k: k,
                                            rowStride: rowStride, colStride: colStride) {
                return current
            }
            let fresh = RowVectorPackedWeight(storage: weight.storage, offset: weight.offset, n: n, k: k,
                                              rowStride: rowStride, colStride: colStride)
            current = fresh
            return fresh
        }
    }

    /// Drops the packing (and its reference to the weight's storage).
    func clear() {
        entry.withLock { current in
            if current != nil { current = nil }
        }
    }
}
