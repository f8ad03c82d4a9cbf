import EmberStorage

/// Graph-free compute on tensors. The autograd layer builds the public, differentiable API on these.
package enum Kernels {
    /// `out[i] = f(x[i])` into a new contiguous tensor of dtype `R`.
    @inline(__always)
    package static func map<A: TensorScalar, R: TensorScalar>(
        _ x: Tensor, _: A.Type, _: R.Type, _ f: (A) -> R
    ) -> Tensor {
        let out = Tensor(uninitializedShape: x.shape, dtype: R.dtype)
        let po = out.mutablePointer(as: R.self)
        let px = x.pointer(as: A.self)
        if x.isContiguous {
            for i in 0..<x.count { po[i] = f(px[i]) }
        } else {
            var runs = StridedRuns(shape: x.shape, x.strides)
            let n = runs.length, st0 = runs.stride0
            for _ in 0..<runs.count {
                var p = px + runs.offset0
                let q = po + runs.linear
                if st0 == 1 {
                    for j in 0..<n { q[j] = f(p[j]) }
                } else {
                    for j in 0..<n { q[j] = f(p.pointee); p += st0 }
                }
                runs.advance()
            }
        }
        return out
    }

    /// `out[i] = f(a[i], b[i])` with broadcasting, into a new contiguous tensor of dtype `R`.
    @_transparent
    package static func zip<A: TensorScalar, B: TensorScalar, R: TensorScalar>(
        _ a: Tensor, _ b: Tensor, _: A.Type, _: B.Type, _: R.Type, op: String, _ f: (A, B) -> R
    ) -> Tensor {
        let pa = a.pointer(as: A.self), pb = b.pointer(as: B.self)
        if a.shape == b.shape && a.isContiguous && b.isContiguous {
            // The common case first: equal shapes need no broadcasting.
            let out = Tensor(uninitializedShape: a.shape, dtype: R.dtype)
            let po = out.mutablePointer(as: R.self)
            for i in 0..<out.count { po[i] = f(pa[i], pb[i]) }
            return out
        }
        let shape = broadcastShapes(a.shape, b.shape, op: op)
        let out = Tensor(uninitializedShape: shape, dtype: R.dtype)
        let po = out.mutablePointer(as: R.self)
        if b.count == 1 && a.shape == shape && a.isContiguous {
            let s = pb.pointee
            for i in 0..<out.count { po[i] = f(pa[i], s) }
            return out
        }
        let sa = a.broadcastStrides(to: shape, op: op), sb = b.broadcastStrides(to: shape, op: op)
        var runs = StridedRuns(shape: shape, sa, sb)
        let n = runs.length, st0 = runs.stride0, st1 = runs.stride1
        for _ in 0..<runs.count {
            var p = pa + runs.offset0, q = pb + runs.offset1
            let r = po + runs.linear
            // Unit and broadcast (0) strides get loops the compiler vectorises.
            if st0 == 1 && st1 == 1 {
                for j in 0..<n { r[j] = f(p[j], q[j]) }
            } else if st0 == 1 && st1 == 0 {
                let y = q.pointee
                for j in 0..<n { r[j] = f(p[j], y) }
            } else if st0 == 0 && st1 == 1 {
                let x = p.pointee
                for j in 0..<n { r[j] = f(x, q[j]) }
            } else {
                for j in 0..<n { r[j] = f(p.pointee, q.pointee); p += st0; q += st1 }
            }
            runs.advance()
        }
        return out
    }

    /// `out[i] = f(a[i], b[i], c[i])` with broadcasting over all three.
    @inline(__always)
    package static func zip3<A: TensorScalar, B: TensorScalar, C: TensorScalar, R: TensorScalar>(
        _ a: Tensor, _ b: Tensor, _ c: Tensor, _: A.Type, _: B.Type, _: C.Type, _: R.Type, op: String,
        _ f: (A, B, C) -> R
    ) -> Tensor {
        let shape = broadcastShapes(broadcastShapes(a.shape, b.shape, op: op), c.shape, op: op)
        let out = Tensor(uninitializedShape: shape, dtype: R.dtype)
        let po = out.mutablePointer(as: R.self)
        let pa = a.pointer(as: A.self), pb = b.pointer(as: B.self), pc = c.pointer(as: C.self)
        let sa = a.broadcastStrides(to: shape, op: op), sb = b.broadcastStrides(to: shape, op: op)
        let sc = c.broadcastStrides(to: shape, op: op)
        forEachRun(shape: shape, sa, sb, sc) { o0, o1, o2, linear, n, st0, st1, st2 in
            var p = pa + o0, q = pb + o1, s = pc + o2
            let r = po + linear
            for j in 0..<n { r[j] = f(p.pointee, q.pointee, s.pointee); p += st0; q += st1; s += st2 }
        }
        return out
    }
}
