import EmberStorage
import RealModule

// Max, min, arg-max and arg-min reductions, their backward, and the strided extremum scan.

extension Kernels {
    /// The largest (`isMax`) or smallest element of each group over `axes`, NaN propagating.
    /// Stops with PyTorch's errors for empty input or an empty reduced dimension.
    package static func extremum(_ x: Tensor, axes: [Int], keepDim: Bool, isMax: Bool, op: String) -> Tensor {
        checkNonEmptyReduction(x, axes: axes, op: op)
        switch x.dtype {
        case .float32: return extremumTyped(x, axes: axes, keepDim: keepDim, isMax: isMax, op: op, Float.self)
        case .float64: return extremumTyped(x, axes: axes, keepDim: keepDim, isMax: isMax, op: op, Double.self)
        case .int64: return extremumTyped(x, axes: axes, keepDim: keepDim, isMax: isMax, op: op, Int64.self)
        case .bool:
            return reduceStrided(x, axes: axes, keepDim: keepDim, op: op, Bool.self, Bool.self) { p, n, s in
                var q = p
                for _ in 0..<n {
                    if q.pointee == isMax { return isMax }
                    q += s
                }
                return !isMax
            }
        }
    }

    private static func extremumTyped<T: TensorNumeric>(
        _ x: Tensor, axes: [Int], keepDim: Bool, isMax: Bool, op: String, _: T.Type
    ) -> Tensor {
        if isMax {
            return reduceStrided(x, axes: axes, keepDim: keepDim, op: op, T.self, T.self) { extremumValue($0, $1, $2, isMax: true) }
        }
        return reduceStrided(x, axes: axes, keepDim: keepDim, op: op, T.self, T.self) { extremumValue($0, $1, $2, isMax: false) }
    }

    /// The extreme value along `axis` and its index (first occurrence; the first NaN wins).
    /// PyTorch parity: `torch.max(x, dim, keepdim)` / `torch.min`.
    package static func extremumWithIndex(
        _ x: Tensor, axis: Int, keepDim: Bool, isMax: Bool, op: String
    ) -> (values: Tensor, indices: Tensor) {
        let a = normalizeAxis(axis, rank: x.rank, op: op)
        checkNonEmptyReduction(x, axes: [a], op: op)
        switch x.dtype {
        case .float32: return extremumWithIndexTyped(x, axis: a, keepDim: keepDim, isMax: isMax, op: op, Float.self)
        case .float64: return extremumWithIndexTyped(x, axis: a, keepDim: keepDim, isMax: isMax, op: op, Double.self)
        case .int64: return extremumWithIndexTyped(x, axis: a, keepDim: keepDim, isMax: isMax, op: op, Int64.self)
        case .bool:
            let (v, i) = extremumWithIndex(x.convertedRaw(to: .int64), axis: a, keepDim: keepDim, isMax: isMax, op: op)
            return (v.convertedRaw(to: .bool), i)
        }
    }

    private static func extremumWithIndexTyped<T: TensorNumeric>(
        _ x: Tensor, axis: Int, keepDim: Bool, isMax: Bool, op: String, _: T.Type
    ) -> (values: Tensor, indices: Tensor) {
        let plan = ReductionPlan(x, axes: [axis], keepDim: keepDim, op: op)
        let values = Tensor(uninitializedShape: plan.outShape, dtype: T.dtype)
        let indices = Tensor(uninitializedShape: plan.outShape, dtype: .int64)
        let pv = values.mutablePointer(as: T.self), pi = indices.mutablePointer(as: Int64.self)
        let px = plan.source.pointer(as: T.self)
        let n = plan.groupSize, s = plan.groupStride
        if T.self == Float.self && s == 1 && n >= 16 {
            // Contiguous float32 groups: the value 8 lanes at a time, then its first position.
            plan.forEachGroup { i, off in
                let v = extremumValue(px + off, n, 1, isMax: isMax)
                var k = 0
                if v != v { while px[off + k] == px[off + k] { k += 1 } } else { while px[off + k] != v { k += 1 } }
                pv[i] = v
                pi[i] = Int64(k)
            }
        } else if isMax {
            plan.forEachGroup { i, off in let r = extremumFold(px + off, n, s, isMax: true); pv[i] = r.0; pi[i] = Int64(r.1) }
        } else {
            plan.forEachGroup { i, off in let r = extremumFold(px + off, n, s, isMax: false); pv[i] = r.0; pi[i] = Int64(r.1) }
        }
        return (values, indices)
    }

    /// Index of the extreme element along `axis`, or in the flattened tensor when `axis` is nil
    /// (then `keepDim` keeps every dimension as 1). int64 result; first occurrence; NaN counts as
    /// the extreme. PyTorch parity: `torch.argmax` / `torch.argmin`.
    package static func argExtremum(_ x: Tensor, axis: Int?, keepDim: Bool, isMax: Bool, op: String) -> Tensor {
        precondition(x.dtype != .bool, "\(op): \"\(op)_cpu\" not implemented for 'Bool' (shape \(x.shape))")
        if let axis { return extremumWithIndex(x, axis: axis, keepDim: keepDim, isMax: isMax, op: op).indices }
        precondition(x.count > 0,
                     "\(op): \(op)(): Expected reduction dim to be specified for input.numel() == 0. (shape \(x.shape))")
        let flat = x.reshapedRaw([x.count])
        let idx = extremumWithIndex(flat, axis: 0, keepDim: false, isMax: isMax, op: op).indices
        return keepDim ? idx.reshapedRaw(Shape(repeating: 1, count: x.rank)) : idx
    }

    /// PyTorch's errors for max/min-like reductions of nothing.
    package static func checkNonEmptyReduction(_ x: Tensor, axes: [Int], op: String) {
        if axes.isEmpty {
            precondition(x.count > 0,
                         "\(op): \(op)(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction dim with the 'dim' argument. (shape \(x.shape))")
            return
        }
        for a in reductionAxes(axes, rank: x.rank, op: op) {
            precondition(x.shape[a] != 0,
                         "\(op): \(op)(): Expected reduction dim \(a) to have non-zero size. (shape \(x.shape))")
        }
    }

    /// Gradient of a full max/min reduction: `g` shared evenly among the elements equal to
    /// `result` (among the NaNs when `result` is NaN). PyTorch's `evenly_distribute_backward`.
    package static func evenlyDistribute(_ g: Tensor, _ x: Tensor, _ result: Tensor) -> Tensor {
        switch x.dtype {
        case .float32: return evenlyDistributeTyped(g, x, result, Float.self)
        default: return evenlyDistributeTyped(g, x, result, Double.self)
        }
    }

    private static func evenlyDistributeTyped<T: TensorFloat>(_ g: Tensor, _ x: Tensor, _ result: Tensor, _: T.Type) -> Tensor {
        let r = result.contiguousRaw.pointer(as: T.self).pointee
        let gv = g.contiguousRaw.pointer(as: T.self).pointee
        let hit: (T) -> Bool = r.isNaN ? { $0.isNaN } : { $0 == r }
        let xc = x.contiguousRaw
        let px = xc.pointer(as: T.self)
        var count = 0
        for i in 0..<xc.count where hit(px[i]) { count += 1 }
        let share = gv / T(count)
        return map(xc, T.self, T.self) { hit($0) ? share : 0 }
    }

    /// Gradient of `amax`/`amin` over `axes`: `(g / count) * mask` with `mask = (x == result)`
    /// and `count` the number of hits per group. `g` and `result` have the kept-dims shape.
    package static func distributeAmongTies(_ g: Tensor, _ x: Tensor, _ result: Tensor, axes: [Int]) -> Tensor {
        let mask = floatBinary(x, result, op: "amax_backward", f32: { $0 == $1 ? 1 : 0 }, f64: { $0 == $1 ? 1 : 0 })
        let count = sum(mask, axes: axes, keepDim: true)
        return floatTernary(mask, g, count, op: "amax_backward", f32: { $0 * ($1 / $2) }, f64: { $0 * ($1 / $2) })
    }

    /// Writes `g[i]` at index `indices[i]` along `axis` of a zero tensor of `shape` (the backward
    /// of a value-selecting reduction such as `max(axis)`). `g` and `indices` have the kept-dims
    /// shape.
    package static func scatterAlongAxis(_ g: Tensor, indices: Tensor, axis: Int, shape: Shape) -> Tensor {
        let out = Tensor(zeroedShape: shape, dtype: g.dtype)
        let gc = g.contiguousRaw, ic = indices.contiguousRaw
        let n = shape[axis]
        var inner = 1
        for d in (axis + 1)..<shape.count { inner *= shape[d] }
        let pi = ic.pointer(as: Int64.self)
        func run<T: TensorScalar>(_: T.Type) {
            let pg = gc.pointer(as: T.self), po = out.mutablePointer(as: T.self)
            for i in 0..<gc.count {
                let base = (i / inner) * n * inner + i % inner
                po[base + Int(pi[i]) * inner] = pg[i]
            }
        }
        if g.dtype == .float32 { run(Float.self) } else { run(Double.self) }
        return out
    }
}

/// The extreme element of a strided group and its index; the first NaN wins and ends the scan.
@inline(__always)
package func extremumFold<T: TensorNumeric>(_ p: UnsafePointer<T>, _ n: Int, _ s: Int, isMax: Bool) -> (T, Int) {
    var best = p.pointee, index = 0
    if best != best { return (best, 0) }
    var q = p + s
    var i = 1
    while i < n {
        let v = q.pointee
        if v != v { return (v, i) }
        if isMax ? v > best : v < best { best = v; index = i }
        q += s
        i += 1
    }
    return (best, index)
}

/// The extreme value of a strided group, NaN propagating (the first NaN is returned). Contiguous
/// float32 groups are scanned 8 lanes at a time.
@inline(__always)
package func extremumValue<T: TensorNumeric>(_ p: UnsafePointer<T>, _ n: Int, _ s: Int, isMax: Bool) -> T {
    if T.self == Float.self && s == 1 && n >= 16 {
        let r = extremumFloat8(UnsafeRawPointer(p).assumingMemoryBound(to: Float.self), n, isMax: isMax)
        return unsafeBitCast(r, to: T.self)
    }
    return extremumFold(p, n, s, isMax: isMax).0
}

/// Vectorised max/min of `n >= 8` contiguous floats; NaN propagates (the first NaN is returned).
@inline(__always)
private func extremumFloat8(_ p: UnsafePointer<Float>, _ n: Int, isMax: Bool) -> Float {
    let raw = UnsafeRawPointer(p)
    var m = raw.loadUnaligned(as: Float8.self)
    var nan = m .!= m
    var i = 8
    while i + 8 <= n {
        let v = raw.loadUnaligned(fromByteOffset: i * 4, as: Float8.self)
        if isMax { m.replace(with: v, where: v .> m) } else { m.replace(with: v, where: v .< m) }
        nan = nan .| (v .!= v)
        i += 8
    }
    var best = m[0]
    for l in 1..<8 where isMax ? m[l] > best : m[l] < best { best = m[l] }
    var tailNaN = false
    while i < n {
        let v = p[i]
        if v != v { tailNaN = true } else if isMax ? v > best : v < best { best = v }
        i += 1
    }
    if any(nan) || tailNaN {
        for k in 0..<n where p[k] != p[k] { return p[k] }
    }
    return best
}
