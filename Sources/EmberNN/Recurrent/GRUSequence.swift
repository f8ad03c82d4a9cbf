import EmberAutograd

/// The fused GRU layer: forward over a whole sequence and its backward through time.
///
/// Per step, with gate rows `[r | z | n]` (PyTorch's order) and `b_hn` inside the reset product:
///
///     r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
///     z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
///     n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
///     h' = (1 - z) * n + z * h      (computed as (h - n) * z + n, as PyTorch)
enum GRUSequence {
    struct Tape {
        /// Activated gates `[r | z | n]`, `[L, N, 3H]` by time.
        var gates: Tensor
        /// `h W_hn^T + b_hn` by step, `[L, N, H]`.
        var hiddenNew: Tensor
        /// The hidden-side product of one step, `[N, 3H]`.
        var hiddenGates: Tensor
    }

    static func forward<T: RecurrentFloat>(
        _: T.Type, geometry g: RecurrentGeometry, direction d: Int, x: UnsafePointer<T>, weights w: DirectionPointers<T>,
        h0: UnsafePointer<T>?, y: UnsafeMutablePointer<T>, hN: UnsafeMutablePointer<T>, saving: Bool, buffers: BufferSource
    ) -> Tape {
        let L = g.steps, N = g.batch, F = g.inputSize, H = g.hiddenSize, G = g.gateWidth, ys = g.outputStride
        let tape = Tape(
            gates: buffers(.gates, direction: d, [L, N, G], dtype: T.dtype),
            hiddenNew: buffers(.hiddenNew, direction: d, [saving ? L : 1, N, H], dtype: T.dtype),
            hiddenGates: buffers(.hiddenGates, direction: d, [N, G], dtype: T.dtype))
        withExtendedLifetime(tape) {
            let gates = tape.gates.mutablePointer(as: T.self)
            let hiddenNew = tape.hiddenNew.mutablePointer(as: T.self)
            let gh = tape.hiddenGates.mutablePointer(as: T.self)
            T.gemm(m: L * N, n: G, k: F, a: x, rowStrideA: F, colStrideA: 1,
                   b: w.inputWeightsT, rowStrideB: G, colStrideB: 1, beta: 0, c: gates, ldc: G)
            for s in 0..<L {
                let t = g.time(step: s, direction: d)
                let (hPrev, hPrevStride) = previousHidden(step: s, direction: d, geometry: g, y: y, h0: h0)
                if let hPrev {
                    T.gemm(m: N, n: G, k: H, a: hPrev, rowStrideA: hPrevStride, colStrideA: 1,
                           b: w.hiddenWeightsT, rowStrideB: G, colStrideB: 1, beta: 0, c: gh, ldc: G)
                }
                cellForward(rows: N, hidden: H, gates: gates + t * N * G, inputBias: w.inputBias,
                            hiddenGates: hPrev == nil ? nil : UnsafePointer(gh), hiddenBias: w.hiddenBias,
                            hPrev: hPrev, hPrevStride: hPrevStride, hiddenNewOut: hiddenNew + (saving ? s : 0) * N * H,
                            hOut: y + t * N * ys + d * H, hStride: ys)
            }
            let tLast = g.time(step: L - 1, direction: d)
            copyRows(rows: N, width: H, y + tLast * N * ys + d * H, srcStride: ys, into: hN + d * N * H, dstStride: H)
        }
        return tape
    }

    /// One step for `rows` batch rows. `hiddenGates`/`hPrev` are `nil` for a zero previous state.
    @inline(__always)
    static func cellForward<T: RecurrentFloat>(
        rows: Int, hidden H: Int, gates: UnsafeMutablePointer<T>, inputBias bi: UnsafePointer<T>,
        hiddenGates: UnsafePointer<T>?, hiddenBias bh: UnsafePointer<T>, hPrev: UnsafePointer<T>?, hPrevStride: Int,
        hiddenNewOut: UnsafeMutablePointer<T>, hOut: UnsafeMutablePointer<T>, hStride: Int
    ) {
        for row in 0..<rows {
            let gr = gates + row * 3 * H, gz = gr + H, gn = gz + H
            let hr = hiddenGates.map { $0 + row * 3 * H }
            let hp = hPrev.map { $0 + row * hPrevStride }
            let hnOut = hiddenNewOut + row * H, ho = hOut + row * hStride
            var j = 0
            while j < H {
                let n = Swift.min(8, H - j)
                let xr: SIMD8<T> = load8(gr + j, n) + load8(bi + j, n)
                let xz: SIMD8<T> = load8(gz + j, n) + load8(bi + H + j, n)
                let xn: SIMD8<T> = load8(gn + j, n) + load8(bi + 2 * H + j, n)
                let sr: SIMD8<T> = load8OrZero(hr.map { $0 + j }, n) + load8(bh + j, n)
                let sz: SIMD8<T> = load8OrZero(hr.map { $0 + H + j }, n) + load8(bh + H + j, n)
                let hn: SIMD8<T> = load8OrZero(hr.map { $0 + 2 * H + j }, n) + load8(bh + 2 * H + j, n)
                let r = T.sigmoid8(xr + sr)
                let z = T.sigmoid8(xz + sz)
                let newGate = T.tanh8(xn + r * hn)
                let previous: SIMD8<T> = load8OrZero(hp.map { $0 + j }, n)
                let h = (previous - newGate) * z + newGate
                store8(r, gr + j, n)
                store8(z, gz + j, n)
                store8(newGate, gn + j, n)
                store8(hn, hnOut + j, n)
                store8(h, ho + j, n)
                j += 8
            }
        }
    }

    static func backward<T: RecurrentFloat>(
        _: T.Type, geometry g: RecurrentGeometry, direction d: Int, tape: Tape, x: UnsafePointer<T>,
        weights w: DirectionPointers<T>, h0: UnsafePointer<T>?, y: UnsafePointer<T>,
        dY: UnsafePointer<T>?, dhN: UnsafePointer<T>?,
        dGates: UnsafeMutablePointer<T>, scratch: UnsafeMutablePointer<T>,
        grads: DirectionGradients<T>, dx: UnsafeMutablePointer<T>?, accumulateDx: Bool
    ) {
        let L = g.steps, N = g.batch, H = g.hiddenSize, G = g.gateWidth, ys = g.outputStride
        // dGates holds dGx for all steps; scratch holds dGh [L, N, 3H], then dH [N, H].
        let dHiddenGates = scratch, dH = scratch + L * N * G
        withExtendedLifetime(tape) {
            let gates = tape.gates.mutablePointer(as: T.self)
            let hiddenNew = tape.hiddenNew.mutablePointer(as: T.self)
            if let dhN { dH.update(from: dhN + d * N * H, count: N * H) } else { dH.update(repeating: 0, count: N * H) }
            for s in stride(from: L - 1, through: 0, by: -1) {
                let t = g.time(step: s, direction: d)
                if let dY { addRows(rows: N, width: H, dY + t * N * ys + d * H, srcStride: ys, into: dH, dstStride: H) }
                let (hPrev, hPrevStride) = previousHidden(step: s, direction: d, geometry: g, y: UnsafeMutablePointer(mutating: y), h0: h0)
                let dGh = dHiddenGates + t * N * G
                cellBackward(rows: N, hidden: H, gates: gates + t * N * G, hiddenNew: hiddenNew + s * N * H,
                             hPrev: hPrev, hPrevStride: hPrevStride, dH: dH, dInputGates: dGates + t * N * G, dHiddenGates: dGh)
                if s > 0 || grads.initialHidden != nil {
                    T.gemm(m: N, n: H, k: G, a: dGh, rowStrideA: G, colStrideA: 1,
                           b: w.hiddenWeights, rowStrideB: H, colStrideB: 1, beta: 1, c: dH, ldc: H)
                }
            }
            if let dh0 = grads.initialHidden { dh0.update(from: dH, count: N * H) }
            if let dW = grads.hiddenWeights {
                accumulateHiddenWeightGradient(geometry: g, direction: d, dGates: dHiddenGates, y: y, h0: h0, into: dW)
            }
            if let db = grads.inputBias { columnSums(dGates, rows: L * N, width: G, into: db) }
            if let db = grads.hiddenBias { columnSums(dHiddenGates, rows: L * N, width: G, into: db) }
            inputProjectionBackward(geometry: g, dGates: dGates, x: x, weights: w.inputWeights,
                                    dWeights: grads.inputWeights, dx: dx, accumulate: accumulateDx)
        }
    }

    /// One step backward. On return `dH` holds `dH * z` (the direct path to the previous state);
    /// the caller adds `dGh W_hh`.
    @inline(__always)
    static func cellBackward<T: RecurrentFloat>(
        rows: Int, hidden H: Int, gates: UnsafePointer<T>, hiddenNew: UnsafePointer<T>,
        hPrev: UnsafePointer<T>?, hPrevStride: Int, dH: UnsafeMutablePointer<T>,
        dInputGates: UnsafeMutablePointer<T>, dHiddenGates: UnsafeMutablePointer<T>
    ) {
        for row in 0..<rows {
            let gr = gates + row * 3 * H, gz = gr + H, gn = gz + H
            let dxr = dInputGates + row * 3 * H, dxz = dxr + H, dxn = dxz + H
            let dhr = dHiddenGates + row * 3 * H, dhz = dhr + H, dhn = dhz + H
            let hp = hPrev.map { $0 + row * hPrevStride }
            let hnRow = hiddenNew + row * H, dh = dH + row * H
            var j = 0
            while j < H {
                let n = Swift.min(8, H - j)
                let r: SIMD8<T> = load8(gr + j, n), z: SIMD8<T> = load8(gz + j, n), newGate: SIMD8<T> = load8(gn + j, n)
                let dhv: SIMD8<T> = load8(dh + j, n)
                let previous: SIMD8<T> = load8OrZero(hp.map { $0 + j }, n)
                let hn: SIMD8<T> = load8(hnRow + j, n)
                let dNewPre = dhv * (1 - z) * (1 - newGate * newGate)
                let dzPre = dhv * (previous - newGate) * z * (1 - z)
                let drPre = dNewPre * hn * r * (1 - r)
                store8(drPre, dxr + j, n)
                store8(dzPre, dxz + j, n)
                store8(dNewPre, dxn + j, n)
                store8(drPre, dhr + j, n)
                store8(dzPre, dhz + j, n)
                store8(dNewPre * r, dhn + j, n)
                store8(dhv * z, dh + j, n)
                j += 8
            }
        }
    }

    static func scratchCount(_ g: RecurrentGeometry) -> Int { g.steps * g.batch * g.gateWidth + g.batch * g.hiddenSize }
}
