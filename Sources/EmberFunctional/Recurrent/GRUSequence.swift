import EmberAutograd
import EmberTensor
import EmberStorage

/// The fused GRU layer: forward over a whole sequence and its backward through time (layouts in
/// ``RecurrentGeometry``).
///
/// Per step, with gate rows `[r | z | n]` (PyTorch's order) and `b_hn` inside the reset product:
///
///     r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
///     z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
///     n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
///     h' = (1 - z) * n + z * h      (computed as (h - n) * z + n, as PyTorch)
enum GRUSequence {
    /// What the forward pass keeps for backward, step by step (`[L][rows][N]`).
    struct Tape {
        /// Activated gates `[r | z | n]` by step, `[L, 3H, N]` (not kept when not saving).
        var activations: Tensor?
        /// `W_hn h + b_hn` by step, `[L, H, N]`.
        var hiddenNew: Tensor
    }

    static func forward<T: RecurrentFloat>(
        _: T.Type, geometry g: RecurrentGeometry, direction d: Int, x: UnsafePointer<T>, weights w: DirectionPointers<T>,
        h0: UnsafePointer<T>?, y: UnsafeMutablePointer<T>, hN: UnsafeMutablePointer<T>, saving: Bool, buffers: BufferSource
    ) -> Tape {
        let L = g.steps, N = g.batch, H = g.hiddenSize, G = g.gateWidth, LN = g.featureStride, ys = g.outputStride
        let tape = Tape(
            activations: saving ? buffers(.activations, direction: d, [L, G, N], dtype: T.dtype) : nil,
            hiddenNew: buffers(.hiddenNew, direction: d, [saving ? L : 1, H, N], dtype: T.dtype))
        let preActivations = buffers(.gates, direction: d, [G, LN], dtype: T.dtype)
        let hiddenGates = buffers(.hiddenGates, direction: d, [G, N], dtype: T.dtype)
        withExtendedLifetime((tape, preActivations, hiddenGates)) {
            let gates = preActivations.mutablePointer(as: T.self)
            let activations = tape.activations?.mutablePointer(as: T.self)
            let hiddenNew = tape.hiddenNew.mutablePointer(as: T.self)
            let gh = hiddenGates.mutablePointer(as: T.self)
            inputProjection(geometry: g, x: x, weights: w.inputWeights, into: gates)
            let inputBias = Block(w.inputBias, rowStride: 1, colStride: 0)
            let hiddenBias = Block(w.hiddenBias, rowStride: 1, colStride: 0)
            for s in 0..<L {
                let t = g.time(step: s, direction: d)
                let previous = g.previousHidden(step: s, direction: d, y: y, h0: h0)
                let out = g.outputBlock(y, time: t, direction: d)
                // Each range of hidden units: its rows of the three hidden-side gate blocks, then its cells.
                forEachUnitRange(units: H, elements: H * N) { units in
                    let u = units.lowerBound
                    if let previous {
                        for q in 0..<3 {
                            recurrentProduct(geometry: g, rows: units.count, weights: w.hiddenWeights + (q * H + u) * H,
                                             previous: previous, beta: 0, into: gh + (q * H + u) * N, ldc: N)
                        }
                    }
                    cellForward(rows: units.count, gateStride: H, cols: N, gates: Block(gates + t * N + u * LN, rowStride: LN),
                                inputBias: inputBias.offset(rows: u),
                                hiddenGates: previous == nil ? nil : Block(gh + u * N, rowStride: N), hiddenBias: hiddenBias.offset(rows: u),
                                hPrev: previous.offset(rows: u),
                                activations: activations.map { Block($0 + s * G * N + u * N, rowStride: N) },
                                hiddenNew: Block(hiddenNew + (saving ? s : 0) * H * N + u * N, rowStride: N),
                                h: out.offset(rows: u))
                }
            }
            let tLast = g.time(step: L - 1, direction: d)
            copyRows(rows: N, width: H, y + tLast * N * ys + d * H, srcStride: ys, into: hN + d * N * H, dstStride: H)
        }
        return tape
    }

    /// One step for `rows` hidden units (gate blocks `H` rows apart). `hiddenGates`/`hPrev` are `nil`
    /// for a zero previous state. The native pass where there is one, else ``swiftCellForward``.
    @inline(__always)
    static func cellForward<T: RecurrentFloat>(
        rows: Int, gateStride H: Int, cols N: Int, gates: Block<T>, inputBias: Block<T>, hiddenGates: Block<T>?,
        hiddenBias: Block<T>, hPrev: Block<T>?, activations: Block<T>?, hiddenNew: Block<T>, h: Block<T>
    ) {
        if T.nativeGRUForward(rows: rows, gateStride: H, cols: N, gates: gates, inputBias: inputBias, hiddenGates: hiddenGates,
                              hiddenBias: hiddenBias, hPrev: hPrev, activations: activations, hiddenNew: hiddenNew, h: h) { return }
        swiftCellForward(rows: rows, gateStride: H, cols: N, gates: gates, inputBias: inputBias, hiddenGates: hiddenGates,
                         hiddenBias: hiddenBias, hPrev: hPrev, activations: activations, hiddenNew: hiddenNew, h: h)
    }

    /// ``cellForward`` in Swift, eight lanes at a time.
    @inline(__always)
    static func swiftCellForward<T: RecurrentFloat>(
        rows: Int, gateStride H: Int, cols N: Int, gates: Block<T>, inputBias: Block<T>, hiddenGates: Block<T>?,
        hiddenBias: Block<T>, hPrev: Block<T>?, activations: Block<T>?, hiddenNew: Block<T>, h: Block<T>
    ) {
        forEachLaneGroup(rows: rows, cols: N) { l in
            let xr: SIMD8<T> = gates.load(l) + inputBias.load(l)
            let xz: SIMD8<T> = gates.load(l, rowOffset: H) + inputBias.load(l, rowOffset: H)
            let xn: SIMD8<T> = gates.load(l, rowOffset: 2 * H) + inputBias.load(l, rowOffset: 2 * H)
            let sr: SIMD8<T> = hiddenGates.load(l) + hiddenBias.load(l)
            let sz: SIMD8<T> = hiddenGates.load(l, rowOffset: H) + hiddenBias.load(l, rowOffset: H)
            let hn: SIMD8<T> = hiddenGates.load(l, rowOffset: 2 * H) + hiddenBias.load(l, rowOffset: 2 * H)
            let r = T.sigmoid8(xr + sr)
            let z = T.sigmoid8(xz + sz)
            let newGate = T.tanh8(xn + r * hn)
            let previous: SIMD8<T> = hPrev.load(l)
            if let a = activations {
                a.store(r, l)
                a.store(z, l, rowOffset: H)
                a.store(newGate, l, rowOffset: 2 * H)
            }
            hiddenNew.store(hn, l)
            h.store((previous - newGate) * z + newGate, l)
        }
    }

    static func backward<T: RecurrentFloat>(
        _: T.Type, geometry g: RecurrentGeometry, direction d: Int, tape: Tape, x: UnsafePointer<T>,
        weights w: DirectionPointers<T>, h0: UnsafePointer<T>?, y: UnsafePointer<T>,
        dY: UnsafePointer<T>?, dhN: UnsafePointer<T>?,
        dGates: UnsafeMutablePointer<T>, scratch: UnsafeMutablePointer<T>,
        grads: DirectionGradients<T>, dx: UnsafeMutablePointer<T>?, accumulateDx: Bool
    ) {
        let L = g.steps, N = g.batch, H = g.hiddenSize, G = g.gateWidth, LN = g.featureStride
        // dGates holds the input-side gate gradients; scratch holds the hidden-side ones
        // ([3H, L N], equal except the n rows, which carry the reset factor), then dH [H, N].
        let dHiddenGates = scratch, dH = scratch + G * LN
        let yMutable = UnsafeMutablePointer(mutating: y)
        withExtendedLifetime(tape) {
            let activations = tape.activations!.mutablePointer(as: T.self)
            let hiddenNew = tape.hiddenNew.mutablePointer(as: T.self)
            if let dhN { transposeInto(dH, rows: H, cols: N, dstStride: N, from: dhN + d * N * H, srcStride: H) }
            else { dH.update(repeating: 0, count: H * N) }
            for s in stride(from: L - 1, through: 0, by: -1) {
                let t = g.time(step: s, direction: d)
                addOutputGradient(geometry: g, dY, time: t, direction: d, into: dH)
                let dGh = dHiddenGates + t * N
                let previous = g.previousHidden(step: s, direction: d, y: yMutable, h0: h0)
                forEachUnitRange(units: H, elements: H * N) { units in
                    let u = units.lowerBound
                    cellBackward(rows: units.count, gateStride: H, cols: N, gates: Block(activations + s * G * N + u * N, rowStride: N),
                                 hiddenNew: Block(hiddenNew + s * H * N + u * N, rowStride: N), hPrev: previous.offset(rows: u),
                                 dH: Block(dH + u * N, rowStride: N), dInputGates: Block(dGates + t * N + u * LN, rowStride: LN),
                                 dHiddenGates: Block(dGh + u * LN, rowStride: LN))
                }
                if s > 0 || grads.initialHidden != nil {
                    gemmInRowBlocks(m: H, n: N, k: G, a: w.hiddenWeightsT, rowStrideA: G, colStrideA: 1,
                                    b: dGh, rowStrideB: LN, colStrideB: 1, beta: 1, c: dH, ldc: N)
                }
            }
            if let dh0 = grads.initialHidden { transposeInto(dh0, rows: N, cols: H, dstStride: H, from: dH, srcStride: N) }
            if let dW = grads.hiddenWeights {
                hiddenWeightGradient(geometry: g, direction: d, dGates: dHiddenGates, y: y, h0: h0, into: dW)
            }
            if let db = grads.inputBias { rowSums(dGates, rows: G, cols: g.columns, stride: LN, into: db) }
            if let db = grads.hiddenBias { rowSums(dHiddenGates, rows: G, cols: g.columns, stride: LN, into: db) }
            inputProjectionBackward(geometry: g, dGates: dGates, x: x, weights: w.inputWeights,
                                    dWeights: grads.inputWeights, dx: dx, accumulate: accumulateDx)
        }
    }

    /// One step backward. On return `dH` holds `dH * z` (the direct path to the previous state);
    /// the caller adds `W_hh^T dGh`.
    @inline(__always)
    static func cellBackward<T: RecurrentFloat>(
        rows: Int, gateStride H: Int, cols N: Int, gates: Block<T>, hiddenNew: Block<T>, hPrev: Block<T>?, dH: Block<T>,
        dInputGates: Block<T>, dHiddenGates: Block<T>
    ) {
        forEachLaneGroup(rows: rows, cols: N) { l in
            let r: SIMD8<T> = gates.load(l), z: SIMD8<T> = gates.load(l, rowOffset: H)
            let newGate: SIMD8<T> = gates.load(l, rowOffset: 2 * H)
            let dh: SIMD8<T> = dH.load(l), previous: SIMD8<T> = hPrev.load(l), hn: SIMD8<T> = hiddenNew.load(l)
            let dNewPre = dh * (1 - z) * (1 - newGate * newGate)
            let dzPre = dh * (previous - newGate) * z * (1 - z)
            let drPre = dNewPre * hn * r * (1 - r)
            dInputGates.store(drPre, l)
            dInputGates.store(dzPre, l, rowOffset: H)
            dInputGates.store(dNewPre, l, rowOffset: 2 * H)
            dHiddenGates.store(drPre, l)
            dHiddenGates.store(dzPre, l, rowOffset: H)
            dHiddenGates.store(dNewPre * r, l, rowOffset: 2 * H)
            dH.store(dh * z, l)
        }
    }

    static func scratchCount(_ g: RecurrentGeometry) -> Int { g.featureStride * g.gateWidth + g.batch * g.hiddenSize }
}
