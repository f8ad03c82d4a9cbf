import EmberStorage

/// The shape two operands broadcast to, by NumPy/PyTorch rules (align right; sizes equal or 1).
///
/// PyTorch parity: the error text matches PyTorch's ("The size of tensor a (3) must match the size
/// of tensor b (4) at non-singleton dimension 1"), prefixed with the operation.
package func broadcastShapes(_ a: Shape, _ b: Shape, op: String) -> Shape {
    if a == b { return a }
    let r = Swift.max(a.count, b.count)
    var out = Shape(repeating: 1, count: r)
    for i in 0..<r {
        let da = i < r - a.count ? 1 : a[i - (r - a.count)]
        let db = i < r - b.count ? 1 : b[i - (r - b.count)]
        precondition(da == db || da == 1 || db == 1,
                     "\(op): The size of tensor a (\(da)) must match the size of tensor b (\(db)) at non-singleton dimension \(i); shapes \(a) and \(b)")
        out[i] = da == 1 ? db : da
    }
    return out
}

extension Tensor {
    /// Strides that read this tensor as if expanded to `target` (0 along broadcast dimensions).
    package func broadcastStrides(to target: Shape, op: String) -> Shape {
        let r = target.count
        precondition(rank <= r, "\(op): cannot broadcast shape \(shape) to \(target)")
        var s = Shape(repeating: 0, count: r)
        for i in 0..<rank {
            let d = r - rank + i
            if shape[i] == target[d] {
                s[d] = strides[i]
            } else {
                precondition(shape[i] == 1, "\(op): cannot broadcast shape \(shape) to \(target)")
            }
        }
        return s
    }

    /// A view of this tensor expanded to `target` (no copy). Raw: no gradient tracking.
    package func expandedRaw(to target: Shape, op: String = "expand") -> Tensor {
        if target == shape { var t = self; t.autograd = nil; return t }
        return Tensor(storage: storage, shape: target, strides: broadcastStrides(to: target, op: op),
                      offset: offset, dtype: dtype)
    }
}
