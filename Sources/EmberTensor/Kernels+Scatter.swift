import EmberStorage

// Raw (graph-free) scatter kernels (scatter, scatter with a value, scatter-reduce), flat
// take/put by row-major position (the engine of masked select and index assignment) and
// nonzero. Results are new contiguous tensors; inputs may have any strides.

/// How ``Tensor/scatterReduce(axis:index:src:reduce:includeSelf:)`` combines the values that land
/// on one position.
///
/// PyTorch parity: the `reduce` strings of `torch.scatter_reduce`: `"sum"`, `"prod"`, `"mean"`,
/// `"amax"`, `"amin"`.
public enum ScatterReduction: String, Sendable, CaseIterable {
    case sum, prod, mean, amax, amin
}

extension Kernels {
    /// Visits every element of `index` (checked by ``checkGatherIndex(_:axis:index:op:)``) with its
    /// value, the element offset of its target in the contiguous `out` and its row-major linear
    /// position in `index`. Stops with PyTorch's message on an out-of-bounds index value.
    @inline(__always)
    private static func forEachScatterTarget(
        _ out: Tensor, axis: Int, index: Tensor, op: String, _ body: (_ target: Int, _ linear: Int) -> Void
    ) {
        let outShape: Shape = out.rank == 0 ? [1] : out.shape
        let outStrides: Shape = out.rank == 0 ? [0] : out.strides
        let idxShape: Shape = index.rank == 0 ? [1] : index.shape
        let idxStrides: Shape = index.rank == 0 ? [0] : index.strides
        var xs = outStrides
        xs[axis] = 0
        let size = outShape[axis], stride = outStrides[axis]
        let p = index.pointer(as: Int64.self)
        var runs = StridedRuns(shape: idxShape, idxStrides, xs)
        for _ in 0..<runs.count {
            for j in 0..<runs.length {
                let v = Int(p[runs.offset0 + j * runs.stride0])
                precondition(v >= 0 && v < size, "\(op): index \(v) is out of bounds for dimension \(axis) with size \(size)")
                body(runs.offset1 + j * runs.stride1 + v * stride, runs.linear + j)
            }
            runs.advance()
        }
    }

    /// `source` read through `index`'s shape (as PyTorch's scatter family does: only `index`'s
    /// extent of `source` is used), as a contiguous tensor; checks the sizes.
    private static func scatterSource(_ source: Tensor, index: Tensor, base: Tensor, axis: Int, op: String) -> Tensor {
        precondition(Swift.max(source.rank, 1) == Swift.max(index.rank, 1)
                     && (0..<index.rank).allSatisfy { index.shape[$0] <= source.shape[$0] },
                     "\(op): Expected index \(index.shape) to be no larger than self \(base.shape) apart from dimension \(axis) and to be no larger size than src \(source.shape)")
        let srcStrides: Shape = source.rank == 0 ? [0] : source.strides
        let idxShape: Shape = index.rank == 0 ? [1] : index.shape
        return Tensor(storage: source.storage, shape: idxShape, strides: srcStrides, offset: source.offset, dtype: source.dtype)
            .contiguousRaw
    }

    /// A copy of `base` with `out[index[i][j]][j] = source[i][j]` (for `axis == 0`; likewise for
    /// other axes). Where an index repeats, the last write (in row-major order of `index`) wins.
    ///
    /// PyTorch parity: `torch.scatter(base, dim, index, src)` (PyTorch leaves the winner of
    /// repeated indices unspecified).
    package static func scatter(_ base: Tensor, axis: Int, index: Tensor, source: Tensor) -> Tensor {
        let a = checkGatherIndex(base, axis: axis, index: index, op: "scatter")
        precondition(source.dtype == base.dtype,
                     "scatter: Expected self.dtype to be equal to src.dtype (\(base.dtype) vs \(source.dtype))")
        let out = base.contiguousCopy()
        if index.count == 0 { return out }
        let src = scatterSource(source, index: index, base: base, axis: a, op: "scatter")
        func run<T>(_: T.Type) {
            let po = out.rawPointer.assumingMemoryBound(to: T.self)
            let ps = src.rawPointer.assumingMemoryBound(to: T.self)
            forEachScatterTarget(out, axis: a, index: index, op: "scatter") { t, l in po[t] = ps[l] }
        }
        switch base.dtype.itemSize {
        case 8: run(UInt64.self)
        case 4: run(UInt32.self)
        default: run(UInt8.self)
        }
        return out
    }

    /// A copy of `base` with `value` at every position `index` names along `axis`.
    ///
    /// PyTorch parity: `torch.scatter(base, dim, index, value)`.
    package static func scatter(_ base: Tensor, axis: Int, index: Tensor, value: Double) -> Tensor {
        let a = checkGatherIndex(base, axis: axis, index: index, op: "scatter")
        let out = base.contiguousCopy()
        if index.count == 0 { return out }
        let v = Tensor.full([], value, dtype: base.dtype)
        func run<T>(_: T.Type) {
            let po = out.rawPointer.assumingMemoryBound(to: T.self)
            let pv = v.rawPointer.assumingMemoryBound(to: T.self)[0]
            forEachScatterTarget(out, axis: a, index: index, op: "scatter") { t, _ in po[t] = pv }
        }
        switch base.dtype.itemSize {
        case 8: run(UInt64.self)
        case 4: run(UInt32.self)
        default: run(UInt8.self)
        }
        return out
    }

    /// How many elements of `index` land on each position of a tensor of `shape` (int64, `shape`).
    package static func scatterCounts(_ shape: Shape, axis: Int, index: Tensor) -> Tensor {
        let a = normalizeAxis(axis, rank: shape.count, op: "scatterReduce")
        let out = Tensor(zeroedShape: shape, dtype: .int64)
        if index.count == 0 { return out }
        let po = out.mutablePointer(as: Int64.self)
        forEachScatterTarget(out, axis: a, index: index, op: "scatterReduce") { t, _ in po[t] += 1 }
        return out
    }

    /// A copy of `base` where the values of `source` that `index` sends to a position are combined
    /// with `reduce` (together with `base`'s value there when `includeSelf`); positions nothing is
    /// sent to keep `base`'s value. `mean` divides by the number of combined values (floor
    /// division for int64); `amax`/`amin` propagate NaN.
    ///
    /// PyTorch parity: `torch.scatter_reduce(base, dim, index, src, reduce, include_self=...)`.
    package static func scatterReduce(_ base: Tensor, axis: Int, index: Tensor, source: Tensor,
                                      reduce: ScatterReduction, includeSelf: Bool) -> Tensor {
        let a = checkGatherIndex(base, axis: axis, index: index, op: "scatterReduce")
        precondition(source.dtype == base.dtype,
                     "scatterReduce: Expected self.dtype to be equal to src.dtype (\(base.dtype) vs \(source.dtype))")
        precondition(base.dtype != .bool, "scatterReduce: \"scatter_reduce\" not implemented for 'Bool'")
        let out = base.contiguousCopy()
        if index.count == 0 { return out }
        let src = scatterSource(source, index: index, base: base, axis: a, op: "scatterReduce")
        var counts = [Int](repeating: 0, count: out.count)
        func run<T: TensorScalar & Comparable>(_: T.Type, isNaN: (T) -> Bool, add: (T, T) -> T, mul: (T, T) -> T,
                                              divide: (T, Int) -> T) {
            let po = out.mutablePointer(as: T.self)
            let ps = src.pointer(as: T.self)
            forEachScatterTarget(out, axis: a, index: index, op: "scatterReduce") { t, l in
                let s = ps[l]
                defer { counts[t] += 1 }
                if counts[t] == 0 && !includeSelf {
                    po[t] = s
                    return
                }
                let o = po[t]
                switch reduce {
                case .sum, .mean: po[t] = add(o, s)
                case .prod: po[t] = mul(o, s)
                case .amax: po[t] = isNaN(o) ? o : (isNaN(s) ? s : Swift.max(o, s))
                case .amin: po[t] = isNaN(o) ? o : (isNaN(s) ? s : Swift.min(o, s))
                }
            }
            if reduce == .mean {
                for t in 0..<out.count where counts[t] > 0 {
                    po[t] = divide(po[t], counts[t] + (includeSelf ? 1 : 0))
                }
            }
        }
        switch base.dtype {
        case .float32: run(Float.self, isNaN: { $0.isNaN }, add: +, mul: *, divide: { $0 / Float($1) })
        case .float64: run(Double.self, isNaN: { $0.isNaN }, add: +, mul: *, divide: { $0 / Double($1) })
        default:
            run(Int64.self, isNaN: { _ in false }, add: { $0 &+ $1 }, mul: { $0 &* $1 }, divide: { v, n in
                // Floor division, as PyTorch's integer mean.
                let q = v / Int64(n)
                return (v % Int64(n) != 0 && v < 0) ? q - 1 : q
            })
        }
        return out
    }

    /// The exact gradients of a `prod` scatter-reduce: each contributing value's gradient is
    /// `g` at its target times the product of the other values combined there (correct with zeros).
    /// Returns the gradient for `base` (zero where `includeSelf` is false and something was
    /// scattered) and for `source` (shaped like `source`, zero outside `index`'s extent).
    package static func scatterProdGradients(_ g: Tensor, base: Tensor, axis: Int, index: Tensor, source: Tensor,
                                             includeSelf: Bool) -> (base: Tensor, source: Tensor) {
        let a = normalizeAxis(axis, rank: base.rank, op: "scatterReduce")
        let b = base.convertedRaw(to: .float64).contiguousRaw.scalars(as: Double.self)
        let gg = g.convertedRaw(to: .float64).contiguousRaw.scalars(as: Double.self)
        var gBase = includeSelf ? [Double](repeating: 0, count: b.count) : gg
        let srcGrad = Tensor(zeroedShape: source.shape, dtype: .float64)
        if index.count == 0 {
            return (includeSelf ? g.contiguousCopy() : g.contiguousCopy(), srcGrad.convertedRaw(to: source.dtype))
        }
        let src = scatterSource(source, index: index, base: base, axis: a, op: "scatterReduce").convertedRaw(to: .float64)
        let ps = src.pointer(as: Double.self)
        // Contributors per target: linear positions in `index` (source values).
        var lists = [[Int]](repeating: [], count: b.count)
        let layout = Tensor(uninitializedShape: base.shape, dtype: base.dtype)
        forEachScatterTarget(layout, axis: a, index: index, op: "scatterReduce") { t, l in lists[t].append(l) }
        var gSrcLinear = [Double](repeating: 0, count: index.count)
        for t in 0..<b.count {
            let list = lists[t]
            if list.isEmpty {
                if includeSelf { gBase[t] = gg[t] }
                continue
            }
            var values = list.map { ps[$0] }
            if includeSelf { values.append(b[t]) }
            for (k, l) in list.enumerated() {
                var p = 1.0
                for (m, v) in values.enumerated() where m != k { p *= v }
                gSrcLinear[l] = gg[t] * p
            }
            if includeSelf {
                var p = 1.0
                for v in values.dropLast() { p *= v }
                gBase[t] = gg[t] * p
            } else {
                gBase[t] = 0
            }
        }
        // Place the linear gradients into `source`'s shape (index's extent of it).
        let idxShape: Shape = index.rank == 0 ? [1] : index.shape
        let view = Tensor(storage: srcGrad.storage, shape: idxShape, strides: source.rank == 0 ? [0] : srcGrad.strides,
                          offset: 0, dtype: .float64)
        assign(Tensor(gSrcLinear, shape: idxShape), into: view)
        return (Tensor(gBase, shape: base.shape).convertedRaw(to: base.dtype), srcGrad.convertedRaw(to: source.dtype))
    }

    /// The elements of `x` at row-major positions `positions` (int64, any shape; the result has
    /// that shape). Positions must lie in `0..<x.count` (checked).
    ///
    /// PyTorch parity: `torch.take(x, positions)`.
    package static func take(_ x: Tensor, positions: Tensor) -> Tensor {
        precondition(positions.dtype == .int64, "take: Expected a long tensor for index, but got \(positions.dtype)")
        let src = x.contiguousRaw
        let idx = positions.contiguousRaw
        let out = Tensor(uninitializedShape: positions.shape, dtype: x.dtype)
        let n = x.count
        let pi = idx.pointer(as: Int64.self)
        func run<T>(_: T.Type) {
            let ps = src.rawPointer.assumingMemoryBound(to: T.self)
            let po = out.rawPointer.assumingMemoryBound(to: T.self)
            for k in 0..<out.count {
                let v = Int(pi[k])
                precondition(v >= 0 && v < n, "take: out of range: tried to access index \(v) on a tensor of \(n) elements.")
                po[k] = ps[v]
            }
        }
        switch x.dtype.itemSize {
        case 8: run(UInt64.self)
        case 4: run(UInt32.self)
        default: run(UInt8.self)
        }
        return out
    }

    /// A copy of `base` with `values` (broadcast to `positions`' shape, converted to `base`'s dtype)
    /// written at row-major positions `positions`, or added there when `accumulate` (repeats then
    /// add up; without it the last write wins).
    ///
    /// PyTorch parity: `torch.put(base, positions, values, accumulate)`.
    package static func put(_ base: Tensor, positions: Tensor, values: Tensor, accumulate: Bool) -> Tensor {
        var out = base
        out.autograd = nil
        putInPlace(&out, positions: positions, values: values, accumulate: accumulate)
        return out
    }

    /// ``put(_:positions:values:accumulate:)`` into `base` itself: its storage is written in place
    /// when uniquely owned and contiguous, else copied first (copy-on-write), so no other tensor
    /// value ever sees the change.
    package static func putInPlace(_ base: inout Tensor, positions: Tensor, values: Tensor, accumulate: Bool) {
        precondition(positions.dtype == .int64, "put: Expected a long tensor for index, but got \(positions.dtype)")
        let vals = (values.dtype == base.dtype ? values : values.convertedRaw(to: base.dtype))
            .expandedRaw(to: positions.shape, op: "put").contiguousRaw
        let idx = positions.contiguousRaw
        base.makeUniqueContiguous()
        let n = base.count
        let pi = idx.pointer(as: Int64.self)
        func run<T: TensorScalar>(_: T.Type, _ add: (T, T) -> T) {
            let po = base.mutablePointer(as: T.self)
            let pv = vals.pointer(as: T.self)
            for k in 0..<idx.count {
                let v = Int(pi[k])
                precondition(v >= 0 && v < n, "put: out of range: tried to access index \(v) on a tensor of \(n) elements.")
                po[v] = accumulate ? add(po[v], pv[k]) : pv[k]
            }
        }
        switch base.dtype {
        case .float32: run(Float.self) { $0 + $1 }
        case .float64: run(Double.self) { $0 + $1 }
        case .int64: run(Int64.self) { $0 &+ $1 }
        case .bool: run(Bool.self) { $0 || $1 }
        }
    }

    /// The multi-indices of the non-zero (true) elements of `x`, in row-major order: int64 of
    /// shape `[n, rank]`. A 0-d tensor gives `[1, 0]` or `[0, 0]`.
    ///
    /// PyTorch parity: `torch.nonzero(x)`; NaN counts as non-zero.
    package static func nonzero(_ x: Tensor) -> Tensor {
        let flat = nonzeroPositions(x).scalars(as: Int64.self)
        let r = x.rank
        var out = [Int64](repeating: 0, count: flat.count * r)
        for (k, p) in flat.enumerated() {
            var rest = Int(p)
            for d in stride(from: r - 1, through: 0, by: -1) {
                out[k * r + d] = Int64(rest % x.shape[d])
                rest /= x.shape[d]
            }
        }
        return Tensor(out, shape: [flat.count, r])
    }

    /// The row-major positions of the non-zero (true) elements of `x` (1-d int64).
    package static func nonzeroPositions(_ x: Tensor) -> Tensor {
        let c = x.contiguousRaw
        var out: [Int64] = []
        func run<T: TensorScalar>(_: T.Type, _ isZero: (T) -> Bool) {
            let p = c.pointer(as: T.self)
            for k in 0..<c.count where !isZero(p[k]) { out.append(Int64(k)) }
        }
        switch x.dtype {
        case .float32: run(Float.self) { $0 == 0 }
        case .float64: run(Double.self) { $0 == 0 }
        case .int64: run(Int64.self) { $0 == 0 }
        case .bool: run(Bool.self) { !$0 }
        }
        return Tensor(out, shape: [out.count])
    }
}
