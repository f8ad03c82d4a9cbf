import EmberAutograd
import EmberTensor
import EmberStorage

/// Cross entropy of `[N, C]` logits (or unbatched `[C]`) against int64 class indices, without
/// class weights, as one op: forward reads each row once (its max, `sum(exp(x - max))` and the
/// loss); backward is one multiply-add per element (`softmax - target distribution`, scaled).
///
/// Loss of a kept row with target `t`, smoothing `e` and `lp_c = (x_c - max) - logSum`:
/// `(1 - e) (-lp_t) + (e / C) (-sum_c lp_c)`; ignored rows give 0 and no gradient.
/// Gradient: `s (softmax(x) - (1 - e) onehot(t) - e / C)`, with `s` the incoming gradient (over
/// the number of kept rows for `.mean`).
///
/// When a gradient will be needed, forward keeps `exp(x - max)` (the softmax before its division),
/// so backward computes no exponentials; otherwise it writes nothing but the losses. The formulas
/// are those of ``Tensor/logSoftmax(axis:)`` followed by the NLL kernel (the general path), so both
/// give the same losses to rounding. Rows are split across threads for large inputs (each chunk
/// writes its own rows only).
func fusedCrossEntropy(
    _ input: Tensor, targets: Tensor, kept: Int, layout: ClassIndexLayout, ignoreIndex: Int,
    labelSmoothing: Double, reduction: Reduction
) -> Tensor {
    if input.dtype == .float32 {
        return fusedCrossEntropyTyped(Float.self, input, targets, kept, layout, ignoreIndex, labelSmoothing, reduction)
    }
    return fusedCrossEntropyTyped(Double.self, input, targets, kept, layout, ignoreIndex, labelSmoothing, reduction)
}

/// Rows per thread so that each thread gets at least ~32K elements.
@inline(__always) private func minimumRows(classes: Int) -> Int { Swift.max(1, 32_768 / Swift.max(classes, 1)) }

private func fusedCrossEntropyTyped<T: TensorFloat>(
    _: T.Type, _ input: Tensor, _ targets: Tensor, _ kept: Int, _ layout: ClassIndexLayout, _ ignoreIndex: Int,
    _ labelSmoothing: Double, _ reduction: Reduction
) -> Tensor {
    let x = input.contiguousRaw
    let rows = layout.batch, c = layout.classes
    let ignore = Int64(ignoreIndex)
    let keep = 1 - T(labelSmoothing), perClass = T(labelSmoothing) / T(c)
    let smoothing = labelSmoothing > 0
    // exp(x - max) per element, kept for backward only when one will run.
    let exps: Tensor? = shouldRecord(input) ? Tensor(uninitializedShape: [rows, c], dtype: T.dtype) : nil
    // Per row: 1 / sum(exp(x - max)), and the loss.
    let stats = Tensor(uninitializedShape: [rows, 2], dtype: T.dtype)
    do {
        let px = x.pointer(as: T.self), pt = targets.pointer(as: Int64.self), ps = stats.mutablePointer(as: T.self)
        let pe = exps?.mutablePointer(as: T.self)
        Kernels.forEachChunk(count: rows, minimumPerThread: minimumRows(classes: c)) { start, count in
            for r in start..<(start + count) {
                let row = px + r * c, st = ps + 2 * r
                let (m, sum) = rowMaxAndExpSum(row, c, storing: pe.map { $0 + r * c })
                let logSum = T(Double.log(sum))
                st[0] = T(1 / sum)
                let t = pt[r]
                if t == ignore { st[1] = 0; continue }
                let nll = -((row[Int(t)] - m) - logSum)
                if smoothing {
                    // -sum_c ((x_c - m) - logSum)
                    let smooth = -(rowShiftedSum(row, c, m) - Double(c) * Double(logSum))
                    st[1] = keep * nll + perClass * T(smooth)
                } else {
                    st[1] = nll
                }
            }
        }
    }
    let ps = stats.pointer(as: T.self)
    let out: Tensor
    if reduction == .none {
        out = Tensor(uninitializedShape: layout.lossShape, dtype: T.dtype)
        let po = out.mutablePointer(as: T.self)
        for r in 0..<rows { po[r] = ps[2 * r + 1] }
    } else {
        var total = 0.0
        for r in 0..<rows { total += Double(ps[2 * r + 1]) }
        if reduction == .mean { total /= Double(kept) }
        out = Tensor(uninitializedShape: [], dtype: T.dtype)
        out.mutablePointer(as: T.self).pointee = T(total)
    }
    guard let exps else { return out }
    return out.recorded("crossEntropy", input, twice: true) { g in
        if creatingGraph {
            // The same gradient from recorded ops: d/dlogp of the NLL term (a fixed linear map of
            // g), then through log-softmax.
            let pt = targets.pointer(as: Int64.self)
            var coefficients = [Double](repeating: 0, count: rows * c)
            for r in 0..<rows where pt[r] != ignore {
                for k in 0..<c { coefficients[r * c + k] = -Double(perClass) }
                coefficients[r * c + Int(pt[r])] -= Double(keep)
            }
            let a = Tensor(coefficients, shape: [rows, c]).to(input.dtype)
            let s = reduction == .none ? g.reshaped([rows, 1]) : (reduction == .mean ? g / Double(kept) : g)
            let gLogProbs = a * s
            let x2 = input.reshaped([rows, c])
            return [(gLogProbs - x2.softmax(axis: 1) * gLogProbs.sum(axis: 1, keepDim: true)).reshaped(input.shape)]
        }
        let gc = g.contiguousRaw
        let pg = gc.pointer(as: T.self)
        let grad = Tensor(uninitializedShape: x.shape, dtype: T.dtype)
        let pe = exps.pointer(as: T.self), pt = targets.pointer(as: Int64.self), ps = stats.pointer(as: T.self)
        let pd = grad.mutablePointer(as: T.self)
        let g0: T = reduction == .none ? 0 : (reduction == .mean ? pg[0] / T(kept) : pg[0])
        Kernels.forEachChunk(count: rows, minimumPerThread: minimumRows(classes: c)) { start, count in
            for r in start..<(start + count) {
                let dst = pd + r * c
                let t = pt[r]
                if t == ignore {
                    dst.initialize(repeating: 0, count: c)
                    continue
                }
                let s = reduction == .none ? pg[r] : g0
                // softmax * s - (e / C) s, then -(1 - e) s at the target
                let factor = s * ps[2 * r], shift = perClass * s
                let e = pe + r * c
                for k in 0..<c { dst[k] = e[k] * factor - shift }
                dst[Int(t)] -= keep * s
            }
        }
        return [grad]
    }
}

// Row kernels. The float32 version is written out here, 8 lanes at a time, rather than calling
// EmberTensor's generic helpers: those are not specialised or inlined across the module boundary,
// which cost more than the arithmetic for small rows. They follow ``Tensor/logSoftmax(axis:)``'s
// formulas (the max, then the sum of `exp(x - max)` in Double lanes).

/// The row's max and `sum(exp(x - max))` (in Double), writing each `exp(x - max)` to `storing`
/// when given. A NaN anywhere gives NaN.
@inline(__always)
private func rowMaxAndExpSum<T: TensorFloat>(_ row: UnsafePointer<T>, _ n: Int, storing: UnsafeMutablePointer<T>?) -> (T, Double) {
    if T.self == Float.self {
        let (m, sum) = rowMaxAndExpSumFloat(UnsafeRawPointer(row).assumingMemoryBound(to: Float.self), n,
                                            storing: storing.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: Float.self) })
        return (unsafeBitCast(m, to: T.self), sum)
    }
    var m = n > 0 ? row[0] : -.infinity
    for k in 1..<Swift.max(n, 1) where row[k] > m || row[k] != row[k] {
        m = row[k]
        if m != m { break }
    }
    var sum: T = 0
    for k in 0..<n {
        let e = T.exp(row[k] - m)
        storing?[k] = e
        sum += e
    }
    return (m, Double(sum))
}

@inline(__always)
private func rowMaxAndExpSumFloat(_ row: UnsafePointer<Float>, _ n: Int, storing: UnsafeMutablePointer<Float>?) -> (Float, Double) {
    let raw = UnsafeRawPointer(row)
    // max, NaN-propagating
    var m: Float = n > 0 ? row[0] : -.infinity
    var k = 0
    if n >= 16 {
        var mv = raw.loadUnaligned(as: Float8.self)
        var nan = mv .!= mv
        k = 8
        while k + 8 <= n {
            let v = raw.loadUnaligned(fromByteOffset: k * 4, as: Float8.self)
            mv.replace(with: v, where: v .> mv)
            nan = nan .| (v .!= v)
            k += 8
        }
        m = mv.max()
        if any(nan) { m = .nan }
    }
    while k < n && m == m {
        let v = row[k]
        if v > m || v != v { m = v }
        k += 1
    }
    // sum of exp(x - m), in Double lanes
    let shift = Float8(repeating: m)
    var acc = SIMD8<Double>()
    k = 0
    let out = storing.map { UnsafeMutableRawPointer($0) }
    while k + 8 <= n {
        let e = expVector(raw.loadUnaligned(fromByteOffset: k * 4, as: Float8.self) - shift)
        out?.storeBytes(of: e, toByteOffset: k * 4, as: Float8.self)
        acc += SIMD8<Double>(e)
        k += 8
    }
    var total = acc.sum()
    if k < n {
        var v = Float8()
        for l in 0..<(n - k) { v[l] = row[k + l] }
        let e = expVector(v - shift)
        for l in 0..<(n - k) {
            storing?[k + l] = e[l]
            total += Double(e[l])
        }
    }
    return (m, total)
}

/// `sum_c (x_c - max)` in Double.
@inline(__always)
private func rowShiftedSum<T: TensorFloat>(_ row: UnsafePointer<T>, _ n: Int, _ m: T) -> Double {
    var acc = 0.0
    for k in 0..<n { acc += Double(row[k] - m) }
    return acc
}
