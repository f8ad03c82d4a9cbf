import Ember

/// A small decoder-only Transformer over characters: token and position embeddings, a stack of
/// pre-norm `TransformerEncoderLayer`s run with a causal mask (each position sees only the ones
/// before it), a final `LayerNorm` and a `Linear` head giving the next character's logits.
///
/// PyTorch parity: the same module written with `nn.Embedding`, `nn.TransformerEncoder(...,
/// norm=nn.LayerNorm(d))` called with `mask=nn.Transformer.generate_square_subsequent_mask(T),
/// is_causal=True` and `nn.Linear` has the same state-dict keys (`tokens.weight`,
/// `positions.weight`, `blocks.layers.0.self_attn.in_proj_weight`, ..., `blocks.norm.weight`,
/// `head.weight`, `head.bias`).
final class CharTransformer: Module {
    let tokens: Embedding
    let positions: Embedding
    let blocks: TransformerEncoder
    let head: Linear
    let context: Int

    init(vocabulary: Int, context: Int, width: Int, heads: Int, layers: Int, dropout: Double) {
        self.context = context
        tokens = Embedding(vocabulary, width)
        positions = Embedding(context, width)
        let layer = TransformerEncoderLayer(dModel: width, nhead: heads, dimFeedforward: 4 * width, dropout: dropout,
                                            activation: .gelu, batchFirst: true, normFirst: true)
        blocks = TransformerEncoder(encoderLayer: layer, numLayers: layers, norm: LayerNorm(width))
        head = Linear(width, vocabulary)
        super.init()
        withNoGrad {
            tokens.weight.value = tokens.weight.value * 0.02
            positions.weight.value = positions.weight.value * 0.02
        }
    }

    /// `input`: int64 character indices `[N, T]` with `T <= context`; returns logits `[N, T, vocabulary]`.
    override func forward(_ input: Tensor) -> Tensor {
        let t = input.shape[1]
        precondition(t >= 1 && t <= context, "CharTransformer: sequence length \(t) must be in 1...\(context)")
        let where_ = Tensor((0..<Int64(t)).map { $0 }, shape: [t])
        let x = tokens(input) + positions(where_)
        let mask = Transformer.generateSquareSubsequentMask(t)
        return head(blocks(x, mask: mask, isCausal: true))
    }
}
