import EmberAutograd
import Foundation
import EmberTensor
import EmberStorage

/// Rows of `weight` selected by int64 `indices`; gradients of repeated indices accumulate and the
/// `paddingIdx` row gets none. With `scaleGradByFreq`, each row's gradient is divided by how often
/// its index occurs in `indices`.
///
/// PyTorch parity: `torch.nn.functional.embedding(input, weight, padding_idx, scale_grad_by_freq=)`.
/// PyTorch's `max_norm` renormalises `weight` in place before the lookup; Swift's value semantics
/// make that explicit here: call ``renormEmbeddingRows(_:indices:maxNorm:normType:)`` on the
/// weight first (``Embedding`` does it for its own weight).
public func embedding(_ indices: Tensor, weight: Tensor, paddingIdx: Int? = nil, scaleGradByFreq: Bool = false,
                      context: String = "embedding") -> Tensor {
    precondition(indices.dtype == .int64,
                 "\(context): Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; but got \(indices.dtype) instead")
    precondition(weight.rank == 2, "\(context): weight must be 2-D, got \(weight.shape)")
    let rows = weight.shape[0], dim = weight.shape[1]
    let idx = indices.contiguousRaw.scalars(as: Int64.self)
    for i in idx {
        precondition(i >= 0 && Int(i) < rows, "\(context): index out of range in self (index \(i) for \(rows) embeddings)")
    }
    let frequency = scaleGradByFreq ? indexFrequencies(idx, rows: rows) : nil
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
            let raw = { (g: Tensor) in
                embeddingGradient(g, idx, rows: rows, dim: dim, paddingIdx: paddingIdx, frequency: frequency, dtype: weight.dtype)
            }
            let keep = Tensor(idx.map { Int($0) == paddingIdx ? 0.0 : 1.0 / Double(frequency?[Int($0)] ?? 1) },
                              shape: [idx.count, 1]).to(weight.dtype)
            let picks = Tensor(idx, shape: [idx.count])
            return [g.linearMap("embeddingBackward", raw, adjoint: { u in
                (u.indexSelect(axis: 0, index: picks) * keep).reshaped(g.shape)
            })]
        }
        return [embeddingGradient(g, idx, rows: rows, dim: dim, paddingIdx: paddingIdx, frequency: frequency, dtype: weight.dtype)]
    }
}

/// How often each row index occurs in `idx` (PyTorch's `scale_grad_by_freq` counts).
package func indexFrequencies(_ idx: [Int64], rows: Int) -> [Int] {
    var counts = [Int](repeating: 0, count: rows)
    for i in idx { counts[Int(i)] += 1 }
    return counts
}

/// The gradient of ``embedding(_:weight:paddingIdx:scaleGradByFreq:context:)`` with respect to its
/// weight: the rows of `g` added into the rows `idx` selects (divided by the index's frequency when
/// `frequency` is given), in float64, except the padding row.
private func embeddingGradient(_ g: Tensor, _ idx: [Int64], rows: Int, dim: Int, paddingIdx: Int?, frequency: [Int]?,
                               dtype: DType) -> Tensor {
    do {
        let gc = g.contiguousRaw.to(.float64).contiguousRaw
        var acc = [Double](repeating: 0, count: rows * dim)
        let pg = gc.pointer(as: Double.self)
        for (k, i) in idx.enumerated() where Int(i) != paddingIdx {
            let base = Int(i) * dim
            let scale = frequency.map { 1 / Double($0[Int(i)]) } ?? 1
            for j in 0..<dim { acc[base + j] += pg[k * dim + j] * scale }
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

/// Rescales, in place and without recording, every row of `weight` that `indices` selects whose
/// `normType`-norm exceeds `maxNorm`, to norm `maxNorm`: `row *= maxNorm / (norm + 1e-7)`.
/// Each selected row is renormalised once, however often it occurs.
///
/// PyTorch parity: `torch.embedding_renorm_(weight, input, max_norm, norm_type)`, which
/// `F.embedding(..., max_norm=)` and `nn.Embedding(max_norm=)` run before the lookup (it also
/// renormalises the padding row when it is selected).
public func renormEmbeddingRows(_ weight: inout Tensor, indices: Tensor, maxNorm: Double, normType: Double = 2,
                                context: String = "embedding_renorm_") {
    precondition(indices.dtype == .int64, "\(context): indices must be int64, got \(indices.dtype)")
    precondition(weight.rank == 2, "\(context): weight must be 2-D, got \(weight.shape)")
    precondition(weight.dtype.isFloatingPoint, "\(context): weight must be float32 or float64, got \(weight.dtype)")
    precondition(maxNorm >= 0, "\(context): max_norm must be non-negative, got \(maxNorm)")
    let rows = weight.shape[0], dim = weight.shape[1]
    var seen = Set<Int64>()
    let selected = indices.contiguousRaw.scalars(as: Int64.self).filter { seen.insert($0).inserted }
    for i in selected {
        precondition(i >= 0 && Int(i) < rows, "\(context): index out of range in self (index \(i) for \(rows) embeddings)")
    }
    guard !selected.isEmpty else { return }
    weight.makeUniqueContiguous()
    func renorm<T: TensorFloat>(_: T.Type) {
        let p = weight.mutablePointer(as: T.self)
        for i in selected {
            let row = p + Int(i) * dim
            var norm = 0.0
            if normType == .infinity {
                for j in 0..<dim { norm = Swift.max(norm, Swift.abs(Double(row[j]))) }
            } else if normType == 1 {
                for j in 0..<dim { norm += Swift.abs(Double(row[j])) }
            } else if normType == 2 {
                for j in 0..<dim { norm += Double(row[j]) * Double(row[j]) }
                norm = norm.squareRoot()
            } else {
                for j in 0..<dim { norm += Foundation.pow(Swift.abs(Double(row[j])), normType) }
                norm = Foundation.pow(norm, 1 / normType)
            }
            if norm > maxNorm {
                let scale = T(maxNorm / (norm + 1e-7))
                for j in 0..<dim { row[j] *= scale }
            }
        }
    }
    if weight.dtype == .float64 { renorm(Double.self) } else { renorm(Float.self) }
}
