/// A collection of samples that can be read by index: the source a ``DataLoader`` draws batches
/// from.
///
/// A dataset is `Sendable` and so is its `Sample`, because the loader reads samples on its
/// prefetching thread while the model trains on the consumer's. Reading a sample must not depend on
/// shared mutable state; randomness (augmentation) should come from ``Generator/default``, which
/// the loader binds to a per-batch generator, so that runs are reproducible.
///
/// Validate files when the dataset is created (the readers throw ``DataError``); reading a sample
/// then cannot fail, and an index out of `0..<count` is a programmer error.
///
/// PyTorch parity: `torch.utils.data.Dataset` (map-style), with `count` for `__len__` and the
/// subscript for `__getitem__`.
///
/// See also: ``TensorDataset``, ``Subset``, ``randomSplit(_:lengths:generator:)``.
public protocol Dataset: Sendable {
    /// What one index yields; often ``Example``.
    associatedtype Sample: Sendable

    /// The number of samples.
    var count: Int { get }

    /// The sample at `index`, for `index` in `0..<count`.
    subscript(index: Int) -> Sample { get }
}

/// One sample: an input and its label (or regression target), each a ``HostTensor``.
///
/// The default collation of ``DataLoader`` stacks the inputs and the labels of a batch into a
/// ``HostBatch``, which becomes a ``Batch`` of two tensors.
///
/// PyTorch parity: the `(input, label)` tuple that `TensorDataset.__getitem__` returns.
public struct Example: Sendable, Equatable {
    /// The input (for a digit image: 64 float32 values, or `[1, 8, 8]`).
    public var input: HostTensor
    /// The label: a 0-d int64 class index for classification, any host tensor otherwise.
    public var label: HostTensor

    /// An example from an input and a label.
    public init(input: HostTensor, label: HostTensor) {
        self.input = input
        self.label = label
    }
}
