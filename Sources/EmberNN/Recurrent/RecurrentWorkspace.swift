import EmberAutograd

/// Buffers a recurrent module reuses from call to call: the gate pre-activations, saved cell
/// states and gate gradients of its fused layers (several megabytes per layer at typical sizes).
///
/// Allocating such buffers afresh on every call costs more than the arithmetic on them: large
/// blocks come from the operating system as new pages, each zero-filled on its first touch. A
/// buffer is handed out again only when nothing else references it, checked with
/// `isKnownUniquelyReferenced`: while a recorded graph still holds a tape (a forward whose backward
/// has not run yet), the next call allocates a new buffer instead, so reuse never changes a result.
///
/// The memory stays with the module between calls (about the size of one training step's tapes);
/// ``release()`` returns it.
final class RecurrentWorkspace: ModuleTreeLeaf {
    private var storages: [Int: TensorStorage] = [:]

    /// A contiguous tensor of `shape` with unspecified contents, backed by slot `slot`'s storage when
    /// that storage is large enough and referenced by nothing else.
    func buffer(_ slot: Int, _ shape: Shape, dtype: DType) -> Tensor {
        let bytes = shape.elementCount * dtype.itemSize
        if storages[slot] != nil, isKnownUniquelyReferenced(&storages[slot]!), storages[slot]!.byteCount >= bytes {
            return Tensor(storage: storages[slot]!, shape: shape, strides: shape.contiguousStrides, offset: 0, dtype: dtype)
        }
        let t = Tensor(uninitializedShape: shape, dtype: dtype)
        storages[slot] = t.storage
        return t
    }

    /// Frees every buffer (tensors still using one keep it alive).
    func release() { storages.removeAll() }

    /// The slot of buffer `role` for layer `layer`, direction `direction`.
    static func slot(layer: Int, direction: Int, _ role: Role) -> Int { (layer * 2 + direction) * 16 + role.rawValue }

    /// What a buffer holds.
    enum Role: Int {
        case gates, cells, tanhCells, rawHidden, hiddenNew, hiddenGates, preActivations
        case gradGates, gradScratch, transposedInputWeights, transposedHiddenWeights, transposedProjection
    }
}

/// Hands out buffers from a workspace, or plain allocations without one.
struct BufferSource {
    var workspace: RecurrentWorkspace?
    var layer: Int

    func callAsFunction(_ role: RecurrentWorkspace.Role, direction: Int = 0, _ shape: Shape, dtype: DType) -> Tensor {
        guard let workspace else { return Tensor(uninitializedShape: shape, dtype: dtype) }
        return workspace.buffer(RecurrentWorkspace.slot(layer: layer, direction: direction, role), shape, dtype: dtype)
    }
}
