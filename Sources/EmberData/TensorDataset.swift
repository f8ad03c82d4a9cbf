import EmberAutograd
import EmberTensor
import EmberStorage

/// A dataset held in memory: sample `i` is row `i` of `inputs` and of `labels`.
///
/// `inputs` has shape `[N, ...]` and `labels` `[N, ...]` (usually `[N]` int64 class indices);
/// sample `i` is ``Example`` `(inputs.row(i), labels.row(i))`, so a label of shape `[N]` gives 0-d
/// labels and the default collation stacks them back into `[batchSize]`.
///
/// ```swift
/// let data = TensorDataset(inputs: HostTensor(features, shape: [n, 4]), labels: HostTensor(classes))
/// let loader = DataLoader(data, batchSize: 32, shuffle: true)
/// ```
///
/// PyTorch parity: `torch.utils.data.TensorDataset(inputs, labels)` for the common case of two
/// tensors, with its check that they have the same first dimension ("Size mismatch between
/// tensors").
public struct TensorDataset: Dataset {
    /// All inputs, `[N, ...]`.
    public let inputs: HostTensor
    /// All labels, `[N, ...]`.
    public let labels: HostTensor

    /// A dataset over the rows of `inputs` and `labels`.
    ///
    /// - Precondition: both have at least one dimension and the same first dimension.
    public init(inputs: HostTensor, labels: HostTensor) {
        precondition(inputs.rank >= 1 && labels.rank >= 1,
                     "TensorDataset: inputs and labels need a sample dimension, but got shapes \(inputs.shape) and \(labels.shape)")
        precondition(inputs.shape[0] == labels.shape[0],
                     "TensorDataset: Size mismatch between tensors: inputs have \(inputs.shape[0]) samples (shape \(inputs.shape)) but labels have \(labels.shape[0]) (shape \(labels.shape))")
        self.inputs = inputs
        self.labels = labels
    }

    /// A dataset over copies of the rows of `inputs` and `labels` (any layout; a tensor's graph is
    /// not kept).
    public init(inputs: Tensor, labels: Tensor) {
        self.init(inputs: HostTensor(inputs), labels: HostTensor(labels))
    }

    /// A classification dataset from row-major float features (`featureShape` per sample, e.g.
    /// `[64]`) and one int64 class index per sample.
    public init(features: [Float], featureShape: Shape, labels: [Int64]) {
        var shape = featureShape
        shape.insert(labels.count, at: 0)
        precondition(features.count == shape.elementCount,
                     "TensorDataset: \(features.count) feature values do not make \(labels.count) samples of shape \(featureShape)")
        self.init(inputs: HostTensor(features, shape: shape), labels: HostTensor(labels))
    }

    /// The number of samples.
    public var count: Int { inputs.shape[0] }

    /// Sample `index`: row `index` of the inputs and of the labels.
    public subscript(index: Int) -> Example {
        precondition(index >= 0 && index < count,
                     "TensorDataset: index \(index) is out of bounds for dimension 0 with size \(count)")
        return Example(input: inputs.row(index), label: labels.row(index))
    }
}
