import Ember
import Testing

// Tests of the matrix-multiply kernels: every SIMD path this CPU supports against the portable
// path and against a float64 triple loop, on odd sizes, strided (transposed) operands, alpha and
// beta, edge tiles, the thread split, and the worker pool behind `Threading.parallelFor`.

/// One sgemm/dgemm problem: sizes, operand layouts and scalars.
struct GEMMCase: Sendable, CustomTestStringConvertible {
    var m: Int, n: Int, k: Int
    /// Store A (B) column-major, so it reaches GEMM as a transposed view (row stride 1).
    var transposeA = false, transposeB = false
    var alpha = 1.0, beta = 0.0
    /// Extra columns in each row of C beyond `n`; they hold a sentinel that must survive.
    var ldcPadding = 0

    var testDescription: String {
        "\(m)x\(k) * \(k)x\(n)\(transposeA ? " Aᵀ" : "")\(transposeB ? " Bᵀ" : "") "
            + "alpha=\(alpha) beta=\(beta)\(ldcPadding > 0 ? " ldc+\(ldcPadding)" : "")"
    }

    /// Elements of row-major C, padding included.
    var ldc: Int { n + ldcPadding }
}

let gemmCases: [GEMMCase] = [
    GEMMCase(m: 1, n: 1, k: 1),
    GEMMCase(m: 7, n: 5, k: 13),
    GEMMCase(m: 65, n: 33, k: 129),
    GEMMCase(m: 1000, n: 1000, k: 1),
    GEMMCase(m: 1000, n: 1, k: 1000),
    GEMMCase(m: 1, n: 1000, k: 1000),
    GEMMCase(m: 65, n: 33, k: 129, transposeA: true),
    GEMMCase(m: 65, n: 33, k: 129, transposeB: true),
    GEMMCase(m: 65, n: 33, k: 129, transposeA: true, transposeB: true, alpha: -1.5, beta: 0.75),
    GEMMCase(m: 7, n: 5, k: 13, alpha: 0.5, beta: 1, ldcPadding: 3),
    GEMMCase(m: 65, n: 33, k: 129, alpha: 2, beta: -0.5, ldcPadding: 5),
    // More than one A block (mc), B panel depth (kc) and edge tiles in both directions.
    GEMMCase(m: 203, n: 150, k: 600, transposeB: true, beta: 0.25, ldcPadding: 1),
    GEMMCase(m: 130, n: 70, k: 530, transposeA: true, alpha: 0.75),
]

/// Deterministic pseudo-random values in [-1, 1).
func gemmTestValues(_ count: Int, seed: UInt64) -> [Double] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Double(Int32(truncatingIfNeeded: state >> 32)) / Double(1 << 31)
    }
}

/// Operands and initial C for `c`, with the strides that describe their layouts.
struct GEMMOperands {
    var a: [Double], b: [Double], c: [Double]
    var rowStrideA: Int, colStrideA: Int, rowStrideB: Int, colStrideB: Int

    /// Sentinel in C's padding columns; also fills C when `beta == 0` so that reading it would show.
    static let sentinel = Double.nan

    init(_ c: GEMMCase, seed: UInt64 = 1) {
        a = gemmTestValues(c.m * c.k, seed: seed)
        b = gemmTestValues(c.k * c.n, seed: seed + 1)
        (rowStrideA, colStrideA) = c.transposeA ? (1, c.m) : (c.k, 1)
        (rowStrideB, colStrideB) = c.transposeB ? (1, c.k) : (c.n, 1)
        let initial = gemmTestValues(c.m * c.ldc, seed: seed + 2)
        self.c = (0..<(c.m * c.ldc)).map { i in
            i % c.ldc >= c.n || c.beta == 0 ? Self.sentinel : initial[i]
        }
    }

    /// `alpha * A * B + beta * C` in float64 on the float32-rounded inputs when `float` is set;
    /// padding keeps its sentinel.
    func reference(_ g: GEMMCase, roundedToFloat: Bool) -> [Double] {
        let r: (Double) -> Double = roundedToFloat ? { Double(Float($0)) } : { $0 }
        var out = c
        for i in 0..<g.m {
            for j in 0..<g.n {
                var sum = 0.0
                for p in 0..<g.k {
                    sum += r(a[i * rowStrideA + p * colStrideA]) * r(b[p * rowStrideB + j * colStrideB])
                }
                let old = g.beta == 0 ? 0 : r(c[i * g.ldc + j])
                out[i * g.ldc + j] = g.alpha * sum + g.beta * old
            }
        }
        return out
    }

    func sgemm(_ g: GEMMCase, path: GEMMKernelPath, epilogue: GEMMEpilogue<Float> = .none) -> [Float] {
        let a = a.map { Float($0) }, b = b.map { Float($0) }
        var c = c.map { Float($0) }
        c.withUnsafeMutableBufferPointer { c in
            GEMM.sgemm(m: g.m, n: g.n, k: g.k, alpha: Float(g.alpha),
                       a: a, rowStrideA: rowStrideA, colStrideA: colStrideA,
                       b: b, rowStrideB: rowStrideB, colStrideB: colStrideB,
                       beta: Float(g.beta), c: c.baseAddress!, ldc: g.ldc, path: path, epilogue: epilogue)
        }
        return c
    }

    func dgemm(_ g: GEMMCase, path: GEMMKernelPath, epilogue: GEMMEpilogue<Double> = .none) -> [Double] {
        var c = c
        c.withUnsafeMutableBufferPointer { c in
            GEMM.dgemm(m: g.m, n: g.n, k: g.k, alpha: g.alpha,
                       a: a, rowStrideA: rowStrideA, colStrideA: colStrideA,
                       b: b, rowStrideB: rowStrideB, colStrideB: colStrideB,
                       beta: g.beta, c: c.baseAddress!, ldc: g.ldc, path: path, epilogue: epilogue)
        }
        return c
    }
}

/// Records an issue unless `actual` matches `expected` element-wise under the project's tolerance
/// rule `|a - b| <= atol + rtol * |b|`; NaN must meet NaN (the padding sentinel). Reports the
/// mismatch count, the worst (row, column), both values there and the largest errors.
func expectGEMMClose(
    _ actual: [Double], _ expected: [Double], ldc: Int, atol: Double, rtol: Double, _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    guard actual.count == expected.count else {
        Issue.record("\(what): \(actual.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    var bad = 0, worst = -1, worstExcess = -Double.infinity, maxAbs = 0.0
    for i in actual.indices {
        let x = actual[i], y = expected[i]
        if x.isNaN || y.isNaN {
            if x.isNaN != y.isNaN { bad += 1; worst = i; worstExcess = .infinity }
            continue
        }
        let diff = abs(x - y)
        maxAbs = max(maxAbs, diff)
        let excess = diff - (atol + rtol * abs(y))
        if excess > 0 {
            bad += 1
            if excess > worstExcess { worstExcess = excess; worst = i }
        }
    }
    if bad > 0 {
        Issue.record("""
            \(what): \(bad) of \(actual.count) elements differ beyond atol=\(atol), rtol=\(rtol); \
            worst at (\(worst / ldc), \(worst % ldc)): actual \(actual[worst]), expected \(expected[worst]); \
            max abs error \(maxAbs)
            """, sourceLocation: sourceLocation)
    }
}

/// float32 tolerance for a length-`k` dot product of values in [-1, 1).
func sgemmTolerance(k: Int) -> (atol: Double, rtol: Double) {
    let scale = Double(k).squareRoot()
    return (1e-5 * scale, 1e-5 * scale)
}

@Suite("GEMM kernels")
struct GEMMTests {
    @Test("every path this CPU supports is tested, portable included")
    func supportedPaths() {
        #expect(GEMMKernelPath.supported.contains(.portable))
        #expect(GEMMKernelPath.supported.contains(GEMMKernelPath.best))
        // Which kernel paths this machine's run of the suite exercises, and which it cannot.
        let skipped = GEMMKernelPath.allCases.filter { !$0.isSupported }
        print("GEMM kernel paths tested on this CPU: \(GEMMKernelPath.supported.map(\.description).joined(separator: ", ")); "
              + "skipped (unsupported here): \(skipped.map(\.description).joined(separator: ", ")); dispatch uses \(GEMMKernelPath.best)")
        // Dispatch takes the fastest supported path; EMBER_DISABLE_AVX512=1 alone steps down to AVX2.
        #expect(GEMMKernelPath.best == GEMMKernelPath.dispatched(fastest: GEMMKernelPath.supported.last!,
                                                                 avx512OptedOut: GEMMKernelPath.avx512OptedOut))
        for path in GEMMKernelPath.allCases {
            #expect(GEMMKernelPath.dispatched(fastest: path, avx512OptedOut: false) == path)
            #expect(GEMMKernelPath.dispatched(fastest: path, avx512OptedOut: true) == (path == .avx512 ? .avx2 : path))
        }
    }

    @Test("sgemm on each path matches the float64 reference and the portable path",
          arguments: GEMMKernelPath.supported, gemmCases)
    func sgemmMatchesReference(path: GEMMKernelPath, g: GEMMCase) {
        let operands = GEMMOperands(g)
        let actual = operands.sgemm(g, path: path).map { Double($0) }
        let (atol, rtol) = sgemmTolerance(k: g.k)
        expectGEMMClose(actual, operands.reference(g, roundedToFloat: true), ldc: g.ldc,
                        atol: atol, rtol: rtol, "\(path) vs float64 reference")
        if path != .portable {
            let portable = operands.sgemm(g, path: .portable).map { Double($0) }
            expectGEMMClose(actual, portable, ldc: g.ldc, atol: atol, rtol: rtol, "\(path) vs portable")
        }
    }

    @Test("dgemm on each path matches the float64 reference", arguments: GEMMKernelPath.supported, gemmCases)
    func dgemmMatchesReference(path: GEMMKernelPath, g: GEMMCase) {
        let operands = GEMMOperands(g)
        let scale = Double(g.k).squareRoot()
        expectGEMMClose(operands.dgemm(g, path: path), operands.reference(g, roundedToFloat: false),
                        ldc: g.ldc, atol: 1e-13 * scale, rtol: 1e-13 * scale, "\(path) dgemm")
    }

    @Test("beta == 0 never reads C: NaN there does not propagate", arguments: GEMMKernelPath.supported)
    func betaZeroIgnoresNaN(path: GEMMKernelPath) {
        for g in [GEMMCase(m: 13, n: 37, k: 5), GEMMCase(m: 130, n: 70, k: 600, alpha: 0.5)] {
            let operands = GEMMOperands(g)
            let cIsNaN = operands.c.allSatisfy { $0.isNaN }
            #expect(cIsNaN)
            let actual = operands.sgemm(g, path: path)
            let finite = actual.allSatisfy { $0.isFinite }
            #expect(finite, "\(path) \(g.testDescription)")
        }
    }

    @Test("k == 0 and alpha == 0 scale C by beta; empty products are no-ops")
    func degenerateSizes() {
        var c: [Float] = [1, 2, .nan, 4]
        let a: [Float] = [5], b: [Float] = [6]
        GEMM.sgemm(m: 2, n: 2, k: 0, alpha: 1, a: a, rowStrideA: 0, colStrideA: 1, b: b, rowStrideB: 2,
                   colStrideB: 1, beta: 0, c: &c, ldc: 2)
        #expect(c == [0, 0, 0, 0])
        c = [1, 2, 3, 4]
        GEMM.sgemm(m: 2, n: 2, k: 1, alpha: 0, a: [1, 1], rowStrideA: 1, colStrideA: 1, b: [1, 1],
                   rowStrideB: 1, colStrideB: 1, beta: 2, c: &c, ldc: 2)
        #expect(c == [2, 4, 6, 8])
        GEMM.sgemm(m: 0, n: 2, k: 3, alpha: 1, a: a, rowStrideA: 3, colStrideA: 1, b: b, rowStrideB: 2,
                   colStrideB: 1, beta: 0, c: &c, ldc: 2)
        GEMM.sgemm(m: 2, n: 0, k: 3, alpha: 1, a: a, rowStrideA: 3, colStrideA: 1, b: b, rowStrideB: 0,
                   colStrideB: 1, beta: 0, c: &c, ldc: 2)
        #expect(c == [2, 4, 6, 8])
    }

    @Test("expanded operands (stride 0) multiply without a copy", arguments: GEMMKernelPath.supported)
    func expandedOperands(path: GEMMKernelPath) {
        // A is one row repeated (row stride 0); B is one column repeated (column stride 0).
        let (m, n, k) = (9, 20, 7)
        let row = gemmTestValues(k, seed: 7).map { Float($0) }
        let column = gemmTestValues(k, seed: 8).map { Float($0) }
        var c = [Float](repeating: .nan, count: m * n)
        GEMM.sgemm(m: m, n: n, k: k, alpha: 1, a: row, rowStrideA: 0, colStrideA: 1,
                   b: column, rowStrideB: 1, colStrideB: 0, beta: 0, c: &c, ldc: n, path: path)
        var dot = 0.0
        for p in 0..<k { dot += Double(row[p]) * Double(column[p]) }
        expectGEMMClose(c.map { Double($0) }, [Double](repeating: dot, count: m * n), ldc: n,
                        atol: 1e-5, rtol: 1e-5, "\(path) expanded")
    }

    @Test("the thread split does not change results: wide, tall and square products, 1, 2 and 4 threads")
    func threadSplitIsExact() {
        for g in [GEMMCase(m: 140, n: 333, k: 97, transposeB: true, beta: 0.5),  // 2: split over columns
                  GEMMCase(m: 777, n: 61, k: 90, transposeA: true),  // 2: split over rows
                  GEMMCase(m: 256, n: 256, k: 256, beta: 1),  // 2: rows, so each half reads A in place
                  GEMMCase(m: 300, n: 310, k: 97, alpha: -1, ldcPadding: 2)] {  // 4: a 2 x 2 grid
            let operands = GEMMOperands(g)
            let one = Threading.withThreads(1) { operands.sgemm(g, path: .best) }
            let two = Threading.withThreads(2) { operands.sgemm(g, path: .best) }
            let four = Threading.withThreads(4) { operands.sgemm(g, path: .best) }
            // Each element is accumulated in the same order whichever thread computes it.
            let identical = one.map { $0.bitPattern } == two.map { $0.bitPattern }
                && one.map { $0.bitPattern } == four.map { $0.bitPattern }
            #expect(identical, "\(g.testDescription)")
            let (atol, rtol) = sgemmTolerance(k: g.k)
            let expected = operands.reference(g, roundedToFloat: true)
            let actual: [Double] = two.map { Double($0) }
            expectGEMMClose(actual, expected, ldc: g.ldc, atol: atol, rtol: rtol, "2 threads vs float64 reference")
        }
    }

    @Test("Tensor.matmul runs through GEMM on transposed views")
    func tensorMatmulTransposed() {
        let a = Tensor(gemmTestValues(6 * 4, seed: 3).map { Float($0) }, shape: [6, 4])
        let b = Tensor(gemmTestValues(5 * 4, seed: 4).map { Float($0) }, shape: [5, 4])
        let product = a.matmul(b.transposed(0, 1)).floats
        let av: [Float] = a.floats, bv: [Float] = b.floats
        var expected = [Double](repeating: 0, count: 30)
        for i in 0..<6 {
            for j in 0..<5 {
                for p in 0..<4 { expected[i * 5 + j] += Double(av[i * 4 + p]) * Double(bv[j * 4 + p]) }
            }
        }
        expectGEMMClose(product.map { Double($0) }, expected, ldc: 5, atol: 1e-6, rtol: 1e-6, "matmul")
    }
}

@Suite("Threading.parallelFor")
struct ParallelForTests {
    @Test("runs every chunk exactly once", arguments: [0, 1, 2, 3, 7, 64])
    func everyChunkOnce(chunks: Int) {
        var hits = [Int](repeating: 0, count: chunks)
        hits.withUnsafeMutableBufferPointer { hits in
            // Each chunk writes only its own element.
            Threading.parallelFor(chunks: chunks) { hits[$0] += 1 }
        }
        #expect(hits == [Int](repeating: 1, count: chunks))
    }

    @Test("nested and concurrent calls complete and cover every chunk")
    func nestedAndConcurrent() async {
        let results = await withTaskGroup(of: Int.self) { group in
            for task in 0..<4 {
                group.addTask {
                    var cells = [Int](repeating: 0, count: 6 * 5)
                    cells.withUnsafeMutableBufferPointer { cells in
                        // Outer chunk i owns cells[i * 5 ..< i * 5 + 5]; inner chunk j owns one of them.
                        Threading.parallelFor(chunks: 6) { i in
                            Threading.parallelFor(chunks: 5) { j in cells[i * 5 + j] = task + 1 }
                        }
                    }
                    return cells.allSatisfy { $0 == task + 1 } ? 1 : 0
                }
            }
            return await group.reduce(0, +)
        }
        #expect(results == 4)
    }
}
