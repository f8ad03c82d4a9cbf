import EmberStorage

/// The innermost runs of a strided walk over up to three operands that share one logical shape.
///
/// Dimensions that can be merged for every operand (row-major adjacency) are merged first, so a
/// contiguous or simply broadcast operand becomes one long run. Each of the ``count`` runs has
/// ``length`` elements, each operand's stride along it (``stride0`` ...), and, at the current
/// run, each operand's element offset (``offset0`` ...) and the run's linear position in row-major
/// order (``linear``: the offset into a fresh contiguous output); ``advance()`` moves to the next.
///
/// An iterator rather than a closure, so a kernel's loop over a run sits in the kernel's own scope
/// and the compiler can inline and vectorise its element function; through a closure-taking
/// helper the element function stayed an indirect call per element.
package struct StridedRuns {
    package private(set) var count = 1
    package private(set) var length = 0
    package private(set) var stride0 = 0, stride1 = 0, stride2 = 0
    package private(set) var offset0 = 0, offset1 = 0, offset2 = 0, linear = 0
    private var shp = Shape(), a = Shape(), b = Shape(), c = Shape(), idx = Shape()

    @inline(__always)
    package init(shape: Shape, _ s0: Shape, _ s1: Shape = Shape(), _ s2: Shape = Shape()) {
        if shape.elementCount == 0 {
            count = 0
            return
        }
        let rank = shape.count
        let use1 = s1.count == rank, use2 = s2.count == rank
        // Coalesce: walk from the innermost dimension outward, dropping size-1 dims and merging
        // dims whose strides are contiguous with the next-inner one for every operand.
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
        if shp.count == 0 {
            length = 1
            return
        }
        (length, stride0, stride1, stride2) = (shp[0], a[0], b[0], c[0])
        for k in 1..<shp.count { count &*= shp[k] }
        idx = Shape(repeating: 0, count: shp.count)
    }

    /// Moves to the next run (odometer over the outer dimensions).
    @inline(__always)
    package mutating func advance() {
        linear &+= length
        var k = 1
        while k < shp.count {
            idx[k] &+= 1
            offset0 &+= a[k]; offset1 &+= b[k]; offset2 &+= c[k]
            if idx[k] < shp[k] { return }
            offset0 &-= a[k] &* shp[k]; offset1 &-= b[k] &* shp[k]; offset2 &-= c[k] &* shp[k]
            idx[k] = 0
            k += 1
        }
    }
}

/// Strided iteration over up to three operands that share one logical shape: `body` is called
/// once per innermost run of ``StridedRuns`` with each operand's element offset, the run's linear
/// position, its length, and each operand's stride along it.
@inline(__always)
package func forEachRun(
    shape: Shape, _ s0: Shape, _ s1: Shape = Shape(), _ s2: Shape = Shape(),
    _ body: (_ o0: Int, _ o1: Int, _ o2: Int, _ linear: Int, _ n: Int, _ st0: Int, _ st1: Int, _ st2: Int) -> Void
) {
    var runs = StridedRuns(shape: shape, s0, s1, s2)
    for _ in 0..<runs.count {
        body(runs.offset0, runs.offset1, runs.offset2, runs.linear, runs.length, runs.stride0, runs.stride1, runs.stride2)
        runs.advance()
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
    let rank = source.rank
    if rank >= 2 && source.strides[rank - 1] != 1 && source.strides[rank - 2] == 1
        && source.shape[rank - 1] >= 8 && source.shape[rank - 2] >= 8
    {
        transposedCopy(s, d, source)
        return
    }
    var runs = StridedRuns(shape: source.shape, source.strides)
    let n = runs.length, st0 = runs.stride0
    for _ in 0..<runs.count {
        let p = s + runs.offset0, q = d + runs.linear
        if st0 == 1 {
            q.update(from: p, count: n)
        } else {
            for j in 0..<n { q[j] = p[j * st0] }
        }
        runs.advance()
    }
}

/// The copy of a tensor whose last two dimensions are transposed in memory (the second-last has
/// unit stride), one matrix at a time. Four-byte elements go through EmberStorage's column
/// packing (8 x 8 register transposes; bit copies, so exact for any float32), others through
/// ``tiledTransposedCopy(_:_:rows:cols:colStride:)``.
@inline(__always)
private func transposedCopy<T>(_ s: UnsafeMutablePointer<T>, _ d: UnsafeMutablePointer<T>, _ source: Tensor) {
    let rank = source.rank
    let rows = source.shape[rank - 2], cols = source.shape[rank - 1]
    let colStride = source.strides[rank - 1]  // the row stride is 1
    for m in 0..<(source.count / (rows * cols)) {
        // Element offset of matrix m (row-major over the leading dimensions).
        var rest = m, offset = 0
        var k = rank - 3
        while k >= 0 {
            offset += (rest % source.shape[k]) * source.strides[k]
            rest /= source.shape[k]
            k -= 1
        }
        let src = s + offset, dst = d + m * rows * cols
        if T.self == UInt32.self && VectorKernels.hasTranspose {
            // dst[i * cols + j] = src[i + j * colStride]
            VectorKernels.packColumns(UnsafeRawPointer(src).assumingMemoryBound(to: Float.self), rows: rows, cols: cols,
                                      columnStride: colStride,
                                      into: UnsafeMutableRawPointer(dst).assumingMemoryBound(to: Float.self))
        } else {
            tiledTransposedCopy(src, dst, rows: rows, cols: cols, colStride: colStride)
        }
    }
}

/// `dst[i * cols + j] = src[i + j * colStride]` in 16 x 16 tiles through a small buffer: each
/// tile reads 16 cache lines and writes 16 whole lines. Element by element, with power-of-two row
/// lengths every write of a tile landed in one L1 set and lines were evicted half-written.
@inline(__always)
private func tiledTransposedCopy<T>(_ src: UnsafeMutablePointer<T>, _ dst: UnsafeMutablePointer<T>,
                                    rows: Int, cols: Int, colStride: Int) {
    let tile = 16
    withUnsafeTemporaryAllocation(of: T.self, capacity: tile * tile) { buffer in
        let buf = buffer.baseAddress!
        var i0 = 0
        while i0 < rows {
            let h = Swift.min(tile, rows - i0)
            var j0 = 0
            while j0 < cols {
                let w = Swift.min(tile, cols - j0)
                for j in 0..<w {
                    let column = src + (j0 + j) * colStride + i0
                    for i in 0..<h { buf[i * tile + j] = column[i] }
                }
                for i in 0..<h { (dst + (i0 + i) * cols + j0).update(from: buf + i * tile, count: w) }
                j0 += w
            }
            i0 += h
        }
    }
}
