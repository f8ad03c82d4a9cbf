import EmberAutograd

/// Cross entropy of `[N, C]` logits (or unbatched `[C]`) against int64 class indices, without
/// class weights, as one op: each row is read once forward (its max, `log(sum(exp(x - max)))` and
/// the loss) and once backward (`softmax - target distribution`, scaled).
///
/// Loss of a kept row with target `t`, smoothing `e` and `lp_c = (x_c - max) - logSum`:
/// `(1 - e) (-lp_t) + (e / C) (-sum_c lp_c)`; ignored rows give 0 and no gradient.
/// Gradient: `s (softmax(x) - (1 - e) onehot(t) - e / C)`, with `s` the incoming gradient (over
/// the number of kept rows for `.mean`).
///
/// The forward formulas are those of ``Tensor/logSoftmax(axis:)`` followed by the NLL kernel, so
/// without smoothing the per-row losses are bit for bit those of the general path. Rows are split
/// across threads for large inputs (each chunk writes its own rows only).
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
    // Per row: max, log-sum-exp of (x - max), loss.
    let stats = Tensor(uninitializedShape: [rows, 3], dtype: T.dtype)
    do {
        let px = x.pointer(as: T.self), pt = targets.pointer(as: Int64.self), ps = stats.mutablePointer(as: T.self)
        Kernels.forEachChunk(count: rows, minimumPerThread: minimumRows(classes: c)) { start, count in
            for r in start..<(start + count) {
                let row = px + r * c, st = ps + 3 * r
                let (m, logSum) = rowLogSumExp(row, c)
                st[0] = m
                st[1] = logSum
                let t = pt[r]
                if t == ignore { st[2] = 0; continue }
                let nll = -((row[Int(t)] - m) - logSum)
                if smoothing {
                    // -sum_c ((x_c - m) - logSum)
                    let smooth = -(rowShiftedSum(row, c, m) - Double(c) * Double(logSum))
                    st[2] = keep * nll + perClass * T(smooth)
                } else {
                    st[2] = nll
                }
            }
        }
    }
    let ps = stats.pointer(as: T.self)
    let out: Tensor
    if reduction == .none {
        out = Tensor(uninitializedShape: layout.lossShape, dtype: T.dtype)
        let po = out.mutablePointer(as: T.self)
        for r in 0..<rows { po[r] = ps[3 * r + 2] }
    } else {
        var total = 0.0
        for r in 0..<rows { total += Double(ps[3 * r + 2]) }
        if reduction == .mean { total /= Double(kept) }
        out = Tensor([T(total)], shape: [])
    }
    return out.recorded("crossEntropy", input) { g in
        let gc = g.contiguousRaw
        let pg = gc.pointer(as: T.self)
        let grad = Tensor(uninitializedShape: x.shape, dtype: T.dtype)
        let px = x.pointer(as: T.self), pt = targets.pointer(as: Int64.self), ps = stats.pointer(as: T.self)
        let pd = grad.mutablePointer(as: T.self)
        let g0: T = reduction == .none ? 0 : (reduction == .mean ? pg[0] / T(kept) : pg[0])
        Kernels.forEachChunk(count: rows, minimumPerThread: minimumRows(classes: c)) { start, count in
            for r in start..<(start + count) {
                let row = px + r * c, dst = pd + r * c, st = ps + 3 * r
                let t = pt[r]
                if t == ignore {
                    dst.initialize(repeating: 0, count: c)
                    continue
                }
                let s = reduction == .none ? pg[r] : g0
                rowSoftmaxGradient(row, dst, c, max: st[0], logSum: st[1], scale: s, shift: perClass * s)
                dst[Int(t)] -= keep * s
            }
        }
        return [grad]
    }
}

/// `(max, log(sum(exp(x - max))))` of a contiguous row, as ``Tensor/logSoftmax(axis:)`` computes
/// them.
@inline(__always)
private func rowLogSumExp<T: TensorFloat>(_ row: UnsafePointer<T>, _ n: Int) -> (T, T) {
    let m = extremumValue(row, n, 1, isMax: true)
    if T.self == Float.self {
        let rf = UnsafeRawPointer(row).assumingMemoryBound(to: Float.self)
        let mv = Float8(repeating: unsafeBitCast(m, to: Float.self))
        let logSum = Float(Double.log(Kernels.sumFloat8(rf, stride: 1, count: n) { expVector($0 - mv) }))
        return (m, unsafeBitCast(logSum, to: T.self))
    }
    var sum: T = 0
    for k in 0..<n { sum += T.exp(row[k] - m) }
    return (m, T.log(sum))
}

/// `sum_c (x_c - max)` in Double.
@inline(__always)
private func rowShiftedSum<T: TensorFloat>(_ row: UnsafePointer<T>, _ n: Int, _ m: T) -> Double {
    if T.self == Float.self {
        let rf = UnsafeRawPointer(row).assumingMemoryBound(to: Float.self)
        let mv = Float8(repeating: unsafeBitCast(m, to: Float.self))
        return Kernels.sumFloat8(rf, stride: 1, count: n) { $0 - mv }
    }
    var acc = 0.0
    for k in 0..<n { acc += Double(row[k] - m) }
    return acc
}

/// `dst_c = exp((x_c - max) - logSum) * scale - shift` for a contiguous row.
@inline(__always)
private func rowSoftmaxGradient<T: TensorFloat>(
    _ row: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>, _ n: Int, max m: T, logSum: T, scale: T, shift: T
) {
    if T.self == Float.self {
        let rf = UnsafeRawPointer(row).assumingMemoryBound(to: Float.self)
        let df = UnsafeMutableRawPointer(dst).assumingMemoryBound(to: Float.self)
        let mv = Float8(repeating: unsafeBitCast(m, to: Float.self))
        let lv = Float8(repeating: unsafeBitCast(logSum, to: Float.self))
        let sv = Float8(repeating: unsafeBitCast(scale, to: Float.self))
        let hv = Float8(repeating: unsafeBitCast(shift, to: Float.self))
        Kernels.applyFloat8(rf, stride: 1, count: n, into: df) { expVector(($0 - mv) - lv) * sv - hv }
        return
    }
    for k in 0..<n { dst[k] = T.exp((row[k] - m) - logSum) * scale - shift }
}
