import Ember
import Foundation
import Testing
import _EmberTestSupport

// Blocked pairwise summation (`pairwiseSum`): accurate on long inputs, and its order depends only
// on the element count (not on alignment or on where the elements lie).

@Suite struct SummationTests {
    @Test(arguments: [1, 7, 8, 31, 32, 33, 255, 256, 257, 1000, 100_003])
    func sumIsCloseToTheExactSum(_ n: Int) {
        let g = Generator(seed: UInt64(n))
        for dtype in [DType.float32, .float64] {
            let x = Tensor.uniform([n], low: -1, high: 3, dtype: dtype, generator: g)
            let values = x.to(.float64).doubles
            let exact = values.reduce(0, +)  // float64 sums of at most 1e5 terms: error ~1e-11
            let magnitude = values.reduce(0) { $0 + Swift.abs($1) }
            let tolerance = (dtype == .float32 ? 4e-7 : 1e-15) * magnitude * Double(max(1, Int(log2(Double(n)))))
            let sum = x.sum().to(.float64).doubles[0]
            #expect(Swift.abs(sum - exact) <= tolerance, "n=\(n) \(dtype): \(sum) vs \(exact)")
            let mean = x.mean().to(.float64).doubles[0]
            #expect(Swift.abs(mean - exact / Double(n)) <= tolerance / Double(n) + 1e-7, "mean n=\(n) \(dtype)")
        }
    }

    @Test func sumDependsOnlyOnTheValuesNotTheirPlace() {
        let g = Generator(seed: 9)
        let x = Tensor.uniform([3, 1001], low: -1, high: 1, generator: g)
        // The same 1000 values at three different alignments.
        let a = x[0, 1...], b = x[0, 1...].contiguous()
        let padded = Tensor.cat([Tensor.zeros([3]), x[0, 1...]], axis: 0)[3...]
        expectBitwiseEqual(a.sum(), b.sum())
        expectBitwiseEqual(padded.sum(), b.sum())
        // Rows reduced along an axis equal each row reduced alone.
        let rows = x.sum(axis: 1)
        for i in 0..<3 { expectBitwiseEqual(rows[i], x[i].sum(), "row \(i)") }
    }
}
