import EmberStorage

// Raw (graph-free) sorting kernels: stable sort along an axis (values and int64 indices) and
// unique (flattened or along an axis). NaN orders as the largest value, as in PyTorch.

extension Kernels {
    /// The total order that sorting uses: NaN is larger than every number and equal to NaN.
    @inline(__always)
    static func sortLess<T: Comparable>(_ a: T, _ b: T) -> Bool {
        // `x != x` is true only for NaN.
        if a != a { return false }
        if b != b { return true }
        return a < b
    }

    /// Stable permutation of `0..<n` ordering `read(0..<n)` ascending or descending under
    /// ``sortLess(_:_:)``: equal keys keep their order in both directions.
    @inline(__always)
    static func stableOrder<T: Comparable>(_ n: Int, descending: Bool, _ read: (Int) -> T) -> [Int] {
        let keys = (0..<n).map(read)
        var order = Array(0..<n)
        if descending {
            order.sort { i, j in
                if sortLess(keys[j], keys[i]) { return true }
                if sortLess(keys[i], keys[j]) { return false }
                return i < j
            }
        } else {
            order.sort { i, j in
                if sortLess(keys[i], keys[j]) { return true }
                if sortLess(keys[j], keys[i]) { return false }
                return i < j
            }
        }
        return order
    }

    /// The stable sorting permutation of every line of `x` along `axis` (already normalised), as
    /// int64 indices with `x`'s shape: `indices[..., j, ...]` is the position along `axis` of the
    /// `j`-th smallest (or largest) element of its line. Equal elements keep their order; NaN is
    /// the largest value.
    ///
    /// PyTorch parity: the indices of `torch.sort(x, dim, descending, stable=True)`.
    package static func sortIndices(_ x: Tensor, axis: Int, descending: Bool) -> Tensor {
        let out = Tensor(uninitializedShape: x.shape, dtype: .int64)
        if x.count == 0 { return out }
        if x.rank == 0 {
            out.mutablePointer(as: Int64.self)[0] = 0
            return out
        }
        let keys = x.dtype == .bool ? x.convertedRaw(to: .int64) : x.contiguousRaw
        let n = x.shape[axis]
        var inner = 1
        for d in (axis + 1)..<x.rank { inner *= x.shape[d] }
        let outer = x.count / (n * inner)
        let po = out.mutablePointer(as: Int64.self)
        func run<T: TensorScalar & Comparable>(_: T.Type) {
            let pk = keys.pointer(as: T.self)
            for o in 0..<outer {
                for i in 0..<inner {
                    let base = o * n * inner + i
                    let order = stableOrder(n, descending: descending) { pk[base + $0 * inner] }
                    for (j, k) in order.enumerated() { po[base + j * inner] = Int64(k) }
                }
            }
        }
        switch keys.dtype {
        case .float32: run(Float.self)
        case .float64: run(Double.self)
        default: run(Int64.self)
        }
        return out
    }

    /// The unique elements of `x` (flattened), sorted ascending; with the position of each input
    /// element's value in that list (`inverse`, `x`'s shape) and how often each value occurs.
    /// NaNs are never equal to each other, so each NaN is its own entry, after every number.
    ///
    /// PyTorch parity: `torch.unique(x, sorted=True, return_inverse=True, return_counts=True)`.
    package static func unique(_ x: Tensor) -> (values: Tensor, inverse: Tensor, counts: Tensor) {
        let flat = x.contiguousRaw.reshapedRaw([x.count])
        let order = sortIndices(flat, axis: 0, descending: false).scalars(as: Int64.self).map { Int($0) }
        let keys = x.dtype == .bool ? flat.convertedRaw(to: .int64) : flat
        var firsts: [Int] = []  // position in `order` where each unique run starts
        var inverse = [Int64](repeating: 0, count: x.count)
        func run<T: TensorScalar & Comparable>(_: T.Type) {
            let pk = keys.pointer(as: T.self)
            for (j, k) in order.enumerated() {
                // NaN != NaN, so every NaN starts a run of its own.
                if j == 0 || pk[order[j - 1]] != pk[k] { firsts.append(j) }
                inverse[k] = Int64(firsts.count - 1)
            }
        }
        switch keys.dtype {
        case .float32: run(Float.self)
        case .float64: run(Double.self)
        default: run(Int64.self)
        }
        let counts = firsts.indices.map { u in Int64((u + 1 < firsts.count ? firsts[u + 1] : order.count) - firsts[u]) }
        let picks = Tensor(firsts.map { Int64(order[$0]) }, shape: [firsts.count])
        let values = gather(flat, axis: 0, index: picks)
        return (values, Tensor(inverse, shape: x.shape), Tensor(counts, shape: [counts.count]))
    }

    /// The unique slices of `x` along `axis`, sorted lexicographically (elements compared in
    /// row-major order of the slice); `inverse` has one entry per input slice, `counts` one per
    /// unique slice.
    ///
    /// PyTorch parity: `torch.unique(x, dim=axis, return_inverse=True, return_counts=True)`.
    package static func unique(_ x: Tensor, axis: Int) -> (values: Tensor, inverse: Tensor, counts: Tensor) {
        let n = x.shape[axis]
        var perm = [axis]
        perm += (0..<x.rank).filter { $0 != axis }
        let moved = x.permutedRaw(perm).contiguousCopy()
        let width = n == 0 ? 0 : x.count / n
        // Integers compare exactly as int64; floats as float64 (exact for float32 too).
        let isFloat = x.dtype.isFloatingPoint
        let fkeys = isFloat ? moved.convertedRaw(to: .float64).scalars(as: Double.self) : []
        let ikeys = isFloat ? [] : moved.convertedRaw(to: .int64).scalars(as: Int64.self)
        // Lexicographic compare of slices i and j; NaN is largest and equal to NaN for ordering
        // but never equal for deduplication (as PyTorch compares with `!=`).
        func compare(_ i: Int, _ j: Int) -> Int {
            for e in 0..<width {
                if isFloat {
                    let a = fkeys[i * width + e], b = fkeys[j * width + e]
                    if sortLess(a, b) { return -1 }
                    if sortLess(b, a) { return 1 }
                } else {
                    let a = ikeys[i * width + e], b = ikeys[j * width + e]
                    if a != b { return a < b ? -1 : 1 }
                }
            }
            return 0
        }
        var order = Array(0..<n)
        order.sort { i, j in
            let c = compare(i, j)
            return c != 0 ? c < 0 : i < j
        }
        func same(_ i: Int, _ j: Int) -> Bool {
            isFloat ? (0..<width).allSatisfy { fkeys[i * width + $0] == fkeys[j * width + $0] }
                : (0..<width).allSatisfy { ikeys[i * width + $0] == ikeys[j * width + $0] }
        }
        var firsts: [Int] = []
        var inverse = [Int64](repeating: 0, count: n)
        for (j, k) in order.enumerated() {
            if j == 0 || !same(order[j - 1], k) { firsts.append(j) }
            inverse[k] = Int64(firsts.count - 1)
        }
        let counts = firsts.indices.map { u in Int64((u + 1 < firsts.count ? firsts[u + 1] : order.count) - firsts[u]) }
        let picks = Tensor(firsts.map { Int64(order[$0]) }, shape: [firsts.count])
        let values = indexSelect(x, axis: axis, index: picks)
        return (values, Tensor(inverse, shape: [n]), Tensor(counts, shape: [counts.count]))
    }
}
