import EmberAutograd

/// The fused LSTM layer: forward over a whole sequence and its backward through time, on raw
/// buffers.
///
/// Per step, with the gate rows `[i | f | g | o]` (PyTorch's order):
///
///     a = x_t W_ih^T + h_{t-1} W_hh^T + b_ih + b_hh
///     i = sigmoid(a_i), f = sigmoid(a_f), g = tanh(a_g), o = sigmoid(a_o)
///     c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)   (then h_t = h_t W_hr^T with a projection)
///
/// `x W_ih^T` runs for all steps in one matrix multiply; each step adds `h W_hh^T` in place with
/// one more and finishes the gates in one vectorised pass.
enum LSTMSequence {
    /// What the forward pass keeps for backward, for one direction.
    struct Tape {
        /// Activated gates `[i | f | g | o]`, `[L, N, 4H]` by time.
        var gates: Tensor
        /// Cell states by step, slot 0 = `c0`: `[L + 1, N, H]` (2 slots when not saving).
        var cells: Tensor
        /// `tanh(c)` by step, `[L, N, H]`.
        var tanhCells: Tensor
        /// Unprojected `o * tanh(c)` by step, `[L, N, H]` (projection only).
        var rawHidden: Tensor?
    }

    static func forward<T: RecurrentFloat>(
        _: T.Type, geometry g: RecurrentGeometry, direction d: Int, x: UnsafePointer<T>, weights w: DirectionPointers<T>,
        h0: UnsafePointer<T>?, c0: UnsafePointer<T>?, y: UnsafeMutablePointer<T>,
        hN: UnsafeMutablePointer<T>, cN: UnsafeMutablePointer<T>, saving: Bool, buffers: BufferSource
    ) -> Tape {
        let L = g.steps, N = g.batch, F = g.inputSize, H = g.hiddenSize, P = g.outputSize, G = g.gateWidth
        let ys = g.outputStride
        let kept = saving ? L : 1
        let tape = Tape(
            gates: buffers(.gates, direction: d, [L, N, G], dtype: T.dtype),
            cells: buffers(.cells, direction: d, [saving ? L + 1 : 2, N, H], dtype: T.dtype),
            tanhCells: buffers(.tanhCells, direction: d, [kept, N, H], dtype: T.dtype),
            rawHidden: w.projectionT == nil ? nil : buffers(.rawHidden, direction: d, [kept, N, H], dtype: T.dtype))
        withExtendedLifetime(tape) {
            let gates = tape.gates.mutablePointer(as: T.self)
            let cells = tape.cells.mutablePointer(as: T.self)
            let tanhCells = tape.tanhCells.mutablePointer(as: T.self)
            let raw = tape.rawHidden?.mutablePointer(as: T.self)
            // Input projection of every step at once.
            T.gemm(m: L * N, n: G, k: F, a: x, rowStrideA: F, colStrideA: 1,
                   b: w.inputWeightsT, rowStrideB: G, colStrideB: 1, beta: 0, c: gates, ldc: G)
            if let c0 { cells.update(from: c0, count: N * H) } else { cells.update(repeating: 0, count: N * H) }
            for s in 0..<L {
                let t = g.time(step: s, direction: d)
                let gt = gates + t * N * G
                let (hPrev, hPrevStride) = previousHidden(step: s, direction: d, geometry: g, y: y, h0: h0)
                if let hPrev {
                    T.gemm(m: N, n: G, k: P, a: hPrev, rowStrideA: hPrevStride, colStrideA: 1,
                           b: w.hiddenWeightsT, rowStrideB: G, colStrideB: 1, beta: 1, c: gt, ldc: G)
                }
                let (prevSlot, slot) = saving ? (s, s + 1) : (s & 1, (s + 1) & 1)
                let kept = saving ? s : 0
                let out = y + t * N * ys + d * P
                let (hDst, hDstStride) = raw.map { ($0 + kept * N * H, H) } ?? (out, ys)
                cellForward(rows: N, hidden: H, gates: gt, bias: w.inputBias, cPrev: cells + prevSlot * N * H,
                            cOut: cells + slot * N * H, tanhCOut: tanhCells + kept * N * H, hOut: hDst, hStride: hDstStride)
                if let projectionT = w.projectionT {
                    T.gemm(m: N, n: P, k: H, a: hDst, rowStrideA: H, colStrideA: 1,
                           b: projectionT, rowStrideB: P, colStrideB: 1, beta: 0, c: out, ldc: ys)
                }
            }
            let tLast = g.time(step: L - 1, direction: d)
            copyRows(rows: N, width: P, y + tLast * N * ys + d * P, srcStride: ys, into: hN + d * N * P, dstStride: P)
            (cN + d * N * H).update(from: cells + (saving ? L : L & 1) * N * H, count: N * H)
        }
        return tape
    }

    /// One step's gates, cell and hidden state for `rows` batch rows.
    @inline(__always)
    static func cellForward<T: RecurrentFloat>(
        rows: Int, hidden H: Int, gates: UnsafeMutablePointer<T>, bias: UnsafePointer<T>,
        cPrev: UnsafePointer<T>, cOut: UnsafeMutablePointer<T>, tanhCOut: UnsafeMutablePointer<T>,
        hOut: UnsafeMutablePointer<T>, hStride: Int
    ) {
        for r in 0..<rows {
            let gi = gates + r * 4 * H, gf = gi + H, gg = gf + H, go = gg + H
            let cp = cPrev + r * H, co = cOut + r * H, tc = tanhCOut + r * H, ho = hOut + r * hStride
            var j = 0
            while j < H {
                let n = Swift.min(8, H - j)
                let ai: SIMD8<T> = load8(gi + j, n) + load8(bias + j, n)
                let af: SIMD8<T> = load8(gf + j, n) + load8(bias + H + j, n)
                let ag: SIMD8<T> = load8(gg + j, n) + load8(bias + 2 * H + j, n)
                let ao: SIMD8<T> = load8(go + j, n) + load8(bias + 3 * H + j, n)
                let i = T.sigmoid8(ai), f = T.sigmoid8(af), cand = T.tanh8(ag), o = T.sigmoid8(ao)
                let cPrevious: SIMD8<T> = load8(cp + j, n)
                let c = f * cPrevious + i * cand
                let th = T.tanh8(c)
                store8(i, gi + j, n)
                store8(f, gf + j, n)
                store8(cand, gg + j, n)
                store8(o, go + j, n)
                store8(c, co + j, n)
                store8(th, tc + j, n)
                store8(o * th, ho + j, n)
                j += 8
            }
        }
    }

    /// Backpropagation through time for one direction: fills `dGates` (`[L, N, 4H]` by time) step
    /// by step, then the weight gradients with a few large matrix multiplies and `dx` with one.
    static func backward<T: RecurrentFloat>(
        _: T.Type, geometry g: RecurrentGeometry, direction d: Int, tape: Tape, x: UnsafePointer<T>,
        weights w: DirectionPointers<T>, h0: UnsafePointer<T>?, y: UnsafePointer<T>,
        dY: UnsafePointer<T>?, dhN: UnsafePointer<T>?, dcN: UnsafePointer<T>?,
        dGates: UnsafeMutablePointer<T>, scratch: UnsafeMutablePointer<T>,
        grads: DirectionGradients<T>, dx: UnsafeMutablePointer<T>?, accumulateDx: Bool
    ) {
        let L = g.steps, N = g.batch, H = g.hiddenSize, P = g.outputSize, G = g.gateWidth, ys = g.outputStride
        // scratch: dH [N, P], dC [N, H], dHraw [N, H], then dR [L, N, P] (projection).
        let dH = scratch, dC = dH + N * P, dRaw = dC + N * H, dR = dRaw + N * H
        withExtendedLifetime(tape) {
            let gates = tape.gates.mutablePointer(as: T.self)
            let cells = tape.cells.mutablePointer(as: T.self)
            let tanhCells = tape.tanhCells.mutablePointer(as: T.self)
            let raw = tape.rawHidden?.mutablePointer(as: T.self)
            if let dhN { dH.update(from: dhN + d * N * P, count: N * P) } else { dH.update(repeating: 0, count: N * P) }
            if let dcN { dC.update(from: dcN + d * N * H, count: N * H) } else { dC.update(repeating: 0, count: N * H) }
            for s in stride(from: L - 1, through: 0, by: -1) {
                let t = g.time(step: s, direction: d)
                if let dY { addRows(rows: N, width: P, dY + t * N * ys + d * P, srcStride: ys, into: dH, dstStride: P) }
                var dHidden = UnsafePointer(dH)
                if let projection = w.projection {
                    (dR + s * N * P).update(from: dH, count: N * P)
                    T.gemm(m: N, n: H, k: P, a: dH, rowStrideA: P, colStrideA: 1,
                           b: projection, rowStrideB: H, colStrideB: 1, beta: 0, c: dRaw, ldc: H)
                    dHidden = UnsafePointer(dRaw)
                }
                let dGt = dGates + t * N * G
                cellBackward(rows: N, hidden: H, gates: gates + t * N * G, cPrev: cells + s * N * H,
                             tanhC: tanhCells + s * N * H, dH: dHidden, dC: dC, dGates: dGt)
                if s > 0 || grads.initialHidden != nil {
                    T.gemm(m: N, n: P, k: G, a: dGt, rowStrideA: G, colStrideA: 1,
                           b: w.hiddenWeights, rowStrideB: P, colStrideB: 1, beta: 0, c: dH, ldc: P)
                }
            }
            if let dh0 = grads.initialHidden { dh0.update(from: dH, count: N * P) }
            if let dc0 = grads.initialCell { dc0.update(from: dC, count: N * H) }
            if let dW = grads.hiddenWeights {
                accumulateHiddenWeightGradient(geometry: g, direction: d, dGates: dGates, y: y, h0: h0, into: dW)
            }
            if let db = grads.inputBias { columnSums(dGates, rows: L * N, width: G, into: db) }
            if let dWhr = grads.projection, let raw {
                T.gemm(m: P, n: H, k: L * N, a: dR, rowStrideA: 1, colStrideA: P,
                       b: raw, rowStrideB: H, colStrideB: 1, beta: 0, c: dWhr, ldc: H)
            }
            inputProjectionBackward(geometry: g, dGates: dGates, x: x, weights: w.inputWeights,
                                    dWeights: grads.inputWeights, dx: dx, accumulate: accumulateDx)
        }
    }

    /// One step backward: from `dH` (gradient of `o * tanh(c)`) and the running `dC`, the gate
    /// pre-activation gradients; `dC` becomes the gradient of the previous cell state.
    @inline(__always)
    static func cellBackward<T: RecurrentFloat>(
        rows: Int, hidden H: Int, gates: UnsafePointer<T>, cPrev: UnsafePointer<T>, tanhC: UnsafePointer<T>,
        dH: UnsafePointer<T>, dC: UnsafeMutablePointer<T>, dGates: UnsafeMutablePointer<T>
    ) {
        for r in 0..<rows {
            let gi = gates + r * 4 * H, gf = gi + H, gg = gf + H, go = gg + H
            let di = dGates + r * 4 * H, df = di + H, dg = df + H, dout = dg + H
            let cp = cPrev + r * H, tc = tanhC + r * H, dh = dH + r * H, dc = dC + r * H
            var j = 0
            while j < H {
                let n = Swift.min(8, H - j)
                let i: SIMD8<T> = load8(gi + j, n), f: SIMD8<T> = load8(gf + j, n)
                let cand: SIMD8<T> = load8(gg + j, n), o: SIMD8<T> = load8(go + j, n)
                let th: SIMD8<T> = load8(tc + j, n), dhv: SIMD8<T> = load8(dh + j, n)
                let cPrevious: SIMD8<T> = load8(cp + j, n)
                let dcTotal = load8(dc + j, n) + dhv * o * (1 - th * th)
                store8(dhv * th * o * (1 - o), dout + j, n)
                store8(dcTotal * cand * i * (1 - i), di + j, n)
                store8(dcTotal * cPrevious * f * (1 - f), df + j, n)
                store8(dcTotal * i * (1 - cand * cand), dg + j, n)
                store8(dcTotal * f, dc + j, n)
                j += 8
            }
        }
    }

    /// Elements of scratch memory `backward` needs.
    static func scratchCount(_ g: RecurrentGeometry, projected: Bool) -> Int {
        g.batch * g.outputSize + 2 * g.batch * g.hiddenSize + (projected ? g.steps * g.batch * g.outputSize : 0)
    }
}
