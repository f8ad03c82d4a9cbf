import EmberAutograd
import EmberTensor
import EmberStorage
/// Module state that is saved with the model but never optimized: running statistics, counters.
///
/// A persistent buffer appears in `stateDict()`; a non-persistent one is listed by `buffers()` but
/// not saved.
///
/// PyTorch parity: `register_buffer(name, tensor, persistent=...)`.
public final class Buffer {
    /// The current value (never requires gradients).
    public var value: Tensor {
        didSet { if value.requiresGrad || !value.isLeaf { value = value.detached() } }
    }
    /// Whether `stateDict()` includes this buffer.
    public let isPersistent: Bool

    public init(_ value: Tensor, persistent: Bool = true) {
        self.value = value.detached()
        self.isPersistent = persistent
    }
}
