import Ember

/// Classifies an image read as a sequence of tokens: each row of pixels is one token, embedded
/// by a `Linear` layer and given a learned position vector, then a pre-norm
/// `TransformerEncoder`, the mean over tokens, a `LayerNorm` and a `Linear` head.
///
/// For the 8x8 digits: 8 tokens of 8 pixels. The mode changes the dropout inside the encoder
/// layers (attention weights, feed-forward and residual branches); eval output is deterministic.
///
/// PyTorch parity: the equivalent module with attributes `embed` (`nn.Linear`), `position`
/// (`nn.Parameter` of shape `[tokens, dModel]`), `encoder` (`nn.TransformerEncoder` of
/// `nn.TransformerEncoderLayer(..., batch_first=True, norm_first=True)`), `norm` and `head` has the
/// same state-dict keys.
public final class DigitTransformer: Module {
    public let embed: Linear
    public let position: Parameter
    public let encoder: TransformerEncoder
    public let norm: LayerNorm
    public let head: Linear
    public let tokens: Int
    public let features: Int

    /// - Parameters:
    ///   - tokens, features: each sample is `tokens` rows of `features` values.
    ///   - dModel: the token width; `heads` must divide it.
    ///   - feedforward: the hidden width of each layer's feed-forward block.
    public init(tokens: Int = 8, features: Int = 8, dModel: Int = 64, heads: Int = 4, feedforward: Int = 128,
                layers: Int = 2, classes: Int = 10, dropout: Double = 0.1) {
        precondition(dModel % heads == 0, "DigitTransformer: dModel \(dModel) must be divisible by heads \(heads)")
        self.tokens = tokens
        self.features = features
        embed = Linear(features, dModel)
        position = Parameter(Tensor.normal([tokens, dModel], std: 0.02))
        let layer = TransformerEncoderLayer(dModel: dModel, nhead: heads, dimFeedforward: feedforward, dropout: dropout,
                                            batchFirst: true, normFirst: true)
        encoder = TransformerEncoder(encoderLayer: layer, numLayers: layers)
        norm = LayerNorm(dModel)
        head = Linear(dModel, classes)
        super.init()
    }

    /// `input`: `[N, tokens * features]` (or `[N, tokens, features]`); returns logits `[N, classes]`.
    public override func forward(_ input: Tensor) -> Tensor {
        let sequence = input.reshaped([input.shape[0], tokens, features])
        let encoded = encoder(embed(sequence) + position.value)
        return head(norm(encoded.mean(axis: 1)))
    }
}
