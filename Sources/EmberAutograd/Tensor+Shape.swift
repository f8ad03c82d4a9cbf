import EmberTensor

extension Tensor {
    /// The same elements in a new shape (one dimension may be `-1`). A view when the layout
    /// allows, else a copy. PyTorch parity: `torch.reshape`.
    public func reshaped(_ newShape: Shape) -> Tensor {
        let x = self
        return reshapedRaw(newShape).recorded("reshape", [x]) { g in [g.reshapedRaw(x.shape)] }
    }

    /// Reorders dimensions. PyTorch parity: `torch.permute`.
    public func permuted(_ perm: [Int]) -> Tensor {
        let p = perm.map { normalizeAxis($0, rank: rank, op: "permute") }
        var inverse = [Int](repeating: 0, count: p.count)
        for (i, d) in p.enumerated() { inverse[d] = i }
        return permutedRaw(p).recorded("permute", [self]) { g in [g.permutedRaw(inverse)] }
    }

    /// Swaps two dimensions. PyTorch parity: `torch.transpose(x, dim0, dim1)`.
    public func transposed(_ dim0: Int, _ dim1: Int) -> Tensor {
        let a = normalizeAxis(dim0, rank: rank, op: "transpose"), b = normalizeAxis(dim1, rank: rank, op: "transpose")
        var perm = Array(0..<rank)
        perm.swapAt(a, b)
        return permuted(perm)
    }

    /// Transpose of a matrix (rank <= 2). PyTorch parity: `x.t()` / `x.T` for 2-D.
    public var t: Tensor {
        precondition(rank <= 2, "t() expects a tensor with <= 2 dimensions, but self is \(rank)D")
        return rank < 2 ? self : transposed(0, 1)
    }

    /// A contiguous tensor with the same values (self when already contiguous).
    /// PyTorch parity: `contiguous()`.
    public func contiguous() -> Tensor {
        if isContiguous { return self }
        return contiguousCopy().recorded("contiguous", [self]) { g in [g] }
    }
}
