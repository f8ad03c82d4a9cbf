import EmberTensor

extension Tensor {
    /// Sum over `axes` (all when empty). PyTorch parity: `torch.sum(x, dim, keepdim)`; int64 and
    /// bool sum to int64.
    public func sum(axes: [Int] = [], keepDim: Bool = false) -> Tensor {
        let x = self
        let ax = Kernels.reductionAxes(axes, rank: rank, op: "sum")
        return Kernels.sum(self, axes: ax, keepDim: keepDim).recorded("sum", x) { g in
            let kept = keepDim ? g : g.reshapedRaw(Kernels.reducedShape(x.shape, axes: ax, keepDim: true))
            return [kept.expandedRaw(to: x.shape).contiguousRaw]
        }
    }

    /// Sum over one axis. PyTorch parity: `torch.sum(x, dim)`.
    public func sum(axis: Int, keepDim: Bool = false) -> Tensor { sum(axes: [axis], keepDim: keepDim) }

    /// Mean over `axes` (all when empty); float dtypes only, as PyTorch requires.
    ///
    /// PyTorch parity: `torch.mean`, including its error for integer input.
    public func mean(axes: [Int] = [], keepDim: Bool = false) -> Tensor {
        precondition(dtype.isFloatingPoint,
                     "mean(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. Got: \(dtype)")
        let ax = Kernels.reductionAxes(axes, rank: rank, op: "mean")
        var n = 1
        for a in ax { n *= shape[a] }
        return sum(axes: ax, keepDim: keepDim) * (1.0 / Double(n))
    }

    /// Mean over one axis.
    public func mean(axis: Int, keepDim: Bool = false) -> Tensor { mean(axes: [axis], keepDim: keepDim) }
}
