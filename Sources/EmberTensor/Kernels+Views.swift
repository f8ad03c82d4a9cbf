import EmberStorage

// Raw (graph-free) views: each returns a tensor that shares `storage` with `self` and differs only
// in shape, strides and offset. Nothing here copies unless its doc comment says so.
//
// Copy-on-write: sharing storage is never observable. `Tensor` copies its storage before any
// write when the storage is shared (`makeUniqueContiguous`), so writing into a view never changes
// the tensor it came from, nor the other way round. PyTorch views alias; Ember's do not, on purpose.

extension Tensor {
    /// Resolves a single `-1` in `shape` for a tensor of `count` elements and checks the total.
    ///
    /// PyTorch parity: `at::infer_size`, with its error texts ("only one dimension can be inferred",
    /// "invalid shape dimension -2 at index 0 of shape [-2, 12]", "shape '[5, 5]' is invalid for
    /// input of size 24", and the ambiguous `-1` with zero elements), prefixed with `op`.
    package static func inferredShape(_ shape: Shape, count: Int, op: String) -> Shape {
        var inferred: Int? = nil
        var known = 1
        for (i, d) in shape.enumerated() {
            if d == -1 {
                precondition(inferred == nil, "\(op): only one dimension can be inferred (shape \(shape))")
                inferred = i
            } else {
                precondition(d >= 0, "\(op): invalid shape dimension \(d) at index \(i) of shape \(shape)")
                known *= d
            }
        }
        if count == known || (inferred != nil && known > 0 && count % known == 0) {
            guard let i = inferred else { return shape }
            precondition(known != 0,
                         "\(op): cannot reshape tensor of 0 elements into shape \(shape) because the unspecified dimension size -1 can be any value and is ambiguous")
            var out = shape
            out[i] = count / known
            return out
        }
        preconditionFailure("\(op): shape '\(shape)' is invalid for input of size \(count)")
    }

    /// Strides that let `newShape` view this tensor's elements without a copy, or `nil` when no
    /// such strides exist (some new dimension would span two non-adjacent runs of memory).
    ///
    /// `newShape` must hold the same number of elements (no `-1`). Strides of size-1 dimensions
    /// follow PyTorch's choice exactly.
    ///
    /// PyTorch parity: `at::detail::computeStride`, so `view` succeeds exactly where PyTorch's does.
    package func viewStrides(for newShape: Shape) -> Shape? {
        precondition(newShape.elementCount == count, "viewStrides: \(newShape) does not hold \(count) elements")
        if rank == 0 { return Shape(repeating: 1, count: newShape.count) }
        if count == 0 {
            if shape == newShape { return strides }
            return newShape.contiguousStrides
        }
        var newStrides = Shape(repeating: 0, count: newShape.count)
        var viewD = newShape.count - 1
        var chunkBaseStride = strides[rank - 1]
        var tensorNumel = 1
        var viewNumel = 1
        var tensorD = rank - 1
        while tensorD >= 0 {
            tensorNumel *= shape[tensorD]
            // At the start of a chunk of memory-contiguous dimensions, fit view dimensions into it.
            if tensorD == 0 || (shape[tensorD - 1] != 1 && strides[tensorD - 1] != tensorNumel * chunkBaseStride) {
                while viewD >= 0 && (viewNumel < tensorNumel || newShape[viewD] == 1) {
                    newStrides[viewD] = viewNumel * chunkBaseStride
                    viewNumel *= newShape[viewD]
                    viewD -= 1
                }
                if viewNumel != tensorNumel { return nil }
                if tensorD > 0 {
                    chunkBaseStride = strides[tensorD - 1]
                    tensorNumel = 1
                    viewNumel = 1
                }
            }
            tensorD -= 1
        }
        return viewD == -1 ? newStrides : nil
    }

    /// The same elements seen with `newShape` (one `-1` is inferred), never copying.
    ///
    /// Stops with PyTorch's message when the shape cannot be a view of the current strides.
    /// PyTorch parity: `Tensor.view(shape)`.
    package func viewRaw(_ newShape: Shape, op: String = "view") -> Tensor {
        let target = Tensor.inferredShape(newShape, count: count, op: op)
        guard let st = viewStrides(for: target) else {
            preconditionFailure("\(op): view size is not compatible with input tensor's size and stride (at least one dimension spans across two contiguous subspaces). Use .reshape(...) instead. (tensor shape \(shape), strides \(strides), requested shape \(newShape))")
        }
        return Tensor(storage: storage, shape: target, strides: st, offset: offset, dtype: dtype)
    }

    /// The same elements with a new shape (one `-1` is inferred): a view whenever `viewRaw` would
    /// succeed, else a contiguous copy. No gradient tracking.
    ///
    /// PyTorch parity: `torch.reshape` (view when possible, else `clone().view()`).
    package func reshapedRaw(_ newShape: Shape, op: String = "reshape") -> Tensor {
        let target = Tensor.inferredShape(newShape, count: count, op: op)
        if let st = viewStrides(for: target) {
            return Tensor(storage: storage, shape: target, strides: st, offset: offset, dtype: dtype)
        }
        let base = contiguousCopy()
        return Tensor(storage: base.storage, shape: target, strides: target.contiguousStrides, offset: 0, dtype: dtype)
    }

    /// A view with dimensions reordered by `perm` (no copy, no gradient tracking). `perm` holds
    /// normalised axes.
    package func permutedRaw(_ perm: [Int]) -> Tensor {
        precondition(perm.count == rank,
                     "permute(): number of dimensions in the tensor input does not match the length of the desired ordering of dimensions i.e. input.dim() = \(rank) is not equal to len(dims) = \(perm.count)")
        precondition(Set(perm).count == perm.count && perm.allSatisfy { $0 >= 0 && $0 < rank },
                     "permute(): duplicate dims are not allowed. (permutation \(perm) for shape \(shape))")
        var s = Shape(), st = Shape()
        for p in perm { s.append(shape[p]); st.append(strides[p]) }
        return Tensor(storage: storage, shape: s, strides: st, offset: offset, dtype: dtype)
    }

    /// A view without the (normalised) `axes`, each of which must have size 1.
    package func squeezedRaw(axes: [Int]) -> Tensor {
        var s = Shape(), st = Shape()
        for i in 0..<rank where !axes.contains(i) { s.append(shape[i]); st.append(strides[i]) }
        for a in axes { precondition(shape[a] == 1, "squeeze: dimension \(a) of shape \(shape) has size \(shape[a]), not 1") }
        return Tensor(storage: storage, shape: s, strides: st, offset: offset, dtype: dtype)
    }

    /// A view with a size-1 dimension inserted at the (normalised) `axis`, `0...rank`.
    ///
    /// PyTorch parity: the new stride is `size * stride` of the dimension it precedes (1 at the end).
    package func unsqueezedRaw(axis: Int) -> Tensor {
        precondition(axis >= 0 && axis <= rank, "unsqueeze: axis \(axis) out of range for shape \(shape)")
        var s = shape, st = strides
        s.insert(1, at: axis)
        st.insert(axis >= rank ? 1 : shape[axis] * strides[axis], at: axis)
        return Tensor(storage: storage, shape: s, strides: st, offset: offset, dtype: dtype)
    }

    /// The view at position `index` (negative counts from the end) along the normalised `axis`,
    /// which is removed.
    ///
    /// PyTorch parity: `Tensor.select`, with its error texts.
    package func selectRaw(axis: Int, index: Int, op: String = "select") -> Tensor {
        precondition(rank > 0, "\(op): select() cannot be applied to a 0-dim tensor.")
        let n = shape[axis]
        precondition(index >= -n && index < n,
                     "\(op): select(): index \(index) out of range for tensor of size \(shape) at dimension \(axis)")
        let i = index < 0 ? index + n : index
        var s = shape, st = strides
        s.remove(at: axis)
        st.remove(at: axis)
        return Tensor(storage: storage, shape: s, strides: st, offset: offset + i * strides[axis], dtype: dtype)
    }

    /// The view of `length` positions from `start` (negative counts from the end) along the
    /// normalised `axis`.
    ///
    /// PyTorch parity: `Tensor.narrow`, with its error texts.
    package func narrowRaw(axis: Int, start: Int, length: Int, op: String = "narrow") -> Tensor {
        precondition(rank > 0, "\(op): narrow() cannot be applied to a 0-dim tensor.")
        precondition(length >= 0, "\(op): narrow(): length must be non-negative.")
        let n = shape[axis]
        precondition(start >= -n && start <= n,
                     "\(op): start out of range (expected to be in range of [\(-n), \(n)], but got \(start))")
        let s0 = start < 0 ? start + n : start
        precondition(s0 <= n - length,
                     "\(op): start (\(s0)) + length (\(length)) exceeds dimension size (\(n)). (shape \(shape), dimension \(axis))")
        var s = shape
        s[axis] = length
        return Tensor(storage: storage, shape: s, strides: strides, offset: offset + s0 * strides[axis], dtype: dtype)
    }

    /// The view of positions `start, start + step, ...` before `end` along the normalised `axis`.
    /// Bounds follow Python slicing: `nil` means the whole extent, negatives count from the end,
    /// out-of-range bounds are clamped, and an empty range gives size 0.
    ///
    /// PyTorch parity: `x[start:end:step]` / `aten::slice`; `step` must be positive.
    package func slicedRaw(axis: Int, start: Int?, end: Int?, step: Int = 1, op: String = "slice") -> Tensor {
        precondition(rank > 0, "\(op): slice() cannot be applied to a 0-dim tensor.")
        precondition(step != 0, "\(op): slice step cannot be zero")
        precondition(step > 0, "\(op): step must be greater than zero")
        let n = shape[axis]
        var lo = start ?? 0, hi = end ?? n
        if lo < 0 { lo += n }
        if hi < 0 { hi += n }
        lo = Swift.min(Swift.max(lo, 0), n)
        hi = Swift.min(Swift.max(hi, lo), n)
        var s = shape, st = strides
        s[axis] = (hi - lo + step - 1) / step
        st[axis] = strides[axis] * step
        return Tensor(storage: storage, shape: s, strides: st, offset: offset + lo * strides[axis], dtype: dtype)
    }
}

extension Kernels {
    /// Writes `source`'s elements into the memory that `destination` views (same shape and dtype,
    /// any strides on either side).
    ///
    /// The caller must own `destination`'s storage exclusively (a freshly allocated tensor or a view
    /// of one) and `destination` must not overlap itself (no broadcast dimensions): this bypasses
    /// copy-on-write on purpose, to fill regions of a new result.
    package static func assign(_ source: Tensor, into destination: Tensor) {
        precondition(source.shape == destination.shape && source.dtype == destination.dtype,
                     "assign: shape/dtype mismatch \(source.shape) \(source.dtype) vs \(destination.shape) \(destination.dtype)")
        switch source.dtype.itemSize {
        case 8: stridedAssign(source, destination, UInt64.self)
        case 4: stridedAssign(source, destination, UInt32.self)
        default: stridedAssign(source, destination, UInt8.self)
        }
    }

    /// Adds `source`'s elements into the memory that `destination` views (same shape and dtype).
    /// Same ownership rules as ``assign(_:into:)``; float and int64 only.
    package static func addAssign(_ source: Tensor, into destination: Tensor) {
        precondition(source.shape == destination.shape && source.dtype == destination.dtype,
                     "addAssign: shape/dtype mismatch \(source.shape) \(source.dtype) vs \(destination.shape) \(destination.dtype)")
        switch source.dtype {
        case .float32: stridedAdd(source, destination, Float.self) { $0 + $1 }
        case .float64: stridedAdd(source, destination, Double.self) { $0 + $1 }
        case .int64: stridedAdd(source, destination, Int64.self) { $0 &+ $1 }
        case .bool: stridedAdd(source, destination, Bool.self) { $0 || $1 }
        }
    }

    /// A zero tensor of `shape` (in `g`'s dtype) with `g` written into the region that `region`
    /// selects from it: the backward of every indexing view (select, narrow, slice, subscript).
    ///
    /// `region` must return a non-overlapping view of its argument (sharing its storage) whose
    /// shape is `g.shape`.
    package static func embed(_ g: Tensor, intoZerosOf shape: Shape, region: (Tensor) -> Tensor) -> Tensor {
        let zeros = Tensor(zeroedShape: shape, dtype: g.dtype)
        let view = region(zeros)
        precondition(view.storage === zeros.storage && view.shape == g.shape,
                     "embed: region must be a view of shape \(g.shape) into the zero tensor")
        assign(g, into: view)
        return zeros
    }
}

@inline(__always)
private func stridedAssign<T>(_ source: Tensor, _ destination: Tensor, _: T.Type) {
    let s = source.rawPointer.assumingMemoryBound(to: T.self)
    let d = destination.rawPointer.assumingMemoryBound(to: T.self)
    forEachRun(shape: source.shape, destination.strides, source.strides) { o0, o1, _, _, n, st0, st1, _ in
        var p = d + o0, q = s + o1
        for _ in 0..<n { p.pointee = q.pointee; p += st0; q += st1 }
    }
}

@inline(__always)
private func stridedAdd<T: TensorScalar>(_ source: Tensor, _ destination: Tensor, _: T.Type, _ add: (T, T) -> T) {
    let s = source.pointer(as: T.self)
    let d = destination.mutablePointer(as: T.self)
    forEachRun(shape: source.shape, destination.strides, source.strides) { o0, o1, _, _, n, st0, st1, _ in
        var p = d + o0, q = s + o1
        for _ in 0..<n { p.pointee = add(p.pointee, q.pointee); p += st0; q += st1 }
    }
}

extension Tensor {
    /// A view of this tensor expanded to `sizes` (no copy): `-1` keeps a size, size-1 dimensions
    /// repeat (stride 0), and new leading dimensions may be added.
    ///
    /// PyTorch parity: `Tensor.expand` (`at::inferExpandGeometry`), including its strides and error
    /// texts, prefixed with `op`.
    package func expandRaw(_ sizes: Shape, op: String = "expand") -> Tensor {
        precondition(sizes.count >= rank,
                     "\(op): expand(\(legacyTypeName){\(shape)}, size=\(sizes)): the number of sizes provided (\(sizes.count)) must be greater or equal to the number of dimensions in the tensor (\(rank))")
        let n = sizes.count
        var outShape = Shape(repeating: 0, count: n), outStrides = Shape(repeating: 0, count: n)
        var i = n - 1
        while i >= 0 {
            let dim = rank - n + i  // the matching dimension of self; negative for a new leading one
            let existing = dim >= 0 ? shape[dim] : 1
            var stride = dim >= 0 ? strides[dim] : (i + 1 < n ? outShape[i + 1] * outStrides[i + 1] : 1)
            var size = sizes[i]
            if size == -1 || (dim < 0 && size < 0) {
                precondition(dim >= 0, "\(op): The expanded size of the tensor (\(size)) isn't allowed in a leading, non-existing dimension \(i)")
                size = existing
            }
            if existing != size {
                precondition(existing == 1,
                             "\(op): The expanded size of the tensor (\(size)) must match the existing size (\(existing)) at non-singleton dimension \(i).  Target sizes: \(sizes).  Tensor sizes: \(shape)")
                precondition(size >= 0, "\(op): The expanded size of the tensor (\(size)) must be non-negative (target sizes \(sizes))")
                stride = 0
            }
            outShape[i] = size
            outStrides[i] = stride
            i -= 1
        }
        return Tensor(storage: storage, shape: outShape, strides: outStrides, offset: offset, dtype: dtype)
    }

    /// PyTorch's legacy type name, used in a few of its error texts (`torch.FloatTensor`).
    package var legacyTypeName: String {
        switch dtype {
        case .float32: "torch.FloatTensor"
        case .float64: "torch.DoubleTensor"
        case .int64: "torch.LongTensor"
        case .bool: "torch.BoolTensor"
        }
    }
}
