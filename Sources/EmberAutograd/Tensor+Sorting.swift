import EmberTensor
import EmberStorage

// Sorting and selection by rank: sort, argsort, topk, kthvalue, unique. Every sort is stable and
// orders NaN as the largest value (PyTorch's rule). The gradient of the selected values flows back
// through the indices: it is scattered into zeros of the input's shape.

extension Tensor {
    /// The gradient of values picked along `axis` at `indices` (same shape as the values):
    /// scatters into zeros of `shape`. Recorded (with `gather` as its adjoint) when creating a
    /// graph, so double backward works.
    static func scatteredBack(_ g: Tensor, axis: Int, indices: Tensor, shape: Shape) -> Tensor {
        g.linearMap("scatterBack", { Kernels.scatterAdd(Tensor.zeros(shape, dtype: $0.dtype), axis: axis, index: indices, source: $0) },
                    adjoint: { $0.gather(axis: axis, index: indices) })
    }

    /// The elements of `self` sorted along `axis`, and the positions they came from.
    ///
    /// The sort is always stable: equal elements keep their order, in descending order too. NaN
    /// sorts as the largest value (last ascending, first descending).
    ///
    /// - Parameters:
    ///   - axis: the dimension to sort along (default the last; negative counts from the end).
    ///   - descending: largest first when `true`.
    ///   - stable: accepted for PyTorch parity; Ember's sort is always stable.
    /// - Returns: `values` (same shape and dtype as `self`) and `indices` (int64): `values` is
    ///   `self.gather(axis: axis, index: indices)`.
    ///
    /// Gradient: the gradient of `values` is scattered back to the positions in `indices`.
    ///
    /// PyTorch parity: `torch.sort(x, dim=-1, descending=False, stable=True)`; a 0-d tensor gives
    /// itself and index 0.
    /// See also: ``argsort(axis:descending:)``, ``topk(_:axis:largest:sorted:)``.
    public func sort(axis: Int = -1, descending: Bool = false, stable: Bool = true) -> (values: Tensor, indices: Tensor) {
        let a = normalizeAxis(axis, rank: rank, op: "sort")
        let indices = Kernels.sortIndices(self, axis: a, descending: descending)
        return (pickedAlong(axis: a, indices: indices, op: "sort"), indices)
    }

    /// `self.gather(axis: a, index: indices)` recorded with a scatter-back gradient (named `op`).
    private func pickedAlong(axis a: Int, indices: Tensor, op: String) -> Tensor {
        let shape = self.shape
        let values = rank == 0 ? contiguousRaw : Kernels.gather(self, axis: a, index: indices)
        return values.recorded(op, self, twice: true) { g in
            if shape.isEmpty { return [g] }
            return [Tensor.scatteredBack(g, axis: a, indices: indices, shape: shape)]
        }
    }

    /// The positions that sort `self` along `axis` (int64, `self`'s shape).
    ///
    /// Stable, with NaN as the largest value, like ``sort(axis:descending:stable:)``.
    ///
    /// PyTorch parity: `torch.argsort(x, dim=-1, descending=False, stable=True)` (PyTorch's default
    /// `stable=False` may order ties differently; Ember's ties always keep their order).
    public func argsort(axis: Int = -1, descending: Bool = false) -> Tensor {
        Kernels.sortIndices(self, axis: normalizeAxis(axis, rank: rank, op: "argsort"), descending: descending)
    }

    /// The `k` largest (or smallest) elements along `axis` and their positions.
    ///
    /// - Parameters:
    ///   - k: how many, in `0...size(axis)`.
    ///   - axis: the dimension to select along (default the last).
    ///   - largest: the largest `k` when `true`, else the smallest.
    ///   - sorted: accepted for PyTorch parity; the result is always sorted (largest first when
    ///     `largest`), ties in their original order.
    /// - Returns: `values` and int64 `indices`, with `size(axis)` replaced by `k`.
    ///
    /// Gradient: scattered back to the positions in `indices`.
    ///
    /// PyTorch parity: `torch.topk(x, k, dim=-1, largest=True, sorted=True)`, with its error
    /// ("selected index k out of range"); NaN counts as the largest value. PyTorch does not
    /// promise which of tied elements it picks; Ember picks the first ones.
    public func topk(_ k: Int, axis: Int = -1, largest: Bool = true, sorted: Bool = true) -> (values: Tensor, indices: Tensor) {
        let a = normalizeAxis(axis, rank: rank, op: "topk")
        let n = rank == 0 ? 1 : shape[a]
        precondition(k >= 0 && k <= n, "topk: selected index k out of range (k = \(k), size \(n) along dimension \(a) of \(shape))")
        var indices = Kernels.sortIndices(self, axis: a, descending: largest)
        if rank > 0 { indices = indices.narrowRaw(axis: a, start: 0, length: k).contiguousCopy() }
        return (pickedAlong(axis: a, indices: indices, op: "topk"), indices)
    }

    /// The `k`-th smallest element (1-based) of each line along `axis`, and its position.
    ///
    /// - Parameters:
    ///   - k: the rank, in `1...size(axis)`.
    ///   - axis: the dimension to select along (default the last).
    ///   - keepDim: keep `axis` with size 1.
    ///
    /// Gradient: flows to the selected position only.
    ///
    /// PyTorch parity: `torch.kthvalue(x, k, dim=-1, keepdim=False)`, with its error
    /// ("kthvalue(): selected number k out of range for dimension 0"); NaN is the largest value.
    /// Among tied elements Ember returns the position of the one a stable sort puts at rank `k`
    /// (PyTorch does not promise which).
    public func kthvalue(_ k: Int, axis: Int = -1, keepDim: Bool = false) -> (values: Tensor, indices: Tensor) {
        let a = normalizeAxis(axis, rank: rank, op: "kthvalue")
        let n = rank == 0 ? 1 : shape[a]
        precondition(k >= 1 && k <= n, "kthvalue: kthvalue(): selected number k out of range for dimension \(a)")
        if rank == 0 {
            return (pickedAlong(axis: 0, indices: Tensor(Int64(0)), op: "kthvalue"), Tensor(Int64(0)))
        }
        let kept = Kernels.sortIndices(self, axis: a, descending: false).narrowRaw(axis: a, start: k - 1, length: 1).contiguousCopy()
        let values = pickedAlong(axis: a, indices: kept, op: "kthvalue")
        if keepDim { return (values, kept) }
        return (values.squeezed(axis: a), kept.squeezedRaw(axes: [a]))
    }

    /// The distinct elements of `self` (or its distinct slices along `axis`), sorted ascending.
    ///
    /// - Parameters:
    ///   - sorted: accepted for PyTorch parity; the result is always sorted (as PyTorch's CPU
    ///     implementation does for `sorted=False` too).
    ///   - returnInverse: also return, for each input element (slice), the position of its value in
    ///     `values` (int64, `self`'s shape; `[size(axis)]` with `axis`).
    ///   - returnCounts: also return how often each value occurs (int64).
    ///   - axis: `nil` to flatten; otherwise unique slices along it, ordered lexicographically.
    ///
    /// NaNs are never equal, so each NaN is kept, after every number.
    ///
    /// PyTorch parity: `torch.unique(x, sorted=True, return_inverse=False, return_counts=False,
    /// dim=None)`. Not differentiable (PyTorch's is not either): the result never requires grad.
    public func unique(sorted: Bool = true, returnInverse: Bool = false, returnCounts: Bool = false,
                       axis: Int? = nil) -> (values: Tensor, inverse: Tensor?, counts: Tensor?) {
        let r: (values: Tensor, inverse: Tensor, counts: Tensor)
        if let axis {
            precondition(rank > 0, "unique: Dimension specified as \(axis) but tensor has no dimensions")
            r = Kernels.unique(self, axis: normalizeAxis(axis, rank: rank, op: "unique"))
        } else {
            r = Kernels.unique(self)
        }
        return (r.values, returnInverse ? r.inverse : nil, returnCounts ? r.counts : nil)
    }
}
