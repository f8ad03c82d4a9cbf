import EmberAutograd
import EmberStorage
import EmberTensor
import Synchronization

/// A convolution module's weight (and bias) packed for the stride-1 float32 forward
/// (``ConvolutionKernel/packedWeights(_:bias:_:_:)``), kept between calls that record no gradient
/// (inference) and remade when the weight's or the bias's storage or view changes.
///
/// Staleness is exact, as for `Linear`'s batch-1 packing: the entry holds a reference to the
/// storages it was made from, so any in-place write to them (optimizer steps, `loadStateDict`,
/// initializers all write copy-on-write) goes to a fresh copy, which no longer matches. A call
/// that records a gradient drops the entry (training changes the weight every step, and a kept
/// reference would make each step copy it). What packing on every call cost is in BENCHMARKS.md
/// (seventeenth session). Safe to use from several threads at once.
package final class ConvolutionWeightCache: @unchecked Sendable {
    /// Immutable once made; the lock guards which one is current.
    private struct Entry: @unchecked Sendable {
        let weight: TensorStorage, weightOffset: Int, weightShape: Shape, weightStrides: Shape
        let bias: TensorStorage?, biasOffset: Int
        let groups: Int
        let packed: [GEMM.PackedSingleA]
    }

    private let entry = Mutex<Entry?>(nil)

    package init() {}

    /// The packed weight for these operands: the kept one when it was made from them, else a
    /// fresh one (kept while nothing records a gradient through them).
    func packed(weight: Tensor, bias: Tensor?, groups: Int, make: () -> [GEMM.PackedSingleA]) -> [GEMM.PackedSingleA] {
        guard !shouldRecord([weight] + (bias.map { [$0] } ?? [])) else {
            clear()
            return make()
        }
        return entry.withLock { current in
            if let current, current.weight === weight.storage, current.weightOffset == weight.offset,
               current.weightShape == weight.shape, current.weightStrides == weight.strides,
               current.bias === bias?.storage, current.biasOffset == (bias?.offset ?? 0), current.groups == groups {
                return current.packed
            }
            let packed = make()
            current = Entry(weight: weight.storage, weightOffset: weight.offset, weightShape: weight.shape, weightStrides: weight.strides,
                            bias: bias?.storage, biasOffset: bias?.offset ?? 0, groups: groups, packed: packed)
            return packed
        }
    }

    /// Drops the packing (and its references to the storages).
    package func clear() {
        entry.withLock { current in
            if current != nil { current = nil }
        }
    }
}
