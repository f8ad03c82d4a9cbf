import Ember
import Testing

// The products convolutions run on without a column matrix: indirect B
// (`GEMM.sgemm(_:n:b:rowOffsets:...)`, row p of B read in place at an offset from a base pointer,
// A packed once) and indirect A (`GEMM.sgemm(m:n:k:a:rowOffsets:...)`, the weight gradient's). Every
// path this CPU supports, against a float64 triple loop on the same float32 inputs.

@Suite("GEMM indirect B")
struct GEMMIndirectTests {
    /// (m, n, k, beta, offset step): overlapping rows (step 1 or 3, as a convolution's taps),
    /// K past one panel (kc 256 or 512), rows past one A block (mc), edge tiles both ways.
    static let cases: [(m: Int, n: Int, k: Int, beta: Float, step: Int)] = [
        (1, 1, 1, 0, 1), (7, 5, 13, 0, 1), (32, 37, 288, 0, 3), (65, 33, 600, 0.5, 2),
        (203, 70, 130, 1, 7), (6, 16, 9, 0, 16),
    ]

    @Test("matches the float64 reference on every supported path", arguments: GEMMKernelPath.supported)
    func matchesReference(path: GEMMKernelPath) {
        for (m, n, k, beta, step) in Self.cases {
            let a = gemmTestValues(m * k, seed: 3).map { Float($0) }
            // Rows start `step` apart but in shuffled order; the buffer keeps the kernel's tile
            // width readable past the last row's end.
            let offsets = (0..<k).map { ($0 * 7 % k) * step }
            let b = gemmTestValues(k * step + n + 64, seed: 4).map { Float($0) }
            let c0 = gemmTestValues(m * n, seed: 5).map { Float($0) }
            var c = beta == 0 ? [Float](repeating: .nan, count: m * n) : c0
            let packed = a.withUnsafeBufferPointer {
                GEMM.PackedSingleA(m: m, k: k, a: $0.baseAddress!, rowStride: k, colStride: 1, path: path)
            }
            b.withUnsafeBufferPointer { bp in
                offsets.withUnsafeBufferPointer { op in
                    GEMM.sgemm(packed, n: n, b: bp.baseAddress!, rowOffsets: op.baseAddress!, beta: beta, c: &c, ldc: n)
                }
            }
            var worst = 0.0
            for i in 0..<m {
                for j in 0..<n {
                    var sum = beta == 0 ? 0 : Double(beta) * Double(c0[i * n + j])
                    for p in 0..<k { sum += Double(a[i * k + p]) * Double(b[offsets[p] + j]) }
                    worst = max(worst, abs(Double(c[i * n + j]) - sum) / (1 + abs(sum)))
                }
            }
            #expect(worst < 1e-5 * Double(k).squareRoot(), "\(path) m=\(m) n=\(n) k=\(k) beta=\(beta): worst \(worst)")
        }
    }

    @Test("indirect B with a vector stride (a tile over several rows) matches the float64 reference on every supported path",
          arguments: GEMMKernelPath.supported)
    func vectorStrideMatchesReference(path: GEMMKernelPath) {
        for (m, k) in [(13, 20), (32, 9), (70, 300)] {
            let a = gemmTestValues(m * k, seed: 11).map { Float($0) }
            let packed = a.withUnsafeBufferPointer {
                GEMM.PackedSingleA(m: m, k: k, a: $0.baseAddress!, rowStride: k, colStride: 1, path: path)
            }
            let (vw, nr, stride) = (packed.vectorWidth, packed.tileColumns, 37)
            let offsets = (0..<k).map { ($0 * 5 % k) * 3 }
            let b = gemmTestValues(3 * k + nr / vw * stride + nr + 64, seed: 12).map { Float($0) }
            // Element (p, j) of B: vector j / vw of row p starts `stride` after the previous one.
            func bAt(_ p: Int, _ j: Int) -> Float { b[offsets[p] + j / vw * stride + j % vw] }
            for n in Set([nr, vw, max(1, nr - 3)]) {
                var c = [Float](repeating: .nan, count: m * n)
                b.withUnsafeBufferPointer { bp in
                    offsets.withUnsafeBufferPointer { op in
                        GEMM.sgemm(packed, n: n, b: bp.baseAddress!, rowOffsets: op.baseAddress!, vectorStride: stride, beta: 0, c: &c, ldc: n)
                    }
                }
                var worst = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        var sum = 0.0
                        for p in 0..<k { sum += Double(a[i * k + p]) * Double(bAt(p, j)) }
                        worst = max(worst, abs(Double(c[i * n + j]) - sum) / (1 + abs(sum)))
                    }
                }
                #expect(worst < 1e-5 * Double(k).squareRoot(), "\(path) m=\(m) n=\(n) k=\(k): worst \(worst)")
            }
        }
    }

    @Test("indirect A (rows at offsets, B packed) matches the float64 reference on every supported path",
          arguments: GEMMKernelPath.supported)
    func rowsOfAMatchReference(path: GEMMKernelPath) {
        // (m, n, k, beta, step): B transposed (row stride 1, as a weight gradient reads its output
        // gradient), K past one panel, edge tiles, more columns than one strip.
        let cases: [(m: Int, n: Int, k: Int, beta: Float, step: Int)] = [
            (1, 1, 1, 0, 1), (7, 5, 13, 0, 1), (288, 32, 600, 1, 3), (13, 40, 1100, 0.5, 34),
        ]
        for (m, n, k, beta, step) in cases {
            let offsets = (0..<m).map { ($0 * 5 % m) * step }
            let a = gemmTestValues(m * step + k + 8, seed: 6).map { Float($0) }
            let b = gemmTestValues(k * n, seed: 7).map { Float($0) }  // element (p, j) at b[j * k + p]
            let c0 = gemmTestValues(m * n, seed: 8).map { Float($0) }
            var c = beta == 0 ? [Float](repeating: .nan, count: m * n) : c0
            a.withUnsafeBufferPointer { ap in
                offsets.withUnsafeBufferPointer { op in
                    GEMM.sgemm(m: m, n: n, k: k, a: ap.baseAddress!, rowOffsets: op.baseAddress!, b: b, rowStrideB: 1,
                               colStrideB: k, beta: beta, c: &c, ldc: n, path: path)
                }
            }
            var worst = 0.0
            for i in 0..<m {
                for j in 0..<n {
                    var sum = beta == 0 ? 0 : Double(beta) * Double(c0[i * n + j])
                    for p in 0..<k { sum += Double(a[offsets[i] + p]) * Double(b[j * k + p]) }
                    worst = max(worst, abs(Double(c[i * n + j]) - sum) / (1 + abs(sum)))
                }
            }
            #expect(worst < 1e-5 * Double(k).squareRoot(), "\(path) m=\(m) n=\(n) k=\(k) beta=\(beta): worst \(worst)")
        }
    }
}
