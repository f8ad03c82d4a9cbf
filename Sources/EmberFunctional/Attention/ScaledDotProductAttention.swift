import Foundation
import EmberAutograd
import EmberTensor
import EmberStorage

/// Scaled dot-product attention: `softmax(q k^T * scale + bias) v`.
///
/// Shapes: `query [..., L, E]`, `key [..., S, E]`, `value [..., S, Ev]`, output `[..., L, Ev]`; the
/// leading dimensions broadcast (as `matmul`'s do).
///
/// - Parameters:
///   - attnMask: a bool mask, `true` where a query may attend to a key (it takes part), or a float
///     mask added to the scores (`-inf` excludes); broadcastable to `[..., L, S]`.
///   - dropoutP: dropout on the attention weights, applied whenever `dropoutP > 0` (as PyTorch's
///     functional form: pass `training ? p : 0` from a module).
///   - isCausal: the top-left aligned causal mask (query `i` sees keys `0...i`), as PyTorch's
///     `tril(ones(L, S))`; it cannot be combined with `attnMask`.
///   - scale: the score scale; `1 / sqrt(E)` when `nil`.
///   - enableGQA: grouped-query attention: `key` and `value` have `Hk` heads at dimension `-3`,
///     which must divide the query's `Hq` heads; each key/value head serves `Hq / Hk` consecutive
///     query heads (PyTorch's `repeat_interleave`).
///   - generator: the random source of the dropout.
///
/// A query row whose keys are all masked gives 0 (and 0 gradients), as PyTorch 2.13 gives on
/// CPU (its `_safe_softmax`; older releases gave NaN on the math path). NaN follows PyTorch's
/// default CPU kernel: `attnMask` is added as a bias, so a NaN score poisons its query row even
/// where masked; with `isCausal` only the rows that see the NaN key become NaN.
///
/// Paths: with recording on and an input that tracks a gradient, or with `dropoutP > 0`, the
/// attention is composed from recorded ops (`matmul`, `maskedFill`, `softmax`, `dropout`), so it is
/// differentiable, twice too. Otherwise (inference, `withNoGrad`, eval) float32 and float64 run a
/// tiled online-softmax kernel that never forms the `L x S` scores: its scratch memory is at most
/// ``scaledDotProductAttentionWorkspaceBytes(valueDim:dtype:threads:)``, independent of `L` and `S`.
///
/// PyTorch parity: `torch.nn.functional.scaled_dot_product_attention(query, key, value,
/// attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False)`: the same mask
/// conventions, causal alignment, default scale, GQA rule and error for a mask with `is_causal`.
public func scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, attnMask: Tensor? = nil,
                                      dropoutP: Double = 0, isCausal: Bool = false, scale: Double? = nil,
                                      enableGQA: Bool = false, generator: Generator = .default) -> Tensor {
    let op = "scaled_dot_product_attention"
    precondition(query.rank >= 2 && key.rank >= 2 && value.rank >= 2,
                 "\(op): expected query, key and value to be at least 2-D, got shapes \(query.shape), \(key.shape), \(value.shape)")
    precondition(query.dtype == key.dtype && query.dtype == value.dtype,
                 "\(op): Expected query, key, and value to have the same dtype, but got query.dtype: \(query.dtype) key.dtype: \(key.dtype) and value.dtype: \(value.dtype) instead.")
    precondition(query.dtype.isFloatingPoint, "\(op): expected floating-point query, key and value, got \(query.dtype)")
    let e = query.shape[query.rank - 1], l = query.shape[query.rank - 2]
    let s = key.shape[key.rank - 2]
    precondition(key.shape[key.rank - 1] == e,
                 "\(op): query and key must have the same embedding size, got query \(query.shape) and key \(key.shape)")
    precondition(value.shape[value.rank - 2] == s,
                 "\(op): key and value must have the same sequence length, got key \(key.shape) and value \(value.shape)")
    precondition(dropoutP >= 0 && dropoutP <= 1, "\(op): dropout probability has to be between 0 and 1, but got \(dropoutP)")
    precondition(!(isCausal && attnMask != nil), "\(op): Explicit attn_mask should not be set when is_causal=True")
    if dropoutP > 0 { EvalForwardScope.noteDropout("scaledDotProductAttention(dropoutP: \(formatPythonShort(dropoutP)))") }
    var mask = attnMask
    if let m = mask {
        precondition(m.dtype == .bool || m.dtype.isFloatingPoint,
                     "\(op): Expected attn_mask dtype to be bool or float or to match query dtype, got \(m.dtype)")
        if m.dtype.isFloatingPoint && m.dtype != query.dtype { mask = m.to(query.dtype) }
    }
    var k = key, v = value
    if enableGQA {
        precondition(query.rank >= 3 && key.rank >= 3 && value.rank >= 3,
                     "\(op): enable_gqa needs a heads dimension (-3); got shapes \(query.shape), \(key.shape), \(value.shape)")
        let hq = query.shape[query.rank - 3], hk = key.shape[key.rank - 3], hv = value.shape[value.rank - 3]
        precondition(hk > 0 && hv > 0 && hq % hk == 0 && hq % hv == 0,
                     "\(op): Number of heads in key and value must divide the number of heads in query (query \(hq), key \(hk), value \(hv))")
        k = repeatHeads(key, hq / hk)
        v = repeatHeads(value, hq / hv)
    }
    let scaleFactor = scale ?? 1 / Double(e).squareRoot()
    let needsGraph = GradMode.isEnabled && (query.requiresGrad || key.requiresGrad || value.requiresGrad || (mask?.requiresGrad ?? false))
    if !needsGraph && dropoutP == 0 && (query.dtype == .float32 || query.dtype == .float64) {
        return withNoGrad {
            tiledAttention(query: query, key: k, value: v, mask: mask, isCausal: isCausal, scale: scaleFactor, l: l, s: s)
        }
    }
    return composedAttention(query: query, key: k, value: v, mask: mask, dropoutP: dropoutP, isCausal: isCausal,
                             scale: scaleFactor, safeSoftmax: true, generator: generator).output
}

/// The top-left aligned causal mask `[l, s]`: `true` where key `j <= i` (query `i`).
package func causalAllowedMask(_ l: Int, _ s: Int) -> Tensor {
    var bits = [Bool](repeating: false, count: l * s)
    for i in 0..<l { for j in 0..<min(i + 1, s) { bits[i * s + j] = true } }
    return Tensor(bits, shape: [l, s])
}

/// Each head of `x [..., Hk, S, E]` repeated `groups` times in place: `[..., Hk * groups, S, E]`
/// (PyTorch's `repeat_interleave(groups, dim=-3)`), differentiable.
func repeatHeads(_ x: Tensor, _ groups: Int) -> Tensor {
    guard groups > 1 else { return x }
    let r = x.rank
    var expanded = x.shape
    expanded.insert(groups, at: r - 2)
    var merged = x.shape
    merged[r - 3] *= groups
    return x.unsqueezed(axis: r - 2).expanded(to: expanded).reshaped(merged)
}

/// Attention composed of recorded ops: scores, masks, (safe) softmax, dropout, the value product.
/// Returns the output and the attention weights (after dropout).
///
/// `safeSoftmax` gives 0 for a fully masked row (SDPA); without it such a row is NaN, as the
/// explicit softmax of `multi_head_attention_forward`'s `need_weights` path gives.
package func composedAttention(query: Tensor, key: Tensor, value: Tensor, mask: Tensor?, dropoutP: Double,
                               isCausal: Bool, scale: Double, safeSoftmax: Bool,
                               generator: Generator) -> (output: Tensor, weights: Tensor) {
    let l = query.shape[query.rank - 2], s = key.shape[key.rank - 2]
    var scores = query.matmul(key.transposed(-2, -1)) * scale
    if isCausal { scores = scores.maskedFill(causalAllowedMask(l, s).logicalNot(), -.infinity) }
    if let mask {
        // PyTorch adds a bool mask as a -inf bias (so a NaN score stays NaN where masked).
        if mask.dtype == .bool { scores = scores + Tensor.zeros(mask.shape, dtype: scores.dtype).maskedFill(mask.logicalNot(), -.infinity) }
        else { scores = scores + mask }
    }
    var weights: Tensor
    if safeSoftmax {
        let dead = withNoGrad { scores.detached().amax(axes: [-1], keepDim: true).eq(-.infinity) }
        if dead.scalars(as: Bool.self).contains(true) {
            weights = Tensor.where(dead, 0, Tensor.where(dead, 0, scores).softmax(axis: -1))
        } else {
            weights = scores.softmax(axis: -1)  // no dead row: the selects would change nothing
        }
    } else {
        weights = scores.softmax(axis: -1)
    }
    if dropoutP > 0 { weights = dropout(weights, p: dropoutP, training: true, generator: generator) }
    return (weights.matmul(value), weights)
}
