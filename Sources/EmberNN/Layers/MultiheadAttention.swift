import Foundation
import EmberAutograd
import EmberFunctional
import EmberTensor
import EmberStorage

/// Multi-head attention: `concat(head_1, ..., head_h) W_o + b_o` with
/// `head_i = softmax(q_i k_i^T / sqrt(d) + mask) v_i` over projected queries, keys and values.
///
/// Parameters (PyTorch's names, keys and initialisation):
/// - `in_proj_weight` `[3E, E]` (xavier uniform) when `kdim == vdim == embedDim`; otherwise
///   `q_proj_weight` `[E, E]`, `k_proj_weight` `[E, kdim]`, `v_proj_weight` `[E, vdim]` (each
///   xavier uniform);
/// - `in_proj_bias` `[3E]` (zeros), `bias_k` and `bias_v` `[1, 1, E]` (xavier normal, with
///   `addBiasKV`), `out_proj.weight` `[E, E]` (as `Linear`), `out_proj.bias` (zeros).
///
/// Inputs are `[L, N, E]` (`[N, L, E]` with `batchFirst`) or unbatched `[L, E]`. Attention dropout
/// applies in training mode only: the module passes `isTraining ? dropout : 0`.
///
/// PyTorch parity: `torch.nn.MultiheadAttention(embed_dim, num_heads, dropout=0.0, bias=True,
/// add_bias_kv=False, add_zero_attn=False, kdim=None, vdim=None, batch_first=False)`; forward as
/// `multi_head_attention_forward` (including its mask conventions: a bool `attnMask` or
/// `keyPaddingMask` marks with `true` what may NOT be attended, the opposite of SDPA's; and its
/// error texts). Without gradients, self-attention (`query`, `key` and `value` one tensor) projects
/// once against the packed `[3E, E]` weight, as PyTorch's eval fast path does; the results equal
/// the three separate products'. The listing shows `out_proj` as `Linear` (PyTorch:
/// `NonDynamicallyQuantizableLinear`).
public final class MultiheadAttention: Module {
    public let embedDim: Int
    public let kdim: Int
    public let vdim: Int
    public let numHeads: Int
    public let headDim: Int
    public let dropout: Double
    public let batchFirst: Bool
    public let addZeroAttn: Bool
    public let inProjWeight: Parameter?
    public let qProjWeight: Parameter?
    public let kProjWeight: Parameter?
    public let vProjWeight: Parameter?
    public let inProjBias: Parameter?
    public let biasK: Parameter?
    public let biasV: Parameter?
    /// PyTorch's `NonDynamicallyQuantizableLinear`, a plain `Linear` here.
    public let outProj: Linear
    /// The attention dropout's random source; `nil` uses ``Generator/default``.
    public var generator: Generator?

    /// Whether queries, keys and values share one packed projection (`kdim == vdim == embedDim`).
    public var qkvSameEmbedDim: Bool { inProjWeight != nil }

    public init(embedDim: Int, numHeads: Int, dropout: Double = 0, bias: Bool = true, addBiasKV: Bool = false,
                addZeroAttn: Bool = false, kdim: Int? = nil, vdim: Int? = nil, batchFirst: Bool = false,
                dtype: DType = .float32, generator: Generator? = nil) {
        precondition(embedDim > 0 && numHeads > 0,
                     "MultiheadAttention: embed_dim and num_heads must be greater than 0, got embed_dim=\(embedDim) and num_heads=\(numHeads) instead")
        precondition(embedDim % numHeads == 0, "MultiheadAttention: embed_dim must be divisible by num_heads (embed_dim=\(embedDim), num_heads=\(numHeads))")
        validateDropout(dropout, "MultiheadAttention")
        self.embedDim = embedDim
        self.kdim = kdim ?? embedDim
        self.vdim = vdim ?? embedDim
        self.numHeads = numHeads
        headDim = embedDim / numHeads
        self.dropout = dropout
        self.batchFirst = batchFirst
        self.addZeroAttn = addZeroAttn
        self.generator = generator
        let same = self.kdim == embedDim && self.vdim == embedDim
        func empty(_ shape: Shape) -> Parameter { Parameter(.zeros(shape, dtype: dtype)) }
        inProjWeight = same ? empty([3 * embedDim, embedDim]) : nil
        qProjWeight = same ? nil : empty([embedDim, embedDim])
        kProjWeight = same ? nil : empty([embedDim, self.kdim])
        vProjWeight = same ? nil : empty([embedDim, self.vdim])
        inProjBias = bias ? empty([3 * embedDim]) : nil
        biasK = addBiasKV ? empty([1, 1, embedDim]) : nil
        biasV = addBiasKV ? empty([1, 1, embedDim]) : nil
        outProj = Linear(embedDim, embedDim, bias: bias, dtype: dtype)
        super.init()
        // PyTorch's _reset_parameters.
        for p in [inProjWeight, qProjWeight, kProjWeight, vProjWeight].compactMap({ $0 }) { Init.xavierUniform(p) }
        if let b = outProj.bias { Init.zeros(b) }
        if let biasK, let biasV { Init.xavierNormal(biasK); Init.xavierNormal(biasV) }
    }

    /// A new module with this one's configuration (fresh parameters), for deep copies.
    func rebuilt() -> MultiheadAttention {
        MultiheadAttention(embedDim: embedDim, numHeads: numHeads, dropout: dropout, bias: inProjBias != nil,
                           addBiasKV: biasK != nil, addZeroAttn: addZeroAttn, kdim: kdim, vdim: vdim,
                           batchFirst: batchFirst, dtype: outProj.weight.value.dtype, generator: generator)
    }

    /// Attention dropout with `dropout > 0` drops in training mode only.
    public override var isModeDependent: Bool { dropout > 0 }

    /// Self-attention (`query = key = value = input`) without weights.
    public override func forward(_ input: Tensor) -> Tensor {
        forward(query: input, key: input, value: input, needWeights: false).output
    }

    /// `forward(query:key:value:...)`.
    public func callAsFunction(query: Tensor, key: Tensor, value: Tensor, keyPaddingMask: Tensor? = nil,
                               needWeights: Bool = true, attnMask: Tensor? = nil, averageAttnWeights: Bool = true,
                               isCausal: Bool = false) -> (output: Tensor, weights: Tensor?) {
        forward(query: query, key: key, value: value, keyPaddingMask: keyPaddingMask, needWeights: needWeights,
                attnMask: attnMask, averageAttnWeights: averageAttnWeights, isCausal: isCausal)
    }

    /// The attention output `[L, N, E]` (`[N, L, E]` with `batchFirst`, `[L, E]` unbatched) and, with
    /// `needWeights`, the attention weights `[N, L, S]` averaged over heads (`[N, heads, L, S]`
    /// without `averageAttnWeights`; no `N` when unbatched).
    ///
    /// - Parameters:
    ///   - keyPaddingMask: `[N, S]` (`[S]` unbatched); bool `true` marks keys to ignore, or a float
    ///     mask added to the scores.
    ///   - attnMask: `[L, S]` or `[N * heads, L, S]`; bool `true` marks pairs that may not attend,
    ///     or a float mask added to the scores.
    ///   - isCausal: a hint that `attnMask` is the causal mask; it needs `attnMask` (PyTorch's error).
    ///
    /// A query row with every key masked gives NaN weights and output with `needWeights` (a plain
    /// softmax) and a zero attention (so `out_proj.bias`) without it, as PyTorch.
    ///
    /// PyTorch parity: `MultiheadAttention.forward(query, key, value, key_padding_mask=None,
    /// need_weights=True, attn_mask=None, average_attn_weights=True, is_causal=False)`.
    public func forward(query: Tensor, key: Tensor, value: Tensor, keyPaddingMask: Tensor? = nil,
                        needWeights: Bool = true, attnMask: Tensor? = nil, averageAttnWeights: Bool = true,
                        isCausal: Bool = false) -> (output: Tensor, weights: Tensor?) {
        let ctx = errorContext
        // _mha_shape_check
        let batched: Bool
        switch query.rank {
        case 3:
            batched = true
            precondition(key.rank == 3 && value.rank == 3,
                         "\(ctx): For batched (3-D) `query`, expected `key` and `value` to be 3-D but found \(key.rank)-D and \(value.rank)-D tensors respectively")
            if let m = keyPaddingMask {
                precondition(m.rank == 2, "\(ctx): For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D but found \(m.rank)-D tensor instead")
            }
            if let m = attnMask {
                precondition(m.rank == 2 || m.rank == 3, "\(ctx): For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D but found \(m.rank)-D tensor instead")
            }
        case 2:
            batched = false
            precondition(key.rank == 2 && value.rank == 2,
                         "\(ctx): For unbatched (2-D) `query`, expected `key` and `value` to be 2-D but found \(key.rank)-D and \(value.rank)-D tensors respectively")
            if let m = keyPaddingMask {
                precondition(m.rank == 1, "\(ctx): For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or 1-D but found \(m.rank)-D tensor instead")
            }
            if let m = attnMask {
                precondition(m.rank == 2 || m.rank == 3, "\(ctx): For unbatched (2-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D but found \(m.rank)-D tensor instead")
                if m.rank == 3 {
                    let expected: Shape = [numHeads, query.shape[0], key.shape[0]]
                    precondition(m.shape == expected, "\(ctx): Expected `attn_mask` shape to be \(expected) but got \(m.shape)")
                }
            }
        default:
            preconditionFailure("\(ctx): query should be unbatched 2D or batched 3D tensor but received \(query.rank)-D query tensor")
        }
        // Batch-major views [N, len, features] of the inputs, whatever their layout (no copies).
        func batchMajor(_ t: Tensor) -> Tensor { !batched ? t.unsqueezed(axis: 0) : batchFirst ? t : t.transposed(0, 1) }
        var kpm = batched ? keyPaddingMask : keyPaddingMask?.unsqueezed(axis: 0)
        let (qIn, kIn, vIn) = (batchMajor(query), batchMajor(key), batchMajor(value))
        let bsz = qIn.shape[0], tgtLen = qIn.shape[1], embed = qIn.shape[2]
        let dtype = query.dtype
        kpm = kpm.map { canonicalMask($0, "key_padding_mask", dtype) }
        precondition(!(isCausal && attnMask == nil),
                     "\(ctx): Need attn_mask if specifying the is_causal hint. You may use the Transformer module method `generate_square_subsequent_mask` to create this mask.")
        var mask: Tensor?
        var sdpaCausal = false
        if isCausal && kpm == nil && !needWeights {
            sdpaCausal = true  // PyTorch hands the hint to SDPA and drops the mask
        } else {
            mask = attnMask.map { canonicalMask($0, "attn_mask", dtype) }
        }
        precondition(embed == embedDim, "\(ctx): was expecting embedding dimension of \(embedDim), but got \(embed)")
        if qkvSameEmbedDim {
            precondition(key.shape == value.shape, "\(ctx): key shape \(key.shape) does not match value shape \(value.shape)")
        } else {
            precondition(kIn.shape[0] == vIn.shape[0] && kIn.shape[1] == vIn.shape[1],
                         "\(ctx): key's sequence and batch dims \([kIn.shape[1], kIn.shape[0]]) do not match value's \([vIn.shape[1], vIn.shape[0]])")
        }
        // In-projection, of each input as it lies in memory (a linear map acts on the last
        // dimension), then viewed batch-major: no transposing copies.
        let e = embedDim
        var q: Tensor, k: Tensor, v: Tensor
        if let w = inProjWeight?.value {
            precondition(kIn.shape[2] == e, "\(ctx): key has \(kIn.shape[2]) features, expected embed_dim \(e) (shape \(key.shape))")
            let b = inProjBias?.value
            if query.isSameView(as: key) && query.isSameView(as: value)
                && !(GradMode.isEnabled && (query.tracksGrad || w.tracksGrad || b?.tracksGrad == true)) {
                // Self-attention without gradients: one product against the packed [3E, E] weight
                // (one pass over the input, as PyTorch's fast path), read as three views.
                let qkv = batchMajor(linear(query, weight: w, bias: b))
                (q, k, v) = (qkv.narrow(axis: 2, start: 0, length: e), qkv.narrow(axis: 2, start: e, length: e),
                             qkv.narrow(axis: 2, start: 2 * e, length: e))
            } else {
                func projected(_ x: Tensor, _ i: Int) -> Tensor {
                    batchMajor(linear(x, weight: w.narrow(axis: 0, start: i * e, length: e),
                                      bias: b?.narrow(axis: 0, start: i * e, length: e)))
                }
                (q, k, v) = (projected(query, 0), projected(key, 1), projected(value, 2))
            }
        } else {
            precondition(kIn.shape[2] == kdim && vIn.shape[2] == vdim,
                         "\(ctx): expected key features \(kdim) and value features \(vdim), got key \(key.shape) and value \(value.shape)")
            func bias(_ i: Int) -> Tensor? { inProjBias?.value.narrow(axis: 0, start: i * e, length: e) }
            q = batchMajor(linear(query, weight: qProjWeight!.value, bias: bias(0)))
            k = batchMajor(linear(key, weight: kProjWeight!.value, bias: bias(1)))
            v = batchMajor(linear(value, weight: vProjWeight!.value, bias: bias(2)))
        }
        var srcLen = k.shape[1]
        if let m = mask {
            if m.rank == 2 {
                precondition(m.shape == [tgtLen, srcLen], "\(ctx): The shape of the 2D attn_mask is \(m.shape), but should be \(Shape([tgtLen, srcLen])).")
                mask = m.unsqueezed(axis: 0)
            } else {
                precondition(m.shape == [bsz * numHeads, tgtLen, srcLen],
                             "\(ctx): The shape of the 3D attn_mask is \(m.shape), but should be \(Shape([bsz * numHeads, tgtLen, srcLen])).")
            }
        }
        func padColumn(_ m: Tensor) -> Tensor {
            var s = m.shape
            s[m.rank - 1] = 1
            return Tensor.cat([m, Tensor.zeros(s, dtype: m.dtype)], axis: -1)
        }
        if let biasK, let biasV {
            k = Tensor.cat([k, biasK.value.expanded(to: [bsz, 1, e])], axis: 1)
            v = Tensor.cat([v, biasV.value.expanded(to: [bsz, 1, e])], axis: 1)
            mask = mask.map(padColumn)
            kpm = kpm.map(padColumn)
        }
        // [N, len, E] -> [N, heads, len, headDim], views.
        func heads(_ t: Tensor) -> Tensor { t.reshaped([bsz, t.shape[1], numHeads, headDim]).permuted([0, 2, 1, 3]) }
        q = heads(q); k = heads(k); v = heads(v)
        if addZeroAttn {
            let zeros = Tensor.zeros([bsz, numHeads, 1, headDim], dtype: dtype)
            k = Tensor.cat([k, zeros], axis: 2)
            v = Tensor.cat([v, zeros], axis: 2)
            mask = mask.map(padColumn)
            kpm = kpm.map(padColumn)
        }
        srcLen = k.shape[2]
        if let m = kpm {
            precondition(m.shape[0] == bsz, "\(ctx): Expected key_padded_mask.shape[0] to be \(bsz), but got \(m.shape[0])")
            precondition(m.shape[1] == srcLen, "\(ctx): Expected key_padded_mask.shape[1] to be \(srcLen), but got \(m.shape[1])")
            let merged = m.reshaped([bsz, 1, 1, srcLen]).expanded(to: [bsz, numHeads, 1, srcLen]).reshaped([bsz * numHeads, 1, srcLen])
            mask = mask.map { $0 + merged } ?? merged
        }
        let p = isTraining ? dropout : 0
        let gen = generator ?? .default
        var o: Tensor  // [N, heads, L, headDim]
        var weights: Tensor?
        if needWeights {
            let qScaled = q.reshaped([bsz * numHeads, tgtLen, headDim]) * (1 / Double(headDim)).squareRoot()
            let (attended, w) = composedAttention(query: qScaled, key: k.reshaped([bsz * numHeads, srcLen, headDim]),
                                                  value: v.reshaped([bsz * numHeads, srcLen, headDim]), mask: mask,
                                                  dropoutP: p, isCausal: false, scale: 1, safeSoftmax: false, generator: gen)
            o = attended.reshaped([bsz, numHeads, tgtLen, headDim])
            var aw = w.reshaped([bsz, numHeads, tgtLen, srcLen])
            if averageAttnWeights { aw = aw.mean(axis: 1) }
            weights = batched ? aw : aw.squeezed(axis: 0)
        } else {
            if let m = mask {
                mask = m.shape[0] == 1 ? m.unsqueezed(axis: 0) : m.reshaped([bsz, numHeads, m.shape[1], srcLen])
            }
            o = scaledDotProductAttention(query: q, key: k, value: v, attnMask: mask, dropoutP: p, isCausal: sdpaCausal,
                                          generator: gen)
        }
        // Heads merged in the order the projections were laid out (a view when they were).
        let (w, b) = (outProj.weight.value, outProj.bias?.value)
        var output: Tensor
        if batched && !batchFirst {
            output = linear(o.permuted([2, 0, 1, 3]).reshaped([tgtLen * bsz, e]), weight: w, bias: b).reshaped([tgtLen, bsz, e])
        } else {
            output = linear(o.permuted([0, 2, 1, 3]).reshaped([bsz * tgtLen, e]), weight: w, bias: b).reshaped([bsz, tgtLen, e])
            if !batched { output = output.squeezed(axis: 0) }
        }
        return (output, weights)
    }

}

/// PyTorch's `_canonical_mask`: a bool mask becomes a float mask of `dtype` with `-inf` where
/// `true`; a float mask is kept; other dtypes stop.
func canonicalMask(_ mask: Tensor, _ name: String, _ dtype: DType) -> Tensor {
    if mask.dtype == .bool { return Tensor.zeros(mask.shape, dtype: dtype).maskedFill(mask, -.infinity) }
    precondition(mask.dtype.isFloatingPoint, "MultiheadAttention: only bool and floating types of \(name) are supported")
    return mask
}
