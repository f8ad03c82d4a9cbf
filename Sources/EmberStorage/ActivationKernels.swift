import CEmberKernels

/// The AVX2 float32 activations and recurrent step passes in `CEmberKernels`
/// (`activation_x86.c`). Each computes bitwise what the Swift code it replaces computes
/// (EmberTensor's `expVector`/`sigmoidVector`/`tanhVector`, EmberNN's recurrent cell passes),
/// eight lanes per AVX2 operation instead of four per SSE operation. Callers check
/// ``isAvailable`` and keep the Swift code as the fallback (arm64, x86-64 without AVX2).
package enum ActivationKernels {
    /// Whether this CPU runs the kernels.
    package static let isAvailable = GEMM.hasAVX2

    /// Whether `exp` runs sixteen lanes wide (`ember_sexp_avx512`, the same bits): where GEMM
    /// dispatches its AVX-512 kernels (so `EMBER_DISABLE_AVX512=1` turns both off).
    package static let exp16 = GEMMKernelPath.best == .avx512

    /// A float32 function with an AVX2 row kernel: `y[i] = f(x[i])` for `i < count` (`x` and `y`
    /// may be the same row). Each is bitwise the Swift function named in EmberTensor.
    package enum Row: Sendable {
        /// `e^x` (`expVector`).
        case exp
        /// `1 / (1 + e^-x)` (`sigmoidVector`).
        case sigmoid
        /// `tanh(x)` (`tanhVector`).
        case tanh
        /// `log(x)` (`logVector`, Cephes' polynomial).
        case log
        /// `x / (1 + e^-x)` (`SiLUFunction`).
        case silu
        /// `x / 2 (1 + erf(x / sqrt 2))` (`GELUFunction`).
        case gelu
        /// `x / 2 (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))` (`GELUTanhFunction`).
        case geluTanh
        /// `sqrt(x)`, IEEE.
        case sqrt
        /// `1 / sqrt(x)`, IEEE.
        case rsqrt
    }

    /// ReLU's backward, `out[i] = y[i] <= 0 ? 0 : g[i]`, at the CPU's vector width
    /// (`ember_relu_backward_f32`; any CPU, every path the same bits).
    @inline(__always)
    package static func reluBackward(_ g: UnsafePointer<Float>, _ y: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                                     count: Int, path: GEMMKernelPath = .best) {
        ember_relu_backward_f32(Int32(path.rawValue), count, g, y, out)
    }

    /// Runs `row` over `count` elements. Requires ``isAvailable``.
    @inline(__always)
    package static func run(_ row: Row, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        switch row {
        case .exp where exp16: ember_sexp_avx512(count, x, y)
        case .exp: ember_sexp_avx2(count, x, y)
        case .sigmoid: ember_ssigmoid_avx2(count, x, y)
        case .tanh: ember_stanh_avx2(count, x, y)
        case .log: ember_slog_avx2(count, x, y)
        case .silu: ember_ssilu_avx2(count, x, y)
        case .gelu: ember_sgelu_avx2(count, x, y)
        case .geluTanh: ember_sgelu_tanh_avx2(count, x, y)
        case .sqrt: ember_ssqrt_avx2(count, x, y)
        case .rsqrt: ember_srsqrt_avx2(count, x, y)
        }
    }

    /// Whether ``exponentiateRows(_:rows:cols:ld:shifts:sums:path:)`` and
    /// ``rowMaximum(_:count:path:)`` run on this CPU: where GEMM dispatches its AVX2 (with FMA) or
    /// AVX-512 kernels.
    package static let scoreKernels = GEMMKernelPath.best == .avx2 || GEMMKernelPath.best == .avx512

    /// Attention's softmax numerators over a tile of scores, in place: row `r < rows` (`cols`
    /// values at `tile + r * ld`, each at most `shifts[r]` or NaN) becomes `e^(x - shifts[r])`
    /// within 2 ulp (fused multiply-adds: not `expVector`'s bits), and `sums[r]` is the row's sum
    /// (eight lanes chunk by chunk, then left to right, then the last `cols % 8` values). Both
    /// paths give the same bits. Requires ``scoreKernels`` (and `path` supported).
    @inline(__always)
    package static func exponentiateRows(_ tile: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int,
                                         shifts: UnsafePointer<Float>, sums: UnsafeMutablePointer<Float>,
                                         path: GEMMKernelPath = .best) {
        if path == .avx512 {
            ember_sexp_shifted_rows_avx512(rows, cols, ld, tile, shifts, sums)
        } else {
            ember_sexp_shifted_rows_avx2(rows, cols, ld, tile, shifts, sums)
        }
    }

    /// The largest of `row[0..<count]` ignoring NaN (as `x > max` comparisons do), `-inf` if none.
    /// Requires ``scoreKernels`` (and `path` supported).
    @inline(__always)
    package static func rowMaximum(_ row: UnsafePointer<Float>, count: Int, path: GEMMKernelPath = .best) -> Float {
        path == .avx512 ? ember_smax_row_avx512(row, count) : ember_smax_row_avx2(row, count)
    }

    /// Runs `row` when this CPU has the kernels and returns true; else returns false.
    @inline(__always)
    package static func apply(_ row: Row, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) -> Bool {
        guard isAvailable else { return false }
        run(row, x, into: y, count: count)
        return true
    }

    /// One LSTM step's gates, cells and hidden state (see `ember_lstm_forward_avx2`).
    @inline(__always)
    package static func lstmForward(
        rows: Int, cols: Int, gateRows: Int, gates: UnsafePointer<Float>, gateStride: Int, bias: UnsafePointer<Float>,
        activations: UnsafeMutablePointer<Float>?, activationStride: Int, cPrev: UnsafePointer<Float>,
        cOut: UnsafeMutablePointer<Float>, tanhC: UnsafeMutablePointer<Float>, stateStride: Int,
        h: UnsafeMutablePointer<Float>, hRowStride: Int, hColStride: Int
    ) {
        ember_lstm_forward_avx2(rows, cols, gateRows, gates, gateStride, bias, activations, activationStride,
                                cPrev, cOut, tanhC, stateStride, h, hRowStride, hColStride)
    }

    /// One LSTM step backward (see `ember_lstm_backward_avx2`).
    @inline(__always)
    package static func lstmBackward(
        rows: Int, cols: Int, gateRows: Int, gates: UnsafePointer<Float>, cPrev: UnsafePointer<Float>,
        tanhC: UnsafePointer<Float>, dH: UnsafePointer<Float>, dC: UnsafeMutablePointer<Float>, stride: Int,
        dGates: UnsafeMutablePointer<Float>, dGateStride: Int
    ) {
        ember_lstm_backward_avx2(rows, cols, gateRows, gates, cPrev, tanhC, dH, dC, stride, dGates, dGateStride)
    }

    /// One GRU step (see `ember_gru_forward_avx2`).
    @inline(__always)
    package static func gruForward(
        rows: Int, cols: Int, gateRows: Int, gates: UnsafePointer<Float>, gateStride: Int,
        inputBias: UnsafePointer<Float>, hiddenGates: UnsafePointer<Float>?, hiddenGateStride: Int,
        hiddenBias: UnsafePointer<Float>, hPrev: UnsafePointer<Float>?, hPrevRowStride: Int, hPrevColStride: Int,
        activations: UnsafeMutablePointer<Float>?, activationStride: Int,
        hiddenNew: UnsafeMutablePointer<Float>, hiddenNewStride: Int,
        h: UnsafeMutablePointer<Float>, hRowStride: Int, hColStride: Int
    ) {
        ember_gru_forward_avx2(rows, cols, gateRows, gates, gateStride, inputBias, hiddenGates, hiddenGateStride,
                               hiddenBias, hPrev, hPrevRowStride, hPrevColStride, activations, activationStride,
                               hiddenNew, hiddenNewStride, h, hRowStride, hColStride)
    }

    /// `dst(r, c) += src(r, c)` for a `rows x cols` block (see `ember_add_block_avx2`).
    @inline(__always)
    package static func addBlock(
        rows: Int, cols: Int, _ src: UnsafePointer<Float>, rowStride: Int, colStride: Int,
        into dst: UnsafeMutablePointer<Float>, dstRowStride: Int
    ) {
        ember_add_block_avx2(rows, cols, src, rowStride, colStride, dst, dstRowStride)
    }

    /// One Elman RNN step, tanh or ReLU (see `ember_rnn_forward_avx2`).
    @inline(__always)
    package static func rnnForward(
        rows: Int, cols: Int, pre: UnsafePointer<Float>, preStride: Int, bias: UnsafePointer<Float>, relu: Bool,
        h: UnsafeMutablePointer<Float>, hRowStride: Int, hColStride: Int
    ) {
        ember_rnn_forward_avx2(rows, cols, pre, preStride, bias, relu ? 1 : 0, h, hRowStride, hColStride)
    }
}
