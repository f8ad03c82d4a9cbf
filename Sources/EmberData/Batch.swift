import EmberAutograd
import EmberTensor
import EmberStorage

/// What a collate function produces: a `Sendable` host-side batch, prepared on the loader's
/// prefetching thread, that the loader turns into its element on the consuming thread.
///
/// ``HostBatch`` becomes a ``Batch`` of tensors and ``HostTensor`` a `Tensor`. Conform your own
/// collated type to return something else; a type that should be handed over as it is declares
/// `Element == Self` and gets `materialized()` for free.
public protocol CollatedBatch: Sendable {
    /// What the loader yields for this batch.
    associatedtype Element

    /// The loader's element for this batch; called on the consuming thread.
    func materialized() -> Element
}

extension CollatedBatch where Element == Self {
    /// The batch itself.
    public func materialized() -> Self { self }
}

/// A collated batch of inputs and labels on the host, ready to cross threads.
///
/// PyTorch parity: what `default_collate` returns for a batch of `(input, label)` tuples, before
/// it reaches the training loop.
public struct HostBatch: CollatedBatch, Equatable {
    /// The inputs stacked along a new first dimension, `[batchSize, ...]`.
    public var inputs: HostTensor
    /// The labels stacked along a new first dimension, `[batchSize, ...]`.
    public var labels: HostTensor

    /// A batch from stacked inputs and labels.
    public init(inputs: HostTensor, labels: HostTensor) {
        self.inputs = inputs
        self.labels = labels
    }

    /// The batch as tensors.
    public func materialized() -> Batch { Batch(inputs: Tensor(inputs), labels: Tensor(labels)) }
}

extension HostTensor: CollatedBatch {
    /// The host tensor as a `Tensor`.
    public func materialized() -> Tensor { Tensor(self) }
}

/// A batch as the training loop sees it: inputs and labels as tensors.
///
/// PyTorch parity: the `(inputs, labels)` pair a `DataLoader` over a `TensorDataset` yields.
public struct Batch {
    /// `[batchSize, ...]`.
    public var inputs: Tensor
    /// `[batchSize, ...]` (for classification, `[batchSize]` int64 class indices).
    public var labels: Tensor

    /// A batch from input and label tensors.
    public init(inputs: Tensor, labels: Tensor) {
        self.inputs = inputs
        self.labels = labels
    }
}

/// Stacks the inputs and the labels of `examples` along a new first dimension.
///
/// - Precondition: `examples` is not empty and all inputs (and all labels) share one shape and
///   dtype.
///
/// PyTorch parity: `torch.utils.data.default_collate` on `(input, label)` tuples, with
/// `torch.stack`'s error text for samples of different shapes.
public func defaultCollate(_ examples: [Example]) -> HostBatch {
    HostBatch(inputs: HostTensor.stacked(examples.map(\.input)), labels: HostTensor.stacked(examples.map(\.label)))
}

/// A dataset of ``Example``s that can copy a batch's rows straight out of its tensors.
///
/// ``DataLoader``'s default collation uses it when the dataset conforms: each batch is gathered
/// once (`HostTensor.rows`), instead of copying every sample out and then stacking the copies.
/// The batch is the one ``defaultCollate(_:)`` gives for the same samples.
public protocol BatchGathering: Dataset where Sample == Example {
    /// The samples at `indices`, stacked as ``defaultCollate(_:)`` stacks them.
    func gather(_ indices: ArraySlice<Int>) -> HostBatch
}

extension TensorDataset: BatchGathering {
    public func gather(_ indices: ArraySlice<Int>) -> HostBatch {
        HostBatch(inputs: inputs.rows(indices), labels: labels.rows(indices))
    }
}

extension Subset: BatchGathering where Base: BatchGathering {
    public func gather(_ indices: ArraySlice<Int>) -> HostBatch {
        for i in indices {
            precondition(i >= 0 && i < self.indices.count, "Subset: index \(i) is out of range for a subset of size \(self.indices.count)")
        }
        return base.gather(ArraySlice(indices.map { self.indices[$0] }))
    }
}
