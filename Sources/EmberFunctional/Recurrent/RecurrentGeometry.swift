import EmberAutograd
import EmberTensor
import EmberStorage

/// Sizes of one fused recurrent layer (all directions), and the buffer layouts.
///
/// - The input `x` is `[L, N, F]` row-major (row `t * N + n`), the output `y` `[L, N, D * P]` with
///   direction `d` in columns `d * P ..< (d + 1) * P`. The hidden states live in `y` only: a step
///   reads the previous one from there (or from `h0`).
/// - The gate buffers are feature-major, `[G, L * N]` (rows padded to ``featureStride``): row =
///   gate unit, column = `t * N + n` by time, so they line up with the rows of `x` and `y`, and
///   each step's recurrent product writes one `G x N` column block.
/// - What backward reads again (activated gates, cell states, `tanh(c)`) is saved step by step,
///   `[L, rows, N]`, each step's block contiguous, by processing step `s` (`t = s` forward,
///   `t = L - 1 - s` reverse), so backward streams through it.
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
    /// Columns of a feature-major buffer over the whole sequence, `L * N`.
    var columns: Int { steps * batch }
    /// Row stride of the feature-major buffers: `L N` rounded up to whole 16-element groups, with
    /// an odd number of groups, so that a step's column block (one short piece of each of
    /// hundreds of rows) spreads over all cache sets instead of a few.
    var featureStride: Int {
        let groups = (columns + 15) / 16
        return (groups % 2 == 0 ? groups + 1 : groups) * 16
    }

    /// The time step processed at step `s` of direction `d`.
    @inline(__always) func time(step s: Int, direction d: Int) -> Int { d == 0 ? s : steps - 1 - s }

    /// Direction `d`'s block of `y` at time `t`, as features x batch (element `(p, n)`).
    @inline(__always) func outputBlock<T>(_ y: UnsafeMutablePointer<T>, time t: Int, direction d: Int) -> Block<T> {
        Block(y + t * batch * outputStride + d * outputSize, rowStride: 1, colStride: outputStride)
    }

    /// The hidden state before step `s` of direction `d` as features x batch: `h0` (or `nil` for
    /// zeros) at step 0, else the output block of the previous time step.
    @inline(__always) func previousHidden<T>(step s: Int, direction d: Int, y: UnsafeMutablePointer<T>,
                                             h0: UnsafePointer<T>?) -> Block<T>? {
        if s == 0 { return h0.map { Block($0, rowStride: 1, colStride: outputSize) } }
        return outputBlock(y, time: time(step: s - 1, direction: d), direction: d)
    }
}

/// Raw pointers to one direction's weights (row-major, as stored) and their transposes.
struct DirectionPointers<T: RecurrentFloat> {
    /// `W_ih`, `[G, F]`.
    var inputWeights: UnsafePointer<T>
    /// `W_hh`, `[G, P]`.
    var hiddenWeights: UnsafePointer<T>
    /// `W_hh^T`, `[P, G]` (a contiguous copy: the left factor of the backward recurrence).
    var hiddenWeightsT: UnsafePointer<T>
    /// `W_hr^T`, `[H, P]` (LSTM with a projection only).
    var projectionT: UnsafePointer<T>?
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

/// Gate pre-activations of every step at once: `gates[G, L N] = W_ih x^T`.
@inline(__always)
func inputProjection<T: RecurrentFloat>(geometry g: RecurrentGeometry, x: UnsafePointer<T>, weights: UnsafePointer<T>,
                                        into gates: UnsafeMutablePointer<T>)
{
    T.gemm(m: g.gateWidth, n: g.columns, k: g.inputSize, a: weights, rowStrideA: g.inputSize, colStrideA: 1,
           b: x, rowStrideB: 1, colStrideB: g.inputSize, beta: 0, c: gates, ldc: g.featureStride)
}

/// One step's recurrent product into a `rows x N` block of a feature-major buffer:
/// `C = W h_prev^T + beta C`, with `W` `[rows, P]` row-major and `h_prev` as a block.
@inline(__always)
func recurrentProduct<T: RecurrentFloat>(geometry g: RecurrentGeometry, rows: Int, weights: UnsafePointer<T>,
                                         previous h: Block<T>, beta: T, into c: UnsafeMutablePointer<T>, ldc: Int)
{
    gemmInRowBlocks(m: rows, n: g.batch, k: g.outputSize, a: weights, rowStrideA: g.outputSize, colStrideA: 1,
                    b: h.base, rowStrideB: h.rowStride, colStrideB: h.colStride, beta: beta, c: c, ldc: ldc)
}

/// `dW_hh = sum_t dG[:, t] h_prev(t)^T` for direction `d` as (at most) two matrix multiplies: the
/// steps whose previous state is an output row (one product over `(L - 1) N` columns) and the
/// step that starts from `h0` (skipped when `h0` is zero).
@inline(__always)
func hiddenWeightGradient<T: RecurrentFloat>(
    geometry g: RecurrentGeometry, direction d: Int, dGates: UnsafePointer<T>, y: UnsafePointer<T>,
    h0: UnsafePointer<T>?, into dW: UnsafeMutablePointer<T>
) {
    let L = g.steps, N = g.batch, G = g.gateWidth, P = g.outputSize, ys = g.outputStride, LN = g.featureStride
    // Forward: dG[:, 1..<L] pairs with y[0..<L-1]; reverse: dG[:, 0..<L-1] with y[1..<L].
    let gateStart = d == 0 ? N : 0
    let yStart = (d == 0 ? 0 : N * ys) + d * P
    T.gemm(m: G, n: P, k: (L - 1) * N, a: dGates + gateStart, rowStrideA: LN, colStrideA: 1,
           b: y + yStart, rowStrideB: ys, colStrideB: 1, beta: 0, c: dW, ldc: P)
    if let h0 {
        let firstTime = d == 0 ? 0 : L - 1
        T.gemm(m: G, n: P, k: N, a: dGates + firstTime * N, rowStrideA: LN, colStrideA: 1,
               b: h0, rowStrideB: P, colStrideB: 1, beta: 1, c: dW, ldc: P)
    }
}

/// `dW_ih = dG x` over all `L N` columns, and `dx += dG^T W_ih` (`accumulate` false for the first
/// direction, true for the second).
@inline(__always)
func inputProjectionBackward<T: RecurrentFloat>(
    geometry g: RecurrentGeometry, dGates: UnsafePointer<T>, x: UnsafePointer<T>, weights: UnsafePointer<T>,
    dWeights: UnsafeMutablePointer<T>?, dx: UnsafeMutablePointer<T>?, accumulate: Bool
) {
    let LN = g.featureStride, G = g.gateWidth, F = g.inputSize
    if let dWeights {
        T.gemm(m: G, n: F, k: g.columns, a: dGates, rowStrideA: LN, colStrideA: 1,
               b: x, rowStrideB: F, colStrideB: 1, beta: 0, c: dWeights, ldc: F)
    }
    if let dx {
        T.gemm(m: g.columns, n: F, k: G, a: dGates, rowStrideA: 1, colStrideA: LN,
               b: weights, rowStrideB: F, colStrideB: 1, beta: accumulate ? 1 : 0, c: dx, ldc: F)
    }
}

/// Adds direction `d`'s output gradient at time `t` to the running `dH` (`[P, N]`, feature-major).
@inline(__always)
func addOutputGradient<T: RecurrentFloat>(geometry g: RecurrentGeometry, _ dY: UnsafePointer<T>?, time t: Int,
                                          direction d: Int, into dH: UnsafeMutablePointer<T>)
{
    guard let dY else { return }
    let source = g.outputBlock(UnsafeMutablePointer(mutating: dY), time: t, direction: d)
    let target = Block(dH, rowStride: g.batch)
    if T.nativeAdd(rows: g.outputSize, cols: g.batch, source, into: target) { return }
    swiftAdd(rows: g.outputSize, cols: g.batch, source, into: target)
}

/// `target += source` over a `rows x cols` block, in Swift (the fallback of ``addOutputGradient``).
@inline(__always)
func swiftAdd<T: RecurrentFloat>(rows: Int, cols: Int, _ source: Block<T>, into target: Block<T>) {
    forEachLaneGroup(rows: rows, cols: cols) { l in
        target.store(target.load(l) + source.load(l), l)
    }
}
