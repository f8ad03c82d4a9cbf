import Ember
import EmberStorage
import Foundation
import Testing

// The one-pass softmax numerators of an attention tile (`ember_sexp_shifted_rows_avx512` and its
// AVX2 twin, on every path this CPU runs, the two bitwise equal where both run): each
// value within 2 ulp of e^(x - shift) (a fused multiply-add exponential, not `ember_sexp_avx512`'s
// bits), 0 for a masked (-inf) score, NaN kept, the padding columns untouched, and each row's sum
// the eight-lane sum of the values written (chunks of eight in order, lanes left to right, then the
// last values), bitwise. Row lengths below, at and off multiples of 8, 16 and 64.

@Suite("Attention exponentials kernel")
struct AttentionExpKernelTests {
    /// Units in the last place between `a` and the float nearest `exact`.
    static func ulps(_ a: Float, _ exact: Double) -> Int {
        let e = Float(exact)
        if a == e { return 0 }
        return abs(Int(Int32(bitPattern: a.bitPattern)) - Int(Int32(bitPattern: e.bitPattern)))
    }

    /// The eight-lane sum of a row's values.
    static func laneSum(_ row: ArraySlice<Float>) -> Float {
        let values = Array(row)
        var lanes = SIMD8<Float>(repeating: 0)
        var c = 0
        while c + 8 <= values.count {
            for j in 0..<8 { lanes[j] += values[c + j] }
            c += 8
        }
        var sum = lanes.sum()
        while c < values.count { sum += values[c]; c += 1 }
        return sum
    }

    /// The kernel paths this CPU runs.
    static var paths: [GEMMKernelPath] { GEMMKernelPath.supported.filter { $0 == .avx2 || $0 == .avx512 } }

    static func run(_ tile: inout [Float], rows: Int, cols: Int, ld: Int, shifts: [Float], path: GEMMKernelPath) -> [Float] {
        var sums = [Float](repeating: -1, count: rows)
        tile.withUnsafeMutableBufferPointer { t in
            shifts.withUnsafeBufferPointer { s in
                sums.withUnsafeMutableBufferPointer { out in
                    ActivationKernels.exponentiateRows(t.baseAddress!, rows: rows, cols: cols, ld: ld,
                                                       shifts: s.baseAddress!, sums: out.baseAddress!, path: path)
                }
            }
        }
        return sums
    }

    @Test("within 2 ulp of exp; masked scores give 0, NaN stays; sums are the lane sums of the values")
    func accurateAndSummed() {
        if Self.paths.isEmpty { print("AttentionExpKernelTests: no AVX2 or AVX-512 on this CPU; the one-pass kernel is not used here") }
        for path in Self.paths {
        for cols in [1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 128] {
            let rows = 4, ld = cols + 3
            // Scores up to 60 below the row's shift; row 0's shift is its maximum (one value gives 1).
            var tile = gemmTestValues(rows * ld, seed: UInt64(cols)).map { Float($0 * 30 - 30) }
            var shifts = [Float](repeating: 0, count: rows)
            for r in 0..<rows { shifts[r] = tile[(r * ld)..<(r * ld + cols)].max()! }
            for c in 0..<cols { tile[ld + c] = -.infinity }  // row 1: every key masked (shift 0)
            shifts[1] = 0
            tile[2 * ld + cols / 2] = .nan  // row 2's sum is NaN
            let before = tile
            let sums = Self.run(&tile, rows: rows, cols: cols, ld: ld, shifts: shifts, path: path)
            var worst = 0
            for r in 0..<rows {
                for c in 0..<cols {
                    let x = before[r * ld + c], y = tile[r * ld + c]
                    if x.isNaN { #expect(y.isNaN, "NaN kept, \(cols) columns"); continue }
                    if x == -.infinity { #expect(y == 0, "masked score, \(cols) columns"); continue }
                    worst = max(worst, Self.ulps(y, exp(Double(x - shifts[r]))))  // of the float difference
                }
                for c in cols..<ld { #expect(tile[r * ld + c].bitPattern == before[r * ld + c].bitPattern, "padding untouched") }
                let expected = Self.laneSum(tile[(r * ld)..<(r * ld + cols)])
                #expect(sums[r].bitPattern == expected.bitPattern || (sums[r].isNaN && expected.isNaN),
                        "row \(r) sum, \(cols) columns: \(sums[r]) vs \(expected)")
            }
            #expect(worst <= 2, "\(path), \(cols) columns: \(worst) ulp")
            #expect(tile[0..<cols].contains(1), "the row's maximum gives exactly 1")
        }
        }
    }

    @Test("the AVX2 and AVX-512 kernels give the same bits", .enabled(if: GEMMKernelPath.avx512.isSupported, "needs AVX-512"))
    func pathsAgree() {
        for cols in [5, 8, 13, 16, 24, 40, 64, 77, 128] {
            let rows = 3, ld = cols + 1
            let start = gemmTestValues(rows * ld, seed: UInt64(cols + 100)).map { Float($0 * 40 - 40) }
            let shifts = (0..<rows).map { r in start[(r * ld)..<(r * ld + cols)].max()! }
            var a = start, b = start
            let sa = Self.run(&a, rows: rows, cols: cols, ld: ld, shifts: shifts, path: .avx2)
            let sb = Self.run(&b, rows: rows, cols: cols, ld: ld, shifts: shifts, path: .avx512)
            #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "\(cols) columns: values")
            #expect(sa.map(\.bitPattern) == sb.map(\.bitPattern), "\(cols) columns: sums")
        }
    }

    @Test("every float in [-104, 0] at a fine grid: within 2 ulp; underflow to 0 below")
    func wholeRange() {
        for path in Self.paths {
        let count = 200_000
        var tile = (0..<count).map { Float(-104.0 * Double($0) / Double(count - 1)) }
        tile += [-0.0, -1e-30, -103.97, -110, -1e30]
        let before = tile
        _ = Self.run(&tile, rows: 1, cols: tile.count, ld: tile.count, shifts: [0], path: path)
        var worst = 0, at: Float = 0
        for (x, y) in zip(before, tile) {
            let u = Self.ulps(y, exp(Double(x)))
            if u > worst { (worst, at) = (u, x) }
        }
        #expect(worst <= 2, "\(path): worst \(worst) ulp at \(at)")
        #expect(tile[count] == 1 && tile[count + 1] == 1)
        #expect(tile[count + 3] == 0 && tile[count + 4] == 0)
        }
    }
}
