import EmberTensor

// Slicing (views) and index-based selection (copies). The backward of every slicing view writes
// the gradient into zeros of the input's shape; the backward of `gather`/`indexSelect` adds it
// back at the indexed positions, so repeated indices accumulate.
//
// Copy-on-write: slices share the input's storage but never alias observably; mutating a slice
// (or its source) copies first. PyTorch's slices alias; Ember's do not, on purpose.

extension Tensor {
    /// The view at position `index` along `axis`, with that dimension removed (no copy).
    ///
    /// - Parameters:
    ///   - axis: the dimension to index (negative counts from the end).
    ///   - index: the position; negative counts from the end (`-1` is the last).
    ///
    /// PyTorch parity: `torch.select(x, dim, index)`, with its error texts ("select(): index 3 out
    /// of range for tensor of size [2, 3, 4] at dimension 1").
    /// See also: the subscript `x[i]`, ``narrow(axis:start:length:)``.
    public func select(axis: Int, index: Int) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "select")
        let x = self
        let out = selectRaw(axis: a, index: index)
        let i = index < 0 ? index + shape[a] : index
        return out.recorded("select", x, twice: true) { g in
            [g.linearMap("selectBackward", { Kernels.embed($0, intoZerosOf: x.shape) { $0.selectRaw(axis: a, index: i) } },
                         adjoint: { $0.select(axis: a, index: i) })]
        }
    }

    /// The view of `length` consecutive positions from `start` along `axis` (no copy).
    ///
    /// - Parameters:
    ///   - axis: the dimension to narrow (negative counts from the end).
    ///   - start: first position, in `-size...size` (negative counts from the end).
    ///   - length: number of positions, `>= 0`; `start + length` must not exceed the size.
    ///
    /// PyTorch parity: `torch.narrow(x, dim, start, length)`, with its error texts
    /// ("start (2) + length (2) exceeds dimension size (3).").
    public func narrow(axis: Int, start: Int, length: Int) -> Tensor {
        precondition(rank > 0, "narrow: narrow() cannot be applied to a 0-dim tensor.")
        let a = normalizeAxis(axis, rank: rank, op: "narrow")
        let x = self
        let out = narrowRaw(axis: a, start: start, length: length)
        let s = start < 0 ? start + shape[a] : start
        return out.recorded("narrow", x, twice: true) { g in
            [g.linearMap("narrowBackward", { Kernels.embed($0, intoZerosOf: x.shape) { $0.narrowRaw(axis: a, start: s, length: length) } },
                         adjoint: { $0.narrow(axis: a, start: s, length: length) })]
        }
    }

    /// The view of positions `start, start + step, ...` before `end` along `axis` (no copy).
    ///
    /// Bounds follow Python slicing: `nil` means the whole extent, negative values count from the
    /// end, out-of-range bounds are clamped, and `end <= start` gives an empty dimension.
    ///
    /// - Parameters:
    ///   - axis: the dimension to slice (negative counts from the end).
    ///   - start: first position (default 0).
    ///   - end: position to stop before (default: the size).
    ///   - step: distance between positions, `> 0`.
    ///
    /// PyTorch parity: `x[..., start:end:step]` along one dimension; like PyTorch, negative steps
    /// are refused ("step must be greater than zero").
    public func sliced(axis: Int, start: Int? = nil, end: Int? = nil, step: Int = 1) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "slice")
        let x = self
        return slicedRaw(axis: a, start: start, end: end, step: step).recorded("slice", x, twice: true) { g in
            [g.linearMap("sliceBackward", { Kernels.embed($0, intoZerosOf: x.shape) { $0.slicedRaw(axis: a, start: start, end: end, step: step) } },
                         adjoint: { $0.sliced(axis: a, start: start, end: end, step: step) })]
        }
    }

    /// Picks values along `axis` by position: for a 3-d tensor and `axis == 1`,
    /// `out[i][j][k] = self[i][index[i][j][k]][k]`. The result has `index`'s shape.
    ///
    /// - Parameters:
    ///   - axis: the dimension the index values refer to.
    ///   - index: int64 positions, same rank as `self`, no larger than `self` in the other
    ///     dimensions (any size along `axis`). Repeats are allowed.
    ///
    /// The backward adds each gradient element back at its source position (scatter-add), so
    /// repeated indices accumulate.
    ///
    /// PyTorch parity: `torch.gather(x, dim, index)`, with its checks and error texts ("index 5 is
    /// out of bounds for dimension 0 with size 3").
    public func gather(axis: Int, index: Tensor) -> Tensor {
        let x = self
        let out = Kernels.gather(x, axis: axis, index: index)
        return out.recorded("gather", x, twice: true) { g in
            [g.linearMap("gatherBackward", { Kernels.scatterAdd(Tensor.zeros(x.shape, dtype: $0.dtype), axis: axis, index: index, source: $0) },
                         adjoint: { $0.gather(axis: axis, index: index) })]
        }
    }

    /// The slices of `self` at the positions `index` lists along `axis`, in that order (a copy).
    ///
    /// - Parameters:
    ///   - axis: the dimension to select along.
    ///   - index: 1-d (or 0-d) int64 positions; repeats are allowed.
    ///
    /// The backward adds gradient slices back at their positions (index-add), so repeated indices
    /// accumulate.
    ///
    /// PyTorch parity: `torch.index_select(x, dim, index)`; an out-of-range index stops with
    /// PyTorch's "index out of range in self" plus the offending value.
    public func indexSelect(axis: Int, index: Tensor) -> Tensor {
        let x = self
        let out = Kernels.indexSelect(x, axis: axis, index: index)
        return out.recorded("indexSelect", x, twice: true) { g in
            [g.linearMap("indexSelectBackward", { Kernels.indexAdd(Tensor.zeros(x.shape, dtype: $0.dtype), axis: axis, index: index, source: $0) },
                         adjoint: { $0.indexSelect(axis: axis, index: index) })]
        }
    }

    /// `self` with `value` wherever `mask` is true: `out = mask ? value : self`.
    ///
    /// `mask` (bool) and `self` broadcast together. The value is converted to `self`'s dtype
    /// (truncated toward zero for int64). The backward passes the gradient through where the mask
    /// is false and zeroes it where it is true.
    ///
    /// - Parameters:
    ///   - mask: a bool tensor broadcastable with `self`.
    ///   - value: the fill value (may be `-.infinity`, as attention masks use).
    ///
    /// PyTorch parity: `torch.masked_fill(x, mask, value)`, including "masked_fill_ only supports
    /// boolean masks, but got mask with dtype ...".
    public func maskedFill(_ mask: Tensor, _ value: Double) -> Tensor {
        let x = self
        let out = Kernels.maskedFill(x, mask: mask, value: value)
        return out.recorded("maskedFill", x, twice: true) { g in
            guard creatingGraph else { return [Kernels.sumToShape(Kernels.maskedFill(g, mask: mask, value: 0), x.shape)] }
            return [g.maskMap("maskedFillBackward") { Kernels.maskedFill($0, mask: mask, value: 0) }.summed(toShape: x.shape)]
        }
    }
}
