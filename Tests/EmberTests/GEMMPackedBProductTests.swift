import EmberStorage
import Testing

/// `GEMM.sgemm`/`dgemm(packedB:)`: a B packed once (`packFloatB`/`packDoubleB` at the dispatched
/// strip width) multiplied by A read in place gives bitwise what the unpacked product gives where
/// that reads A in place in one panel; with a deeper packing of which only the first `k` rows are
/// used; sizes around the tile edges, a transposed B, `beta` 0 and 1.
@Suite("GEMM: products with B packed once")
struct GEMMPackedBProductTests {
    @Test("bitwise the unpacked product; part of a deeper packing", arguments: [false, true])
    func matchesUnpacked(double: Bool) {
        let nr = GEMM.tileColumns(double: double)
        for (m, n, k, transposed, beta) in [(2, 1, 1, false, 0.0), (7, nr + 3, 13, false, 1.0), (29, 3 * nr, 32, true, 0.0),
                                            (50, 2 * nr - 1, 20, true, 1.0)] {
            let extra = 5  // packed rows beyond k
            let a = gemmTestValues(m * k, seed: UInt64(m)), b = gemmTestValues((k + extra) * n, seed: UInt64(n))
            let c0 = gemmTestValues(m * n, seed: 7)
            // B (k + extra) x n: row-major, or its transpose stored (element (p, j) at j * (k + extra) + p).
            let (rs, cs) = transposed ? (1, k + extra) : (n, 1)
            func run<T: BinaryFloatingPoint>(_: T.Type, packedRows: Int, packed: Bool) -> [T] {
                let a = a.map { T($0) }, b = b.map { T($0) }
                var c = c0.map { T($0) }
                var store = [T](repeating: .nan, count: GEMM.packedBCount(k: packedRows, n: n, double: double))
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in store.withUnsafeMutableBufferPointer { sp in
                    c.withUnsafeMutableBufferPointer { cp in
                        if let af = ap.baseAddress as? UnsafePointer<Float>, let bf = bp.baseAddress as? UnsafePointer<Float>,
                           let sf = sp.baseAddress as? UnsafeMutablePointer<Float>, let cf = cp.baseAddress as? UnsafeMutablePointer<Float> {
                            if packed {
                                GEMM.packFloatB(k: packedRows, n: n, bf, rowStride: rs, colStride: cs, into: sf, nr: nr)
                                GEMM.sgemm(m: m, n: n, k: k, alpha: 0.5, a: af, rowStrideA: k, colStrideA: 1, packedB: sf,
                                           packedRows: packedRows, beta: Float(beta), c: cf, ldc: n)
                            } else {
                                GEMM.sgemm(m: m, n: n, k: k, alpha: 0.5, a: af, rowStrideA: k, colStrideA: 1, b: bf,
                                           rowStrideB: rs, colStrideB: cs, beta: Float(beta), c: cf, ldc: n)
                            }
                        } else if let ad = ap.baseAddress as? UnsafePointer<Double>, let bd = bp.baseAddress as? UnsafePointer<Double>,
                                  let sd = sp.baseAddress as? UnsafeMutablePointer<Double>, let cd = cp.baseAddress as? UnsafeMutablePointer<Double> {
                            if packed {
                                GEMM.packDoubleB(k: packedRows, n: n, bd, rowStride: rs, colStride: cs, into: sd, nr: nr)
                                GEMM.dgemm(m: m, n: n, k: k, alpha: 0.5, a: ad, rowStrideA: k, colStrideA: 1, packedB: sd,
                                           packedRows: packedRows, beta: beta, c: cd, ldc: n)
                            } else {
                                GEMM.dgemm(m: m, n: n, k: k, alpha: 0.5, a: ad, rowStrideA: k, colStrideA: 1, b: bd,
                                           rowStrideB: rs, colStrideB: cs, beta: beta, c: cd, ldc: n)
                            }
                        }
                    }
                } } }
                return c
            }
            let label = "m \(m) n \(n) k \(k) transposed \(transposed) beta \(beta)"
            if double {
                let want = run(Double.self, packedRows: k, packed: false)
                #expect(run(Double.self, packedRows: k, packed: true).map(\.bitPattern) == want.map(\.bitPattern), "\(label)")
                #expect(run(Double.self, packedRows: k + extra, packed: true).map(\.bitPattern) == want.map(\.bitPattern), "\(label), deeper")
            } else {
                let want = run(Float.self, packedRows: k, packed: false)
                #expect(run(Float.self, packedRows: k, packed: true).map(\.bitPattern) == want.map(\.bitPattern), "\(label)")
                #expect(run(Float.self, packedRows: k + extra, packed: true).map(\.bitPattern) == want.map(\.bitPattern), "\(label), deeper")
            }
        }
    }
}
