import EmberAutograd
import EmberTensor
import EmberStorage

/// `y = x W^T + b` as one fused differentiable op.
///
/// PyTorch parity: `torch.nn.functional.linear(input, weight, bias=None)`.
public func linear(_ input: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
    linear(input, weight: weight, bias: bias, packedWeight: nil)
}

/// ``linear(_:weight:bias:)``, with the single-row product on `packedWeight` (made from `weight`)
/// when the input is one float32 row.
package func linear(_ input: Tensor, weight: Tensor, bias: Tensor?, packedWeight: RowVectorPackedWeight?) -> Tensor {
    precondition(weight.rank == 2, "linear: weight must be 2-D [out, in], got shape \(weight.shape)")
    let inF = weight.shape[1], outF = weight.shape[0]
    precondition(input.rank >= 1 && input.shape[input.rank - 1] == inF,
                 "linear: mat1 and mat2 shapes cannot be multiplied (input shape \(input.shape) and weight shape \(weight.shape))")
    precondition(input.dtype == weight.dtype, "linear: expected input and weight to have the same dtype, but got \(input.dtype) and \(weight.dtype)")
    let rows = inF == 0 ? input.count : input.count / inF
    var outShape = input.shape
    outShape[input.rank - 1] = outF
    let x2 = input.rank == 2 ? input.detached() : input.reshapedRaw([rows, inF])
    var out = Tensor(uninitializedShape: [rows, outF], dtype: input.dtype)
    if let bias {
        precondition(bias.shape == [outF], "linear: bias must have shape [\(outF)], got \(bias.shape)")
        fillRows(&out, with: bias.to(input.dtype))
    }
    let beta = bias == nil ? 0.0 : 1.0
    switch input.dtype {
    case .float32 where rows == 1 && packedWeight != nil && x2.strides[1] == 1:
        GEMM.rowVectorProduct(packed: packedWeight!, x: x2.pointer(as: Float.self), beta: Float(beta),
                              y: out.mutablePointer(as: Float.self))
    case .float32:
        GEMM.sgemm(m: rows, n: outF, k: inF, alpha: 1, a: x2.pointer(as: Float.self), rowStrideA: x2.strides[0], colStrideA: x2.strides[1],
                   b: weight.pointer(as: Float.self), rowStrideB: weight.strides[1], colStrideB: weight.strides[0],
                   beta: Float(beta), c: out.mutablePointer(as: Float.self), ldc: outF)
    case .float64:
        GEMM.dgemm(m: rows, n: outF, k: inF, alpha: 1, a: x2.pointer(as: Double.self), rowStrideA: x2.strides[0], colStrideA: x2.strides[1],
                   b: weight.pointer(as: Double.self), rowStrideB: weight.strides[1], colStrideB: weight.strides[0],
                   beta: beta, c: out.mutablePointer(as: Double.self), ldc: outF)
    default:
        preconditionFailure("linear: \(input.dtype) is not supported; use float32 or float64")
    }
    let result = input.rank == 2 ? out : out.reshapedRaw(outShape)
    // dL/dx = g W, dL/dW = g^T x, dL/db = column sums of g (g as [rows, outF]).
    func inputGrad(_ g2: Tensor) -> Tensor? {
        input.tracksGrad ? product(g2, weight).reshapedRaw(input.shape) : nil
    }
    func weightGrad(_ g2: Tensor) -> Tensor? {
        weight.tracksGrad ? product(g2.transposedRaw(), x2) : nil
    }
    // With createGraph, the same products as recorded ops, so gradients of gradients flow.
    func recordedGrads(_ g: Tensor) -> [Tensor?] {
        let g2 = g.reshaped([rows, outF])
        let x = input.reshaped([rows, inF])
        var grads: [Tensor?] = [input.tracksGrad ? g2.matmul(weight).reshaped(input.shape) : nil,
                                weight.tracksGrad ? g2.transposed(0, 1).matmul(x) : nil]
        if let bias { grads.append(bias.tracksGrad ? g2.sum(axes: [0]) : nil) }
        return grads
    }
    guard let bias else {
        return result.recorded("linear", input, weight, twice: true) { g in
            if creatingGraph { return recordedGrads(g) }
            let g2 = g.reshapedRaw([rows, outF])
            return [inputGrad(g2), weightGrad(g2)]
        }
    }
    return result.recorded("linear", input, weight, bias, twice: true) { g in
        if creatingGraph { return recordedGrads(g) }
        let g2 = g.reshapedRaw([rows, outF])
        return [inputGrad(g2), weightGrad(g2), bias.tracksGrad ? Kernels.sum(g2, axes: [0], keepDim: false) : nil]
    }
}

/// `a b` for 2-D float tensors of one dtype (any strides): the GEMM call `Kernels.matmul` makes
/// for 2-D operands, without its batch-broadcasting set-up.
private func product(_ a: Tensor, _ b: Tensor) -> Tensor {
    let m = a.shape[0], k = a.shape[1], n = b.shape[1]
    let out = Tensor(uninitializedShape: [m, n], dtype: a.dtype)
    if out.count == 0 { return out }
    switch a.dtype {
    case .float32:
        GEMM.sgemm(m: m, n: n, k: k, alpha: 1, a: a.pointer(as: Float.self), rowStrideA: a.strides[0], colStrideA: a.strides[1],
                   b: b.pointer(as: Float.self), rowStrideB: b.strides[0], colStrideB: b.strides[1],
                   beta: 0, c: out.mutablePointer(as: Float.self), ldc: n)
    default:
        GEMM.dgemm(m: m, n: n, k: k, alpha: 1, a: a.pointer(as: Double.self), rowStrideA: a.strides[0], colStrideA: a.strides[1],
                   b: b.pointer(as: Double.self), rowStrideB: b.strides[0], colStrideB: b.strides[1],
                   beta: 0, c: out.mutablePointer(as: Double.self), ldc: n)
    }
    return out
}

/// Writes `row` (a `[n]` tensor of `out`'s dtype) into every row of the fresh contiguous `[m, n]`
/// tensor `out`.
private func fillRows(_ out: inout Tensor, with row: Tensor) {
    let m = out.shape[0], n = out.shape[1]
    guard row.isContiguous, m > 0 else {
        copyElements(from: row.expandedRaw(to: out.shape), into: &out)
        return
    }
    let bytes = n * out.dtype.itemSize
    let src = UnsafeRawPointer(row.rawPointer), dst = out.rawPointer
    for i in 0..<m { (dst + i * bytes).copyMemory(from: src, byteCount: bytes) }
}
