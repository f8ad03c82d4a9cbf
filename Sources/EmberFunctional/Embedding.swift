import EmberAutograd
import EmberTensor
import EmberStorage

/// Rows of `weight` selected by int64 `indices`; gradients of repeated indices accumulate and the
/// `paddingIdx` row gets none.
///
/// PyTorch parity: `torch.nn.functional.embedding(input, weight, padding_idx)`.
public func embedding(_ indices: Tensor, weight: Tensor, paddingIdx: Int? = nil, context: String = "embedding") -> Tensor {
    precondition(indices.dtype == .int64,
                 "\(context): Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; but got \(indices.dtype) instead")
    precondition(weight.rank == 2, "\(context): weight must be 2-D, got \(weight.shape)")
    let rows = weight.shape[0], dim = weight.shape[1]
    let idx = indices.contiguousRaw.scalars(as: Int64.self)
    for i in idx {
        precondition(i >= 0 && Int(i) < rows, "\(context): index out of range in self (index \(i) for \(rows) embeddings)")
    }
    var outShape = indices.shape
    outShape.append(dim)
    let w = weight.contiguousRaw
    let size = w.dtype.itemSize * dim
    let out = Tensor(uninitializedShape: outShape, dtype: w.dtype)
    for (k, i) in idx.enumerated() {
        (out.rawPointer + k * size).copyMemory(from: w.rawPointer + Int(i) * size, byteCount: size)
    }
    return out.recorded("embedding", weight, twice: true) { g in
        if creatingGraph {
            // The backward adds rows of g into the selected rows: linear in g, its transpose a row
            // selection (zero at the padding index, which gets no gradient).
            let raw = { (g: Tensor) in embeddingGradient(g, idx, rows: rows, dim: dim, paddingIdx: paddingIdx, dtype: weight.dtype) }
            let keep = Tensor(idx.map { Int($0) == paddingIdx ? 0.0 : 1.0 }, shape: [idx.count, 1]).to(weight.dtype)
            let picks = Tensor(idx, shape: [idx.count])
            return [g.linearMap("embeddingBackward", raw, adjoint: { u in
                (u.indexSelect(axis: 0, index: picks) * keep).reshaped(g.shape)
            })]
        }
        return [embeddingGradient(g, idx, rows: rows, dim: dim, paddingIdx: paddingIdx, dtype: weight.dtype)]
    }
}

/// The gradient of ``embedding(_:weight:paddingIdx:context:)`` with respect to its weight: the
/// rows of `g` added into the rows `idx` selects, in float64, except the padding row.
private func embeddingGradient(_ g: Tensor, _ idx: [Int64], rows: Int, dim: Int, paddingIdx: Int?, dtype: DType) -> Tensor {
    do {
        let gc = g.contiguousRaw.to(.float64).contiguousRaw
        var acc = [Double](repeating: 0, count: rows * dim)
        let pg = gc.pointer(as: Double.self)
        for (k, i) in idx.enumerated() where Int(i) != paddingIdx {
            let base = Int(i) * dim
            for j in 0..<dim { acc[base + j] += pg[k * dim + j] }
        }
        return Tensor(acc, shape: [rows, dim]).to(dtype)
    }
}

/// `w` with row `row` set to zero.
package func embeddingZeroRow(_ w: Tensor, _ row: Int) -> Tensor {
    var values = w.doubles
    let dim = w.shape[1]
    for j in 0..<dim { values[row * dim + j] = 0 }
    return Tensor(values, shape: w.shape).to(w.dtype)
}
