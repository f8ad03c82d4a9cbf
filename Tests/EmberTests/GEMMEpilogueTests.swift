import Ember
import Testing

// The GEMM epilogue (bias, an eval BatchNorm's scale and shift, ReLU applied to each tile of C
// after its last panel, in registers on the AVX paths) against the same steps as separate passes
// over a product computed without it: bitwise, on every kernel path, float32 and float64, 1 and 3
// threads, with several A blocks and B panels (in depth and in width), edge tiles, a padded C
// whose padding must survive, beta != 0, k == 0, a single row (the row-vector path) and a NaN
// that ReLU must keep.

@Suite("GEMM epilogue")
struct GEMMEpilogueTests {
    static let cases: [GEMMCase] = [
        GEMMCase(m: 203, n: 150, k: 600, transposeB: true, beta: 0.25, ldcPadding: 1),
        GEMMCase(m: 130, n: 70, k: 530, transposeA: true, alpha: 0.75),
        GEMMCase(m: 1, n: 70, k: 300, transposeB: true),
        GEMMCase(m: 5, n: 7, k: 0, beta: 0.5, ldcPadding: 2),
        // Wider than one B panel (nc = 4096 columns): the second panel's bias starts at its column.
        GEMMCase(m: 120, n: 4200, k: 20),
    ]

    /// Every combination of bias, scale-and-shift and ReLU, the empty one included.
    static let combinations = [(false, false, false), (false, false, true), (false, true, false), (false, true, true),
                               (true, false, false), (true, false, true), (true, true, false), (true, true, true)]

    /// The separate passes: `+ bias`, `* scale + shift`, ReLU (`<= 0` becomes 0, NaN kept), on the
    /// first `n` columns of each row.
    static func separatePasses<T: BinaryFloatingPoint>(_ c: inout [T], _ g: GEMMCase, bias: [T]?, scale: [T]?, shift: [T]?, relu: Bool) {
        for i in 0..<g.m {
            for j in 0..<g.n {
                var v = c[i * g.ldc + j]
                if let bias { v = v + bias[j] }
                if let scale, let shift { v = v * scale[j] + shift[j] }
                if relu { v = v <= 0 ? 0 : v }
                c[i * g.ldc + j] = v
            }
        }
    }

    @Test("float32: the epilogue equals separate passes bitwise", arguments: GEMMKernelPath.supported)
    func float32(path: GEMMKernelPath) {
        for g in Self.cases {
            var operands = GEMMOperands(g, seed: 7)
            if g.k > 0 { operands.a[0] = .nan }  // row 0 of C is NaN: ReLU keeps it
            let bias = gemmTestValues(g.n, seed: 11).map { Float($0) }
            let scale = gemmTestValues(g.n, seed: 12).map { Float($0) * 2 }
            let shift = gemmTestValues(g.n, seed: 13).map { Float($0) }
            for (withBias, withScale, relu) in Self.combinations {
                var expected = operands.sgemm(g, path: path)
                Self.separatePasses(&expected, g, bias: withBias ? bias : nil, scale: withScale ? scale : nil,
                                    shift: withScale ? shift : nil, relu: relu)
                for threads in [1, 3] {
                    let actual = Threading.withThreads(threads) {
                        bias.withUnsafeBufferPointer { b in
                            scale.withUnsafeBufferPointer { s in
                                shift.withUnsafeBufferPointer { t in
                                    operands.sgemm(g, path: path, epilogue: GEMMEpilogue(
                                        bias: withBias ? b.baseAddress : nil, scale: withScale ? s.baseAddress : nil,
                                        shift: withScale ? t.baseAddress : nil, relu: relu))
                                }
                            }
                        }
                    }
                    expectSameBits(actual, expected, "\(g.testDescription) bias \(withBias) scale \(withScale) relu \(relu), \(threads) threads")
                }
            }
        }
    }

    @Test("float64: the epilogue equals separate passes bitwise", arguments: GEMMKernelPath.supported)
    func float64(path: GEMMKernelPath) {
        for g in Self.cases {
            let operands = GEMMOperands(g, seed: 8)
            let bias = gemmTestValues(g.n, seed: 21), scale = gemmTestValues(g.n, seed: 22)
            let shift = gemmTestValues(g.n, seed: 23)
            for (withBias, withScale, relu) in Self.combinations {
                var expected = operands.dgemm(g, path: path)
                Self.separatePasses(&expected, g, bias: withBias ? bias : nil, scale: withScale ? scale : nil,
                                    shift: withScale ? shift : nil, relu: relu)
                let actual = Threading.withThreads(3) {
                    bias.withUnsafeBufferPointer { b in
                        scale.withUnsafeBufferPointer { s in
                            shift.withUnsafeBufferPointer { t in
                                operands.dgemm(g, path: path, epilogue: GEMMEpilogue(
                                    bias: withBias ? b.baseAddress : nil, scale: withScale ? s.baseAddress : nil,
                                    shift: withScale ? t.baseAddress : nil, relu: relu))
                            }
                        }
                    }
                }
                expectSameBits(actual, expected, "\(g.testDescription) bias \(withBias) scale \(withScale) relu \(relu)")
            }
        }
    }
}

/// Records one issue, with the count and the first position, when any value's bits differ (a
/// failure message with whole arrays of half a million values would take minutes to format).
func expectSameBits<T: BinaryFloatingPoint>(_ actual: [T], _ expected: [T], _ what: String,
                                            sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.count == expected.count else {
        Issue.record("\(what): \(actual.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    func sameBits(_ a: T, _ b: T) -> Bool {
        withUnsafeBytes(of: a) { x in withUnsafeBytes(of: b) { y in x.elementsEqual(y) } }
    }
    var bad = 0, first = -1
    for i in actual.indices where !sameBits(actual[i], expected[i]) {
        bad += 1
        if first < 0 { first = i }
    }
    if bad > 0 {
        Issue.record("\(what): \(bad) of \(actual.count) values differ in their bits; the first at \(first): \(actual[first]) instead of \(expected[first])",
                     sourceLocation: sourceLocation)
    }
}
