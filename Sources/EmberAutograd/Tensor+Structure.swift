import EmberTensor
import EmberStorage

// Scans (cumsum, cumprod), triangles and diagonals, roll/flip, repeat/tile/repeatInterleave, and
// the batched and outer products. Where an op is a composition of existing differentiable ops
// (roll, repeat, tile, outer, bmm) it is written as one, so its gradient and double backward come
// for free; the others record a backward built from recorded ops or linear maps.

extension Tensor {
    // MARK: Scans

    /// Running sum along `axis`: `out[i] = x[0] + ... + x[i]`. float dtypes are kept (float32
    /// accumulates in double, as PyTorch's CPU kernel); int64 and bool give int64.
    ///
    /// Gradient: the running sum of `g` from the end of each line; differentiable twice.
    ///
    /// PyTorch parity: `torch.cumsum(input, dim)`.
    public func cumsum(axis: Int) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "cumsum")
        return Kernels.cumsum(self, axis: a).recorded("cumsum", self, twice: true) { g in
            [g.linearMap("cumsumBackward", { Kernels.reverseCumsum($0, axis: a) }, adjoint: { $0.cumsum(axis: a) })]
        }
    }

    /// Running product along `axis`: `out[i] = x[0] * ... * x[i]`. float dtypes are kept; int64
    /// and bool give int64.
    ///
    /// Gradient: `sum_{j >= k} g_j prod_{i <= j, i != k} x_i`, exact when a line holds zeros
    /// (no division by zero: before the first zero it uses the quotient form, at the first zero
    /// the product of the other factors, after it 0). Differentiable twice (the double backward
    /// differentiates the product written as a chain of multiplications).
    ///
    /// PyTorch parity: `torch.cumprod(input, dim)` and its zero-safe gradient.
    public func cumprod(axis: Int) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "cumprod")
        let x = detached()
        return Kernels.cumprod(self, axis: a).recorded("cumprod", self, twice: true) { [self] g in
            if creatingGraph {
                return recomputedGradients([self], g) { args in
                    let v = args[0]!
                    guard v.rank > 0, v.shape[a] > 1 else { return v * 1 }
                    var parts = [v.select(axis: a, index: 0)]
                    for i in 1..<v.shape[a] { parts.append(parts[i - 1] * v.select(axis: a, index: i)) }
                    return Tensor.stack(parts, axis: a)
                }
            }
            let xs = x.dtype == g.dtype ? x : x.convertedRaw(to: g.dtype)
            return [Kernels.cumprodBackward(g, xs, axis: a)]
        }
    }

    // MARK: Triangles and diagonals

    /// The upper triangle of the last two dimensions: elements with `col - row >= diagonal` are
    /// kept, the others set to zero (`diagonal > 0` excludes diagonals above the main one,
    /// `diagonal < 0` includes some below it). Batched over leading dimensions.
    ///
    /// Gradient: `g` masked the same way. PyTorch parity: `torch.triu(input, diagonal=0)`,
    /// including "triu: input tensor must have at least 2 dimensions".
    public func triu(diagonal: Int = 0) -> Tensor { triangle(diagonal: diagonal, lower: false) }

    /// The lower triangle of the last two dimensions: elements with `col - row <= diagonal` are
    /// kept, the others set to zero.
    ///
    /// Gradient: `g` masked the same way. PyTorch parity: `torch.tril(input, diagonal=0)`.
    public func tril(diagonal: Int = 0) -> Tensor { triangle(diagonal: diagonal, lower: true) }

    private func triangle(diagonal: Int, lower: Bool) -> Tensor {
        let op = lower ? "tril" : "triu"
        precondition(rank >= 2, "\(op): input tensor must have at least 2 dimensions (shape \(shape))")
        return Kernels.triangle(self, diagonal: diagonal, lower: lower).recorded(op, self, twice: true) { g in
            [g.maskMap("\(op)Backward") { Kernels.triangle($0, diagonal: diagonal, lower: lower) }]
        }
    }

    /// The view of a diagonal of the plane spanned by `axis1` and `axis2`: those dimensions are
    /// removed and the diagonal, `offset` above (positive) or below (negative) the main one, is
    /// appended as the last dimension (size 0 when the offset lies outside the plane). No copy.
    ///
    /// Gradient: `g` written onto that diagonal of zeros; differentiable twice.
    ///
    /// PyTorch parity: `torch.diagonal(input, offset=0, dim1=0, dim2=1)`, a view as in PyTorch,
    /// with its error "diagonal dimensions cannot be identical 1, 1".
    public func diagonal(offset: Int = 0, axis1: Int = 0, axis2: Int = 1) -> Tensor {
        let a1 = normalizeAxis(axis1, rank: rank, op: "diagonal"), a2 = normalizeAxis(axis2, rank: rank, op: "diagonal")
        precondition(a1 != a2, "diagonal: diagonal dimensions cannot be identical \(axis1), \(axis2) (shape \(shape))")
        let x = self
        return diagonalRaw(offset: offset, axis1: a1, axis2: a2).recorded("diagonal", x, twice: true) { g in
            [g.linearMap("diagonalBackward",
                         { Kernels.embed($0, intoZerosOf: x.shape) { $0.diagonalRaw(offset: offset, axis1: a1, axis2: a2) } },
                         adjoint: { $0.diagonal(offset: offset, axis1: a1, axis2: a2) })]
        }
    }

    /// A 1-d tensor gives the square matrix with it on diagonal `diagonal` (size `n + |diagonal|`);
    /// a 2-d tensor gives its diagonal `diagonal` as a 1-d tensor.
    ///
    /// Gradient: the adjoint (diagonal of `g`, or `g` written onto a diagonal of zeros).
    ///
    /// PyTorch parity: `torch.diag(input, diagonal=0)`, including "diag(): Supports 1D or 2D
    /// tensors. Got 3D". (The 2-d case returns a view here; PyTorch copies.)
    public func diag(diagonal k: Int = 0) -> Tensor {
        precondition(rank == 1 || rank == 2, "diag: diag(): Supports 1D or 2D tensors. Got \(rank)D (shape \(shape))")
        if rank == 2 { return self.diagonal(offset: k) }
        let n = shape[0] + Swift.abs(k)
        return linearMap("diag", { v in
            Kernels.embed(v.detached(), intoZerosOf: [n, n]) { $0.diagonalRaw(offset: k, axis1: 0, axis2: 1) }
        }, adjoint: { $0.diagonal(offset: k) })
    }

    // MARK: Roll and flip

    /// Rolls the elements along each of `axes` by the matching entry of `shifts` (elements moved
    /// past the end come back at the start; negative shifts roll the other way). With no axes the
    /// tensor is rolled as if flattened (one shift), then restored to its shape.
    ///
    /// Gradient: `g` rolled back. PyTorch parity: `torch.roll(input, shifts, dims=None)`, including
    /// "shifts and dimensions must align. shifts: 2, dims:1".
    public func roll(shifts: [Int], axes: [Int] = []) -> Tensor {
        if axes.isEmpty {
            precondition(shifts.count == 1, "roll: shifts and dimensions must align. shifts: \(shifts.count), dims:0")
            return flattened().rolled(shifts[0], axis: 0).reshaped(shape)
        }
        precondition(shifts.count == axes.count,
                     "roll: shifts and dimensions must align. shifts: \(shifts.count), dims:\(axes.count)")
        var out = self
        for (s, a) in zip(shifts, axes) { out = out.rolled(s, axis: normalizeAxis(a, rank: rank, op: "roll")) }
        return out
    }

    /// ``roll(shifts:axes:)`` by one shift along one axis (or the flattened tensor when `axis` is
    /// `nil`). PyTorch parity: `torch.roll(input, shift, dim)`.
    public func roll(_ shift: Int, axis: Int? = nil) -> Tensor {
        roll(shifts: [shift], axes: axis.map { [$0] } ?? [])
    }

    private func rolled(_ shift: Int, axis a: Int) -> Tensor {
        let n = rank == 0 ? 1 : shape[a]
        guard rank > 0, n > 0 else { return self }
        let s = ((shift % n) + n) % n
        if s == 0 { return self }
        return Tensor.cat([narrow(axis: a, start: n - s, length: s), narrow(axis: a, start: 0, length: n - s)], axis: a)
    }

    /// A copy with the order of elements reversed along each of `axes`.
    ///
    /// Gradient: `g` flipped the same way. PyTorch parity: `torch.flip(input, dims)`, including
    /// "dim 0 appears multiple times in the list of dims".
    public func flip(axes: [Int]) -> Tensor {
        let ax = axes.map { normalizeAxis($0, rank: rank, op: "flip") }
        for (i, a) in ax.enumerated() where ax[..<i].contains(a) {
            preconditionFailure("flip: dim \(a) appears multiple times in the list of dims (dims \(axes), shape \(shape))")
        }
        let real = rank == 0 ? [] : ax
        return Kernels.flip(self, axes: real).recorded("flip", self, twice: true) { g in [g.flip(axes: real)] }
    }

    // MARK: Repeat, tile, repeatInterleave

    /// Repeats the whole tensor `sizes[i]` times along each dimension; with more sizes than
    /// dimensions, leading size-1 dimensions are added first. (Named `repeated` because `repeat`
    /// is a Swift keyword: this is torch's `Tensor.repeat`, not `repeat_interleave`.)
    ///
    /// Gradient: the sum of `g` over the copies. PyTorch parity: `Tensor.repeat(*sizes)`,
    /// including "Number of dimensions of repeat dims can not be smaller than number of dimensions
    /// of tensor".
    public func repeated(_ sizes: Shape) -> Tensor {
        precondition(sizes.count >= rank,
                     "repeat: Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor (sizes \(sizes), shape \(shape))")
        precondition(sizes.allSatisfy { $0 >= 0 }, "repeat: Trying to create tensor with negative dimension (sizes \(sizes))")
        let padded = [Int](repeating: 1, count: sizes.count - rank) + Array(shape)
        var split = Shape(), expandedShape = Shape(), final = Shape()
        for (r, s) in zip(sizes, padded) {
            split.append(1); split.append(s)
            expandedShape.append(r); expandedShape.append(s)
            final.append(r * s)
        }
        return reshaped(split).expanded(to: expandedShape).reshaped(final)
    }

    /// Repeats the tensor `dims[i]` times along each dimension; fewer `dims` than dimensions are
    /// padded with leading 1s, more add leading dimensions.
    ///
    /// Gradient: the sum of `g` over the copies. PyTorch parity: `torch.tile(input, dims)`.
    public func tile(_ dims: Shape) -> Tensor {
        repeated(dims.count < rank ? Shape([Int](repeating: 1, count: rank - dims.count) + Array(dims)) : dims)
    }

    /// Repeats each element (or slice along `axis`) `repeats` times in place: `[a, b]` with 2
    /// gives `[a, a, b, b]`. With `axis == nil` the tensor is flattened first.
    ///
    /// Gradient: the sum of `g` over each element's copies. PyTorch parity:
    /// `torch.repeat_interleave(input, repeats: int, dim=None)`, including "Repeats must be
    /// non-negative".
    public func repeatInterleave(_ repeats: Int, axis: Int? = nil) -> Tensor {
        precondition(repeats >= 0, "repeatInterleave: Repeats must be non-negative (got \(repeats))")
        guard let axis else { return flattened().repeatInterleave(repeats, axis: 0) }
        let a = normalizeAxis(axis, rank: rank, op: "repeatInterleave")
        if rank == 0 { return reshaped([1]).repeatInterleave(repeats, axis: 0) }
        var target = shape
        target.insert(repeats, at: a + 1)
        return unsqueezed(axis: a + 1).expanded(to: target).flattened(startAxis: a, endAxis: a + 1)
    }

    /// Repeats slice `i` along `axis` `repeats[i]` times (`repeats`: int64, 1-d with one entry
    /// per slice, or a single entry used for all). With `axis == nil` the tensor is flattened
    /// first.
    ///
    /// Gradient: the sum of `g` over each slice's copies. PyTorch parity:
    /// `torch.repeat_interleave(input, repeats: Tensor, dim=None)`, including "repeats must have
    /// the same size as input along dim, but got repeats.size(0) = 2 and input.size(1) = 3".
    public func repeatInterleave(_ repeats: Tensor, axis: Int? = nil) -> Tensor {
        guard let axis else { return flattened().repeatInterleave(repeats, axis: 0) }
        let a = normalizeAxis(axis, rank: rank, op: "repeatInterleave")
        if rank == 0 { return reshaped([1]).repeatInterleave(repeats, axis: 0) }
        precondition(repeats.dtype == .int64, "repeatInterleave: repeats has to be Long tensor (got \(repeats.dtype))")
        precondition(repeats.rank <= 1, "repeatInterleave: repeats must be 0-dim or 1-dim tensor (shape \(repeats.shape))")
        let n = shape[a]
        var r = repeats.scalars(as: Int64.self).map { Int($0) }
        if r.count == 1 { r = [Int](repeating: r[0], count: n) }
        precondition(r.count == n,
                     "repeatInterleave: repeats must have the same size as input along dim, but got repeats.size(0) = \(r.count) and input.size(\(a)) = \(n)")
        precondition(r.allSatisfy { $0 >= 0 }, "repeatInterleave: repeats can not be negative (repeats \(r))")
        var index = [Int64]()
        for (i, k) in r.enumerated() { index.append(contentsOf: repeatElement(Int64(i), count: k)) }
        return indexSelect(axis: a, index: Tensor(index, shape: [index.count]))
    }

    // MARK: Products

    /// Batched matrix product of two 3-d tensors: `[b, n, m] x [b, m, p] -> [b, n, p]` (no
    /// broadcasting).
    ///
    /// Gradient: as ``matmul(_:)``. PyTorch parity: `torch.bmm`, with its checks and messages
    /// ("batch1 must be a 3D tensor", "Expected size for first two dimensions of batch2 tensor to
    /// be: [2, 4] but got: [3, 4].").
    public func bmm(_ other: Tensor) -> Tensor {
        precondition(rank == 3, "bmm: batch1 must be a 3D tensor (shape \(shape))")
        precondition(other.rank == 3, "bmm: batch2 must be a 3D tensor (shape \(other.shape))")
        precondition(other.shape[0] == shape[0] && other.shape[1] == shape[2],
                     "bmm: Expected size for first two dimensions of batch2 tensor to be: [\(shape[0]), \(shape[2])] but got: [\(other.shape[0]), \(other.shape[1])].")
        return matmul(other)
    }

    /// `beta * self + alpha * batch1.bmm(batch2)`, with `self` broadcast to the product's shape.
    /// With `beta == 0`, `self` is ignored (its NaN and infinities do not propagate) and gets a
    /// zero gradient.
    ///
    /// PyTorch parity: `torch.baddbmm(input, batch1, batch2, beta=1, alpha=1)`.
    public func baddbmm(_ batch1: Tensor, _ batch2: Tensor, beta: Double = 1, alpha: Double = 1) -> Tensor {
        let product = batch1.bmm(batch2)
        let scaled = alpha == 1 ? product : product * alpha
        let input = expanded(to: product.shape)
        if beta == 0 {
            return scaled + input.linearMap("baddbmmIgnoredInput", { Tensor.zeros($0.shape, dtype: $0.dtype) },
                                            adjoint: { Tensor.zeros($0.shape, dtype: $0.dtype) })
        }
        return (beta == 1 ? input : input * beta) + scaled
    }

    /// The outer product of two 1-d tensors: `out[i][j] = a[i] * b[j]`.
    ///
    /// PyTorch parity: `torch.outer(input, vec2)`, including "outer: Expected 1-D argument self,
    /// but got 2-D".
    public static func outer(_ a: Tensor, _ b: Tensor) -> Tensor { a.outer(b) }

    /// The outer product `out[i][j] = self[i] * other[j]` of two 1-d tensors.
    ///
    /// PyTorch parity: `Tensor.outer(vec2)`.
    public func outer(_ other: Tensor) -> Tensor {
        precondition(rank == 1, "outer: Expected 1-D argument self, but got \(rank)-D")
        precondition(other.rank == 1, "outer: Expected 1-D argument vec2, but got \(other.rank)-D")
        return unsqueezed(axis: 1) * other.unsqueezed(axis: 0)
    }
}
