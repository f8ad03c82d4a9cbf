import CEmberKernels

/// Philox4x32-10 blocks eight at a time on AVX2, sixteen on AVX-512 (`vector_x86.c`). EmberTensor's `Philox` owns the
/// algorithm and the scalar version; this only reaches the C kernel.
package enum PhiloxKernel {
    /// Whether ``fill(seed:index:stream:blocks:into:)`` can run on this CPU.
    package static let isAvailable = GEMMKernelPath.avx2.isSupported

    /// Writes the four words of block `(index + b, stream)` to `out[4 * b ..< 4 * b + 4]` for
    /// `b < blocks`. Requires ``isAvailable``.
    @inline(__always)
    package static func fill(seed: UInt64, index: UInt64, stream: UInt64, blocks: Int, into out: UnsafeMutablePointer<UInt32>) {
        precondition(isAvailable, "PhiloxKernel: AVX2 is not available on this CPU")
        fill(sixteenWide: sixteenWide, seed: seed, index: index, stream: stream, blocks: blocks, into: out)
    }

    /// Whether ``fill(seed:index:stream:blocks:into:)`` runs sixteen blocks at a time (AVX-512F,
    /// the same words): where GEMM dispatches its AVX-512 kernels.
    package static let sixteenWide = GEMMKernelPath.best == .avx512

    /// The kernel of ``fill(seed:index:stream:blocks:into:)`` at a chosen width, for tests.
    /// Requires ``isAvailable``, and AVX-512F for `sixteenWide`.
    package static func fill(sixteenWide: Bool, seed: UInt64, index: UInt64, stream: UInt64, blocks: Int,
                             into out: UnsafeMutablePointer<UInt32>) {
        if sixteenWide {
            ember_philox4x32_10_avx512(seed, index, stream, blocks, out)
        } else {
            ember_philox4x32_10_avx2(seed, index, stream, blocks, out)
        }
    }
}
