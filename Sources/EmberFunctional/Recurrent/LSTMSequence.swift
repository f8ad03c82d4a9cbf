import EmberAutograd
import EmberTensor
import EmberStorage

/// The fused LSTM layer: forward over a whole sequence and its backward through time, on raw
/// buffers (layouts in ``RecurrentGeometry``).
///
/// Per step, with the gate rows `[i | f | g | o]` (PyTorch's order):
///
///     a = W_ih x_t + W_hh h_{t-1} + b_ih + b_hh
///     i = sigmoid(a_i), f = sigmoid(a_f), g = tanh(a_g), o = sigmoid(a_o)
///     c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)   (then h_t = W_hr h_t with a projection)
///
/// `W_ih x` runs for all steps in one matrix multiply; each step adds `W_hh h` in place with one
/// more and finishes the gates in one vectorised pass.
enum LSTMSequence {
    /// What the forward pass keeps for backward, for one direction. Everything is stored step by
    /// step (`[L][rows][N]`, each step's block contiguous), so backward streams through it.
    struct Tape {
        /// Activated gates `[i | f | g | o]` by step, `[L, 4H, N]` (not kept when not saving).
        var activations: Tensor?
        /// Cell states by slot, `[L + 1, H, N]`, slot 0 = `c0` (2 slots when not saving).
        var cells: Tensor
        /// `tanh(c)` by step, `[L, H, N]`.
        var tanhCells: Tensor
        /// Unprojected `o * tanh(c)`, feature-major `[H, L N]` by step (projection only; the
        /// weight gradient multiplies it over all steps at once).
        var rawHidden: Tensor?
    }

    static func forward<T: RecurrentFloat>(
        _: T.Type, geometry g: RecurrentGeometry, direction d: Int, x: UnsafePointer<T>, weights w: DirectionPointers<T>,
        h0: UnsafePointer<T>?, c0: UnsafePointer<T>?, y: UnsafeMutablePointer<T>,
        hN: UnsafeMutablePointer<T>, cN: UnsafeMutablePointer<T>, saving: Bool, buffers: BufferSource
    ) -> Tape {
        let L = g.steps, N = g.batch, H = g.hiddenSize, P = g.outputSize, G = g.gateWidth, LN = g.featureStride
        let ys = g.outputStride
        let rawColumns = saving ? LN : N
        let tape = Tape(
            activations: saving ? buffers(.activations, direction: d, [L, G, N], dtype: T.dtype) : nil,
            cells: buffers(.cells, direction: d, [saving ? L + 1 : 2, H, N], dtype: T.dtype),
            tanhCells: buffers(.tanhCells, direction: d, [saving ? L : 1, H, N], dtype: T.dtype),
            rawHidden: w.projectionT == nil ? nil : buffers(.rawHidden, direction: d, [H, rawColumns], dtype: T.dtype))
        let preActivations = buffers(.gates, direction: d, [G, LN], dtype: T.dtype)
        withExtendedLifetime((tape, preActivations)) {
            let gates = preActivations.mutablePointer(as: T.self)
            let activations = tape.activations?.mutablePointer(as: T.self)
            let cells = tape.cells.mutablePointer(as: T.self)
            let tanhCells = tape.tanhCells.mutablePointer(as: T.self)
            let raw = tape.rawHidden?.mutablePointer(as: T.self)
            inputProjection(geometry: g, x: x, weights: w.inputWeights, into: gates)
            if let c0 {
                transposeInto(cells, rows: H, cols: N, dstStride: N, from: c0, srcStride: H)
            } else {
                cells.update(repeating: 0, count: H * N)
            }
            let bias = Block(w.inputBias, rowStride: 1, colStride: 0)
            for s in 0..<L {
                let t = g.time(step: s, direction: d)
                let gt = gates + t * N
                let previous = g.previousHidden(step: s, direction: d, y: y, h0: h0)
                let (prevSlot, slot) = saving ? (s, s + 1) : (s & 1, (s + 1) & 1)
                let kept = saving ? s : 0  // index of this step's saved block
                let out = g.outputBlock(y, time: t, direction: d)
                let hidden = raw.map { Block($0 + kept * N, rowStride: rawColumns) } ?? out
                // Each range of hidden units: its rows of the four gate blocks, then its cells.
                forEachUnitRange(units: H, elements: H * N) { units in
                    let u = units.lowerBound
                    if let previous {
                        for q in 0..<4 {
                            recurrentProduct(geometry: g, rows: units.count, weights: w.hiddenWeights + (q * H + u) * P,
                                             previous: previous, beta: 1, into: gt + (q * H + u) * LN, ldc: LN)
                        }
                    }
                    cellForward(
                        rows: units.count, gateStride: H, cols: N, gates: Block(gt + u * LN, rowStride: LN),
                        bias: bias.offset(rows: u), activations: activations.map { Block($0 + s * G * N + u * N, rowStride: N) },
                        cPrev: Block(cells + prevSlot * H * N + u * N, rowStride: N), cOut: Block(cells + slot * H * N + u * N, rowStride: N),
                        tanhC: Block(tanhCells + kept * H * N + u * N, rowStride: N), h: hidden.offset(rows: u))
                }
                if let projectionT = w.projectionT, let raw {
                    // h_t [N, P] = raw^T [N, H] W_hr^T [H, P], straight into the output rows.
                    T.gemm(m: N, n: P, k: H, a: raw + kept * N, rowStrideA: 1, colStrideA: rawColumns,
                           b: projectionT, rowStrideB: P, colStrideB: 1, beta: 0, c: y + t * N * ys + d * P, ldc: ys)
                }
            }
            let tLast = g.time(step: L - 1, direction: d)
            copyRows(rows: N, width: P, y + tLast * N * ys + d * P, srcStride: ys, into: hN + d * N * P, dstStride: P)
            let finalSlot = saving ? L : L & 1
            transposeInto(cN + d * N * H, rows: N, cols: H, dstStride: H, from: cells + finalSlot * H * N, srcStride: N)
        }
        return tape
    }

    /// One step's gates, cell and hidden state for `rows` hidden units (gate blocks `H` rows apart):
    /// the native pass where there is one, else ``swiftCellForward``.
    @inline(__always)
    static func cellForward<T: RecurrentFloat>(
        rows: Int, gateStride H: Int, cols N: Int, gates: Block<T>, bias: Block<T>, activations: Block<T>?, cPrev: Block<T>,
        cOut: Block<T>, tanhC: Block<T>, h: Block<T>
    ) {
        if T.nativeLSTMForward(rows: rows, gateStride: H, cols: N, gates: gates, bias: bias, activations: activations,
                               cPrev: cPrev, cOut: cOut, tanhC: tanhC, h: h) { return }
        swiftCellForward(rows: rows, gateStride: H, cols: N, gates: gates, bias: bias, activations: activations,
                         cPrev: cPrev, cOut: cOut, tanhC: tanhC, h: h)
    }

    /// ``cellForward`` in Swift, eight lanes at a time.
    @inline(__always)
    static func swiftCellForward<T: RecurrentFloat>(
        rows: Int, gateStride H: Int, cols N: Int, gates: Block<T>, bias: Block<T>, activations: Block<T>?, cPrev: Block<T>,
        cOut: Block<T>, tanhC: Block<T>, h: Block<T>
    ) {
        forEachLaneGroup(rows: rows, cols: N) { l in
            let ai: SIMD8<T> = gates.load(l) + bias.load(l)
            let af: SIMD8<T> = gates.load(l, rowOffset: H) + bias.load(l, rowOffset: H)
            let ag: SIMD8<T> = gates.load(l, rowOffset: 2 * H) + bias.load(l, rowOffset: 2 * H)
            let ao: SIMD8<T> = gates.load(l, rowOffset: 3 * H) + bias.load(l, rowOffset: 3 * H)
            let i = T.sigmoid8(ai), f = T.sigmoid8(af), cand = T.tanh8(ag), o = T.sigmoid8(ao)
            let c = f * cPrev.load(l) + i * cand
            let th = T.tanh8(c)
            if let a = activations {
                a.store(i, l)
                a.store(f, l, rowOffset: H)
                a.store(cand, l, rowOffset: 2 * H)
                a.store(o, l, rowOffset: 3 * H)
            }
            cOut.store(c, l)
            tanhC.store(th, l)
            h.store(o * th, l)
        }
    }

    /// Backpropagation through time for one direction: fills `dGates` (`[4H, L N]` by time) step
    /// by step, then the weight gradients with a few large matrix multiplies and `dx` with one.
    static func backward<T: RecurrentFloat>(
        _: T.Type, geometry g: RecurrentGeometry, direction d: Int, tape: Tape, x: UnsafePointer<T>,
        weights w: DirectionPointers<T>, h0: UnsafePointer<T>?, y: UnsafePointer<T>,
        dY: UnsafePointer<T>?, dhN: UnsafePointer<T>?, dcN: UnsafePointer<T>?,
        dGates: UnsafeMutablePointer<T>, scratch: UnsafeMutablePointer<T>,
        grads: DirectionGradients<T>, dx: UnsafeMutablePointer<T>?, accumulateDx: Bool
    ) {
        let L = g.steps, N = g.batch, H = g.hiddenSize, P = g.outputSize, G = g.gateWidth, LN = g.featureStride
        // scratch: dH [P, N], dC [H, N], dRaw [H, N], then dR [P, L N] (projection).
        let dH = scratch, dC = dH + P * N, dRaw = dC + H * N, dR = dRaw + H * N
        withExtendedLifetime(tape) {
            let activations = tape.activations!.mutablePointer(as: T.self)
            let cells = tape.cells.mutablePointer(as: T.self)
            let tanhCells = tape.tanhCells.mutablePointer(as: T.self)
            let raw = tape.rawHidden?.mutablePointer(as: T.self)
            if let dhN { transposeInto(dH, rows: P, cols: N, dstStride: N, from: dhN + d * N * P, srcStride: P) }
            else { dH.update(repeating: 0, count: P * N) }
            if let dcN { transposeInto(dC, rows: H, cols: N, dstStride: N, from: dcN + d * N * H, srcStride: H) }
            else { dC.update(repeating: 0, count: H * N) }
            for s in stride(from: L - 1, through: 0, by: -1) {
                let t = g.time(step: s, direction: d)
                addOutputGradient(geometry: g, dY, time: t, direction: d, into: dH)
                var dHidden = dH
                if let projectionT = w.projectionT {
                    copyRows(rows: P, width: N, dH, srcStride: N, into: dR + s * N, dstStride: LN)
                    gemmInRowBlocks(m: H, n: N, k: P, a: projectionT, rowStrideA: P, colStrideA: 1,
                                    b: dH, rowStrideB: N, colStrideB: 1, beta: 0, c: dRaw, ldc: N)
                    dHidden = dRaw
                }
                let dGt = dGates + t * N
                forEachUnitRange(units: H, elements: H * N) { units in
                    let u = units.lowerBound
                    cellBackward(rows: units.count, gateStride: H, cols: N, gates: Block(activations + s * G * N + u * N, rowStride: N),
                                 cPrev: Block(cells + s * H * N + u * N, rowStride: N),
                                 tanhC: Block(tanhCells + s * H * N + u * N, rowStride: N), dH: Block(dHidden + u * N, rowStride: N),
                                 dC: Block(dC + u * N, rowStride: N), dGates: Block(dGt + u * LN, rowStride: LN))
                }
                if s > 0 || grads.initialHidden != nil {
                    gemmInRowBlocks(m: P, n: N, k: G, a: w.hiddenWeightsT, rowStrideA: G, colStrideA: 1,
                                    b: dGt, rowStrideB: LN, colStrideB: 1, beta: 0, c: dH, ldc: N)
                }
            }
            if let dh0 = grads.initialHidden { transposeInto(dh0, rows: N, cols: P, dstStride: P, from: dH, srcStride: N) }
            if let dc0 = grads.initialCell { transposeInto(dc0, rows: N, cols: H, dstStride: H, from: dC, srcStride: N) }
            if let dW = grads.hiddenWeights {
                hiddenWeightGradient(geometry: g, direction: d, dGates: dGates, y: y, h0: h0, into: dW)
            }
            if let db = grads.inputBias { rowSums(dGates, rows: G, cols: g.columns, stride: LN, into: db) }
            if let dWhr = grads.projection, let raw {
                T.gemm(m: P, n: H, k: g.columns, a: dR, rowStrideA: LN, colStrideA: 1,
                       b: raw, rowStrideB: 1, colStrideB: LN, beta: 0, c: dWhr, ldc: H)
            }
            inputProjectionBackward(geometry: g, dGates: dGates, x: x, weights: w.inputWeights,
                                    dWeights: grads.inputWeights, dx: dx, accumulate: accumulateDx)
        }
    }

    /// One step backward: from `dH` (gradient of `o * tanh(c)`) and the running `dC`, the gate
    /// pre-activation gradients; `dC` becomes the gradient of the previous cell state. The native
    /// pass where there is one, else ``swiftCellBackward``.
    @inline(__always)
    static func cellBackward<T: RecurrentFloat>(
        rows: Int, gateStride H: Int, cols N: Int, gates: Block<T>, cPrev: Block<T>, tanhC: Block<T>, dH: Block<T>,
        dC: Block<T>, dGates: Block<T>
    ) {
        if T.nativeLSTMBackward(rows: rows, gateStride: H, cols: N, gates: gates, cPrev: cPrev, tanhC: tanhC, dH: dH,
                                dC: dC, dGates: dGates) { return }
        swiftCellBackward(rows: rows, gateStride: H, cols: N, gates: gates, cPrev: cPrev, tanhC: tanhC, dH: dH,
                          dC: dC, dGates: dGates)
    }

    /// ``cellBackward`` in Swift, eight lanes at a time.
    @inline(__always)
    static func swiftCellBackward<T: RecurrentFloat>(
        rows: Int, gateStride H: Int, cols N: Int, gates: Block<T>, cPrev: Block<T>, tanhC: Block<T>, dH: Block<T>,
        dC: Block<T>, dGates: Block<T>
    ) {
        forEachLaneGroup(rows: rows, cols: N) { l in
            let i: SIMD8<T> = gates.load(l), f: SIMD8<T> = gates.load(l, rowOffset: H)
            let cand: SIMD8<T> = gates.load(l, rowOffset: 2 * H), o: SIMD8<T> = gates.load(l, rowOffset: 3 * H)
            let th: SIMD8<T> = tanhC.load(l), dh: SIMD8<T> = dH.load(l)
            let cPrevious: SIMD8<T> = cPrev.load(l)
            let dc: SIMD8<T> = dC.load(l) + dh * o * (1 - th * th)
            dGates.store(dc * cand * i * (1 - i), l)
            dGates.store(dc * cPrevious * f * (1 - f), l, rowOffset: H)
            dGates.store(dc * i * (1 - cand * cand), l, rowOffset: 2 * H)
            dGates.store(dh * th * o * (1 - o), l, rowOffset: 3 * H)
            dC.store(dc * f, l)
        }
    }

    /// Elements of scratch memory `backward` needs.
    static func scratchCount(_ g: RecurrentGeometry, projected: Bool) -> Int {
        g.batch * g.outputSize + 2 * g.batch * g.hiddenSize + (projected ? g.featureStride * g.outputSize : 0)
    }
}
