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
            forEachRun(shape: x.shape, x.strides) { o0, _, _, linear, n, st0, _, _ in
                var p = px + o0
                let q = po + linear
                for j in 0..<n { q[j] = f(p.pointee); p += st0 }
            }
        }
        return out
    }

    /// `out[i] = f(a[i], b[i])` with broadcasting, into a new contiguous tensor of dtype `R`.
    @inline(__always)
    package static func zip<A: TensorScalar, B: TensorScalar, R: TensorScalar>(
        _ a: Tensor, _ b: Tensor, _: A.Type, _: B.Type, _: R.Type, op: String, _ f: (A, B) -> R
    ) -> Tensor {
        let shape = broadcastShapes(a.shape, b.shape, op: op)
        let out = Tensor(uninitializedShape: shape, dtype: R.dtype)
        let po = out.mutablePointer(as: R.self)
        let pa = a.pointer(as: A.self), pb = b.pointer(as: B.self)
        if a.shape == b.shape && a.isContiguous && b.isContiguous {
            for i in 0..<out.count { po[i] = f(pa[i], pb[i]) }
            return out
        }
        if b.count == 1 && a.shape == shape && a.isContiguous {
            let s = pb.pointee
            for i in 0..<out.count { po[i] = f(pa[i], s) }
            return out
        }
        let sa = a.broadcastStrides(to: shape, op: op), sb = b.broadcastStrides(to: shape, op: op)
        forEachRun(shape: shape, sa, sb) { o0, o1, _, linear, n, st0, st1, _ in
            var p = pa + o0, q = pb + o1
            let r = po + linear
            for j in 0..<n { r[j] = f(p.pointee, q.pointee); p += st0; q += st1 }
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
