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
/// when the input is one float32 row, and with `relu`, `max(x W^T + b, 0)` in one op (the bias and
/// the ReLU applied to each block of the product while it is in cache; the same values as
/// `linear(...).relu()`).
package func linear(_ input: Tensor, weight: Tensor, bias: Tensor?, packedWeight: RowVectorPackedWeight?,
                    relu: Bool = false) -> Tensor {
    let (x2, out, outShape) = linearProduct(input, weight: weight, bias: bias, packedWeight: packedWeight,
                                            affine: nil, relu: relu)
    let rows = x2.shape[0], inF = weight.shape[1], outF = weight.shape[0]
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
    // With the ReLU, the gradient reaches the product only where the output is positive.
    func masked(_ g: Tensor) -> Tensor {
        !relu ? g : creatingGraph ? g.maskMap("reluBackward") { Kernels.reluBackward($0, result) } : Kernels.reluBackward(g, result)
    }
    let op = relu ? "linear_relu" : "linear"
    guard let bias else {
        return result.recorded(op, input, weight, twice: true) { g in
            if creatingGraph { return recordedGrads(masked(g)) }
            let g2 = masked(g).reshapedRaw([rows, outF])
            return [inputGrad(g2), weightGrad(g2)]
        }
    }
    return result.recorded(op, input, weight, bias, twice: true) { g in
        if creatingGraph { return recordedGrads(masked(g)) }
        let g2 = masked(g).reshapedRaw([rows, outF])
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

/// `relu?(((x W^T + b) * scale + shift))` of `input` viewed as `[rows, in]`, without recording:
/// the rows, the output `[rows, out]` and the output's shape with `input`'s leading dimensions.
/// `affine` (an eval-mode BatchNorm's per-feature scale and shift, contiguous, `input`'s dtype)
/// and the ReLU run in the product's epilogue. Inlined: a returned tuple of tensors is otherwise
/// copied through memory on every call (measured on a small network's forward).
@inline(__always)
package func linearProduct(_ input: Tensor, weight: Tensor, bias: Tensor?, packedWeight: RowVectorPackedWeight?,
                           affine: (scale: Tensor, shift: Tensor)?, relu: Bool) -> (rows: Tensor, out: Tensor, shape: Shape) {
    precondition(weight.rank == 2, "linear: weight must be 2-D [out, in], got shape \(weight.shape)")
    let inF = weight.shape[1], outF = weight.shape[0]
    precondition(input.rank >= 1 && input.shape[input.rank - 1] == inF,
                 "linear: mat1 and mat2 shapes cannot be multiplied (input shape \(input.shape) and weight shape \(weight.shape))")
    precondition(input.dtype == weight.dtype, "linear: expected input and weight to have the same dtype, but got \(input.dtype) and \(weight.dtype)")
    if let bias {
        precondition(bias.shape == [outF], "linear: bias must have shape [\(outF)], got \(bias.shape)")
    }
    let rows = inF == 0 ? input.count : input.count / inF
    var outShape = input.shape
    outShape[input.rank - 1] = outF
    let x2 = input.rank == 2 ? input.detached() : input.reshapedRaw([rows, inF])
    let out = Tensor(uninitializedShape: [rows, outF], dtype: input.dtype)
    let b = bias.map { $0.to(input.dtype).contiguousRaw }
    let (scale, shift) = (affine?.scale, affine?.shift)
    defer { withExtendedLifetime(b) {}; withExtendedLifetime(scale) {}; withExtendedLifetime(shift) {} }
    func epilogue<T: TensorFloat>(_: T.Type) -> GEMMEpilogue<T> {
        GEMMEpilogue(bias: b?.pointer(as: T.self), scale: scale?.pointer(as: T.self),
                     shift: shift?.pointer(as: T.self), relu: relu)
    }
    switch input.dtype {
    case .float32 where rows == 1 && packedWeight != nil && x2.strides[1] == 1:
        let y = out.mutablePointer(as: Float.self)
        GEMM.rowVectorProduct(packed: packedWeight!, x: x2.pointer(as: Float.self), beta: 0, y: y)
        epilogue(Float.self).apply(c: y, ldc: outF, m: 1, n: outF)
    case .float32:
        GEMM.sgemm(m: rows, n: outF, k: inF, alpha: 1, a: x2.pointer(as: Float.self), rowStrideA: x2.strides[0], colStrideA: x2.strides[1],
                   b: weight.pointer(as: Float.self), rowStrideB: weight.strides[1], colStrideB: weight.strides[0],
                   beta: 0, c: out.mutablePointer(as: Float.self), ldc: outF, path: .best, epilogue: epilogue(Float.self))
    case .float64:
        GEMM.dgemm(m: rows, n: outF, k: inF, alpha: 1, a: x2.pointer(as: Double.self), rowStrideA: x2.strides[0], colStrideA: x2.strides[1],
                   b: weight.pointer(as: Double.self), rowStrideB: weight.strides[1], colStrideB: weight.strides[0],
                   beta: 0, c: out.mutablePointer(as: Double.self), ldc: outF, path: .best, epilogue: epilogue(Double.self))
    default:
        preconditionFailure("linear: \(input.dtype) is not supported; use float32 or float64")
    }
    return (x2, out, outShape)
}
