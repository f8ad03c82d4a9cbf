import EmberTensor
import EmberStorage

// Advanced indexing and subscript assignment. Both reduce a subscript to the row-major positions
// (in `self`) of the elements it selects, laid out in the result's shape: reading takes those
// elements, assignment puts values there. The positions come from applying the subscript to a
// tensor of positions (`arange(count)` in `self`'s shape), so basic and advanced components share
// one implementation of PyTorch's rules.

extension Tensor {
    /// The row-major positions in a tensor of `shape` that the subscript `components` selects,
    /// as int64 in the subscript result's shape, checked with PyTorch's messages.
    ///
    /// PyTorch's rules: integers, slices, `None` and `...` apply first as views; index tensors
    /// (a bool mask stands for its `nonzero()` columns over as many dimensions as it has) are
    /// broadcast together, and their dimensions replace the indexed ones in place when those are
    /// adjacent, else go first.
    package static func indexPositions(_ shape: Shape, _ components: [TensorIndex.Kind]) -> Tensor {
        let rank = shape.count
        var consumed = 0, ellipses = 0
        for c in components {
            switch c {
            case .position, .slice: consumed += 1
            case .ellipsis: ellipses += 1
            case .newAxis: break
            case .tensor(let t): consumed += t.dtype == .bool ? t.rank : 1
            }
        }
        precondition(ellipses <= 1, "index: an index can only have a single ellipsis ('...')")
        precondition(consumed <= rank, "index: too many indices for tensor of dimension \(rank)")
        var view = Tensor.arange(0, Double(shape.elementCount), dtype: .int64).reshapedRaw(shape)
        var advanced: [(dim: Int, index: Tensor)] = []
        var d = 0, source = 0
        for c in components where !applyBasicIndex(c, to: &view, at: &d, source: &source, ellipsisWidth: rank - consumed) {
            if case .tensor(let t) = c {
                if t.dtype == .bool {
                    if t.rank == 0 {
                        // A 0-d mask adds a dimension of size 1 (true) or 0 (false).
                        view = view.unsqueezedRaw(axis: d)
                        let hit: [Int64] = t.item(as: Bool.self) ? [0] : []
                        advanced.append((d, Tensor(hit, shape: [hit.count])))
                        d += 1
                        continue
                    }
                    for k in 0..<t.rank {
                        precondition(d + k < view.rank && t.shape[k] == view.shape[d + k],
                                     "index: The shape of the mask \(t.shape) at index \(k) does not match the shape of the indexed tensor \(shape) at index \(source + k)")
                    }
                    let nz = Kernels.nonzero(t)
                    for k in 0..<t.rank {
                        advanced.append((d + k, nz.selectRaw(axis: 1, index: k).contiguousCopy()))
                    }
                    d += t.rank
                    source += t.rank
                } else {
                    precondition(t.dtype == .int64, "index: tensors used as indices must be long, int, byte or bool tensors (got \(t.dtype))")
                    advanced.append((d, t))
                    d += 1
                    source += 1
                }
            }
        }
        if advanced.isEmpty { return view.contiguousCopy() }

        // Broadcast the index tensors together.
        var b = advanced[0].index.shape
        for (_, t) in advanced.dropFirst() {
            guard let s = broadcastedShape(b, t.shape) else {
                let shapes = advanced.map { "\($0.index.shape)" }.joined(separator: ", ")
                preconditionFailure("index: shape mismatch: indexing tensors could not be broadcast together with shapes \(shapes)")
            }
            b = s
        }
        let dims = advanced.map(\.dim)
        let rest = (0..<view.rank).filter { !dims.contains($0) }
        let sizes = dims.map { view.shape[$0] }
        // Linear position over the advanced dimensions for every element of the broadcast shape.
        let count = b.elementCount
        var linear = [Int64](repeating: 0, count: count)
        var multiplier = 1
        for j in stride(from: advanced.count - 1, through: 0, by: -1) {
            let values = advanced[j].index.expandedRaw(to: b, op: "index").contiguousRaw.scalars(as: Int64.self)
            let n = sizes[j]
            for k in 0..<count {
                let v = Int(values[k])
                precondition(v >= -n && v < n, "index: index \(v) is out of bounds for dimension \(dims[j]) with size \(n)")
                linear[k] += Int64((v < 0 ? v + n : v) * multiplier)
            }
            multiplier *= n
        }
        // Advanced dimensions first, flattened into one, then pick.
        let moved = view.permutedRaw(dims + rest).contiguousCopy()
        var flatShape: Shape = [multiplier]
        for r in rest { flatShape.append(view.shape[r]) }
        let picked = Kernels.indexSelect(moved.reshapedRaw(flatShape), axis: 0, index: Tensor(linear, shape: [count]))
        var outShape = b
        for r in rest { outShape.append(view.shape[r]) }
        let result = picked.reshapedRaw(outShape)
        let adjacent = zip(dims, dims.dropFirst()).allSatisfy { $1 == $0 + 1 }
        guard adjacent, dims[0] > 0 else { return result }
        // Adjacent index tensors: their dimensions go where the indexed ones were.
        let nb = b.count, before = dims[0]
        let perm = Array(nb..<(nb + before)) + Array(0..<nb) + Array((nb + before)..<outShape.count)
        return result.permutedRaw(perm).contiguousCopy()
    }

    /// The broadcast of two shapes, or `nil` when they do not broadcast.
    private static func broadcastedShape(_ a: Shape, _ b: Shape) -> Shape? {
        let r = Swift.max(a.count, b.count)
        var out = Shape(repeating: 1, count: r)
        for i in 0..<r {
            let x = i < r - a.count ? 1 : a[i - (r - a.count)]
            let y = i < r - b.count ? 1 : b[i - (r - b.count)]
            guard x == y || x == 1 || y == 1 else { return nil }
            out[i] = x == 1 ? y : x
        }
        return out
    }

    /// Writes `value` at the positions the subscript `components` selects (the subscript setter).
    ///
    /// Three paths, one meaning: while recording, an out-of-place `indexPut` on the old value;
    /// otherwise with index tensors, `put` at the selected positions; otherwise (basic indices
    /// only) a copy into the selected view of `self`'s own storage, with no position table. The
    /// last two write in place only when `self`'s storage is uniquely owned (copy-on-write).
    package mutating func assign(_ value: Tensor, at components: [TensorIndex.Kind]) {
        let advanced = components.contains { if case .tensor = $0 { true } else { false } }
        let record = shouldRecord(self, value)
        let positions = advanced || record ? Tensor.indexPositions(shape, components) : nil
        let target = positions?.shape ?? subscriptedRaw(components).shape
        // Leading size-1 dimensions of the value beyond the result's rank are dropped (PyTorch).
        var v = value
        if v.rank > target.count {
            let extra = v.rank - target.count
            precondition(v.shape.prefix(extra).allSatisfy { $0 == 1 },
                         "index: shape mismatch: value tensor of shape \(value.shape) cannot be broadcast to indexing result of shape \(target)")
            v = v.reshaped(Shape(v.shape.dropFirst(extra)))
        }
        // `value` must broadcast to the indexed shape (without changing it).
        guard let common = Tensor.broadcastedShape(v.shape, target), common == target else {
            preconditionFailure("index: shape mismatch: value tensor of shape \(value.shape) cannot be broadcast to indexing result of shape \(target)")
        }
        if record, let positions {
            precondition(!(tracksGrad && isLeaf),
                         "index: a leaf Variable that requires grad is being used in an in-place operation.")
            let old = self
            let expanded = (v.dtype == dtype ? v : v.to(dtype)).broadcast(to: target)
            let written = Kernels.put(old, positions: positions, values: expanded, accumulate: false)
            self = written.recorded("indexPut", old, expanded, twice: true) { g in
                [g.maskMap("indexPutBackward") { Kernels.put($0, positions: positions, values: Tensor.zeros([], dtype: $0.dtype), accumulate: false) },
                 g.taken(positions)]
            }
            return
        }
        if let positions {
            Kernels.putInPlace(&self, positions: positions, values: v, accumulate: false)
            return
        }
        // Basic indices: the value is read (and converted) before `self`'s storage is made unique,
        // so a value that shares it (`x[0] = x[1]`) keeps reading the old elements.
        let source = (v.dtype == dtype ? v : v.convertedRaw(to: dtype)).expandedRaw(to: target, op: "index")
        makeUniqueContiguous()
        Kernels.assign(source, into: subscriptedRaw(components))
    }
}
