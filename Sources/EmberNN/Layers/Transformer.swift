import Foundation
import EmberAutograd
import EmberFunctional
import EmberTensor
import EmberStorage

/// The feed-forward activation of the Transformer layers.
///
/// PyTorch parity: the `activation` argument, `"relu"` (default), `"gelu"` (exact) or a callable.
public enum TransformerActivation {
    case relu
    case gelu
    /// Any function of a tensor (differentiable when built from recorded ops).
    case custom((Tensor) -> Tensor)

    /// `apply(linear(x))`, with ReLU fused into the product (``Linear/forwardReLU(_:)``).
    func activated(_ linear: Linear, _ x: Tensor) -> Tensor {
        if case .relu = self { return linear.forwardReLU(x) }
        return apply(linear(x))
    }

    func apply(_ x: Tensor) -> Tensor {
        switch self {
        case .relu: x.relu()
        case .gelu: x.gelu()
        case .custom(let f): f(x)
        }
    }
}

/// One Transformer encoder layer: self-attention and a feed-forward block, each with a residual
/// connection and layer normalization (after the residual sum, or before each block with
/// `normFirst`).
///
/// Post-norm: `x = norm1(x + sa(x))`, then `x = norm2(x + ff(x))`. Pre-norm: `x = x + sa(norm1(x));
/// x = x + ff(norm2(x))`, with `sa(x) = dropout1(self_attn(x, x, x))` and
/// `ff(x) = dropout2(linear2(dropout(activation(linear1(x)))))`.
///
/// PyTorch parity: `torch.nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=2048,
/// dropout=0.1, activation=relu, layer_norm_eps=1e-05, batch_first=False, norm_first=False,
/// bias=True)`: the same submodules and state-dict keys (`self_attn.in_proj_weight`,
/// `linear1.weight`, `norm1.weight`, ...), masks as `MultiheadAttention`'s (bool `true` = masked).
/// No fused eval fast path (the same values up to rounding).
public final class TransformerEncoderLayer: Module {
    public let selfAttn: MultiheadAttention
    public let linear1: Linear
    public let dropout: Dropout
    public let linear2: Linear
    public let norm1: LayerNorm
    public let norm2: LayerNorm
    public let dropout1: Dropout
    public let dropout2: Dropout
    public let normFirst: Bool
    public let activation: TransformerActivation
    let configuration: (dModel: Int, nhead: Int, dimFeedforward: Int, dropout: Double, eps: Double,
                        batchFirst: Bool, bias: Bool, dtype: DType)

    public init(dModel: Int, nhead: Int, dimFeedforward: Int = 2048, dropout: Double = 0.1,
                activation: TransformerActivation = .relu, layerNormEps: Double = 1e-5, batchFirst: Bool = false,
                normFirst: Bool = false, bias: Bool = true, dtype: DType = .float32) {
        selfAttn = MultiheadAttention(embedDim: dModel, numHeads: nhead, dropout: dropout, bias: bias,
                                      batchFirst: batchFirst, dtype: dtype)
        linear1 = Linear(dModel, dimFeedforward, bias: bias, dtype: dtype)
        self.dropout = Dropout(dropout)
        linear2 = Linear(dimFeedforward, dModel, bias: bias, dtype: dtype)
        norm1 = LayerNorm([dModel], eps: layerNormEps, bias: bias, dtype: dtype)
        norm2 = LayerNorm([dModel], eps: layerNormEps, bias: bias, dtype: dtype)
        dropout1 = Dropout(dropout)
        dropout2 = Dropout(dropout)
        self.normFirst = normFirst
        self.activation = activation
        configuration = (dModel, nhead, dimFeedforward, dropout, layerNormEps, batchFirst, bias, dtype)
        super.init()
    }

    /// A new layer with this one's configuration (fresh parameters), for deep copies.
    func rebuilt() -> TransformerEncoderLayer {
        let c = configuration
        return TransformerEncoderLayer(dModel: c.dModel, nhead: c.nhead, dimFeedforward: c.dimFeedforward,
                                       dropout: c.dropout, activation: activation, layerNormEps: c.eps,
                                       batchFirst: c.batchFirst, normFirst: normFirst, bias: c.bias, dtype: c.dtype)
    }

    public override func forward(_ input: Tensor) -> Tensor { forward(input, srcMask: nil, srcKeyPaddingMask: nil, isCausal: false) }

    /// `forward(_:srcMask:srcKeyPaddingMask:isCausal:)`.
    public func callAsFunction(_ src: Tensor, srcMask: Tensor? = nil, srcKeyPaddingMask: Tensor? = nil,
                               isCausal: Bool = false) -> Tensor {
        forward(src, srcMask: srcMask, srcKeyPaddingMask: srcKeyPaddingMask, isCausal: isCausal)
    }

    /// PyTorch parity: `TransformerEncoderLayer.forward(src, src_mask=None, src_key_padding_mask=None, is_causal=False)`.
    public func forward(_ src: Tensor, srcMask: Tensor?, srcKeyPaddingMask: Tensor?, isCausal: Bool) -> Tensor {
        func sa(_ x: Tensor) -> Tensor {
            dropout1(selfAttn.forward(query: x, key: x, value: x, keyPaddingMask: srcKeyPaddingMask, needWeights: false,
                                      attnMask: srcMask, isCausal: isCausal).output)
        }
        func ff(_ x: Tensor) -> Tensor { dropout2(linear2(dropout(activation.activated(linear1, x)))) }
        var x = src
        if normFirst {
            x = x + sa(norm1(x))
            x = x + ff(norm2(x))
        } else {
            x = norm1.forwardOfSum(x, sa(x))
            x = norm2.forwardOfSum(x, ff(x))
        }
        return x
    }
}

/// One Transformer decoder layer: masked self-attention, attention over the encoder's output
/// (`memory`) and a feed-forward block, each with a residual connection and layer normalization
/// (post-norm, or pre-norm with `normFirst`).
///
/// PyTorch parity: `torch.nn.TransformerDecoderLayer(d_model, nhead, dim_feedforward=2048,
/// dropout=0.1, activation=relu, layer_norm_eps=1e-05, batch_first=False, norm_first=False,
/// bias=True)`: the same submodules and keys (`self_attn`, `multihead_attn`, `linear1`, `linear2`,
/// `norm1`...`norm3`).
public final class TransformerDecoderLayer: Module {
    public let selfAttn: MultiheadAttention
    public let multiheadAttn: MultiheadAttention
    public let linear1: Linear
    public let dropout: Dropout
    public let linear2: Linear
    public let norm1: LayerNorm
    public let norm2: LayerNorm
    public let norm3: LayerNorm
    public let dropout1: Dropout
    public let dropout2: Dropout
    public let dropout3: Dropout
    public let normFirst: Bool
    public let activation: TransformerActivation
    let configuration: (dModel: Int, nhead: Int, dimFeedforward: Int, dropout: Double, eps: Double,
                        batchFirst: Bool, bias: Bool, dtype: DType)

    public init(dModel: Int, nhead: Int, dimFeedforward: Int = 2048, dropout: Double = 0.1,
                activation: TransformerActivation = .relu, layerNormEps: Double = 1e-5, batchFirst: Bool = false,
                normFirst: Bool = false, bias: Bool = true, dtype: DType = .float32) {
        selfAttn = MultiheadAttention(embedDim: dModel, numHeads: nhead, dropout: dropout, bias: bias,
                                      batchFirst: batchFirst, dtype: dtype)
        multiheadAttn = MultiheadAttention(embedDim: dModel, numHeads: nhead, dropout: dropout, bias: bias,
                                           batchFirst: batchFirst, dtype: dtype)
        linear1 = Linear(dModel, dimFeedforward, bias: bias, dtype: dtype)
        self.dropout = Dropout(dropout)
        linear2 = Linear(dimFeedforward, dModel, bias: bias, dtype: dtype)
        norm1 = LayerNorm([dModel], eps: layerNormEps, bias: bias, dtype: dtype)
        norm2 = LayerNorm([dModel], eps: layerNormEps, bias: bias, dtype: dtype)
        norm3 = LayerNorm([dModel], eps: layerNormEps, bias: bias, dtype: dtype)
        dropout1 = Dropout(dropout)
        dropout2 = Dropout(dropout)
        dropout3 = Dropout(dropout)
        self.normFirst = normFirst
        self.activation = activation
        configuration = (dModel, nhead, dimFeedforward, dropout, layerNormEps, batchFirst, bias, dtype)
        super.init()
    }

    /// A new layer with this one's configuration (fresh parameters), for deep copies.
    func rebuilt() -> TransformerDecoderLayer {
        let c = configuration
        return TransformerDecoderLayer(dModel: c.dModel, nhead: c.nhead, dimFeedforward: c.dimFeedforward,
                                       dropout: c.dropout, activation: activation, layerNormEps: c.eps,
                                       batchFirst: c.batchFirst, normFirst: normFirst, bias: c.bias, dtype: c.dtype)
    }

    /// Stops: a decoder layer needs `memory`; call `forward(_:memory:...)`.
    public override func forward(_ input: Tensor) -> Tensor {
        preconditionFailure("\(errorContext): TransformerDecoderLayer needs memory; call layer(tgt, memory: memory) (input shape \(input.shape))")
    }

    /// `forward(_:memory:...)`.
    public func callAsFunction(_ tgt: Tensor, memory: Tensor, tgtMask: Tensor? = nil, memoryMask: Tensor? = nil,
                               tgtKeyPaddingMask: Tensor? = nil, memoryKeyPaddingMask: Tensor? = nil,
                               tgtIsCausal: Bool = false, memoryIsCausal: Bool = false) -> Tensor {
        forward(tgt, memory: memory, tgtMask: tgtMask, memoryMask: memoryMask, tgtKeyPaddingMask: tgtKeyPaddingMask,
                memoryKeyPaddingMask: memoryKeyPaddingMask, tgtIsCausal: tgtIsCausal, memoryIsCausal: memoryIsCausal)
    }

    /// PyTorch parity: `TransformerDecoderLayer.forward(tgt, memory, tgt_mask=None, memory_mask=None,
    /// tgt_key_padding_mask=None, memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False)`.
    public func forward(_ tgt: Tensor, memory: Tensor, tgtMask: Tensor? = nil, memoryMask: Tensor? = nil,
                        tgtKeyPaddingMask: Tensor? = nil, memoryKeyPaddingMask: Tensor? = nil,
                        tgtIsCausal: Bool = false, memoryIsCausal: Bool = false) -> Tensor {
        func sa(_ x: Tensor) -> Tensor {
            dropout1(selfAttn.forward(query: x, key: x, value: x, keyPaddingMask: tgtKeyPaddingMask, needWeights: false,
                                      attnMask: tgtMask, isCausal: tgtIsCausal).output)
        }
        func mha(_ x: Tensor) -> Tensor {
            dropout2(multiheadAttn.forward(query: x, key: memory, value: memory, keyPaddingMask: memoryKeyPaddingMask,
                                           needWeights: false, attnMask: memoryMask, isCausal: memoryIsCausal).output)
        }
        func ff(_ x: Tensor) -> Tensor { dropout3(linear2(dropout(activation.activated(linear1, x)))) }
        var x = tgt
        if normFirst {
            x = x + sa(norm1(x))
            x = x + mha(norm2(x))
            x = x + ff(norm3(x))
        } else {
            x = norm1.forwardOfSum(x, sa(x))
            x = norm2.forwardOfSum(x, mha(x))
            x = norm3.forwardOfSum(x, ff(x))
        }
        return x
    }
}

/// A stack of `numLayers` deep copies of `encoderLayer` (each with its own parameters, all starting
/// from the given layer's values), then an optional final `norm`.
///
/// PyTorch parity: `torch.nn.TransformerEncoder(encoder_layer, num_layers, norm=None)`: keys
/// `layers.0.self_attn.in_proj_weight`, ..., `norm.weight`. PyTorch's eval fast path converts a
/// padded batch to a nested tensor and returns 0 at padded positions (before `norm`); Ember
/// computes every position as the slow path does, so padded positions differ (other positions
/// agree up to rounding, and they do not depend on the padding).
public final class TransformerEncoder: Module {
    public let layers: ModuleList
    public let norm: Module?
    public let numLayers: Int

    public init(encoderLayer: TransformerEncoderLayer, numLayers: Int, norm: Module? = nil) {
        precondition(numLayers >= 0, "TransformerEncoder: num_layers must be non-negative, got \(numLayers)")
        layers = ModuleList((0..<numLayers).map { _ in encoderLayer.deepCopy(rebuilding: { encoderLayer.rebuilt() }) })
        self.norm = norm
        self.numLayers = numLayers
        super.init()
    }

    /// A stack of the given layers as they are (deep copies use it).
    init(layers: [Module], norm: Module?) {
        self.layers = ModuleList(layers)
        self.norm = norm
        numLayers = layers.count
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor { forward(input, mask: nil, srcKeyPaddingMask: nil, isCausal: nil) }

    /// `forward(_:mask:srcKeyPaddingMask:isCausal:)`.
    public func callAsFunction(_ src: Tensor, mask: Tensor? = nil, srcKeyPaddingMask: Tensor? = nil,
                               isCausal: Bool? = nil) -> Tensor {
        forward(src, mask: mask, srcKeyPaddingMask: srcKeyPaddingMask, isCausal: isCausal)
    }

    /// PyTorch parity: `TransformerEncoder.forward(src, mask=None, src_key_padding_mask=None, is_causal=None)`;
    /// `isCausal` is a hint that `mask` is causal (the mask is applied either way).
    public func forward(_ src: Tensor, mask: Tensor?, srcKeyPaddingMask: Tensor?, isCausal: Bool?) -> Tensor {
        var x = src
        for case let layer as TransformerEncoderLayer in layers.modules {
            x = layer.forward(x, srcMask: mask, srcKeyPaddingMask: srcKeyPaddingMask, isCausal: isCausal ?? false)
        }
        if let norm { x = norm(x) }
        return x
    }
}

/// A stack of `numLayers` deep copies of `decoderLayer`, then an optional final `norm`.
///
/// PyTorch parity: `torch.nn.TransformerDecoder(decoder_layer, num_layers, norm=None)`.
public final class TransformerDecoder: Module {
    public let layers: ModuleList
    public let norm: Module?
    public let numLayers: Int

    public init(decoderLayer: TransformerDecoderLayer, numLayers: Int, norm: Module? = nil) {
        precondition(numLayers >= 0, "TransformerDecoder: num_layers must be non-negative, got \(numLayers)")
        layers = ModuleList((0..<numLayers).map { _ in decoderLayer.deepCopy(rebuilding: { decoderLayer.rebuilt() }) })
        self.norm = norm
        self.numLayers = numLayers
        super.init()
    }

    /// A stack of the given layers as they are (deep copies use it).
    init(layers: [Module], norm: Module?) {
        self.layers = ModuleList(layers)
        self.norm = norm
        numLayers = layers.count
        super.init()
    }

    /// Stops: a decoder needs `memory`.
    public override func forward(_ input: Tensor) -> Tensor {
        preconditionFailure("\(errorContext): TransformerDecoder needs memory; call decoder(tgt, memory: memory) (input shape \(input.shape))")
    }

    /// `forward(_:memory:...)`.
    public func callAsFunction(_ tgt: Tensor, memory: Tensor, tgtMask: Tensor? = nil, memoryMask: Tensor? = nil,
                               tgtKeyPaddingMask: Tensor? = nil, memoryKeyPaddingMask: Tensor? = nil,
                               tgtIsCausal: Bool? = nil, memoryIsCausal: Bool = false) -> Tensor {
        forward(tgt, memory: memory, tgtMask: tgtMask, memoryMask: memoryMask, tgtKeyPaddingMask: tgtKeyPaddingMask,
                memoryKeyPaddingMask: memoryKeyPaddingMask, tgtIsCausal: tgtIsCausal, memoryIsCausal: memoryIsCausal)
    }

    /// PyTorch parity: `TransformerDecoder.forward(tgt, memory, tgt_mask=None, memory_mask=None,
    /// tgt_key_padding_mask=None, memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False)`.
    public func forward(_ tgt: Tensor, memory: Tensor, tgtMask: Tensor? = nil, memoryMask: Tensor? = nil,
                        tgtKeyPaddingMask: Tensor? = nil, memoryKeyPaddingMask: Tensor? = nil,
                        tgtIsCausal: Bool? = nil, memoryIsCausal: Bool = false) -> Tensor {
        var x = tgt
        for case let layer as TransformerDecoderLayer in layers.modules {
            x = layer.forward(x, memory: memory, tgtMask: tgtMask, memoryMask: memoryMask,
                              tgtKeyPaddingMask: tgtKeyPaddingMask, memoryKeyPaddingMask: memoryKeyPaddingMask,
                              tgtIsCausal: tgtIsCausal ?? false, memoryIsCausal: memoryIsCausal)
        }
        if let norm { x = norm(x) }
        return x
    }
}

/// The Transformer of "Attention Is All You Need": an encoder stack and a decoder stack, each
/// with a final layer norm. Every parameter with more than one dimension is re-initialised
/// xavier-uniform (PyTorch's `_reset_parameters`).
///
/// PyTorch parity: `torch.nn.Transformer(d_model=512, nhead=8, num_encoder_layers=6,
/// num_decoder_layers=6, dim_feedforward=2048, dropout=0.1, activation=relu, layer_norm_eps=1e-05,
/// batch_first=False, norm_first=False, bias=True)` (no custom encoder/decoder arguments): keys
/// `encoder.layers.0....`, `encoder.norm.weight`, `decoder.layers.0....`, `decoder.norm.weight`.
public final class Transformer: Module {
    public let encoder: TransformerEncoder
    public let decoder: TransformerDecoder
    public let dModel: Int
    public let nhead: Int
    public let batchFirst: Bool

    public init(dModel: Int = 512, nhead: Int = 8, numEncoderLayers: Int = 6, numDecoderLayers: Int = 6,
                dimFeedforward: Int = 2048, dropout: Double = 0.1, activation: TransformerActivation = .relu,
                layerNormEps: Double = 1e-5, batchFirst: Bool = false, normFirst: Bool = false, bias: Bool = true,
                dtype: DType = .float32) {
        let encoderLayer = TransformerEncoderLayer(dModel: dModel, nhead: nhead, dimFeedforward: dimFeedforward,
                                                   dropout: dropout, activation: activation, layerNormEps: layerNormEps,
                                                   batchFirst: batchFirst, normFirst: normFirst, bias: bias, dtype: dtype)
        encoder = TransformerEncoder(encoderLayer: encoderLayer, numLayers: numEncoderLayers,
                                     norm: LayerNorm([dModel], eps: layerNormEps, bias: bias, dtype: dtype))
        let decoderLayer = TransformerDecoderLayer(dModel: dModel, nhead: nhead, dimFeedforward: dimFeedforward,
                                                   dropout: dropout, activation: activation, layerNormEps: layerNormEps,
                                                   batchFirst: batchFirst, normFirst: normFirst, bias: bias, dtype: dtype)
        decoder = TransformerDecoder(decoderLayer: decoderLayer, numLayers: numDecoderLayers,
                                     norm: LayerNorm([dModel], eps: layerNormEps, bias: bias, dtype: dtype))
        self.dModel = dModel
        self.nhead = nhead
        self.batchFirst = batchFirst
        super.init()
        for (_, p) in namedParameters() where p.value.rank > 1 { Init.xavierUniform(p) }
    }

    /// A model of the given stacks as they are (deep copies use it).
    init(encoder: TransformerEncoder, decoder: TransformerDecoder, dModel: Int, nhead: Int, batchFirst: Bool) {
        self.encoder = encoder
        self.decoder = decoder
        self.dModel = dModel
        self.nhead = nhead
        self.batchFirst = batchFirst
        super.init()
    }

    /// Stops: a Transformer needs `src` and `tgt`.
    public override func forward(_ input: Tensor) -> Tensor {
        preconditionFailure("\(errorContext): Transformer needs src and tgt; call transformer(src, tgt) (input shape \(input.shape))")
    }

    /// `forward(_:_:...)`.
    public func callAsFunction(_ src: Tensor, _ tgt: Tensor, srcMask: Tensor? = nil, tgtMask: Tensor? = nil,
                               memoryMask: Tensor? = nil, srcKeyPaddingMask: Tensor? = nil,
                               tgtKeyPaddingMask: Tensor? = nil, memoryKeyPaddingMask: Tensor? = nil,
                               srcIsCausal: Bool? = nil, tgtIsCausal: Bool? = nil, memoryIsCausal: Bool = false) -> Tensor {
        forward(src, tgt, srcMask: srcMask, tgtMask: tgtMask, memoryMask: memoryMask, srcKeyPaddingMask: srcKeyPaddingMask,
                tgtKeyPaddingMask: tgtKeyPaddingMask, memoryKeyPaddingMask: memoryKeyPaddingMask,
                srcIsCausal: srcIsCausal, tgtIsCausal: tgtIsCausal, memoryIsCausal: memoryIsCausal)
    }

    /// The decoder's output for `tgt` attending to the encoded `src`.
    ///
    /// PyTorch parity: `Transformer.forward(src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
    /// src_key_padding_mask=None, tgt_key_padding_mask=None, memory_key_padding_mask=None,
    /// src_is_causal=None, tgt_is_causal=None, memory_is_causal=False)`, including its two shape errors.
    public func forward(_ src: Tensor, _ tgt: Tensor, srcMask: Tensor? = nil, tgtMask: Tensor? = nil,
                        memoryMask: Tensor? = nil, srcKeyPaddingMask: Tensor? = nil,
                        tgtKeyPaddingMask: Tensor? = nil, memoryKeyPaddingMask: Tensor? = nil,
                        srcIsCausal: Bool? = nil, tgtIsCausal: Bool? = nil, memoryIsCausal: Bool = false) -> Tensor {
        let batched = src.rank == 3
        if batched {
            let batchAxis = batchFirst ? 0 : 1
            precondition(tgt.rank == 3 && src.shape[batchAxis] == tgt.shape[batchAxis],
                         "\(errorContext): the batch number of src and tgt must be equal (src \(src.shape), tgt \(tgt.shape))")
        }
        precondition(src.rank >= 1 && tgt.rank >= 1 && src.shape[src.rank - 1] == dModel && tgt.shape[tgt.rank - 1] == dModel,
                     "\(errorContext): the feature number of src and tgt must be equal to d_model (\(dModel)); src \(src.shape), tgt \(tgt.shape)")
        let memory = encoder.forward(src, mask: srcMask, srcKeyPaddingMask: srcKeyPaddingMask, isCausal: srcIsCausal)
        return decoder.forward(tgt, memory: memory, tgtMask: tgtMask, memoryMask: memoryMask,
                               tgtKeyPaddingMask: tgtKeyPaddingMask, memoryKeyPaddingMask: memoryKeyPaddingMask,
                               tgtIsCausal: tgtIsCausal, memoryIsCausal: memoryIsCausal)
    }

    /// The `[size, size]` causal mask for the `tgtMask`/`srcMask` arguments: `-inf` above the
    /// diagonal, `0` elsewhere (float32 unless `dtype` says otherwise).
    ///
    /// PyTorch parity: `nn.Transformer.generate_square_subsequent_mask(sz)`.
    public static func generateSquareSubsequentMask(_ size: Int, dtype: DType = .float32) -> Tensor {
        precondition(size >= 0, "generate_square_subsequent_mask: size must be non-negative, got \(size)")
        var values = [Double](repeating: 0, count: size * size)
        for i in 0..<size { for j in (i + 1)..<max(i + 1, size) { values[i * size + j] = -.infinity } }
        return Tensor(values, shape: [size, size]).to(dtype)
    }
}
