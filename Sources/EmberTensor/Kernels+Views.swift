import EmberStorage

extension Tensor {
    /// A view with dimensions reordered by `perm` (no copy, no gradient tracking).
    package func permutedRaw(_ perm: [Int]) -> Tensor {
        precondition(perm.count == rank && Set(perm) == Set(0..<rank),
                     "permute: number of dims don't match or dims repeat: permutation \(perm) for shape \(shape)")
        var s = Shape(), st = Shape()
        for p in perm { s.append(shape[p]); st.append(strides[p]) }
        return Tensor(storage: storage, shape: s, strides: st, offset: offset, dtype: dtype)
    }

    /// The same elements with a new shape; a view when the layout allows, else a copy. A single
    /// `-1` is inferred. No gradient tracking.
    package func reshapedRaw(_ newShape: Shape) -> Tensor {
        var target = newShape
        var inferred: Int? = nil
        var known = 1
        for (i, d) in newShape.enumerated() {
            if d == -1 {
                precondition(inferred == nil, "reshape: only one dimension can be inferred (shape \(newShape))")
                inferred = i
            } else {
                precondition(d >= 0, "reshape: invalid shape dimension \(d) in \(newShape)")
                known *= d
            }
        }
        if let i = inferred {
            precondition(known != 0 && count % known == 0,
                         "reshape: shape '\(newShape)' is invalid for input of size \(count)")
            target[i] = count / known
        }
        precondition(target.elementCount == count,
                     "reshape: shape '\(newShape)' is invalid for input of size \(count) (tensor shape \(shape))")
        let base = isContiguous ? self : contiguousCopy()
        return Tensor(storage: base.storage, shape: target, strides: target.contiguousStrides,
                      offset: base.offset, dtype: dtype)
    }
}
