import EmberStorage

/// Strided iteration over up to three operands that share one logical shape.
///
/// Dimensions that can be merged for every operand (row-major adjacency) are merged first, so a
/// contiguous or simply broadcast operand becomes one long run. `body` is called once per innermost
/// run with each operand's element offset, the run length, each operand's stride along the run,
/// and the run's linear position in row-major order (which is the offset into a fresh contiguous
/// output).
@inline(__always)
package func forEachRun(
    shape: Shape, _ s0: Shape, _ s1: Shape = Shape(), _ s2: Shape = Shape(),
    _ body: (_ o0: Int, _ o1: Int, _ o2: Int, _ linear: Int, _ n: Int, _ st0: Int, _ st1: Int, _ st2: Int) -> Void
) {
    if shape.elementCount == 0 { return }
    let rank = shape.count
    let use1 = s1.count == rank, use2 = s2.count == rank
    // Coalesce: walk from the innermost dimension outward, dropping size-1 dims and merging
    // dims whose strides are contiguous with the next-inner one for every operand.
    var shp = Shape(), a = Shape(), b = Shape(), c = Shape()
    var i = rank - 1
    while i >= 0 {
        let d = shape[i]
        if d != 1 {
            let x0 = s0[i], x1 = use1 ? s1[i] : 0, x2 = use2 ? s2[i] : 0
            if let last = shp.indices.last,
                a[last] * shp[last] == x0, b[last] * shp[last] == x1, c[last] * shp[last] == x2
            {
                shp[last] *= d
            } else {
                shp.append(d); a.append(x0); b.append(x1); c.append(x2)
            }
        }
        i -= 1
    }
    // shp etc. are innermost-first now.
    let r = shp.count
    if r == 0 { body(0, 0, 0, 0, 1, 0, 0, 0); return }
    let n = shp[0], st0 = a[0], st1 = b[0], st2 = c[0]
    if r == 1 { body(0, 0, 0, 0, n, st0, st1, st2); return }
    var outer = 1
    for k in 1..<r { outer &*= shp[k] }
    var idx = Shape(repeating: 0, count: r)
    var o0 = 0, o1 = 0, o2 = 0, linear = 0
    for _ in 0..<outer {
        body(o0, o1, o2, linear, n, st0, st1, st2)
        linear &+= n
        var k = 1
        while k < r {
            idx[k] &+= 1
            o0 &+= a[k]; o1 &+= b[k]; o2 &+= c[k]
            if idx[k] < shp[k] { break }
            o0 &-= a[k] &* shp[k]; o1 &-= b[k] &* shp[k]; o2 &-= c[k] &* shp[k]
            idx[k] = 0
            k += 1
        }
    }
}

/// Copies `source`'s elements (any layout) into the contiguous `destination` of the same shape
/// and dtype.
package func copyElements(from source: Tensor, into destination: inout Tensor) {
    precondition(source.shape == destination.shape && source.dtype == destination.dtype && destination.isContiguous,
                 "copyElements: shape/dtype mismatch \(source.shape) \(source.dtype) vs \(destination.shape) \(destination.dtype)")
    let size = source.dtype.itemSize
    let src = source.rawPointer, dst = destination.rawPointer
    if source.isContiguous {
        dst.copyMemory(from: src, byteCount: source.count * size)
        return
    }
    switch size {
    case 8: stridedCopy(src, dst, source, UInt64.self)
    case 4: stridedCopy(src, dst, source, UInt32.self)
    default: stridedCopy(src, dst, source, UInt8.self)
    }
}

@inline(__always)
private func stridedCopy<T>(_ src: UnsafeMutableRawPointer, _ dst: UnsafeMutableRawPointer, _ source: Tensor, _: T.Type) {
    let s = src.assumingMemoryBound(to: T.self), d = dst.assumingMemoryBound(to: T.self)
    forEachRun(shape: source.shape, source.strides) { o0, _, _, linear, n, st0, _, _ in
        var p = s + o0
        let q = d + linear
        for j in 0..<n { q[j] = p.pointee; p += st0 }
    }
}
