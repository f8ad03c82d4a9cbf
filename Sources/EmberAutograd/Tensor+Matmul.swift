import EmberTensor
import EmberStorage

extension Tensor {
    /// Matrix product with PyTorch's rules: 1-D x 1-D is a dot product, a 1-D operand is treated as
    /// a row (left) or column (right) vector and that dimension removed, and leading batch
    /// dimensions broadcast.
    ///
    /// PyTorch parity: `torch.matmul` (`a @ b`), including its shape error text.
    public func matmul(_ other: Tensor) -> Tensor {
        precondition(rank >= 1 && other.rank >= 1,
                     "matmul: both arguments to matmul need to be at least 1D, but they are \(rank)D and \(other.rank)D")
        let a = rank == 1 ? reshaped([1, shape[0]]) : self
        let b = other.rank == 1 ? other.reshaped([other.shape[0], 1]) : other
        var out = Kernels.matmul(a, b).recorded("matmul", a, b, twice: true) { g in
            if creatingGraph {
                return [a.tracksGrad ? g.matmul(b.transposed(-2, -1)).summed(toShape: a.shape) : nil,
                        b.tracksGrad ? a.transposed(-2, -1).matmul(g).summed(toShape: b.shape) : nil]
            }
            return [a.tracksGrad ? Kernels.sumToShape(Kernels.matmul(g, b.transposedRaw()), a.shape) : nil,
                    b.tracksGrad ? Kernels.sumToShape(Kernels.matmul(a.transposedRaw(), g), b.shape) : nil]
        }
        if rank == 1 || other.rank == 1 {
            var s = Shape(out.shape.dropLast(2))
            if rank != 1 { s.append(out.shape[out.rank - 2]) }
            if other.rank != 1 { s.append(out.shape[out.rank - 1]) }
            out = out.reshaped(s)
        }
        return out
    }
}

extension Tensor {
    /// Swaps the last two dimensions (raw view).
    package func transposedRaw() -> Tensor {
        var perm = Array(0..<rank)
        perm.swapAt(rank - 1, rank - 2)
        return permutedRaw(perm)
    }
}

infix operator •: MultiplicationPrecedence

extension Tensor {
    /// `a • b` is `a.matmul(b)` (Swift has no `@` operator).
    public static func • (a: Tensor, b: Tensor) -> Tensor { a.matmul(b) }
}
