import EmberAutograd
import EmberFunctional
import EmberTensor
import EmberStorage

/// A lookup table: row `i` of `weight` is the vector for index `i`.
///
/// Input: int64 indices of any shape; output: that shape plus `[embeddingDim]`. The weight is
/// initialised `N(0, 1)`; the row at `paddingIdx` (if any) is zero and receives no gradient.
/// With `maxNorm`, every row a forward looks up whose `normType`-norm exceeds `maxNorm` is first
/// rescaled in place to that norm (outside the graph); with `scaleGradByFreq`, each row's gradient
/// is divided by how often its index occurs in the mini-batch.
///
/// PyTorch parity: `torch.nn.Embedding(num_embeddings, embedding_dim, padding_idx=None,
/// max_norm=None, norm_type=2.0, scale_grad_by_freq=False)` and `Embedding.from_pretrained`, with
/// the same init, negative `padding_idx` counted from the end, the same out-of-range error.
/// Not implemented: `sparse` gradients.
public final class Embedding: Module {
    public let numEmbeddings: Int
    public let embeddingDim: Int
    public let paddingIdx: Int?
    /// Rows looked up are rescaled to at most this norm before the lookup (`nil`: never).
    public let maxNorm: Double?
    /// The p of the norm `maxNorm` bounds.
    public let normType: Double
    /// Whether gradients are divided by the frequency of each index in the mini-batch.
    public let scaleGradByFreq: Bool
    public let weight: Parameter

    public init(_ numEmbeddings: Int, _ embeddingDim: Int, paddingIdx: Int? = nil, maxNorm: Double? = nil,
                normType: Double = 2, scaleGradByFreq: Bool = false, dtype: DType = .float32,
                generator: Generator = .default) {
        precondition(numEmbeddings > 0 && embeddingDim > 0, "Embedding: sizes must be positive, got \(numEmbeddings) x \(embeddingDim)")
        let (w, pad) = initialEmbeddingWeight(numEmbeddings, embeddingDim, paddingIdx: paddingIdx, dtype: dtype,
                                              generator: generator, name: "Embedding")
        self.numEmbeddings = numEmbeddings
        self.embeddingDim = embeddingDim
        self.paddingIdx = pad
        self.maxNorm = maxNorm
        self.normType = normType
        self.scaleGradByFreq = scaleGradByFreq
        weight = Parameter(w)
        super.init()
    }

    /// An embedding whose weight is `embeddings` (copied), frozen (`requiresGrad = false`) unless
    /// `freeze` is false. The padding row is kept as given, not zeroed.
    ///
    /// PyTorch parity: `nn.Embedding.from_pretrained(embeddings, freeze=True, padding_idx=None,
    /// max_norm=None, norm_type=2.0, scale_grad_by_freq=False)`, including its 2-D check.
    public init(pretrained embeddings: Tensor, freeze: Bool = true, paddingIdx: Int? = nil, maxNorm: Double? = nil,
                normType: Double = 2, scaleGradByFreq: Bool = false) {
        precondition(embeddings.rank == 2, "Embeddings parameter is expected to be 2-dimensional, got \(embeddings.shape)")
        precondition(embeddings.dtype.isFloatingPoint, "Embedding.fromPretrained: embeddings must be float32 or float64, got \(embeddings.dtype)")
        numEmbeddings = embeddings.shape[0]
        embeddingDim = embeddings.shape[1]
        self.paddingIdx = resolvedPaddingIndex(paddingIdx, numEmbeddings, "Embedding")
        self.maxNorm = maxNorm
        self.normType = normType
        self.scaleGradByFreq = scaleGradByFreq
        weight = Parameter(embeddings.contiguous(), requiresGrad: !freeze)
        super.init()
    }

    /// PyTorch's spelling of ``init(pretrained:freeze:paddingIdx:maxNorm:normType:scaleGradByFreq:)``.
    public static func fromPretrained(_ embeddings: Tensor, freeze: Bool = true, paddingIdx: Int? = nil,
                                      maxNorm: Double? = nil, normType: Double = 2, scaleGradByFreq: Bool = false) -> Embedding {
        Embedding(pretrained: embeddings, freeze: freeze, paddingIdx: paddingIdx, maxNorm: maxNorm, normType: normType,
                  scaleGradByFreq: scaleGradByFreq)
    }

    public override func forward(_ input: Tensor) -> Tensor {
        if let maxNorm { renormRows(weight, input, maxNorm: maxNorm, normType: normType, context: errorContext) }
        return embedding(input, weight: weight.value, paddingIdx: paddingIdx, scaleGradByFreq: scaleGradByFreq, context: errorContext)
    }

    public override var extraDescription: String {
        embeddingDescription(numEmbeddings, embeddingDim, paddingIdx: paddingIdx, maxNorm: maxNorm, normType: normType,
                             scaleGradByFreq: scaleGradByFreq)
    }
}

/// A bag of embeddings reduced per bag (sum, mean or max) without materialising the rows.
///
/// Call it with `[B, N]` indices (B bags of N) or with 1-D indices and `offsets`; see
/// ``embeddingBag(_:weight:offsets:mode:perSampleWeights:includeLastOffset:paddingIdx:scaleGradByFreq:context:)``.
///
/// PyTorch parity: `torch.nn.EmbeddingBag(num_embeddings, embedding_dim, max_norm=None,
/// norm_type=2.0, scale_grad_by_freq=False, mode='mean', sparse=False, include_last_offset=False,
/// padding_idx=None)` and `EmbeddingBag.from_pretrained`; N(0, 1) init with the padding row zeroed;
/// state-dict key `weight`. Not implemented: `sparse` gradients.
public final class EmbeddingBag: Module {
    public let numEmbeddings: Int
    public let embeddingDim: Int
    public let maxNorm: Double?
    public let normType: Double
    public let scaleGradByFreq: Bool
    /// How each bag is reduced (PyTorch's `mode`; `Module.mode` is the training mode).
    public let bagMode: EmbeddingBagMode
    public let includeLastOffset: Bool
    public let paddingIdx: Int?
    public let weight: Parameter

    public init(_ numEmbeddings: Int, _ embeddingDim: Int, maxNorm: Double? = nil, normType: Double = 2,
                scaleGradByFreq: Bool = false, mode: EmbeddingBagMode = .mean, includeLastOffset: Bool = false,
                paddingIdx: Int? = nil, dtype: DType = .float32, generator: Generator = .default) {
        precondition(numEmbeddings > 0 && embeddingDim > 0, "EmbeddingBag: sizes must be positive, got \(numEmbeddings) x \(embeddingDim)")
        let (w, pad) = initialEmbeddingWeight(numEmbeddings, embeddingDim, paddingIdx: paddingIdx, dtype: dtype,
                                              generator: generator, name: "EmbeddingBag")
        self.numEmbeddings = numEmbeddings
        self.embeddingDim = embeddingDim
        self.maxNorm = maxNorm
        self.normType = normType
        self.scaleGradByFreq = scaleGradByFreq
        self.bagMode = mode
        self.includeLastOffset = includeLastOffset
        self.paddingIdx = pad
        weight = Parameter(w)
        super.init()
    }

    /// A bag whose weight is `embeddings` (copied), frozen unless `freeze` is false.
    ///
    /// PyTorch parity: `nn.EmbeddingBag.from_pretrained(embeddings, freeze=True, ...)`.
    public static func fromPretrained(_ embeddings: Tensor, freeze: Bool = true, maxNorm: Double? = nil, normType: Double = 2,
                                      scaleGradByFreq: Bool = false, mode: EmbeddingBagMode = .mean,
                                      includeLastOffset: Bool = false, paddingIdx: Int? = nil) -> EmbeddingBag {
        precondition(embeddings.rank == 2, "Embeddings parameter is expected to be 2-dimensional, got \(embeddings.shape)")
        let bag = EmbeddingBag(embeddings.shape[0], embeddings.shape[1], maxNorm: maxNorm, normType: normType,
                               scaleGradByFreq: scaleGradByFreq, mode: mode, includeLastOffset: includeLastOffset,
                               paddingIdx: paddingIdx, dtype: embeddings.dtype, generator: Generator(seed: 0))
        withNoGrad { bag.weight.value = embeddings }
        bag.weight.requiresGrad = !freeze
        return bag
    }

    /// Reduces the bags of `input` (see the type's documentation).
    public func callAsFunction(_ input: Tensor, offsets: Tensor? = nil, perSampleWeights: Tensor? = nil) -> Tensor {
        if let maxNorm { renormRows(weight, input, maxNorm: maxNorm, normType: normType, context: errorContext) }
        return embeddingBag(input, weight: weight.value, offsets: offsets, mode: bagMode, perSampleWeights: perSampleWeights,
                            includeLastOffset: includeLastOffset, paddingIdx: paddingIdx, scaleGradByFreq: scaleGradByFreq,
                            context: errorContext)
    }

    public override func forward(_ input: Tensor) -> Tensor { self(input) }

    public override var extraDescription: String {
        embeddingDescription(numEmbeddings, embeddingDim, paddingIdx: paddingIdx, maxNorm: maxNorm, normType: normType,
                             scaleGradByFreq: scaleGradByFreq) + ", mode='\(bagMode.rawValue)'"
    }
}

/// `paddingIdx` checked against `rows` and counted from the end when negative (PyTorch's message).
private func resolvedPaddingIndex(_ paddingIdx: Int?, _ rows: Int, _ name: String) -> Int? {
    guard let p = paddingIdx else { return nil }
    precondition(p < rows && p >= -rows, "\(name): Padding_idx must be within num_embeddings (got \(p) for \(rows))")
    return p < 0 ? p + rows : p
}

/// PyTorch's initial table: N(0, 1) rows with the padding row (resolved by
/// `resolvedPaddingIndex`) zeroed.
private func initialEmbeddingWeight(_ rows: Int, _ dim: Int, paddingIdx: Int?, dtype: DType, generator: Generator,
                                    name: String) -> (Tensor, Int?) {
    var w = Tensor.normal([rows, dim], dtype: dtype, generator: generator)
    let pad = resolvedPaddingIndex(paddingIdx, rows, name)
    if let pad { w = embeddingZeroRow(w, pad) }
    return (w, pad)
}

/// Applies `max_norm` to the rows `input` selects, in place and outside the graph.
private func renormRows(_ weight: Parameter, _ input: Tensor, maxNorm: Double, normType: Double, context: String) {
    weight.updateValueInPlace { renormEmbeddingRows(&$0, indices: input, maxNorm: maxNorm, normType: normType, context: context) }
}

/// PyTorch's `extra_repr` of the embedding layers.
private func embeddingDescription(_ n: Int, _ d: Int, paddingIdx: Int?, maxNorm: Double?, normType: Double, scaleGradByFreq: Bool) -> String {
    var s = "\(n), \(d)"
    if let paddingIdx { s += ", padding_idx=\(paddingIdx)" }
    if let maxNorm { s += ", max_norm=\(formatPython(maxNorm))" }
    if normType != 2 { s += ", norm_type=\(formatPython(normType))" }
    if scaleGradByFreq { s += ", scale_grad_by_freq=True" }
    return s
}
