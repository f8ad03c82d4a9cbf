import EmberAutograd
import EmberTensor
import EmberStorage

/// Buffers a recurrent module reuses from call to call: the gate pre-activations, saved cell
/// states and gate gradients of its fused layers (several megabytes per layer at typical sizes),
/// and its layers' outputs and input gradients once the caller has let go of them.
///
/// Allocating such buffers afresh on every call costs more than the arithmetic on them: large
/// blocks come from the operating system as new pages, each zero-filled on its first touch. A
/// buffer is handed out again only when nothing else references it, checked with
/// `isKnownUniquelyReferenced`: while a recorded graph still holds a tape (a forward whose backward
/// has not run yet), or the caller still holds an output or gradient (or any view of it), the next
/// call allocates a new buffer instead, so reuse never changes a result or a value someone holds.
///
/// The memory stays with the module between calls (about the size of one training step's tapes);
/// ``release()`` (``RNNBase/releaseScratchBuffers()``) returns it.
package final class RecurrentWorkspace {
    private var storages: [Int: TensorStorage] = [:]

    /// A contiguous tensor of `shape` with unspecified contents, backed by slot `slot`'s storage when
    /// that storage is large enough and referenced by nothing else.
    package init() {}

    package func buffer(_ slot: Int, _ shape: Shape, dtype: DType) -> Tensor {
        let bytes = shape.elementCount * dtype.itemSize
        if storages[slot] != nil, isKnownUniquelyReferenced(&storages[slot]!), storages[slot]!.byteCount >= bytes {
            return Tensor(storage: storages[slot]!, shape: shape, strides: shape.contiguousStrides, offset: 0, dtype: dtype)
        }
        let t = Tensor(uninitializedShape: shape, dtype: dtype)
        storages[slot] = t.storage
        return t
    }

    /// Frees every buffer (tensors still using one keep it alive).
    package func release() { storages.removeAll() }

    /// The slot of buffer `role` for layer `layer`, direction `direction`.
    static func slot(layer: Int, direction: Int, _ role: Role) -> Int { (layer * 2 + direction) * 16 + role.rawValue }

    /// What a buffer holds.
    enum Role: Int {
        case gates, activations, cells, tanhCells, rawHidden, hiddenNew, hiddenGates, preActivations
        case gradGates, gradScratch, transposedHiddenWeights, transposedProjection, output, gradInput, contiguousInput
    }
}

/// Hands out buffers from a workspace, or plain allocations without one.
package struct BufferSource {
    package var workspace: RecurrentWorkspace?
    package var layer: Int

    package init(workspace: RecurrentWorkspace?, layer: Int) {
        self.workspace = workspace
        self.layer = layer
    }

    func callAsFunction(_ role: RecurrentWorkspace.Role, direction: Int = 0, _ shape: Shape, dtype: DType) -> Tensor {
        guard let workspace else { return Tensor(uninitializedShape: shape, dtype: dtype) }
        return workspace.buffer(RecurrentWorkspace.slot(layer: layer, direction: direction, role), shape, dtype: dtype)
    }
}
