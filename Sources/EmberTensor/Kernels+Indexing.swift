import EmberStorage

// Raw (graph-free) indexing and joining kernels: gather / scatter-add, index-select / index-add,
// masked fill and concatenation. Results are new contiguous tensors; inputs may have any strides.

extension Kernels {
    /// Checks `gather`/`scatterAdd` index tensors the way PyTorch does and returns the normalised
    /// axis. 0-d tensors count as 1-d of size 1. As in PyTorch, an empty index skips the shape
    /// checks (Ember still requires int64).
    package static func checkGatherIndex(_ x: Tensor, axis: Int, index: Tensor, op: String) -> Int {
        precondition(index.dtype == .int64, "\(op): \(op)(): Expected dtype int32/int64 for index, but got \(index.dtype)")
        let a = normalizeAxis(axis, rank: x.rank, op: op)
        if index.count == 0 { return a }
        precondition(Swift.max(x.rank, 1) == Swift.max(index.rank, 1),
                     "\(op): Index tensor must have the same number of dimensions as input tensor (index shape \(index.shape), input shape \(x.shape))")
        for d in 0..<x.rank where d != a {
            precondition(index.shape[d] <= x.shape[d],
                         "\(op): Size does not match at dimension \(d) expected index \(index.shape) to be no larger than self \(x.shape) apart from dimension \(a)")
        }
        return a
    }

    /// Visits every element of `index` with its value, the offset of that position in `x` along
    /// all axes but `axis`, and the position's row-major linear index. Stops with PyTorch's
    /// message on an out-of-bounds index value.
    @inline(__always)
    private static func forEachIndex(
        _ x: Tensor, axis: Int, index: Tensor, op: String, _ body: (_ value: Int, _ xOffset: Int, _ linear: Int) -> Void
    ) {
        // View 0-d operands as 1-d of size 1 so `axis` exists.
        let xShape: Shape = x.rank == 0 ? [1] : x.shape
        let xStrides: Shape = x.rank == 0 ? [0] : x.strides
        let idxShape: Shape = index.rank == 0 ? [1] : index.shape
        let idxStrides: Shape = index.rank == 0 ? [0] : index.strides
        var xs = xStrides
        xs[axis] = 0
        let size = xShape[axis]
        let p = index.pointer(as: Int64.self)
        forEachRun(shape: idxShape, idxStrides, xs) { o0, o1, _, linear, n, st0, st1, _ in
            for j in 0..<n {
                let v = Int(p[o0 + j * st0])
                precondition(v >= 0 && v < size, "\(op): index \(v) is out of bounds for dimension \(axis) with size \(size)")
                body(v, o1 + j * st1, linear + j)
            }
        }
    }

    /// `out[i][j][k] = x[index[i][j][k]][j][k]` (for `axis == 0`; likewise for other axes); the
    /// result has `index`'s shape and `x`'s dtype.
    ///
    /// PyTorch parity: `torch.gather(x, dim, index)`, including its checks and error texts
    /// ("index 5 is out of bounds for dimension 0 with size 3").
    package static func gather(_ x: Tensor, axis: Int, index: Tensor) -> Tensor {
        let a = checkGatherIndex(x, axis: axis, index: index, op: "gather")
        let out = Tensor(uninitializedShape: index.shape, dtype: x.dtype)
        if out.count == 0 { return out }
        let stride = x.rank == 0 ? 0 : x.strides[a]
        func run<T>(_: T.Type) {
            let px = x.rawPointer.assumingMemoryBound(to: T.self)
            let po = out.rawPointer.assumingMemoryBound(to: T.self)
            forEachIndex(x, axis: a, index: index, op: "gather") { v, xo, linear in po[linear] = px[xo + v * stride] }
        }
        switch x.dtype.itemSize {
        case 8: run(UInt64.self)
        case 4: run(UInt32.self)
        default: run(UInt8.self)
        }
        return out
    }

    /// A copy of `base` with `source` added at the positions `index` names along `axis`:
    /// `out[index[i][j]][j] += source[i][j]` (for `axis == 0`). Duplicated indices accumulate.
    ///
    /// `source` must be at least as large as `index` in every dimension (only `index`'s extent of it
    /// is used). The backward of `gather`.
    ///
    /// PyTorch parity: `torch.scatter_add(base, dim, index, src)`.
    package static func scatterAdd(_ base: Tensor, axis: Int, index: Tensor, source: Tensor) -> Tensor {
        let a = checkGatherIndex(base, axis: axis, index: index, op: "scatterAdd")
        precondition(source.dtype == base.dtype,
                     "scatterAdd: Expected self.dtype to be equal to src.dtype (\(base.dtype) vs \(source.dtype))")
        if index.count == 0 { return base.contiguousCopy() }
        precondition(Swift.max(source.rank, 1) == Swift.max(index.rank, 1)
                     && (0..<index.rank).allSatisfy { index.shape[$0] <= source.shape[$0] },
                     "scatterAdd: Expected index \(index.shape) to be no larger than self \(base.shape) apart from dimension \(a) and to be no larger size than src \(source.shape)")
        let out = base.contiguousCopy()
        // Read `source` through `index`'s shape with `source`'s strides.
        let srcStrides: Shape = source.rank == 0 ? [0] : source.strides
        let idxShape: Shape = index.rank == 0 ? [1] : index.shape
        let src = Tensor(storage: source.storage, shape: idxShape, strides: srcStrides, offset: source.offset, dtype: source.dtype)
            .contiguousRaw
        let stride = base.rank == 0 ? 0 : out.strides[a]
        func run<T: TensorScalar>(_: T.Type, _ add: (T, T) -> T) {
            let po = out.mutablePointer(as: T.self)
            let ps = src.pointer(as: T.self)
            forEachIndex(out, axis: a, index: index, op: "scatterAdd") { v, xo, linear in
                po[xo + v * stride] = add(po[xo + v * stride], ps[linear])
            }
        }
        switch base.dtype {
        case .float32: run(Float.self) { $0 + $1 }
        case .float64: run(Double.self) { $0 + $1 }
        case .int64: run(Int64.self) { $0 &+ $1 }
        case .bool: run(Bool.self) { $0 || $1 }
        }
        return out
    }

    /// Checks an `indexSelect`/`indexAdd` index (int64, at most 1-d, in range) and returns its
    /// values.
    package static func checkedIndexValues(_ index: Tensor, size: Int, op: String) -> [Int] {
        precondition(index.dtype == .int64, "\(op): index_select(): Expected dtype int32 or int64 for index, but got \(index.dtype)")
        precondition(index.rank <= 1, "\(op): index_select(): Index is supposed to be a vector (index shape \(index.shape))")
        return index.scalars(as: Int64.self).enumerated().map { k, v in
            precondition(v >= 0 && v < size,
                         "\(op): index out of range in self (index \(v) at position \(k) is out of bounds for dimension with size \(size))")
            return Int(v)
        }
    }

    /// The slices of `x` at positions `index` along `axis`, stacked along `axis` in index order.
    ///
    /// PyTorch parity: `torch.index_select(x, dim, index)`: int64 index of rank <= 1, any order,
    /// repeats allowed; an out-of-range value stops with PyTorch's "index out of range in self".
    package static func indexSelect(_ x: Tensor, axis: Int, index: Tensor) -> Tensor {
        let a = normalizeAxis(axis, rank: x.rank, op: "indexSelect")
        let values = checkedIndexValues(index, size: x.rank == 0 ? 1 : x.shape[a], op: "indexSelect")
        if x.rank == 0 {
            precondition(values.count == 1, "indexSelect: index_select(): Index to scalar can have only 1 value, got \(values.count) value(s)")
            return x.contiguousCopy()
        }
        var outShape = x.shape
        outShape[a] = values.count
        let out = Tensor(uninitializedShape: outShape, dtype: x.dtype)
        for (k, v) in values.enumerated() {
            assign(x.selectRaw(axis: a, index: v), into: out.selectRaw(axis: a, index: k))
        }
        return out
    }

    /// A copy of `base` with slice `k` of `source` along `axis` added at position `index[k]`;
    /// duplicates accumulate. The backward of `indexSelect`.
    ///
    /// PyTorch parity: `torch.index_add(base, dim, index, source)`.
    package static func indexAdd(_ base: Tensor, axis: Int, index: Tensor, source: Tensor) -> Tensor {
        let a = normalizeAxis(axis, rank: base.rank, op: "indexAdd")
        let values = checkedIndexValues(index, size: base.rank == 0 ? 1 : base.shape[a], op: "indexAdd")
        var expected = base.shape
        if base.rank > 0 { expected[a] = values.count }
        precondition(source.shape == expected && source.dtype == base.dtype,
                     "indexAdd: source shape \(source.shape) (\(source.dtype)) must be \(expected) (\(base.dtype))")
        var out = base.contiguousCopy()
        if base.rank == 0 {
            if !values.isEmpty { out = add(out, source) }
            return out
        }
        for (k, v) in values.enumerated() {
            addAssign(source.selectRaw(axis: a, index: k), into: out.selectRaw(axis: a, index: v))
        }
        return out
    }

    /// `x` with `value` wherever `mask` is true, broadcasting `x` and `mask` together.
    ///
    /// PyTorch parity: `torch.masked_fill(x, mask, value)`: bool mask only; `value` is converted to
    /// `x`'s dtype (truncated toward zero for int64, which must hold it; non-zero is `true` for bool).
    package static func maskedFill(_ x: Tensor, mask: Tensor, value: Double) -> Tensor {
        precondition(mask.dtype == .bool,
                     "maskedFill: masked_fill_ only supports boolean masks, but got mask with dtype \(mask.dtype)")
        _ = broadcastShapes(mask.shape, x.shape, op: "maskedFill")  // PyTorch names the mask first
        switch x.dtype {
        case .float32:
            let v = Float(value)
            return zip(x, mask, Float.self, Bool.self, Float.self, op: "maskedFill") { $1 ? v : $0 }
        case .float64:
            return zip(x, mask, Double.self, Bool.self, Double.self, op: "maskedFill") { $1 ? value : $0 }
        case .int64:
            precondition(value.isFinite && Int64(exactly: value.rounded(.towardZero)) != nil,
                         "maskedFill: value cannot be converted to type int64_t without overflow (value \(value))")
            let v = Int64(value.rounded(.towardZero))
            return zip(x, mask, Int64.self, Bool.self, Int64.self, op: "maskedFill") { $1 ? v : $0 }
        case .bool:
            let v = value != 0
            return zip(x, mask, Bool.self, Bool.self, Bool.self, op: "maskedFill") { $1 ? v : $0 }
        }
    }

    /// Whether `t` is a 1-d tensor with no elements, which `cat` skips (PyTorch's legacy rule).
    package static func isLegacyEmpty(_ t: Tensor) -> Bool { t.rank == 1 && t.shape[0] == 0 }

    /// The dtype, normalised axis and output shape of `cat(tensors, axis)`, checked as PyTorch does.
    package static func catGeometry(_ tensors: [Tensor], axis: Int) -> (dtype: DType, axis: Int, shape: Shape) {
        precondition(!tensors.isEmpty, "cat: torch.cat(): expected a non-empty list of Tensors")
        for (i, t) in tensors.enumerated() {
            precondition(t.rank > 0, "cat: zero-dimensional tensor (at position \(i)) cannot be concatenated")
        }
        let dtype = tensors.dropFirst().reduce(tensors[0].dtype) { promotedDType($0, $1.dtype) }
        guard let ref = tensors.first(where: { !isLegacyEmpty($0) }) else {
            _ = normalizeAxis(axis, rank: 1, op: "cat")
            return (dtype, 0, [0])
        }
        let a = normalizeAxis(axis, rank: ref.rank, op: "cat")
        var shape = ref.shape
        shape[a] = 0
        for (i, t) in tensors.enumerated() where !isLegacyEmpty(t) {
            precondition(t.rank == ref.rank,
                         "cat: Tensors must have same number of dimensions: got \(ref.rank) and \(t.rank)")
            for d in 0..<ref.rank where d != a {
                precondition(t.shape[d] == ref.shape[d],
                             "cat: Sizes of tensors must match except in dimension \(a). Expected size \(ref.shape[d]) but got size \(t.shape[d]) for tensor number \(i) in the list.")
            }
            shape[a] += t.shape[a]
        }
        return (dtype, a, shape)
    }

    /// Concatenation along `axis` into a new contiguous tensor, promoting dtypes as PyTorch does
    /// (bool < int64 < float32 < float64). Empty 1-d tensors are skipped.
    ///
    /// PyTorch parity: `torch.cat(tensors, dim)`, including its checks and error texts.
    package static func cat(_ tensors: [Tensor], axis: Int) -> Tensor {
        let (dtype, a, shape) = catGeometry(tensors, axis: axis)
        let out = Tensor(uninitializedShape: shape, dtype: dtype)
        var start = 0
        for t in tensors where !isLegacyEmpty(t) {
            let n = t.shape[a]
            let src = t.dtype == dtype ? t : t.convertedRaw(to: dtype)
            assign(src, into: out.narrowRaw(axis: a, start: start, length: n))
            start += n
        }
        return out
    }
}
