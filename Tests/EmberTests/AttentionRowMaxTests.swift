import CEmberKernels
import Ember
@testable import EmberFunctional
import Testing

/// Attention's row maximum (the shift of each row's exponentials) in C at AVX2 and AVX-512 width
/// (`ember_smax_row_avx2`, `ember_smax_row_avx512`, every one this CPU runs) gives what the Swift
/// lane loop gives: the largest value ignoring NaN, -inf for an empty or all-NaN row, over row
/// lengths around the eight and sixteen lanes.
@Suite("Attention row maximum kernel")
struct AttentionRowMaxTests {
    /// The comparison loop the kernel stands for.
    static func reference(_ row: [Float]) -> Float {
        var m = -Float.infinity
        for x in row where x > m { m = x }
        return m
    }

    @Test("the largest value ignoring NaN, on every length", .enabled(if: ActivationKernels.scoreKernels, "needs AVX2 or AVX-512"))
    func matchesTheComparisonLoop() {
        for path in GEMMKernelPath.supported where path == .avx2 || path == .avx512 {
        for count in Array(0...40) + [63, 64, 65, 100, 128] {
            for pattern in 0..<5 {
                var row = (0..<count).map { Float(($0 * 37 + pattern * 11) % 23) - 15.5 }
                switch pattern {
                case 1: for i in stride(from: 3, to: count, by: 5) { row[i] = .nan }
                case 2: row = row.map { _ in .nan }
                case 3: if count > 0 { row[count - 1] = 1e9 }; for i in stride(from: 0, to: count, by: 7) { row[i] = -.infinity }
                // The maximum first, then NaN in the same lane of later chunks: a NaN must not
                // displace what came before it.
                case 4: if count > 0 { row[0] = 100 }; for i in stride(from: 8, to: count, by: 8) { row[i] = .nan }
                default: break
                }
                // The kernel must not read past the row: a larger value right after it.
                let padded = row + [Float.infinity]
                let got = padded.withUnsafeBufferPointer { ActivationKernels.rowMaximum($0.baseAddress!, count: count, path: path) }
                let want = Self.reference(row)
                #expect(got.bitPattern == want.bitPattern || got == want, "count \(count), pattern \(pattern): \(got) vs \(want)")
                var copy = row
                let viaKernel = copy.withUnsafeMutableBufferPointer { Float.maximum($0.baseAddress!, count: count) }
                #expect(viaKernel == want, "the attention kernel's maximum, count \(count)")
            }
        }
        }
    }
}
