import EmberAutograd
import EmberFunctional
import EmberTensor
import EmberStorage

/// A lookup table: row `i` of `weight` is the vector for index `i`.
///
/// Input: int64 indices of any shape; output: that shape plus `[embeddingDim]`. The weight is
/// initialised `N(0, 1)`; the row at `paddingIdx` (if any) is zero and receives no gradient.
///
/// PyTorch parity: `torch.nn.Embedding(num_embeddings, embedding_dim, padding_idx=None)` with the
/// same init, negative `padding_idx` counted from the end, the same out-of-range error. Not
/// implemented: `max_norm`, `scale_grad_by_freq`, `sparse`.
public final class Embedding: Module {
    public let numEmbeddings: Int
    public let embeddingDim: Int
    public let paddingIdx: Int?
    public let weight: Parameter

    public init(_ numEmbeddings: Int, _ embeddingDim: Int, paddingIdx: Int? = nil, dtype: DType = .float32,
                generator: Generator = .default) {
        precondition(numEmbeddings > 0 && embeddingDim > 0, "Embedding: sizes must be positive, got \(numEmbeddings) x \(embeddingDim)")
        var pad = paddingIdx
        if let p = paddingIdx {
            precondition(p < numEmbeddings && p >= -numEmbeddings, "Embedding: Padding_idx must be within num_embeddings (got \(p) for \(numEmbeddings))")
            pad = p < 0 ? p + numEmbeddings : p
        }
        self.numEmbeddings = numEmbeddings
        self.embeddingDim = embeddingDim
        self.paddingIdx = pad
        var w = Tensor.normal([numEmbeddings, embeddingDim], dtype: dtype, generator: generator)
        if let pad {
            w = embeddingZeroRow(w, pad)
        }
        weight = Parameter(w)
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        embedding(input, weight: weight.value, paddingIdx: paddingIdx, context: errorContext)
    }

    public override var extraDescription: String {
        "\(numEmbeddings), \(embeddingDim)" + (paddingIdx.map { ", padding_idx=\($0)" } ?? "")
    }
}
