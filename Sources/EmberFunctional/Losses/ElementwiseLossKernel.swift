import EmberAutograd
import EmberTensor
import EmberStorage

/// One element of a loss that compares `input` and `target` element by element: its value and
/// its partial derivatives. `p` is BCE-with-logits' positive-class weight (`1` for the others).
///
/// The formulas are PyTorch's CPU ones, in the element type, so kinks, clamps and large magnitudes
/// give PyTorch's values.
protocol ElementwiseLoss {
    func value<T: TensorFloat>(_ x: T, _ y: T, _ p: T) -> T
    /// `d value / d x`.
    func inputDerivative<T: TensorFloat>(_ x: T, _ y: T, _ p: T) -> T
    /// `d value / d y`.
    func targetDerivative<T: TensorFloat>(_ x: T, _ y: T, _ p: T) -> T
    /// Both derivatives as recorded ops of whole tensors, for a backward with `createGraph`
    /// (gradients of gradients); `nil` where the loss does not support it.
    func recordedDerivatives(_ x: Tensor, _ y: Tensor) -> (input: Tensor, target: Tensor)?
    /// The same with BCE-with-logits' positive-class weight (`nil` without one).
    func recordedDerivatives(_ x: Tensor, _ y: Tensor, posWeight: Tensor?) -> (input: Tensor, target: Tensor)?
    /// Whether ``recordedDerivatives(_:_:)`` gives them.
    var supportsDoubleBackward: Bool { get }
}

extension ElementwiseLoss {
    func recordedDerivatives(_ x: Tensor, _ y: Tensor) -> (input: Tensor, target: Tensor)? { nil }
    /// ``recordedDerivatives(_:_:)`` with BCE-with-logits' positive-class weight (`nil` without).
    func recordedDerivatives(_ x: Tensor, _ y: Tensor, posWeight: Tensor?) -> (input: Tensor, target: Tensor)? {
        recordedDerivatives(x, y)
    }
    var supportsDoubleBackward: Bool { false }
}

/// `reduce(weight * loss(input, target))` as one differentiable op with a fused backward.
///
/// `input` and `target` must already have the same float dtype and shape; `weight` and
/// `posWeight` (constants, no gradient) are already of that dtype and broadcast to the shape.
/// Forward: per-element values in the element type, reduced sums accumulated in `Double`.
/// Backward: `g * scale * weight * dloss`, for whichever of input and target needs it.
func elementwiseLoss<L: ElementwiseLoss>(
    _ loss: L, name: String, _ input: Tensor, _ target: Tensor, weight: Tensor? = nil, posWeight: Tensor? = nil,
    reduction: Reduction
) -> Tensor {
    switch input.dtype {
    case .float32:
        return elementwiseLossTyped(loss, Float.self, name: name, input, target, weight, posWeight, reduction)
    case .float64:
        return elementwiseLossTyped(loss, Double.self, name: name, input, target, weight, posWeight, reduction)
    default:
        preconditionFailure("\(name): internal error, expected a float input, got \(input.dtype)")
    }
}

private func elementwiseLossTyped<L: ElementwiseLoss, T: TensorFloat>(
    _ loss: L, _: T.Type, name: String, _ input: Tensor, _ target: Tensor, _ weight: Tensor?, _ posWeight: Tensor?,
    _ reduction: Reduction
) -> Tensor {
    let shape = input.shape, n = input.count
    let x = input.contiguousRaw, y = target.contiguousRaw
    let w = weight?.contiguousRaw, p = posWeight?.contiguousRaw
    let px = x.pointer(as: T.self), py = y.pointer(as: T.self)
    let pw = w?.pointer(as: T.self), pp = p?.pointer(as: T.self)
    // A recorded mean or sum without weights also writes the input's gradient for the usual seed
    // (`loss.backward()`'s 1) as it reads each element: the backward then makes no pass over input
    // and target. `g0 * derivative` with `g0 = 1 * factor` is `factor * derivative`, the same bits.
    var seeded = reduction != .none && pw == nil && pp == nil && shouldRecord(input)
        ? Tensor(uninitializedShape: shape, dtype: T.dtype) : nil
    let out: Tensor
    if reduction == .none {
        out = Tensor(uninitializedShape: shape, dtype: T.dtype)
        let po = out.mutablePointer(as: T.self)
        for i in 0..<n {
            let v = loss.value(px[i], py[i], pp?[i] ?? 1)
            po[i] = pw.map { v * $0[i] } ?? v
        }
    } else {
        // Eight Double lanes (lane l adds the elements i = l mod 8 in order), added pairwise at
        // the end: one chain of dependent additions ran at one element per adder latency.
        var lanes = SIMD8<Double>(repeating: 0)
        var i = 0
        let pr = seeded?.mutablePointer(as: T.self), factor = T(reduction.scale(count: n, shape: shape))
        if pw == nil && pp == nil {
            while i + 8 <= n {
                var v = SIMD8<Double>()
                for l in 0..<8 { v[l] = Double(loss.value(px[i + l], py[i + l], 1)) }
                if let pr { for l in 0..<8 { pr[i + l] = factor * loss.inputDerivative(px[i + l], py[i + l], 1) } }
                lanes += v
                i += 8
            }
        }
        var acc = lanes.sum()
        while i < n {
            let v = loss.value(px[i], py[i], pp?[i] ?? 1)
            acc += Double(pw.map { v * $0[i] } ?? v)
            pr?[i] = factor * loss.inputDerivative(px[i], py[i], 1)  // `seeded` exists only without weights
            i += 1
        }
        out = Tensor([T(acc * reduction.scale(count: n, shape: shape))], shape: [])
    }
    let twice = loss.supportsDoubleBackward
    return out.recorded(name, input, target, twice: twice) { g in
        if creatingGraph, let d = loss.recordedDerivatives(input, target, posWeight: p) {
            var s = (reduction == .none ? g : g.broadcast(to: shape)) * reduction.scale(count: n, shape: shape)
            if let w { s = s * w }
            return [input.tracksGrad ? s * d.input : nil, target.tracksGrad ? s * d.target : nil]
        }
        // Pointers are taken again from the captured tensors, which keep the storage alive.
        let px = x.pointer(as: T.self), py = y.pointer(as: T.self)
        let pw = w?.pointer(as: T.self), pp = p?.pointer(as: T.self)
        let factor = T(reduction.scale(count: n, shape: shape))
        let gc = g.contiguousRaw
        let pg = gc.pointer(as: T.self)
        let perElement = reduction == .none
        let g0 = perElement ? 0 : pg[0] * factor
        func gradient(ofInput: Bool) -> Tensor {
            if ofInput, !perElement, pg[0] == 1, let ready = seeded {
                seeded = nil  // handed out once; a second backward (retainGraph) computes it again
                return ready
            }
            let r = Tensor(uninitializedShape: shape, dtype: T.dtype)
            let pr = r.mutablePointer(as: T.self)
            @inline(__always) func d(_ i: Int, _ p: T) -> T {
                ofInput ? loss.inputDerivative(px[i], py[i], p) : loss.targetDerivative(px[i], py[i], p)
            }
            if !perElement && pw == nil && pp == nil {
                // The common case (a mean or sum without weights) as a loop the compiler vectorizes.
                if ofInput {
                    for i in 0..<n { pr[i] = g0 * loss.inputDerivative(px[i], py[i], 1) }
                } else {
                    for i in 0..<n { pr[i] = g0 * loss.targetDerivative(px[i], py[i], 1) }
                }
                return r
            }
            for i in 0..<n {
                let s = perElement ? pg[i] : g0
                let ws = pw.map { s * $0[i] } ?? s
                pr[i] = ws * d(i, pp?[i] ?? 1)
            }
            return r
        }
        return [input.tracksGrad ? gradient(ofInput: true) : nil, target.tracksGrad ? gradient(ofInput: false) : nil]
    }
}
