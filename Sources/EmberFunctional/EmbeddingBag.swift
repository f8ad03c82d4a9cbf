import EmberAutograd
import EmberTensor
import EmberStorage

/// How ``embeddingBag(_:weight:offsets:mode:perSampleWeights:includeLastOffset:paddingIdx:scaleGradByFreq:context:)``
/// reduces each bag.
///
/// PyTorch parity: `mode="sum" | "mean" | "max"`.
public enum EmbeddingBagMode: String, Sendable, CaseIterable {
    case sum, mean, max
}

/// Sums, averages or takes the element-wise maximum of the embedding rows of each bag of indices,
/// without materialising the per-index rows.
///
/// Bags: a 2-D `input` `[B, N]` holds `B` bags of `N` indices (no `offsets`); a 1-D `input` is cut
/// into bags at `offsets` (`offsets[0]` must be 0; with `includeLastOffset` the last offset marks
/// the end, so there are `offsets.count - 1` bags). Indices equal to `paddingIdx` are left out
/// (and not counted by `mean`); an empty bag gives zeros. `perSampleWeights` (same shape as
/// `input`, `sum` only) scales each row before summing and receives gradients.
///
/// PyTorch parity: `torch.nn.functional.embedding_bag(input, weight, offsets, mode=, per_sample_weights=,
/// include_last_offset=, padding_idx=, scale_grad_by_freq=)`, with its argument errors; `max_norm`
/// is ``renormEmbeddingRows(_:indices:maxNorm:normType:)`` applied first (as in ``embedding(_:weight:paddingIdx:scaleGradByFreq:context:)``);
/// `sparse` gradients are not offered. Gradients of the maximum go to the row that held it (the
/// first such row on ties).
public func embeddingBag(_ input: Tensor, weight: Tensor, offsets: Tensor? = nil, mode: EmbeddingBagMode = .mean,
                         perSampleWeights: Tensor? = nil, includeLastOffset: Bool = false, paddingIdx: Int? = nil,
                         scaleGradByFreq: Bool = false, context: String = "embedding_bag") -> Tensor {
    precondition(input.dtype == .int64, "\(context): Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; but got \(input.dtype) instead")
    precondition(weight.rank == 2 && weight.dtype.isFloatingPoint, "\(context): weight must be a 2-D float tensor, got \(weight.dtype) \(weight.shape)")
    let rows = weight.shape[0], dim = weight.shape[1]
    let bags = bagBounds(input, offsets: offsets, includeLastOffset: includeLastOffset, context: context)
    let idx = input.contiguousRaw.scalars(as: Int64.self)
    for i in idx {
        precondition(i >= 0 && Int(i) < rows, "\(context): index out of range in self (index \(i) for \(rows) embeddings)")
    }
    var pad = paddingIdx
    if let p = paddingIdx {
        precondition(p < rows && p >= -rows, "\(context): padding_idx must be within the number of embeddings, -\(rows) through \(rows - 1), got \(p)")
        pad = p < 0 ? p + rows : p
    }
    var sampleWeights: [Double]?
    if let psw = perSampleWeights {
        precondition(mode == .sum, "\(context): per_sample_weights was not None. per_sample_weights is only supported for mode='sum' (got mode='\(mode.rawValue)'). Please open a feature request on GitHub.")
        precondition(psw.shape == input.shape, "\(context): per_sample_weights \(psw.shape) must have the same shape as input \(input.shape)")
        precondition(psw.dtype == weight.dtype, "\(context): per_sample_weights (\(psw.dtype)) must have the same dtype as weight (\(weight.dtype))")
        sampleWeights = psw.contiguousRaw.doubles
    }
    let w = weight.contiguousRaw.doubles
    var out = [Double](repeating: 0, count: bags.count * dim)
    // For max: the input position that holds each output element's maximum (-1 for an empty bag).
    var argmax = mode == .max ? [Int](repeating: -1, count: bags.count * dim) : []
    var members = [Int](repeating: 0, count: bags.count)
    for (b, range) in bags.enumerated() {
        for k in range where Int(idx[k]) != pad {
            members[b] += 1
            let row = Int(idx[k]) * dim, o = b * dim
            switch mode {
            case .sum, .mean:
                let s = sampleWeights?[k] ?? 1
                for j in 0..<dim { out[o + j] += w[row + j] * s }
            case .max:
                for j in 0..<dim where argmax[o + j] < 0 || w[row + j] > out[o + j] || w[row + j].isNaN {
                    if argmax[o + j] >= 0 && out[o + j].isNaN { continue }
                    out[o + j] = w[row + j]
                    argmax[o + j] = k
                }
            }
        }
        if mode == .mean && members[b] > 0 {
            for j in 0..<dim { out[b * dim + j] /= Double(members[b]) }
        }
    }
    let result = Tensor(out, shape: [bags.count, dim]).to(weight.dtype)
    let frequency = scaleGradByFreq ? indexFrequencies(idx, rows: rows) : nil
    var inputs = [weight]
    if let perSampleWeights { inputs.append(perSampleWeights) }
    return result.recorded("embedding_bag", inputs) { g in
        let gd = g.contiguousRaw.doubles
        var dw = [Double](repeating: 0, count: rows * dim)
        var dpsw = sampleWeights.map { [Double](repeating: 0, count: $0.count) }
        for (b, range) in bags.enumerated() {
            let o = b * dim
            switch mode {
            case .sum, .mean:
                let share = mode == .mean ? 1 / Double(Swift.max(members[b], 1)) : 1
                for k in range where Int(idx[k]) != pad {
                    let row = Int(idx[k]) * dim
                    let scale = share * (sampleWeights?[k] ?? 1) / Double(frequency?[Int(idx[k])] ?? 1)
                    for j in 0..<dim { dw[row + j] += gd[o + j] * scale }
                    if dpsw != nil {
                        var dot = 0.0
                        for j in 0..<dim { dot += gd[o + j] * w[row + j] }
                        dpsw![k] = dot
                    }
                }
            case .max:
                for j in 0..<dim where argmax[o + j] >= 0 {
                    let i = Int(idx[argmax[o + j]])
                    dw[i * dim + j] += gd[o + j] / Double(frequency?[i] ?? 1)
                }
            }
        }
        var grads: [Tensor?] = [weight.tracksGrad ? Tensor(dw, shape: weight.shape).to(weight.dtype) : nil]
        if let perSampleWeights {
            grads.append(perSampleWeights.tracksGrad ? Tensor(dpsw!, shape: perSampleWeights.shape).to(perSampleWeights.dtype) : nil)
        }
        return grads
    }
}

/// The input positions of each bag, with PyTorch's checks of `input` and `offsets`.
private func bagBounds(_ input: Tensor, offsets: Tensor?, includeLastOffset: Bool, context: String) -> [Range<Int>] {
    if input.rank == 2 {
        precondition(offsets == nil, "\(context): if input is 2D, then offsets has to be None, as input is treated is a mini-batch of fixed length sequences. However, found offsets of type Tensor")
        let n = input.shape[1]
        return (0..<input.shape[0]).map { $0 * n ..< ($0 + 1) * n }
    }
    precondition(input.rank == 1, "\(context): input has to be 1D or 2D Tensor, but got Tensor of dimension \(input.rank)")
    guard let offsets else {
        preconditionFailure("\(context): offsets has to be a 1D Tensor but got None")
    }
    precondition(offsets.rank == 1, "\(context): offsets has to be a 1D Tensor, but got Tensor of dimension \(offsets.rank)")
    precondition(offsets.dtype == .int64, "\(context): offsets must be int64, got \(offsets.dtype)")
    let o = offsets.contiguousRaw.scalars(as: Int64.self).map(Int.init)
    let n = input.shape[0]
    if includeLastOffset {
        precondition(o.count >= 1, "\(context): include_last_offset: number of offsets should be at least 1")
    }
    if let first = o.first {
        precondition(first == 0, "\(context): offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start from position 0. However, got \(first)")
    }
    for k in 0..<o.count {
        let end = k + 1 < o.count ? o[k + 1] : n
        precondition(o[k] <= end && end <= n,
                     "\(context): offsets must be non-decreasing and at most the input length \(n), got \(o)")
    }
    let count = includeLastOffset ? o.count - 1 : o.count
    return (0..<count).map { k in o[k] ..< (k + 1 < o.count ? o[k + 1] : n) }
}
