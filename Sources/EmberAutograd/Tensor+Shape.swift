import EmberTensor
import EmberStorage

// Shape and layout ops. All of them are views that share the input's storage (no copy), except
// `reshaped`/`flattened`/`unflattened` when the layout forces a copy, and `contiguous`.
//
// Copy-on-write: a view shares storage but never aliases observably. Mutating a view (or the
// tensor it came from) copies the storage first, so the other side never changes. PyTorch users
// may expect `y = x.view(...)` to see later writes to `x`; in Ember it does not, on purpose.

extension Tensor {
    /// The same elements in a new shape (one dimension may be `-1`, inferred from the others).
    ///
    /// A view (no copy) whenever ``view(_:)`` would succeed, else a contiguous copy.
    ///
    /// - Parameter newShape: the target shape; its element count must equal `count`.
    ///
    /// PyTorch parity: `torch.reshape`, with its error texts
    /// ("shape '[5, 5]' is invalid for input of size 24").
    /// See also: ``view(_:)``, ``flattened(startAxis:endAxis:)``.
    public func reshaped(_ newShape: Shape) -> Tensor {
        let x = self
        return reshapedRaw(newShape).recorded("reshape", x, twice: true) { g in [g.reshaped(x.shape)] }
    }

    /// A view of the same elements in a new shape (one dimension may be `-1`), never a copy.
    ///
    /// Succeeds exactly when PyTorch's `view` does: each new dimension must fit inside a run of
    /// dimensions that are contiguous with each other in memory. Views of transposed, sliced or
    /// expanded tensors get the strides PyTorch computes. Otherwise stops with PyTorch's message
    /// "view size is not compatible with input tensor's size and stride (at least one dimension
    /// spans across two contiguous subspaces). Use .reshape(...) instead."
    ///
    /// The result shares storage with `self`, but, unlike PyTorch, never aliases observably:
    /// mutating either one copies first (copy-on-write).
    ///
    /// PyTorch parity: `Tensor.view(shape)`.
    public func view(_ newShape: Shape) -> Tensor {
        let x = self
        return viewRaw(newShape).recorded("view", x, twice: true) { g in [g.reshaped(x.shape)] }
    }

    /// Merges the dimensions `startAxis...endAxis` into one (a view when the layout allows).
    ///
    /// A 0-d tensor becomes 1-d with one element.
    ///
    /// - Parameters:
    ///   - startAxis: first dimension to merge (negative counts from the end).
    ///   - endAxis: last dimension to merge, inclusive.
    ///
    /// PyTorch parity: `torch.flatten(x, start_dim=0, end_dim=-1)`, including
    /// "flatten() has invalid args: start_dim cannot come after end_dim".
    public func flattened(startAxis: Int = 0, endAxis: Int = -1) -> Tensor {
        let s = normalizeAxis(startAxis, rank: rank, op: "flatten")
        let e = normalizeAxis(endAxis, rank: rank, op: "flatten")
        precondition(s <= e, "flatten: flatten() has invalid args: start_dim cannot come after end_dim (start \(startAxis), end \(endAxis), shape \(shape))")
        if rank == 0 { return reshaped([1]) }
        if s == e { return self }
        var target = Shape(shape[..<s])
        target.append(shape[s...e].reduce(1, *))
        for d in (e + 1)..<rank { target.append(shape[d]) }
        let x = self
        return reshapedRaw(target, op: "flatten").recorded("flatten", x, twice: true) { g in [g.reshaped(x.shape)] }
    }

    /// Splits dimension `axis` into `sizes` (one entry may be `-1`); the inverse of `flattened`.
    ///
    /// - Parameters:
    ///   - axis: the dimension to split (negative counts from the end).
    ///   - sizes: the new sizes, whose product must be the size of `axis`.
    ///
    /// PyTorch parity: `torch.unflatten(x, dim, sizes)`, with its error texts ("unflatten: Provided
    /// sizes [2, 2] don't multiply up to the size of dim 1 (3) in the input tensor").
    public func unflattened(axis: Int, sizes: Shape) -> Tensor {
        precondition(rank > 0, "unflatten: Dimension specified as \(axis) but tensor has no dimensions")
        let a = normalizeAxis(axis, rank: rank, op: "unflatten")
        precondition(!sizes.isEmpty, "unflatten: sizes must be non-empty")
        let n = shape[a]
        let known = sizes.filter { $0 != -1 }.reduce(1, *)
        let fits = sizes.contains(-1) ? (known == n || (known > 0 && n % known == 0)) : known == n
        precondition(fits, "unflatten: Provided sizes \(sizes) don't multiply up to the size of dim \(a) (\(n)) in the input tensor")
        let resolved = Tensor.inferredShape(sizes, count: n, op: "unflatten")
        var target = Shape(shape[..<a])
        for d in resolved { target.append(d) }
        for d in (a + 1)..<rank { target.append(shape[d]) }
        let x = self
        return reshapedRaw(target, op: "unflatten").recorded("unflatten", x, twice: true) { g in [g.reshaped(x.shape)] }
    }

    /// A view with every size-1 dimension removed. PyTorch parity: `torch.squeeze(x)`.
    public func squeezed() -> Tensor {
        squeezing((0..<rank).filter { shape[$0] == 1 })
    }

    /// A view with dimension `axis` removed if its size is 1 (else `self` unchanged).
    ///
    /// PyTorch parity: `torch.squeeze(x, dim)`; a 0-d tensor accepts axis 0 or -1.
    public func squeezed(axis: Int) -> Tensor { squeezed(axes: [axis]) }

    /// A view with those of `axes` that have size 1 removed; the others are left in place.
    ///
    /// PyTorch parity: `torch.squeeze(x, dims)`, including "dim 0 appears multiple times in the
    /// list of dims".
    public func squeezed(axes: [Int]) -> Tensor {
        let norm = axes.map { normalizeAxis($0, rank: rank, op: "squeeze") }
        for (i, d) in norm.enumerated() {
            precondition(!norm[..<i].contains(d), "squeeze: dim \(d) appears multiple times in the list of dims")
        }
        if rank == 0 { return self }
        return squeezing(norm.filter { shape[$0] == 1 }.sorted())
    }

    private func squeezing(_ axes: [Int]) -> Tensor {
        if axes.isEmpty { return self }
        let x = self
        return squeezedRaw(axes: axes).recorded("squeeze", x, twice: true) { g in [g.reshaped(x.shape)] }
    }

    /// A view with a new size-1 dimension at position `axis` (`-rank-1...rank`).
    ///
    /// PyTorch parity: `torch.unsqueeze(x, dim)`, strides included.
    public func unsqueezed(axis: Int) -> Tensor {
        let a = normalizeAxis(axis, rank: rank + 1, op: "unsqueeze")
        let x = self
        return unsqueezedRaw(axis: a).recorded("unsqueeze", x, twice: true) { g in [g.reshaped(x.shape)] }
    }

    /// A view with dimensions reordered: dimension `i` of the result is dimension `perm[i]` of
    /// `self` (negative entries count from the end).
    ///
    /// PyTorch parity: `torch.permute`, with its error texts.
    public func permuted(_ perm: [Int]) -> Tensor {
        precondition(perm.count == rank,
                     "permute: permute(): number of dimensions in the tensor input does not match the length of the desired ordering of dimensions i.e. input.dim() = \(rank) is not equal to len(dims) = \(perm.count)")
        let p = perm.map { normalizeAxis($0, rank: rank, op: "permute") }
        var inverse = [Int](repeating: 0, count: p.count)
        for (i, d) in p.enumerated() { inverse[d] = i }
        return permutedRaw(p).recorded("permute", self, twice: true) { g in [g.permuted(inverse)] }
    }

    /// A view with two dimensions swapped. PyTorch parity: `torch.transpose(x, dim0, dim1)`.
    public func transposed(_ dim0: Int, _ dim1: Int) -> Tensor {
        let a = normalizeAxis(dim0, rank: rank, op: "transpose"), b = normalizeAxis(dim1, rank: rank, op: "transpose")
        if rank == 0 || a == b { return self }
        var perm = Array(0..<rank)
        perm.swapAt(a, b)
        return permuted(perm)
    }

    /// Transpose of a matrix (rank <= 2; 0-d and 1-d tensors are returned unchanged).
    ///
    /// PyTorch parity: `x.t()`, including "t() expects a tensor with <= 2 dimensions, but self is 3D".
    public var t: Tensor {
        precondition(rank <= 2, "t() expects a tensor with <= 2 dimensions, but self is \(rank)D")
        return rank < 2 ? self : transposed(0, 1)
    }

    /// A view repeating size-1 dimensions to `sizes` without copying (stride 0).
    ///
    /// `-1` keeps a dimension's size; new leading dimensions may be added (not as `-1`). The
    /// backward sums the gradient over the repeated dimensions.
    ///
    /// - Parameter sizes: the target sizes, at least `rank` of them.
    ///
    /// PyTorch parity: `Tensor.expand(*sizes)`, strides and error texts included ("The expanded
    /// size of the tensor (5) must match the existing size (3) at non-singleton dimension 1.
    /// Target sizes: [2, 5, 4].  Tensor sizes: [2, 3, 4]").
    /// See also: ``broadcast(to:)``, ``expanded(as:)``.
    public func expanded(to sizes: Shape) -> Tensor { expanding(sizes, op: "expand") }

    /// A view of this tensor broadcast to `shape` (no copy); the same as ``expanded(to:)``.
    ///
    /// PyTorch parity: `torch.broadcast_to(x, shape)`.
    public func broadcast(to shape: Shape) -> Tensor { expanding(shape, op: "broadcast") }

    /// A view of this tensor expanded to `other`'s shape. PyTorch parity: `Tensor.expand_as`.
    public func expanded(as other: Tensor) -> Tensor { expanding(other.shape, op: "expandAs") }

    private func expanding(_ sizes: Shape, op: String) -> Tensor {
        let x = self
        let out = expandRaw(sizes, op: op)
        if out.shape == shape && out.strides == strides { return self }
        return out.recorded(op, x, twice: true) { g in [g.summed(toShape: x.shape)] }
    }

    /// A contiguous tensor with the same values (`self` when already contiguous).
    ///
    /// PyTorch parity: `contiguous()`.
    public func contiguous() -> Tensor {
        if isContiguous { return self }
        return contiguousCopy().recorded("contiguous", self, twice: true) { g in [g] }
    }
}
