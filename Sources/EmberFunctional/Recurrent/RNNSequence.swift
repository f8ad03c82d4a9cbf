import EmberAutograd
import EmberTensor
import EmberStorage

/// The fused Elman RNN layer: `h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)` with `act`
/// tanh or ReLU, over a whole sequence, and its backward through time. The output rows are the
/// hidden states, so backward needs no other tape.
enum RNNSequence {
    static func forward<T: RecurrentFloat>(
        _: T.Type, geometry g: RecurrentGeometry, direction d: Int, relu: Bool, x: UnsafePointer<T>,
        weights w: DirectionPointers<T>, h0: UnsafePointer<T>?, y: UnsafeMutablePointer<T>,
        hN: UnsafeMutablePointer<T>, preActivations: UnsafeMutablePointer<T>
    ) {
        let L = g.steps, N = g.batch, H = g.hiddenSize, LN = g.featureStride, ys = g.outputStride
        inputProjection(geometry: g, x: x, weights: w.inputWeights, into: preActivations)
        let bias = Block(w.inputBias, rowStride: 1, colStride: 0)
        for s in 0..<L {
            let t = g.time(step: s, direction: d)
            let pre = preActivations + t * N
            let previous = g.previousHidden(step: s, direction: d, y: y, h0: h0)
            let out = g.outputBlock(y, time: t, direction: d)
            forEachUnitRange(units: H, elements: H * N) { units in
                let u = units.lowerBound
                if let previous {
                    recurrentProduct(geometry: g, rows: units.count, weights: w.hiddenWeights + u * H, previous: previous,
                                     beta: 1, into: pre + u * LN, ldc: LN)
                }
                cellForward(rows: units.count, cols: N, pre: Block(pre + u * LN, rowStride: LN), bias: bias.offset(rows: u),
                            relu: relu, h: out.offset(rows: u))
            }
        }
        let tLast = g.time(step: L - 1, direction: d)
        copyRows(rows: N, width: H, y + tLast * N * ys + d * H, srcStride: ys, into: hN + d * N * H, dstStride: H)
    }

    /// One step for `rows` hidden units: `h = act(pre + bias)`. The native pass where there is one,
    /// else ``swiftCellForward``.
    @inline(__always)
    static func cellForward<T: RecurrentFloat>(rows: Int, cols: Int, pre: Block<T>, bias: Block<T>, relu: Bool, h: Block<T>) {
        if T.nativeRNNForward(rows: rows, cols: cols, pre: pre, bias: bias, relu: relu, h: h) { return }
        swiftCellForward(rows: rows, cols: cols, pre: pre, bias: bias, relu: relu, h: h)
    }

    /// ``cellForward`` in Swift, eight lanes at a time.
    @inline(__always)
    static func swiftCellForward<T: RecurrentFloat>(rows: Int, cols: Int, pre: Block<T>, bias: Block<T>, relu: Bool, h: Block<T>) {
        forEachLaneGroup(rows: rows, cols: cols) { l in
            let v: SIMD8<T> = pre.load(l) + bias.load(l)
            h.store(relu ? v.replacing(with: 0, where: v .< 0) : T.tanh8(v), l)
        }
    }

    static func backward<T: RecurrentFloat>(
        _: T.Type, geometry g: RecurrentGeometry, direction d: Int, relu: Bool, x: UnsafePointer<T>,
        weights w: DirectionPointers<T>, h0: UnsafePointer<T>?, y: UnsafePointer<T>,
        dY: UnsafePointer<T>?, dhN: UnsafePointer<T>?,
        dGates: UnsafeMutablePointer<T>, scratch dH: UnsafeMutablePointer<T>,
        grads: DirectionGradients<T>, dx: UnsafeMutablePointer<T>?, accumulateDx: Bool
    ) {
        let L = g.steps, N = g.batch, H = g.hiddenSize, LN = g.featureStride
        if let dhN { transposeInto(dH, rows: H, cols: N, dstStride: N, from: dhN + d * N * H, srcStride: H) }
        else { dH.update(repeating: 0, count: H * N) }
        let dHidden = Block(dH, rowStride: N)
        for s in stride(from: L - 1, through: 0, by: -1) {
            let t = g.time(step: s, direction: d)
            addOutputGradient(geometry: g, dY, time: t, direction: d, into: dH)
            let dGt = dGates + t * N
            let out = g.outputBlock(UnsafeMutablePointer(mutating: y), time: t, direction: d)
            forEachUnitRange(units: H, elements: H * N) { units in
                let u = units.lowerBound
                let o = out.offset(rows: u), dh = dHidden.offset(rows: u), dG = Block(dGt + u * LN, rowStride: LN)
                forEachLaneGroup(rows: units.count, cols: N) { l in
                    let h: SIMD8<T> = o.load(l), dhv: SIMD8<T> = dh.load(l)
                    dG.store(relu ? dhv.replacing(with: 0, where: h .<= 0) : dhv * (1 - h * h), l)
                }
            }
            if s > 0 || grads.initialHidden != nil {
                gemmInRowBlocks(m: H, n: N, k: H, a: w.hiddenWeightsT, rowStrideA: H, colStrideA: 1,
                                b: dGt, rowStrideB: LN, colStrideB: 1, beta: 0, c: dH, ldc: N)
            }
        }
        if let dh0 = grads.initialHidden { transposeInto(dh0, rows: N, cols: H, dstStride: H, from: dH, srcStride: N) }
        if let dW = grads.hiddenWeights {
            hiddenWeightGradient(geometry: g, direction: d, dGates: dGates, y: y, h0: h0, into: dW)
        }
        if let db = grads.inputBias { rowSums(dGates, rows: H, cols: g.columns, stride: LN, into: db) }
        inputProjectionBackward(geometry: g, dGates: dGates, x: x, weights: w.inputWeights,
                                dWeights: grads.inputWeights, dx: dx, accumulate: accumulateDx)
    }
}
