import Ember
import Testing

// The one-pass softmax numerators of an attention tile (`ember_sexp_shifted_rows_avx512`) against
// the passes they replace: subtract each row's shift, `exp` over the row, sum in eight lanes chunk
// by chunk, the lanes left to right, then the last values. Bitwise, on row lengths below, at and
// off multiples of 8, 16 and 64, with a padded row stride, a fully masked row and a NaN.

@Suite("Attention exponentials kernel")
struct AttentionExpKernelTests {
    /// The separate passes on one row.
    static func separatePasses(_ row: inout [Float], shift: Float) -> Float {
        for c in row.indices { row[c] -= shift }
        row.withUnsafeMutableBufferPointer { p in ActivationKernels.run(.exp, p.baseAddress!, into: p.baseAddress!, count: p.count) }
        var lanes = SIMD8<Float>(repeating: 0)
        var c = 0
        while c + 8 <= row.count {
            for j in 0..<8 { lanes[j] += row[c + j] }
            c += 8
        }
        var sum = lanes.sum()
        while c < row.count { sum += row[c]; c += 1 }
        return sum
    }

    @Test("one pass equals the separate passes bitwise")
    func matchesSeparatePasses() {
        guard ActivationKernels.exp16 else {
            print("AttentionExpKernelTests: no AVX-512 kernels dispatched on this CPU; the one-pass kernel is not used here")
            return
        }
        for cols in [1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 100, 128] {
            let rows = 4, ld = cols + 3
            var tile = gemmTestValues(rows * ld, seed: UInt64(cols)).map { Float($0 * 6) }
            var shifts = gemmTestValues(rows, seed: 99).map { Float($0) }
            // Row 1: every key masked (the caller passes -inf scores and shift 0: exp gives 0).
            for c in 0..<cols { tile[ld + c] = -.infinity }
            shifts[1] = 0
            tile[2 * ld + cols / 2] = .nan  // row 2's sum is NaN
            var expected = tile, expectedSums = [Float](repeating: 0, count: rows)
            for r in 0..<rows {
                var row = Array(expected[(r * ld)..<(r * ld + cols)])
                expectedSums[r] = Self.separatePasses(&row, shift: shifts[r])
                expected.replaceSubrange((r * ld)..<(r * ld + cols), with: row)
            }
            var sums = [Float](repeating: -1, count: rows)
            tile.withUnsafeMutableBufferPointer { t in
                shifts.withUnsafeBufferPointer { s in
                    sums.withUnsafeMutableBufferPointer { out in
                        ActivationKernels.exponentiateRows(t.baseAddress!, rows: rows, cols: cols, ld: ld,
                                                           shifts: s.baseAddress!, sums: out.baseAddress!)
                    }
                }
            }
            expectSameBits(tile, expected, "tile, \(cols) columns")  // the padding columns untouched too
            expectSameBits(sums, expectedSums, "sums, \(cols) columns")
        }
    }
}
