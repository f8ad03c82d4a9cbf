import EmberTensor
import EmberStorage

// Scatter family (scatter, scatterAdd, scatterReduce, indexAdd), maskedSelect, nonzero and take.
// Backwards are written with the differentiable ops themselves (gather, scatter with 0, ...), so
// they also build a graph when `createGraph` is set (double backward), except `prod`.

extension Tensor {
    /// `self` with the elements of `src` written at the positions `index` names along `axis`:
    /// for a 2-d tensor and `axis == 0`, `out[index[i][j]][j] = src[i][j]`.
    ///
    /// - Parameters:
    ///   - axis: the dimension the index values refer to (negative counts from the end).
    ///   - index: int64, same rank as `self`, no larger than `self` apart from `axis` and no
    ///     larger than `src` in any dimension (only `index`'s extent of `src` is used).
    ///   - src: the values, `self`'s dtype.
    ///
    /// Where an index repeats, the last write in row-major order of `index` wins (PyTorch leaves it
    /// unspecified). Gradient: `self` gets `g` with zeros at the written positions; `src` gets
    /// `g.gather(axis, index)` (PyTorch's formulas).
    ///
    /// PyTorch parity: `torch.scatter(x, dim, index, src)` / `Tensor.scatter`, with its checks and
    /// error texts ("index 3 is out of bounds for dimension 0 with size 3").
    /// See also: ``scatterAdd(axis:index:src:)``, ``gather(axis:index:)``.
    public func scatter(axis: Int, index: Tensor, src: Tensor) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "scatter")
        let srcShape = src.shape
        return Kernels.scatter(self, axis: a, index: index, source: src).recorded("scatter", self, src, twice: true) { g in
            [g.scatter(axis: a, index: index, value: 0),
             Tensor.paddedGather(g, axis: a, index: index, toShape: srcShape)]
        }
    }

    /// `self` with `value` at the positions `index` names along `axis`.
    ///
    /// Gradient: `g` with zeros at the written positions.
    ///
    /// PyTorch parity: `torch.scatter(x, dim, index, value)`.
    public func scatter(axis: Int, index: Tensor, value: Double) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "scatter")
        return Kernels.scatter(self, axis: a, index: index, value: value).recorded("scatter", self, twice: true) { g in
            [g.scatter(axis: a, index: index, value: 0)]
        }
    }

    /// `g.gather(axis, index)` placed into zeros of `shape` (the source's shape may be larger than
    /// `index`'s; only `index`'s extent of it received values).
    static func paddedGather(_ g: Tensor, axis: Int, index: Tensor, toShape shape: Shape) -> Tensor {
        if index.count == 0 { return Tensor.zeros(shape, dtype: g.dtype) }
        return padded(g.gather(axis: axis, index: index), toShape: shape)
    }

    /// `self` with the elements of `src` added at the positions `index` names along `axis`:
    /// `out[index[i][j]][j] += src[i][j]` (for `axis == 0`); repeated indices accumulate.
    ///
    /// Gradient: `self` gets `g`; `src` gets `g.gather(axis, index)`.
    ///
    /// PyTorch parity: `torch.scatter_add(x, dim, index, src)`.
    public func scatterAdd(axis: Int, index: Tensor, src: Tensor) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "scatterAdd")
        let srcShape = src.shape
        return Kernels.scatterAdd(self, axis: a, index: index, source: src).recorded("scatterAdd", self, src, twice: true) { g in
            [g, Tensor.paddedGather(g, axis: a, index: index, toShape: srcShape)]
        }
    }

    /// `self` with the values of `src` that `index` sends to each position combined by `reduce`.
    ///
    /// - Parameters:
    ///   - axis, index, src: as in ``scatter(axis:index:src:)``.
    ///   - reduce: `.sum`, `.prod`, `.mean` (divides by the number of values combined; floor
    ///     division for int64), `.amax`, `.amin` (NaN propagates).
    ///   - includeSelf: whether `self`'s value at a position takes part in its reduction (default
    ///     `true`); positions that receive nothing keep `self`'s value either way.
    ///
    /// Gradient (PyTorch's formulas): `sum`: `g` to `self` (zero at written positions when
    /// `includeSelf` is false), `g.gather` to `src`; `mean`: the same divided by the count;
    /// `amax`/`amin`: `g` shared evenly among the elements equal to the result; `prod`: `g` times
    /// the product of the other combined values (exact with zeros; no double backward).
    ///
    /// PyTorch parity: `torch.scatter_reduce(x, dim, index, src, reduce, include_self=True)`.
    public func scatterReduce(axis: Int, index: Tensor, src: Tensor, reduce: ScatterReduction,
                              includeSelf: Bool = true) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "scatterReduce")
        let x = self, srcShape = src.shape
        let out = Kernels.scatterReduce(x, axis: a, index: index, source: src, reduce: reduce, includeSelf: includeSelf)
        let srcIndexed = index.count == 0 ? src : Tensor.sourceExtent(src, like: index)
        func unscattered(_ t: Tensor) -> Tensor { includeSelf ? t : t.scatter(axis: a, index: index, value: 0) }
        switch reduce {
        case .sum:
            return out.recorded("scatterReduce", x, src, twice: true) { g in
                [unscattered(g), Tensor.paddedGather(g, axis: a, index: index, toShape: srcShape)]
            }
        case .mean:
            return out.recorded("scatterReduce", x, src, twice: true) { g in
                var n = Kernels.scatterCounts(x.shape, axis: a, index: index)
                if includeSelf { n = Kernels.add(n, Tensor.ones([], dtype: .int64)) }
                n = Kernels.maskedFill(n, mask: Kernels.compare(n, Tensor.zeros([], dtype: .int64), .eq), value: 1)
                let gn = g / n.to(g.dtype)
                return [unscattered(gn), Tensor.paddedGather(gn, axis: a, index: index, toShape: srcShape)]
            }
        case .amax, .amin:
            return out.recorded("scatterReduce", x, src, twice: true) { g in
                let result = out.detached()
                let value = index.count == 0 ? result : result.gather(axis: a, index: index)
                let selfIs = x.detached().eq(result).to(g.dtype)
                let srcIs = index.count == 0 ? srcIndexed : srcIndexed.detached().eq(value).to(g.dtype)
                let nDistribute = index.count == 0 ? selfIs : selfIs.scatterAdd(axis: a, index: index, src: srcIs)
                let distributed = g / nDistribute
                let gSelf = unscattered(selfIs * distributed)
                if index.count == 0 { return [gSelf, Tensor.zeros(srcShape, dtype: g.dtype)] }
                let gSrc = srcIs * distributed.gather(axis: a, index: index)
                return [gSelf, Tensor.padded(gSrc, toShape: srcShape)]
            }
        case .prod:
            return out.recorded("scatterReduce", x, src) { g in
                let r = Kernels.scatterProdGradients(g, base: x, axis: a, index: index, source: src, includeSelf: includeSelf)
                return [r.base, r.source]
            }
        }
    }

    /// `src` viewed with `index`'s shape (its leading extent), differentiably.
    static func sourceExtent(_ src: Tensor, like index: Tensor) -> Tensor {
        if src.shape == index.shape { return src }
        if index.rank == 0 || src.rank == 0 { return src.reshaped(index.shape) }
        var v = src
        for d in 0..<index.rank { v = v.narrow(axis: d, start: 0, length: index.shape[d]) }
        return v
    }

    /// `t` placed in the leading corner of zeros of `shape`, differentiably.
    static func padded(_ t: Tensor, toShape shape: Shape) -> Tensor {
        if t.shape == shape { return t }
        if shape.isEmpty { return t.reshaped([]) }
        let tShape = t.shape
        return t.linearMap("scatterSourcePad", { p in
            Kernels.embed(p, intoZerosOf: shape) { z in
                var v = z
                for d in 0..<shape.count { v = v.narrowRaw(axis: d, start: 0, length: tShape[d]) }
                return v
            }
        }, adjoint: { gg in
            var v = gg
            for d in 0..<shape.count { v = v.narrow(axis: d, start: 0, length: tShape[d]) }
            return v
        })
    }

    /// `self` with `alpha * source` slice `k` added at position `index[k]` along `axis`;
    /// repeated indices accumulate.
    ///
    /// - Parameters:
    ///   - axis: the dimension to add along.
    ///   - index: 1-d (or 0-d) int64 positions, one per slice of `source` along `axis`.
    ///   - source: `self`'s shape except `size(axis) == index.count`.
    ///   - alpha: scale of `source` (default 1).
    ///
    /// Gradient: `self` gets `g`; `source` gets `alpha * g.indexSelect(axis, index)`.
    ///
    /// PyTorch parity: `torch.index_add(x, dim, index, source, alpha=1)`, with its error
    /// ("index_add_(): Number of indices (1) should be equal to source.size(dim): (2), for dim: 0").
    public func indexAdd(axis: Int, index: Tensor, source: Tensor, alpha: Double = 1) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "indexAdd")
        if rank > 0 && source.rank == rank {
            precondition(index.count == source.shape[a],
                         "indexAdd: index_add_(): Number of indices (\(index.count)) should be equal to source.size(dim): (\(source.shape[a])), for dim: \(a)")
        }
        precondition(source.dtype == dtype, "indexAdd: index_add_(): self (\(dtype)) and source (\(source.dtype)) must have the same scalar type")
        let scaled = alpha == 1 ? source : Kernels.mul(source, Tensor.full([], alpha, dtype: source.dtype))
        let out = Kernels.indexAdd(self, axis: a, index: index, source: scaled)
        return out.recorded("indexAdd", self, source, twice: true) { g in
            let picked = g.indexSelect(axis: a, index: index)
            return [g, alpha == 1 ? picked : picked * alpha]
        }
    }

    /// The elements of `self` where `mask` is true, as a 1-d tensor in row-major order.
    ///
    /// `self` and `mask` (bool) broadcast together first.
    ///
    /// Gradient: scattered back to the selected positions (summed over broadcast dimensions).
    ///
    /// PyTorch parity: `torch.masked_select(x, mask)`, including "masked_select: expected BoolTensor
    /// for mask".
    public func maskedSelect(_ mask: Tensor) -> Tensor {
        precondition(mask.dtype == .bool, "maskedSelect: masked_select: expected BoolTensor for mask (got \(mask.dtype))")
        let common = broadcastShapes(shape, mask.shape, op: "maskedSelect")
        let positions = Kernels.nonzeroPositions(mask.expandedRaw(to: common, op: "maskedSelect"))
        let xb = shape == common ? self : broadcast(to: common)
        return xb.taken(positions)
    }

    /// The elements of `self` at row-major positions `positions` (int64; the result has its
    /// shape), differentiably: the backward adds the gradient back at those positions.
    ///
    /// PyTorch parity: `torch.take(x, index)` (non-negative positions only).
    public func take(_ positions: Tensor) -> Tensor {
        taken(positions)
    }

    func taken(_ positions: Tensor) -> Tensor {
        let shape = self.shape
        return Kernels.take(self, positions: positions).recorded("take", self, twice: true) { g in
            [g.linearMap("takeBackward", { Kernels.put(Tensor.zeros(shape, dtype: $0.dtype), positions: positions, values: $0, accumulate: true) },
                         adjoint: { $0.taken(positions) })]
        }
    }

    /// The multi-indices of the non-zero (for bool: true) elements, in row-major order: int64 of
    /// shape `[n, rank]`. NaN counts as non-zero.
    ///
    /// PyTorch parity: `torch.nonzero(x)`; a 0-d tensor gives shape `[1, 0]` or `[0, 0]`.
    /// See also: ``nonzero(asTuple:)``.
    public func nonzero() -> Tensor { Kernels.nonzero(self) }

    /// The non-zero positions as one 1-d int64 tensor per dimension (a 0-d tensor counts as 1-d),
    /// so that `x[nz[0], nz[1], ...]` selects the non-zero elements.
    ///
    /// PyTorch parity: `torch.nonzero(x, as_tuple=True)` (an array instead of a tuple); with
    /// `asTuple: false` the array holds the one `[n, rank]` tensor of ``nonzero()``.
    public func nonzero(asTuple: Bool) -> [Tensor] {
        if !asTuple { return [nonzero()] }
        if rank == 0 { return [Kernels.nonzeroPositions(self)] }
        let nz = Kernels.nonzero(self)
        return (0..<rank).map { nz.selectRaw(axis: 1, index: $0).contiguousCopy() }
    }
}
