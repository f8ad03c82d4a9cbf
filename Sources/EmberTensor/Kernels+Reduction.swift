import EmberStorage

extension Kernels {
    /// Normalises and de-duplicates reduction axes; empty means all axes.
    package static func reductionAxes(_ axes: [Int], rank: Int, op: String) -> [Int] {
        if axes.isEmpty { return Array(0..<rank) }
        let norm = axes.map { normalizeAxis($0, rank: rank, op: op) }
        precondition(Set(norm).count == norm.count, "\(op): dim \(norm) appears multiple times in the list of dims")
        return norm.sorted()
    }

    /// Shape after reducing `axes` (kept as 1 when `keepDim`).
    package static func reducedShape(_ shape: Shape, axes: [Int], keepDim: Bool) -> Shape {
        var out = Shape()
        for i in 0..<shape.count {
            if axes.contains(i) { if keepDim { out.append(1) } } else { out.append(shape[i]) }
        }
        return out
    }

    /// Reduces `x` over `axes` by folding each group of elements with `reduce`, which receives a
    /// pointer to the group's elements laid out contiguously and the group size.
    ///
    /// The reduced axes are moved innermost (a copy only when needed), so every group is one
    /// contiguous run; float sums use pairwise summation for accuracy.
    @inline(__always)
    package static func reduce<T: TensorScalar, R: TensorScalar>(
        _ x: Tensor, axes: [Int], keepDim: Bool, op: String, _: T.Type, _: R.Type,
        _ reduce: (UnsafePointer<T>, Int) -> R
    ) -> Tensor {
        let ax = reductionAxes(axes, rank: x.rank, op: op)
        let outShape = reducedShape(x.shape, axes: ax, keepDim: keepDim)
        var perm = (0..<x.rank).filter { !ax.contains($0) }
        perm += ax
        let permuted = x.permutedRaw(perm).contiguousRaw
        var group = 1
        for a in ax { group *= x.shape[a] }
        let out = Tensor(uninitializedShape: outShape, dtype: R.dtype)
        let po = out.mutablePointer(as: R.self)
        let px = permuted.pointer(as: T.self)
        for i in 0..<outShape.elementCount { po[i] = reduce(px + i * group, group) }
        return out
    }

    /// Sum over `axes` (all when empty). int64 and bool sum to int64; floats pairwise.
    package static func sum(_ x: Tensor, axes: [Int], keepDim: Bool) -> Tensor {
        switch x.dtype {
        case .float32: return reduce(x, axes: axes, keepDim: keepDim, op: "sum", Float.self, Float.self) { pairwiseSum($0, $1) }
        case .float64: return reduce(x, axes: axes, keepDim: keepDim, op: "sum", Double.self, Double.self) { pairwiseSum($0, $1) }
        case .int64:
            return reduce(x, axes: axes, keepDim: keepDim, op: "sum", Int64.self, Int64.self) { p, n in
                var s: Int64 = 0
                for i in 0..<n { s &+= p[i] }
                return s
            }
        case .bool: return sum(x.convertedRaw(to: .int64), axes: axes, keepDim: keepDim)
        }
    }
}

/// Pairwise (cascade) summation: error grows like O(log n) rather than O(n).
@inline(__always)
package func pairwiseSum<T: BinaryFloatingPoint>(_ p: UnsafePointer<T>, _ n: Int) -> T {
    if n <= 32 {
        var s0: T = 0, s1: T = 0, s2: T = 0, s3: T = 0
        var i = 0
        while i + 4 <= n { s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3]; i += 4 }
        while i < n { s0 += p[i]; i += 1 }
        return (s0 + s1) + (s2 + s3)
    }
    let half = (n / 2 + 7) & ~7
    return pairwiseSum(p, half) + pairwiseSum(p + half, n - half)
}
