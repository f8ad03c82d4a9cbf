import EmberTensor
import EmberStorage

// Reductions. `axes: []` means every axis (PyTorch's `dim=None`); a rank-0 tensor accepts axis 0
// or -1 and reduces nothing. Reduced axes are dropped, or kept as size 1 with `keepDim`.

extension Tensor {
    /// `g` (the gradient of a reduction's result) reshaped so it broadcasts against the input.
    fileprivate static func keptShape(_ g: Tensor, input: Shape, axes: [Int], keepDim: Bool) -> Tensor {
        keepDim ? g : g.reshapedRaw(Kernels.reducedShape(input, axes: axes, keepDim: true))
    }

    /// ``keptShape(_:input:axes:keepDim:)`` as a recorded reshape (for backward with `createGraph`).
    fileprivate static func keptShapeRecorded(_ g: Tensor, input: Shape, axes: [Int], keepDim: Bool) -> Tensor {
        keepDim ? g : g.reshaped(Kernels.reducedShape(input, axes: axes, keepDim: true))
    }

    // MARK: Sum, mean, product

    /// Sum over `axes` (all when empty): `sum_i x_i`, pairwise for accuracy. An empty reduction
    /// gives 0.
    ///
    /// Gradient: `g` broadcast back to every summed element.
    ///
    /// - Parameters:
    ///   - axes: the dimensions to reduce (negative counts from the end); empty means all.
    ///   - keepDim: keep reduced dimensions as size 1.
    ///
    /// PyTorch parity: `torch.sum(x, dim, keepdim)`; int64 and bool sum to int64; its axis errors
    /// ("Dimension out of range", "dim 1 appears multiple times in the list of dims").
    public func sum(axes: [Int] = [], keepDim: Bool = false) -> Tensor {
        let shape = self.shape
        let ax = Kernels.reductionAxes(axes, rank: rank, op: "sum")
        return Kernels.sum(self, axes: ax, keepDim: keepDim).recorded("sum", self, twice: true) { g in
            if creatingGraph { return [Tensor.keptShapeRecorded(g, input: shape, axes: ax, keepDim: keepDim).broadcast(to: shape)] }
            return [Tensor.keptShape(g, input: shape, axes: ax, keepDim: keepDim).expandedRaw(to: shape).contiguousRaw]
        }
    }

    /// Sum over one axis. PyTorch parity: `torch.sum(x, dim, keepdim)`.
    public func sum(axis: Int, keepDim: Bool = false) -> Tensor { sum(axes: [axis], keepDim: keepDim) }

    /// Mean over `axes` (all when empty): `sum(x) / N`. An empty reduction gives NaN.
    ///
    /// Gradient: `g / N` broadcast back to every element.
    ///
    /// PyTorch parity: `torch.mean(x, dim, keepdim)`, including its error for integer input
    /// ("mean(): could not infer output dtype. ...").
    public func mean(axes: [Int] = [], keepDim: Bool = false) -> Tensor {
        let shape = self.shape
        let ax = Kernels.reductionAxes(axes, rank: rank, op: "mean")
        let y = Kernels.mean(self, axes: ax, keepDim: keepDim)
        return y.recorded("mean", self, twice: true) { g in
            let n = ax.reduce(1) { $0 * shape[$1] }
            if creatingGraph {
                return [Tensor.keptShapeRecorded(g, input: shape, axes: ax, keepDim: keepDim).broadcast(to: shape) / Double(n)]
            }
            let expanded = Tensor.keptShape(g, input: shape, axes: ax, keepDim: keepDim).expandedRaw(to: shape)
            return [Kernels.div(expanded, Tensor.full([], Double(n), dtype: g.dtype))]
        }
    }

    /// Mean over one axis. PyTorch parity: `torch.mean(x, dim, keepdim)`.
    public func mean(axis: Int, keepDim: Bool = false) -> Tensor { mean(axes: [axis], keepDim: keepDim) }

    /// Product over `axes` (all when empty). An empty reduction gives 1.
    ///
    /// Gradient: for each element, `g` times the product of the other elements of its group,
    /// computed from prefix and suffix products, so it is exact when the group holds zeros
    /// (one zero: only that element gets a gradient; two or more: all get 0).
    ///
    /// PyTorch parity: `torch.prod(x, dim, keepdim)` (which takes one dim; several are allowed
    /// here); int64 and bool give int64.
    public func prod(axes: [Int] = [], keepDim: Bool = false) -> Tensor {
        let x = detached()
        let ax = Kernels.reductionAxes(axes, rank: rank, op: "prod")
        return Kernels.prod(self, axes: ax, keepDim: keepDim).recorded("prod", self, twice: true) { [self] g in
            if creatingGraph {
                // The product as a chain of recorded multiplications (exact with zeros),
                // differentiated again.
                return recomputedGradients([self], g) { args in
                    let v = args[0]!
                    let kept = (0..<v.rank).filter { !ax.contains($0) }
                    let length = ax.reduce(1) { $0 * v.shape[$1] }
                    let lines = v.permuted(kept + ax).reshaped(Shape(kept.map { v.shape[$0] } + [length]))
                    let last = kept.count
                    var product = length == 0 ? Tensor.ones(Shape(kept.map { v.shape[$0] }), dtype: v.dtype)
                                              : lines.select(axis: last, index: 0)
                    if length > 1 { for i in 1..<length { product = product * lines.select(axis: last, index: i) } }
                    return product.reshaped(Kernels.reducedShape(v.shape, axes: ax, keepDim: keepDim))
                }
            }
            return [Kernels.prodBackward(Tensor.keptShape(g, input: x.shape, axes: ax, keepDim: keepDim), x, axes: ax)]
        }
    }

    /// Product over one axis. PyTorch parity: `torch.prod(x, dim, keepdim)`.
    public func prod(axis: Int, keepDim: Bool = false) -> Tensor { prod(axes: [axis], keepDim: keepDim) }

    // MARK: Max, min

    /// The largest element, as a 0-d tensor; NaN if any element is NaN.
    ///
    /// Gradient: `g` shared evenly among all elements equal to the maximum.
    ///
    /// PyTorch parity: `torch.max(x)`, its tie gradient (`evenly_distribute_backward`) and its
    /// error for an empty tensor ("max(): Expected reduction dim to be specified for
    /// input.numel() == 0. ...").
    public func max() -> Tensor { fullExtremum(isMax: true) }

    /// The smallest element, as a 0-d tensor; NaN if any element is NaN.
    ///
    /// Gradient: `g` shared evenly among all elements equal to the minimum.
    ///
    /// PyTorch parity: `torch.min(x)` (see `max()`).
    public func min() -> Tensor { fullExtremum(isMax: false) }

    private func fullExtremum(isMax: Bool) -> Tensor {
        let x = detached()
        let op = isMax ? "max" : "min"
        let y = Kernels.extremum(self, axes: [], keepDim: false, isMax: isMax, op: op)
        return y.recorded(op, self, twice: true) { g in
            guard creatingGraph else { return [Kernels.evenlyDistribute(g, x, y)] }
            let share = Kernels.evenlyDistribute(Tensor.ones(g.shape, dtype: g.dtype), x, y)
            return [g.broadcast(to: x.shape) * share]
        }
    }

    /// The largest element along `axis` and its index (the first one on ties; the first NaN if
    /// any).
    ///
    /// Gradient: `g` flows to the selected index only.
    ///
    /// PyTorch parity: `torch.max(x, dim, keepdim)` returning `(values, indices)`, indices int64;
    /// its error for an empty dimension ("max(): Expected reduction dim 0 to have non-zero size.").
    public func max(axis: Int, keepDim: Bool = false) -> (values: Tensor, indices: Tensor) {
        extremumAlong(axis: axis, keepDim: keepDim, isMax: true)
    }

    /// The smallest element along `axis` and its index (the first one on ties; the first NaN if
    /// any).
    ///
    /// Gradient: `g` flows to the selected index only.
    ///
    /// PyTorch parity: `torch.min(x, dim, keepdim)` returning `(values, indices)`.
    public func min(axis: Int, keepDim: Bool = false) -> (values: Tensor, indices: Tensor) {
        extremumAlong(axis: axis, keepDim: keepDim, isMax: false)
    }

    private func extremumAlong(axis: Int, keepDim: Bool, isMax: Bool) -> (values: Tensor, indices: Tensor) {
        let op = isMax ? "max" : "min"
        let a = normalizeAxis(axis, rank: rank, op: op)
        let shape = self.shape
        let (values, indices) = Kernels.extremumWithIndex(self, axis: a, keepDim: keepDim, isMax: isMax, op: op)
        let recordedValues = values.recorded(op, self, twice: true) { g in
            if shape.count == 0 { return [g] }
            let ik = Tensor.keptShape(indices, input: shape, axes: [a], keepDim: keepDim)
            if creatingGraph {
                let gk = Tensor.keptShapeRecorded(g, input: shape, axes: [a], keepDim: keepDim)
                let gShape = g.shape
                return [gk.linearMap("\(op)Backward", { Kernels.scatterAlongAxis($0, indices: ik, axis: a, shape: shape) },
                                     adjoint: { $0.gather(axis: a, index: ik).reshaped(gShape) })]
            }
            let gk = Tensor.keptShape(g, input: shape, axes: [a], keepDim: keepDim)
            return [Kernels.scatterAlongAxis(gk, indices: ik, axis: a, shape: shape)]
        }
        return (recordedValues, indices)
    }

    /// The largest element over `axes` (all when empty); NaN propagates.
    ///
    /// Gradient: `g` shared evenly among the tied maxima of each group.
    ///
    /// PyTorch parity: `torch.amax(x, dim, keepdim)`.
    public func amax(axes: [Int] = [], keepDim: Bool = false) -> Tensor { reducedExtremum(axes: axes, keepDim: keepDim, isMax: true) }

    /// The smallest element over `axes` (all when empty); NaN propagates.
    ///
    /// Gradient: `g` shared evenly among the tied minima of each group.
    ///
    /// PyTorch parity: `torch.amin(x, dim, keepdim)`.
    public func amin(axes: [Int] = [], keepDim: Bool = false) -> Tensor { reducedExtremum(axes: axes, keepDim: keepDim, isMax: false) }

    private func reducedExtremum(axes: [Int], keepDim: Bool, isMax: Bool) -> Tensor {
        let op = isMax ? "amax" : "amin"
        let x = detached()
        let ax = Kernels.reductionAxes(axes, rank: rank, op: op)
        let y = Kernels.extremum(self, axes: axes, keepDim: keepDim, isMax: isMax, op: op)
        return y.recorded(op, self, twice: true) { g in
            let yk = Tensor.keptShape(y, input: x.shape, axes: ax, keepDim: keepDim)
            if creatingGraph {
                let share = Kernels.distributeAmongTies(Tensor.ones(yk.shape, dtype: g.dtype), x, yk, axes: ax)
                return [Tensor.keptShapeRecorded(g, input: x.shape, axes: ax, keepDim: keepDim).broadcast(to: x.shape) * share]
            }
            let gk = Tensor.keptShape(g, input: x.shape, axes: ax, keepDim: keepDim)
            return [Kernels.distributeAmongTies(gk, x, yk, axes: ax)]
        }
    }

    /// Index of the largest element along `axis`, or in the flattened tensor when `axis` is nil;
    /// the first occurrence on ties, the first NaN if any. int64, never differentiable.
    ///
    /// PyTorch parity: `torch.argmax(x, dim=None, keepdim=False)`.
    public func argmax(axis: Int? = nil, keepDim: Bool = false) -> Tensor {
        Kernels.argExtremum(self, axis: axis, keepDim: keepDim, isMax: true, op: "argmax")
    }

    /// Index of the smallest element along `axis`, or in the flattened tensor when `axis` is nil;
    /// the first occurrence on ties, the first NaN if any. int64, never differentiable.
    ///
    /// PyTorch parity: `torch.argmin(x, dim=None, keepdim=False)`.
    public func argmin(axis: Int? = nil, keepDim: Bool = false) -> Tensor {
        Kernels.argExtremum(self, axis: axis, keepDim: keepDim, isMax: false, op: "argmin")
    }

    // MARK: Variance, standard deviation

    /// Variance over `axes` (all when empty): `sum((x - mean)^2) / max(0, N - correction)`,
    /// computed in two passes with double-precision accumulation.
    ///
    /// Gradient: `2 / (N - correction) * g * (x - mean)`.
    ///
    /// - Parameters:
    ///   - axes: dimensions to reduce; empty means all.
    ///   - correction: subtracted from `N` in the divisor: 1 (the default) is the unbiased
    ///     estimator, 0 the population variance.
    ///   - keepDim: keep reduced dimensions as size 1.
    ///
    /// PyTorch parity: `torch.var(x, dim, correction=1, keepdim=False)`: NaN when `N == 0` or
    /// `N <= correction` with equal values, infinity past that; float input only.
    public func variance(axes: [Int] = [], correction: Double = 1, keepDim: Bool = false) -> Tensor {
        let x = detached()
        let ax = Kernels.reductionAxes(axes, rank: rank, op: "var")
        let full = axes.isEmpty
        return Kernels.variance(self, axes: ax, correction: correction, keepDim: keepDim, op: "var").recorded("var", self, twice: true) { [self] g in
            if creatingGraph {
                let n = Double(ax.reduce(1) { $0 * x.shape[$1] })
                let gk = Tensor.keptShapeRecorded(g, input: x.shape, axes: ax, keepDim: keepDim)
                return [gk * (self - self.mean(axes: ax, keepDim: true)) * (2 / Swift.max(0, n - correction))]
            }
            let gk = Tensor.keptShape(g, input: x.shape, axes: ax, keepDim: keepDim)
            return [Kernels.varianceBackward(gk, x, axes: ax, correction: correction, fullReduction: full)]
        }
    }

    /// Variance with PyTorch's older flag: `unbiased` is `correction: 1`, else `correction: 0`.
    /// PyTorch parity: `torch.var(x, dim, unbiased, keepdim)`.
    public func variance(axes: [Int] = [], unbiased: Bool, keepDim: Bool = false) -> Tensor {
        variance(axes: axes, correction: unbiased ? 1 : 0, keepDim: keepDim)
    }

    /// Variance over one axis. PyTorch parity: `torch.var(x, dim, correction=1, keepdim=False)`.
    public func variance(axis: Int, correction: Double = 1, keepDim: Bool = false) -> Tensor {
        variance(axes: [axis], correction: correction, keepDim: keepDim)
    }

    /// Standard deviation over `axes` (all when empty): `sqrt(variance(axes, correction))`.
    ///
    /// Gradient: the variance's gradient times `1 / (2 std)`, and 0 where `std == 0`.
    ///
    /// PyTorch parity: `torch.std(x, dim, correction=1, keepdim=False)` and its zero-std rule.
    public func std(axes: [Int] = [], correction: Double = 1, keepDim: Bool = false) -> Tensor {
        let x = detached()
        let ax = Kernels.reductionAxes(axes, rank: rank, op: "std")
        let full = axes.isEmpty
        let y = Kernels.variance(self, axes: ax, correction: correction, keepDim: keepDim, squareRoot: true, op: "std")
        return y.recorded("std", self, twice: true) { [self] g in
            if creatingGraph {
                let n = Double(ax.reduce(1) { $0 * x.shape[$1] })
                let gk = Tensor.keptShapeRecorded(g, input: x.shape, axes: ax, keepDim: keepDim)
                let s = self.std(axes: ax, correction: correction, keepDim: true)
                // Zero where the deviation is zero, as the fused form (PyTorch's rule).
                let safe = Tensor.where(s.eq(0), s.scalarOperand(1), s)
                let nonzero = s.ne(0).to(s.dtype)
                return [gk * nonzero * (self - self.mean(axes: ax, keepDim: true)) / (safe * Swift.max(0, n - correction))]
            }
            let gk = Tensor.keptShape(g, input: x.shape, axes: ax, keepDim: keepDim)
            let yk = Tensor.keptShape(y, input: x.shape, axes: ax, keepDim: keepDim)
            let gv = Kernels.stdToVarianceGradient(gk, yk)
            return [Kernels.varianceBackward(gv, x, axes: ax, correction: correction, fullReduction: full)]
        }
    }

    /// Standard deviation with PyTorch's older flag (`unbiased` is `correction: 1`).
    /// PyTorch parity: `torch.std(x, dim, unbiased, keepdim)`.
    public func std(axes: [Int] = [], unbiased: Bool, keepDim: Bool = false) -> Tensor {
        std(axes: axes, correction: unbiased ? 1 : 0, keepDim: keepDim)
    }

    /// Standard deviation over one axis. PyTorch parity: `torch.std(x, dim, correction=1)`.
    public func std(axis: Int, correction: Double = 1, keepDim: Bool = false) -> Tensor {
        std(axes: [axis], correction: correction, keepDim: keepDim)
    }

    // MARK: Log-sum-exp

    /// `log(sum(exp(x)))` over `axes` (all when empty), computed stably as
    /// `m + log(sum(exp(x - m)))` with `m` the maximum. All `-inf` gives `-inf`; any `+inf` gives
    /// `+inf`; an empty reduction gives `-inf`.
    ///
    /// Gradient: `g * exp(x - result)` (the softmax of the group).
    ///
    /// PyTorch parity: `torch.logsumexp(x, dim, keepdim)`, including its infinite-maximum rule
    /// and NaN gradients for a group of only `-inf`; integer input gives float32.
    public func logsumexp(axes: [Int] = [], keepDim: Bool = false) -> Tensor {
        let x = detached()
        let ax = Kernels.reductionAxes(axes, rank: rank, op: "logsumexp")
        let y = Kernels.logsumexp(self, axes: ax, keepDim: keepDim)
        return y.recorded("logsumexp", self, twice: true) { [self] g in
            if creatingGraph {
                let gk = Tensor.keptShapeRecorded(g, input: x.shape, axes: ax, keepDim: keepDim)
                return [gk * (self - self.logsumexp(axes: ax, keepDim: true)).exp()]
            }
            let gk = Tensor.keptShape(g, input: x.shape, axes: ax, keepDim: keepDim)
            let yk = Tensor.keptShape(y, input: x.shape, axes: ax, keepDim: keepDim)
            return [Kernels.logsumexpBackward(gk, x, yk)]
        }
    }

    /// Log-sum-exp over one axis. PyTorch parity: `torch.logsumexp(x, dim, keepdim)`.
    public func logsumexp(axis: Int, keepDim: Bool = false) -> Tensor { logsumexp(axes: [axis], keepDim: keepDim) }
}
