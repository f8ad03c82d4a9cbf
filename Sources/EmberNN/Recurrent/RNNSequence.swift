import EmberAutograd

/// The fused Elman RNN layer: `h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)` with `act`
/// tanh or ReLU, over a whole sequence, and its backward through time. The output rows are the
/// hidden states, so backward needs no other tape.
enum RNNSequence {
    static func forward<T: RecurrentFloat>(
        _: T.Type, geometry g: RecurrentGeometry, direction d: Int, relu: Bool, x: UnsafePointer<T>,
        weights w: DirectionPointers<T>, h0: UnsafePointer<T>?, y: UnsafeMutablePointer<T>,
        hN: UnsafeMutablePointer<T>, preActivations: UnsafeMutablePointer<T>
    ) {
        let L = g.steps, N = g.batch, F = g.inputSize, H = g.hiddenSize, ys = g.outputStride
        T.gemm(m: L * N, n: H, k: F, a: x, rowStrideA: F, colStrideA: 1,
               b: w.inputWeightsT, rowStrideB: H, colStrideB: 1, beta: 0, c: preActivations, ldc: H)
        for s in 0..<L {
            let t = g.time(step: s, direction: d)
            let pre = preActivations + t * N * H
            let (hPrev, hPrevStride) = previousHidden(step: s, direction: d, geometry: g, y: y, h0: h0)
            if let hPrev {
                T.gemm(m: N, n: H, k: H, a: hPrev, rowStrideA: hPrevStride, colStrideA: 1,
                       b: w.hiddenWeightsT, rowStrideB: H, colStrideB: 1, beta: 1, c: pre, ldc: H)
            }
            let out = y + t * N * ys + d * H
            for r in 0..<N {
                let p = pre + r * H, o = out + r * ys
                var j = 0
                while j < H {
                    let n = Swift.min(8, H - j)
                    let a = load8(p + j, n) + load8(w.inputBias + j, n)
                    store8(relu ? a.replacing(with: 0, where: a .< 0) : T.tanh8(a), o + j, n)
                    j += 8
                }
            }
        }
        let tLast = g.time(step: L - 1, direction: d)
        copyRows(rows: N, width: H, y + tLast * N * ys + d * H, srcStride: ys, into: hN + d * N * H, dstStride: H)
    }

    static func backward<T: RecurrentFloat>(
        _: T.Type, geometry g: RecurrentGeometry, direction d: Int, relu: Bool, x: UnsafePointer<T>,
        weights w: DirectionPointers<T>, h0: UnsafePointer<T>?, y: UnsafePointer<T>,
        dY: UnsafePointer<T>?, dhN: UnsafePointer<T>?,
        dGates: UnsafeMutablePointer<T>, scratch dH: UnsafeMutablePointer<T>,
        grads: DirectionGradients<T>, dx: UnsafeMutablePointer<T>?, accumulateDx: Bool
    ) {
        let L = g.steps, N = g.batch, H = g.hiddenSize, ys = g.outputStride
        if let dhN { dH.update(from: dhN + d * N * H, count: N * H) } else { dH.update(repeating: 0, count: N * H) }
        for s in stride(from: L - 1, through: 0, by: -1) {
            let t = g.time(step: s, direction: d)
            if let dY { addRows(rows: N, width: H, dY + t * N * ys + d * H, srcStride: ys, into: dH, dstStride: H) }
            let dGt = dGates + t * N * H, out = y + t * N * ys + d * H
            for r in 0..<N {
                let dh = dH + r * H, o = out + r * ys, dg = dGt + r * H
                var j = 0
                while j < H {
                    let n = Swift.min(8, H - j)
                    let h = load8(o + j, n), dhv = load8(dh + j, n)
                    store8(relu ? dhv.replacing(with: 0, where: h .<= 0) : dhv * (1 - h * h), dg + j, n)
                    j += 8
                }
            }
            if s > 0 || grads.initialHidden != nil {
                T.gemm(m: N, n: H, k: H, a: dGt, rowStrideA: H, colStrideA: 1,
                       b: w.hiddenWeights, rowStrideB: H, colStrideB: 1, beta: 0, c: dH, ldc: H)
            }
        }
        if let dh0 = grads.initialHidden { dh0.update(from: dH, count: N * H) }
        if let dW = grads.hiddenWeights {
            accumulateHiddenWeightGradient(geometry: g, direction: d, dGates: dGates, y: y, h0: h0, into: dW)
        }
        if let db = grads.inputBias { columnSums(dGates, rows: L * N, width: H, into: db) }
        inputProjectionBackward(geometry: g, dGates: dGates, x: x, weights: w.inputWeights,
                                dWeights: grads.inputWeights, dx: dx, accumulate: accumulateDx)
    }
}
