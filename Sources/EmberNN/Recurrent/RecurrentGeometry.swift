import EmberAutograd

/// Sizes of one fused recurrent layer (all directions).
///
/// Every buffer is time-major: the input `x` is `[L, N, F]`, the output `y` is `[L, N, D * P]`
/// with direction `d` in columns `d * P ..< (d + 1) * P`. Per direction, the gate buffers are
/// indexed by time `t` (they line up with the rows of `x`), the saved cell states and activations
/// by processing step `s` (`t = s` forward, `t = L - 1 - s` reverse).
struct RecurrentGeometry {
    /// Sequence length `L`.
    let steps: Int
    /// Batch size `N`.
    let batch: Int
    /// Input features `F`.
    let inputSize: Int
    /// Hidden size `H`.
    let hiddenSize: Int
    /// Per-direction output size `P` (the projection size, else `H`).
    let outputSize: Int
    /// Directions `D` (1 or 2).
    let directions: Int
    /// Rows of the stacked gate matrices, `G = gates * H`.
    let gateWidth: Int

    /// Row stride of `y` in elements.
    var outputStride: Int { directions * outputSize }

    /// The time step processed at step `s` of direction `d`.
    @inline(__always) func time(step s: Int, direction d: Int) -> Int { d == 0 ? s : steps - 1 - s }
}

/// Raw pointers to one direction's weights. The forward pass multiplies by transposed copies
/// (`[F, G]`, `[P, G]`, `[H, P]`, so the matrix multiply streams contiguous rows); the backward
/// pass by the weights as stored (`[G, F]`, `[G, P]`, `[P, H]`).
struct DirectionPointers<T: RecurrentFloat> {
    /// `W_ih^T`, `[F, G]`.
    var inputWeightsT: UnsafePointer<T>
    /// `W_hh^T`, `[P, G]`.
    var hiddenWeightsT: UnsafePointer<T>
    /// `W_hr^T`, `[H, P]` (LSTM with a projection only).
    var projectionT: UnsafePointer<T>?
    /// `W_ih`, `[G, F]`.
    var inputWeights: UnsafePointer<T>
    /// `W_hh`, `[G, P]`.
    var hiddenWeights: UnsafePointer<T>
    /// `W_hr`, `[P, H]`.
    var projection: UnsafePointer<T>?
    /// Bias added to the input-side gate pre-activations (`G`, zeros without bias). For LSTM and
    /// the plain RNN this is `b_ih + b_hh`; for GRU it is `b_ih`.
    var inputBias: UnsafePointer<T>
    /// GRU only: `b_hh` (`G`, zeros without bias), which sits inside the reset product.
    var hiddenBias: UnsafePointer<T>
}

/// What the backward pass of one direction must produce.
struct DirectionGradients<T: RecurrentFloat> {
    var inputWeights: UnsafeMutablePointer<T>?
    var hiddenWeights: UnsafeMutablePointer<T>?
    /// Gradient of the input-side bias (`b_ih`, and for LSTM/RNN `b_hh`, which gets the same).
    var inputBias: UnsafeMutablePointer<T>?
    /// GRU only: gradient of `b_hh`.
    var hiddenBias: UnsafeMutablePointer<T>?
    var projection: UnsafeMutablePointer<T>?
    /// `[N, P]` slice of `dh0` for this direction.
    var initialHidden: UnsafeMutablePointer<T>?
    /// `[N, H]` slice of `dc0` for this direction (LSTM).
    var initialCell: UnsafeMutablePointer<T>?
}

/// The per-step previous hidden state of direction `d`: `h0` (or `nil` for zeros) at step 0,
/// else the output row block of the previous time step.
@inline(__always)
func previousHidden<T>(
    step s: Int, direction d: Int, geometry g: RecurrentGeometry, y: UnsafeMutablePointer<T>, h0: UnsafePointer<T>?
) -> (pointer: UnsafePointer<T>?, stride: Int) {
    if s == 0 { return (h0, g.outputSize) }
    let tPrev = g.time(step: s - 1, direction: d)
    return (UnsafePointer(y + tPrev * g.batch * g.outputStride + d * g.outputSize), g.outputStride)
}

/// `dW_hh += sum_t dG[t]^T h_prev(t)` for direction `d` as (at most) two matrix multiplies: the
/// steps whose previous state is an output row (one product over `(L - 1) N` rows) and the step
/// that starts from `h0` (skipped when `h0` is zero).
@inline(__always)
func accumulateHiddenWeightGradient<T: RecurrentFloat>(
    geometry g: RecurrentGeometry, direction d: Int, dGates: UnsafePointer<T>, y: UnsafePointer<T>,
    h0: UnsafePointer<T>?, into dW: UnsafeMutablePointer<T>
) {
    let L = g.steps, N = g.batch, G = g.gateWidth, P = g.outputSize, ys = g.outputStride
    // Forward: dG[1..<L] pairs with y[0..<L-1]; reverse: dG[0..<L-1] with y[1..<L].
    let gateStart = d == 0 ? N * G : 0
    let yStart = (d == 0 ? 0 : N * ys) + d * P
    T.gemm(m: G, n: P, k: (L - 1) * N, a: dGates + gateStart, rowStrideA: 1, colStrideA: G,
           b: y + yStart, rowStrideB: ys, colStrideB: 1, beta: 0, c: dW, ldc: P)
    if let h0 {
        let firstTime = d == 0 ? 0 : L - 1
        T.gemm(m: G, n: P, k: N, a: dGates + firstTime * N * G, rowStrideA: 1, colStrideA: G,
               b: h0, rowStrideB: P, colStrideB: 1, beta: 1, c: dW, ldc: P)
    }
}

/// `dW_ih = dG^T x` over all `L N` rows, and `dx += dG W_ih` (`beta` 0 for the first direction,
/// 1 for the second).
@inline(__always)
func inputProjectionBackward<T: RecurrentFloat>(
    geometry g: RecurrentGeometry, dGates: UnsafePointer<T>, x: UnsafePointer<T>, weights: UnsafePointer<T>,
    dWeights: UnsafeMutablePointer<T>?, dx: UnsafeMutablePointer<T>?, accumulate: Bool
) {
    let rows = g.steps * g.batch, G = g.gateWidth, F = g.inputSize
    if let dWeights {
        T.gemm(m: G, n: F, k: rows, a: dGates, rowStrideA: 1, colStrideA: G,
               b: x, rowStrideB: F, colStrideB: 1, beta: 0, c: dWeights, ldc: F)
    }
    if let dx {
        T.gemm(m: rows, n: F, k: G, a: dGates, rowStrideA: G, colStrideA: 1,
               b: weights, rowStrideB: F, colStrideB: 1, beta: accumulate ? 1 : 0, c: dx, ldc: F)
    }
}
