import CEmberKernels
import Ember
@testable import EmberFunctional
import Testing
import _EmberTestSupport

/// The AVX2 kernels of `activation_x86.c` (float32 exp/sigmoid/tanh rows and the recurrent cell
/// passes) give bitwise the values of the Swift code they replace, on every length and tail, on
/// special values (NaN, +-inf, +-0, huge, tiny, denormal), and write nothing outside their blocks.
/// Two NaNs count as equal whatever their payloads: which operand's NaN an IEEE operation returns
/// depends on operand order, which the Swift compiler may commute.
@Suite(.enabled(if: ActivationKernels.isAvailable, "needs AVX2"))
struct RNNNativeKernelTests {
    static let lengths = [1, 7, 8, 9, 17, 33, 63, 64, 65, 1000]
    static let special: [Float] = [.nan, -.nan, .infinity, -.infinity, 0, -0, 1e-30, -1e-30, .leastNonzeroMagnitude,
                                   -.leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude,
                                   -.greatestFiniteMagnitude, 88.72, 88.73, 89, -103.97, -104, -105, 0.625, -0.625,
                                   0.624_999_94, 9, -9, 44, -44, 1e10, -1e10, 3.4e38, 1, -1]

    /// Deterministic values: one in four from ``special``, the rest spread over `[-scale, scale]`.
    static func values(_ count: Int, seed: UInt32, scale: Float = 12) -> [Float] {
        var state = seed &* 2_654_435_761 &+ 1
        return (0..<count).map { _ in
            state = state &* 1_664_525 &+ 1_013_904_223
            if state >> 30 == 0 { return special[Int(state >> 8) % special.count] }
            return (Float(state >> 8) / Float(1 << 24) - 0.5) * 2 * scale
        }
    }

    /// Indices where `a` and `b` differ in bits (both NaN counts as equal).
    static func mismatches(_ a: [Float], _ b: [Float]) -> [Int] {
        precondition(a.count == b.count)
        return a.indices.filter { a[$0].bitPattern != b[$0].bitPattern && !(a[$0].isNaN && b[$0].isNaN) }
    }

    static func describe(_ name: String, _ a: [Float], _ b: [Float], _ input: [Float]? = nil) -> String {
        let bad = mismatches(a, b)
        return "\(name): \(bad.count) mismatches, first " + bad.prefix(3).map { i in
            "[\(i)] \(input.map { "x=\($0[i]) " } ?? "")native \(a[i]) vs swift \(b[i])"
        }.joined(separator: ", ")
    }

    @Test(arguments: lengths)
    func rowActivationsMatchSwiftVectors(length: Int) {
        typealias Row = (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void
        let functions: [(String, Row, (Float8) -> Float8)] = [
            ("exp", { ActivationKernels.run(.exp, $0, into: $1, count: $2) }, expVector),
            // Both widths on every CPU that has them, whichever `run` dispatches.
            ("exp avx2", { ember_sexp_avx2($2, $0, $1) }, expVector),
        ] + (GEMMKernelPath.avx512.isSupported ? [("exp avx512", { ember_sexp_avx512($2, $0, $1) }, expVector)] : []) + [
            ("sigmoid", { ActivationKernels.run(.sigmoid, $0, into: $1, count: $2) }, sigmoidVector),
            ("tanh", { ActivationKernels.run(.tanh, $0, into: $1, count: $2) }, tanhVector),
        ]
        for (name, native, vector) in functions {
            for scale: Float in [1, 12, 120] {
                let x = Self.values(length, seed: UInt32(length) &+ UInt32(scale), scale: scale)
                // One guard element after the row: the kernel must not write it.
                var got = [Float](repeating: 7, count: length + 1), want = got
                x.withUnsafeBufferPointer { xs in
                    got.withUnsafeMutableBufferPointer { native(xs.baseAddress!, $0.baseAddress!, length) }
                    want.withUnsafeMutableBufferPointer {
                        Kernels.applyFloat8(xs.baseAddress!, stride: 1, count: length, into: $0.baseAddress!, vector)
                    }
                }
                #expect(Self.mismatches(got, want).isEmpty, "\(Self.describe(name, got, want, x + [0]))")
            }
        }
    }

    /// `Tensor.exp()`, `sigmoid()`, `tanh()`, `silu()`, `gelu()`, `sqrt()`, `rsqrt()`, `log()` of contiguous float32 tensors run
    /// the row kernels (over threads for large ones); the values are the Swift vectors', as for
    /// strided tensors.
    @Test(arguments: lengths + [70_001])
    func tensorActivationsMatchSwiftVectors(length: Int) {
        let x = Self.values(length, seed: UInt32(length) &* 3, scale: 40)
        let t = Tensor(x)
        let ops: [(String, Tensor, (Float8) -> Float8)] = [
            ("exp", t.exp(), expVector), ("sigmoid", t.sigmoid(), sigmoidVector), ("tanh", t.tanh(), tanhVector),
            // Multi-pass on the exp/tanh rows: the same operations per lane.
            ("silu", t.silu(), { SiLUFunction()($0) }), ("gelu", t.gelu(), { GELUFunction()($0) }),
            ("gelu tanh", t.gelu(approximate: .tanh), { GELUTanhFunction()($0) }),
            ("sqrt", t.sqrt(), { $0.squareRoot() }), ("rsqrt", t.rsqrt(), { 1 / $0.squareRoot() }),
            ("log", t.log(), logVector),
        ]
        for (name, got, vector) in ops {
            var want = [Float](repeating: 0, count: length)
            x.withUnsafeBufferPointer { xs in
                want.withUnsafeMutableBufferPointer {
                    Kernels.applyFloat8(xs.baseAddress!, stride: 1, count: length, into: $0.baseAddress!, vector)
                }
            }
            let values: [Float] = got.scalars()
            #expect(Self.mismatches(values, want).isEmpty, "\(Self.describe(name, values, want, x))")
        }
    }

    /// Softmax and log-softmax of contiguous float32 rows (exp on the AVX2 row kernel) equal those
    /// of the same values laid out column-major (the Swift lanes), bitwise.
    @Test(arguments: [(5, 1000), (70, 1024), (3, 7)])
    func softmaxRowsMatchTheStridedPath(rows: Int, cols: Int) {
        // Finite values (a NaN or infinity would make its whole row NaN and hide any difference),
        // then one row of special values.
        var v = Tensor.uniform([rows * cols], low: -30, high: 30, generator: Generator(seed: UInt64(rows))).floats
        for (i, s) in Self.special.prefix(cols).enumerated() { v[i] = s }
        let x = Tensor(v, shape: [rows, cols])
        let strided = x.transposed(0, 1).contiguous().transposed(0, 1)
        #expect(!strided.isContiguous)
        expectBitwiseEqual(x.softmax(axis: 1), strided.softmax(axis: 1), "softmax \(rows)x\(cols)")
        expectBitwiseEqual(x.logSoftmax(axis: 1), strided.logSoftmax(axis: 1), "logSoftmax \(rows)x\(cols)")
    }

    @Test func rowActivationsWorkInPlace() {
        let x = Self.values(37, seed: 5)
        var inPlace = x, separate = [Float](repeating: 0, count: 37)
        inPlace.withUnsafeMutableBufferPointer { ActivationKernels.run(.tanh, $0.baseAddress!, into: $0.baseAddress!, count: 37) }
        x.withUnsafeBufferPointer { xs in
            separate.withUnsafeMutableBufferPointer { ActivationKernels.run(.tanh, xs.baseAddress!, into: $0.baseAddress!, count: 37) }
        }
        #expect(Self.mismatches(inPlace, separate).isEmpty)
    }

    /// Block sizes: rows (hidden units) x cols (batch), covering partial row groups and lane tails.
    static let blocks: [(rows: Int, cols: Int)] = [(1, 1), (7, 1), (1, 9), (8, 8), (9, 7), (16, 33), (17, 9), (33, 8), (8, 1000)]

    @Test(arguments: 0..<blocks.count, [false, true])
    func lstmForwardMatchesSwiftPass(block: Int, transposedH: Bool) {
        let (H, N) = Self.blocks[block]
        let gateStride = N + 3, ys = H + 2
        let gates = Self.values(4 * H * gateStride, seed: 11)
        let bias = Self.values(4 * H, seed: 12, scale: 2)
        let cPrev = Self.values(H * N, seed: 13, scale: 4)
        for saving in [false, true] {
            func run(_ native: Bool) -> [[Float]] {
                var acts = [Float](repeating: 3, count: 4 * H * N + 5), cOut = [Float](repeating: 3, count: H * N + 5)
                var tanhC = cOut, h = [Float](repeating: 3, count: transposedH ? N * ys + 5 : H * (N + 1) + 5)
                gates.withUnsafeBufferPointer { g in bias.withUnsafeBufferPointer { b in cPrev.withUnsafeBufferPointer { cp in
                    acts.withUnsafeMutableBufferPointer { a in cOut.withUnsafeMutableBufferPointer { co in
                        tanhC.withUnsafeMutableBufferPointer { tc in h.withUnsafeMutableBufferPointer { hp in
                            let hb = transposedH ? Block(hp.baseAddress!, rowStride: 1, colStride: ys)
                                                 : Block(hp.baseAddress!, rowStride: N + 1)
                            let ab = saving ? Block(a.baseAddress!, rowStride: N) : nil
                            if native {
                                ActivationKernels.lstmForward(
                                    rows: H, cols: N, gateRows: H, gates: g.baseAddress!, gateStride: gateStride,
                                    bias: b.baseAddress!, activations: ab?.base, activationStride: N,
                                    cPrev: cp.baseAddress!, cOut: co.baseAddress!, tanhC: tc.baseAddress!, stateStride: N,
                                    h: hb.base, hRowStride: hb.rowStride, hColStride: hb.colStride)
                            } else {
                                LSTMSequence.swiftCellForward(
                                    rows: H, gateStride: H, cols: N, gates: Block(g.baseAddress!, rowStride: gateStride),
                                    bias: Block(b.baseAddress!, rowStride: 1, colStride: 0), activations: ab,
                                    cPrev: Block(cp.baseAddress!, rowStride: N), cOut: Block(co.baseAddress!, rowStride: N),
                                    tanhC: Block(tc.baseAddress!, rowStride: N), h: hb)
                            }
                        } }
                    } }
                } } }
                return [acts, cOut, tanhC, h]
            }
            let got = run(true), want = run(false)
            for (k, name) in ["activations", "c", "tanh(c)", "h"].enumerated() {
                #expect(Self.mismatches(got[k], want[k]).isEmpty,
                        "\(H)x\(N) saving \(saving): \(Self.describe(name, got[k], want[k]))")
            }
        }
    }

    @Test(arguments: 0..<blocks.count)
    func lstmBackwardMatchesSwiftPass(block: Int) {
        let (H, N) = Self.blocks[block]
        let dGateStride = N + 5
        let acts = Self.values(4 * H * N, seed: 21, scale: 1.2)
        let cPrev = Self.values(H * N, seed: 22, scale: 4), tanhC = Self.values(H * N, seed: 23, scale: 1)
        let dH = Self.values(H * N, seed: 24, scale: 3), dC0 = Self.values(H * N, seed: 25, scale: 3)
        func run(_ native: Bool) -> [[Float]] {
            var dC = dC0, dGates = [Float](repeating: 3, count: 4 * H * dGateStride)
            acts.withUnsafeBufferPointer { a in cPrev.withUnsafeBufferPointer { cp in tanhC.withUnsafeBufferPointer { tc in
                dH.withUnsafeBufferPointer { dh in dC.withUnsafeMutableBufferPointer { dc in dGates.withUnsafeMutableBufferPointer { dg in
                    if native {
                        ActivationKernels.lstmBackward(rows: H, cols: N, gateRows: H, gates: a.baseAddress!, cPrev: cp.baseAddress!,
                                                       tanhC: tc.baseAddress!, dH: dh.baseAddress!, dC: dc.baseAddress!, stride: N,
                                                       dGates: dg.baseAddress!, dGateStride: dGateStride)
                    } else {
                        LSTMSequence.swiftCellBackward(
                            rows: H, gateStride: H, cols: N, gates: Block(a.baseAddress!, rowStride: N),
                            cPrev: Block(cp.baseAddress!, rowStride: N), tanhC: Block(tc.baseAddress!, rowStride: N),
                            dH: Block(dh.baseAddress!, rowStride: N), dC: Block(dc.baseAddress!, rowStride: N),
                            dGates: Block(dg.baseAddress!, rowStride: dGateStride))
                    }
                } } }
            } } }
            return [dC, dGates]
        }
        let got = run(true), want = run(false)
        #expect(Self.mismatches(got[0], want[0]).isEmpty, "\(H)x\(N) \(Self.describe("dC", got[0], want[0]))")
        #expect(Self.mismatches(got[1], want[1]).isEmpty, "\(H)x\(N) \(Self.describe("dGates", got[1], want[1]))")
    }

    @Test(arguments: 0..<blocks.count, [false, true])
    func gruForwardMatchesSwiftPass(block: Int, hasPrevious: Bool) {
        let (H, N) = Self.blocks[block]
        let gateStride = N + 3, ys = H + 1
        let gates = Self.values(3 * H * gateStride, seed: 31), hidden = Self.values(3 * H * N, seed: 32, scale: 3)
        let inputBias = Self.values(3 * H, seed: 33, scale: 2), hiddenBias = Self.values(3 * H, seed: 34, scale: 2)
        let hPrev = Self.values(N * ys, seed: 35, scale: 1)
        for saving in [false, true] {
            func run(_ native: Bool) -> [[Float]] {
                var acts = [Float](repeating: 3, count: 3 * H * N + 3), hn = [Float](repeating: 3, count: H * N + 3)
                var h = [Float](repeating: 3, count: N * ys + 3)
                gates.withUnsafeBufferPointer { g in hidden.withUnsafeBufferPointer { gh in
                    inputBias.withUnsafeBufferPointer { ib in hiddenBias.withUnsafeBufferPointer { hb in hPrev.withUnsafeBufferPointer { hp in
                        acts.withUnsafeMutableBufferPointer { a in hn.withUnsafeMutableBufferPointer { hnp in h.withUnsafeMutableBufferPointer { ho in
                            let hg = hasPrevious ? Block(gh.baseAddress!, rowStride: N) : nil
                            let prev = hasPrevious ? Block(hp.baseAddress!, rowStride: 1, colStride: ys) : nil
                            let ab = saving ? Block(a.baseAddress!, rowStride: N) : nil
                            let out = Block(ho.baseAddress!, rowStride: 1, colStride: ys)
                            if native {
                                ActivationKernels.gruForward(
                                    rows: H, cols: N, gateRows: H, gates: g.baseAddress!, gateStride: gateStride,
                                    inputBias: ib.baseAddress!, hiddenGates: hg?.base, hiddenGateStride: N,
                                    hiddenBias: hb.baseAddress!, hPrev: prev?.base, hPrevRowStride: 1, hPrevColStride: ys,
                                    activations: ab?.base, activationStride: N, hiddenNew: hnp.baseAddress!,
                                    hiddenNewStride: N, h: out.base, hRowStride: 1, hColStride: ys)
                            } else {
                                GRUSequence.swiftCellForward(
                                    rows: H, gateStride: H, cols: N, gates: Block(g.baseAddress!, rowStride: gateStride),
                                    inputBias: Block(ib.baseAddress!, rowStride: 1, colStride: 0), hiddenGates: hg,
                                    hiddenBias: Block(hb.baseAddress!, rowStride: 1, colStride: 0), hPrev: prev,
                                    activations: ab, hiddenNew: Block(hnp.baseAddress!, rowStride: N), h: out)
                            }
                        } } }
                    } } }
                } }
                return [acts, hn, h]
            }
            let got = run(true), want = run(false)
            for (k, name) in ["activations", "W_hn h + b_hn", "h"].enumerated() {
                #expect(Self.mismatches(got[k], want[k]).isEmpty,
                        "\(H)x\(N) saving \(saving): \(Self.describe(name, got[k], want[k]))")
            }
        }
    }

    @Test(arguments: 0..<blocks.count, [false, true])
    func rnnForwardMatchesSwiftPass(block: Int, relu: Bool) {
        let (H, N) = Self.blocks[block]
        let preStride = N + 1, ys = H + 3
        let pre = Self.values(H * preStride, seed: 41), bias = Self.values(H, seed: 42, scale: 2)
        func run(_ native: Bool) -> [Float] {
            var h = [Float](repeating: 3, count: N * ys + 2)
            pre.withUnsafeBufferPointer { p in bias.withUnsafeBufferPointer { b in h.withUnsafeMutableBufferPointer { ho in
                if native {
                    ActivationKernels.rnnForward(rows: H, cols: N, pre: p.baseAddress!, preStride: preStride, bias: b.baseAddress!,
                                                 relu: relu, h: ho.baseAddress!, hRowStride: 1, hColStride: ys)
                } else {
                    RNNSequence.swiftCellForward(rows: H, cols: N, pre: Block(p.baseAddress!, rowStride: preStride),
                                                 bias: Block(b.baseAddress!, rowStride: 1, colStride: 0), relu: relu,
                                                 h: Block(ho.baseAddress!, rowStride: 1, colStride: ys))
                }
            } } }
            return h
        }
        let got = run(true), want = run(false)
        #expect(Self.mismatches(got, want).isEmpty, "\(H)x\(N) \(Self.describe("h", got, want))")
    }

    @Test(arguments: 0..<blocks.count, [false, true])
    func addBlockMatchesSwift(block: Int, transposedSource: Bool) {
        let (P, N) = Self.blocks[block]
        let ys = P + 3
        let source = Self.values(N * ys + P * (N + 1), seed: 51), start = Self.values(P * (N + 2) + 4, seed: 52)
        func run(_ native: Bool) -> [Float] {
            var dH = start
            source.withUnsafeBufferPointer { s in dH.withUnsafeMutableBufferPointer { d in
                let src = transposedSource ? Block(s.baseAddress!, rowStride: 1, colStride: ys) : Block(s.baseAddress!, rowStride: N + 1)
                let dst = Block(d.baseAddress!, rowStride: N + 2)
                if native {
                    ActivationKernels.addBlock(rows: P, cols: N, src.base, rowStride: src.rowStride, colStride: src.colStride,
                                               into: dst.base, dstRowStride: dst.rowStride)
                } else {
                    swiftAdd(rows: P, cols: N, src, into: dst)
                }
            } }
            return dH
        }
        let got = run(true), want = run(false)
        #expect(Self.mismatches(got, want).isEmpty, "\(P)x\(N) \(Self.describe("dH", got, want))")
    }

    /// The AVX2 transpose the layers use for `W_hh^T` is an exact transpose (odd shapes too).
    @Test(arguments: [(1, 1), (7, 9), (9, 7), (8, 8), (33, 17), (512, 128)])
    func transposeIsExact(rows: Int, cols: Int) {
        let src = Self.values(rows * cols, seed: UInt32(rows * 31 + cols))
        var dst = [Float](repeating: 5, count: rows * cols + 3)
        src.withUnsafeBufferPointer { s in
            dst.withUnsafeMutableBufferPointer { VectorKernels.transpose(s.baseAddress!, rows: rows, cols: cols, into: $0.baseAddress!) }
        }
        var want = [Float](repeating: 5, count: rows * cols + 3)
        for i in 0..<rows { for j in 0..<cols { want[j * rows + i] = src[i * cols + j] } }
        #expect(dst.map(\.bitPattern) == want.map(\.bitPattern))
    }

    /// The layers' float32 steps take the native passes (so the tests above cover what runs).
    @Test func layersDispatchToNativePasses() {
        #expect(Float.useNative(rows: 128, cols: 32))
        #expect(Float.useNative(rows: 128, cols: 4))
        #expect(Float.useNative(rows: 1, cols: 1))
        #expect(!Float.useNative(rows: 128, cols: 1))
    }
}
