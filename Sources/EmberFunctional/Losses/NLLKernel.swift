import EmberAutograd
import EmberTensor
import EmberStorage

/// Negative log likelihood over log-probabilities laid out `[N, C, S]`, with class weights,
/// ignored targets and label smoothing, as one differentiable op (gradient for `logProbs` only).
///
/// For a kept position `i` with target `t`, class weights `w` (all 1 when absent) and smoothing
/// `e` over `C` classes:
/// `l_i = (1 - e) (-w_t lp[i, t]) + (e / C) (-sum_c w_c lp[i, c])`; ignored positions give 0.
/// `.mean` divides the sum by `D = sum of w_t over kept positions` (the number of kept positions
/// without weights), for both terms, as PyTorch does.
///
/// Gradient of `lp[i, c]`: `-s_i [(1 - e) w_t [c == t] + (e / C) w_c]` for kept positions, with
/// `s_i` the incoming gradient (over `D` for `.mean`).
///
/// `targets` are contiguous int64, already checked to be in range or ignored.
func negativeLogLikelihood(
    _ logProbs: Tensor, targets: Tensor, weight: Tensor?, layout: ClassIndexLayout, ignoreIndex: Int,
    labelSmoothing: Double, reduction: Reduction, name: String
) -> Tensor {
    if logProbs.dtype == .float32 {
        return nllTyped(Float.self, logProbs, targets, weight, layout, ignoreIndex, labelSmoothing, reduction, name)
    }
    return nllTyped(Double.self, logProbs, targets, weight, layout, ignoreIndex, labelSmoothing, reduction, name)
}

private func nllTyped<T: TensorFloat>(
    _: T.Type, _ logProbs: Tensor, _ targets: Tensor, _ weight: Tensor?, _ layout: ClassIndexLayout, _ ignoreIndex: Int,
    _ labelSmoothing: Double, _ reduction: Reduction, _ name: String
) -> Tensor {
    let lp = logProbs.contiguousRaw
    let w = weight?.contiguousRaw
    let plp = lp.pointer(as: T.self), pt = targets.pointer(as: Int64.self), pw = w?.pointer(as: T.self)
    let n = layout.batch, c = layout.classes, s = layout.spatial
    let ignore = Int64(ignoreIndex)
    let keep = 1 - T(labelSmoothing), perClass = T(labelSmoothing) / T(c)
    let smoothing = labelSmoothing > 0

    /// `-sum_c w_c lp[b, c, j]`, accumulated in Double.
    @inline(__always) func smoothTerm(_ base: Int) -> Double {
        var acc = 0.0
        for k in 0..<c {
            let v = plp[base + k * s]
            acc += Double(pw.map { v * $0[k] } ?? v)
        }
        return -acc
    }

    let out: Tensor
    var denominator = 0.0
    if reduction == .none {
        out = Tensor(uninitializedShape: layout.lossShape, dtype: T.dtype)
        let po = out.mutablePointer(as: T.self)
        for b in 0..<n {
            for j in 0..<s {
                let i = b * s + j, t = pt[i]
                if t == ignore { po[i] = 0; continue }
                let base = b * c * s + j
                let wt = pw?[Int(t)] ?? 1
                let nll = -wt * plp[base + Int(t) * s]
                po[i] = smoothing ? keep * nll + perClass * T(smoothTerm(base)) : nll
            }
        }
    } else {
        var nllSum = 0.0, smoothSum = 0.0
        for b in 0..<n {
            for j in 0..<s {
                let i = b * s + j, t = pt[i]
                if t == ignore { continue }
                let base = b * c * s + j
                let wt = pw?[Int(t)] ?? 1
                nllSum += Double(-wt * plp[base + Int(t) * s])
                denominator += Double(wt)
                if smoothing { smoothSum += smoothTerm(base) }
            }
        }
        var total = smoothing ? Double(keep) * nllSum + Double(perClass) * smoothSum : nllSum
        if reduction == .mean { total /= denominator }
        out = Tensor([T(total)], shape: [])
    }
    let finalDenominator = denominator
    // The loss is linear in `logProbs`: its backward is a fixed linear map of `g`, whose
    // transpose (for gradients of gradients) is the loss itself applied to the incoming tensor.
    return out.recorded(name, logProbs, twice: true) { g in
        let raw = { (g: Tensor) in
            nllGradient(T.self, g, lp.shape, targets, w, layout, ignoreIndex, labelSmoothing, reduction, finalDenominator)
        }
        guard creatingGraph else { return [raw(g)] }
        return [g.linearMap("\(name)Backward", raw, adjoint: { gg in
            negativeLogLikelihood(gg, targets: targets, weight: weight, layout: layout, ignoreIndex: ignoreIndex,
                                  labelSmoothing: labelSmoothing, reduction: reduction, name: name)
        })]
    }
}

/// The gradient of ``negativeLogLikelihood`` with respect to `logProbs` (shape `shape`) for the
/// incoming gradient `g`: `-s_i [(1 - e) w_t [c == t] + (e / C) w_c]` at kept positions.
private func nllGradient<T: TensorFloat>(
    _: T.Type, _ g: Tensor, _ shape: Shape, _ targets: Tensor, _ w: Tensor?, _ layout: ClassIndexLayout,
    _ ignoreIndex: Int, _ labelSmoothing: Double, _ reduction: Reduction, _ denominator: Double
) -> Tensor {
    do {
        let n = layout.batch, c = layout.classes, s = layout.spatial
        let ignore = Int64(ignoreIndex)
        let keep = 1 - T(labelSmoothing), perClass = T(labelSmoothing) / T(c)
        let smoothing = labelSmoothing > 0
        // Pointers are taken again from the captured tensors, which keep the storage alive.
        let pt = targets.pointer(as: Int64.self), pw = w?.pointer(as: T.self)
        let gc = g.contiguousRaw
        let pg = gc.pointer(as: T.self)
        let grad = Tensor(zeroedShape: shape, dtype: T.dtype)
        let pd = grad.mutablePointer(as: T.self)
        let g0: T = reduction == .none ? 0 : (reduction == .mean ? pg[0] / T(denominator) : pg[0])
        for b in 0..<n {
            for j in 0..<s {
                let i = b * s + j, t = pt[i]
                if t == ignore { continue }
                let base = b * c * s + j
                let si = reduction == .none ? pg[i] : g0
                let wt = pw?[Int(t)] ?? 1
                pd[base + Int(t) * s] = -keep * wt * si
                if smoothing {
                    for k in 0..<c { pd[base + k * s] -= perClass * (pw?[k] ?? 1) * si }
                }
            }
        }
        return grad
    }
}
