import EmberStorage

extension Kernels {
    /// Batched matrix product of two rank >= 2 tensors with broadcast batch dimensions:
    /// `[..., m, k] x [..., k, n] -> [broadcast(...), m, n]`. float32 and float64.
    ///
    /// Transposed and expanded operands are multiplied in place through their strides (no copy).
    package static func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.rank >= 2 && b.rank >= 2, "matmul: internal rank error \(a.shape) x \(b.shape)")
        precondition(a.dtype == b.dtype,
                     "matmul: expected m1 and m2 to have the same dtype, but got: \(a.dtype) != \(b.dtype)")
        precondition(a.dtype.isFloatingPoint, "matmul: \(a.dtype) is not supported; convert to float32 or float64")
        let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1]
        let k2 = b.shape[b.rank - 2], n = b.shape[b.rank - 1]
        precondition(k == k2,
                     "matmul: mat1 and mat2 shapes cannot be multiplied (\(m)x\(k) and \(k2)x\(n)); shapes \(a.shape) and \(b.shape)")
        let batchA = Shape(a.shape.dropLast(2)), batchB = Shape(b.shape.dropLast(2))
        let batch = broadcastShapes(batchA, batchB, op: "matmul")
        var outShape = batch
        outShape.append(m); outShape.append(n)
        var aShape = batch; aShape.append(m); aShape.append(k)
        var bShape = batch; bShape.append(k); bShape.append(n)
        let sa = a.broadcastStrides(to: aShape, op: "matmul"), sb = b.broadcastStrides(to: bShape, op: "matmul")
        let out = Tensor(uninitializedShape: outShape, dtype: a.dtype)
        let r = batch.count
        let batchCount = batch.elementCount
        let rsA = sa[r], csA = sa[r + 1], rsB = sb[r], csB = sb[r + 1]
        var idx = Shape(repeating: 0, count: r)
        var offA = 0, offB = 0
        if out.count == 0 { return out }
        for bi in 0..<batchCount {
            switch a.dtype {
            case .float32:
                GEMM.sgemm(m: m, n: n, k: k, alpha: 1, a: a.pointer(as: Float.self) + offA, rowStrideA: rsA, colStrideA: csA,
                           b: b.pointer(as: Float.self) + offB, rowStrideB: rsB, colStrideB: csB,
                           beta: 0, c: out.mutablePointer(as: Float.self) + bi * m * n, ldc: n)
            default:
                GEMM.dgemm(m: m, n: n, k: k, alpha: 1, a: a.pointer(as: Double.self) + offA, rowStrideA: rsA, colStrideA: csA,
                           b: b.pointer(as: Double.self) + offB, rowStrideB: rsB, colStrideB: csB,
                           beta: 0, c: out.mutablePointer(as: Double.self) + bi * m * n, ldc: n)
            }
            var d = r - 1
            while d >= 0 {
                idx[d] += 1; offA += sa[d]; offB += sb[d]
                if idx[d] < batch[d] { break }
                offA -= sa[d] * batch[d]; offB -= sb[d] * batch[d]; idx[d] = 0
                d -= 1
            }
        }
        return out
    }
}
