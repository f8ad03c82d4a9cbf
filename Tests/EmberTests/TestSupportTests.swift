import Ember
import Testing
import _EmberTestSupport

@Suite struct TestSupportTests {
    @Test func compareAcceptsWithinTolerance() {
        let a = Tensor([1.0, 2.0, 3.0000001] as [Double])
        #expect(compare(a, Tensor([1.0, 2.0, 3.0] as [Double]), atol: 1e-6, rtol: 0) == nil)
    }

    @Test func compareReportsWorstMismatch() throws {
        let m = try #require(compare(Tensor([1, 2.5, 3.1] as [Float]), Tensor([1, 2, 3] as [Float]), atol: 1e-3, rtol: 0))
        #expect(m.message.contains("2 of 3 elements"))
        #expect(m.message.contains("worst at [1]"))
    }

    @Test func compareChecksShapeFirst() throws {
        let m = try #require(compare(Tensor.zeros([2, 3]), Tensor.zeros([3, 2]), atol: 1, rtol: 1))
        #expect(m.message.contains("shape mismatch"))
    }

    @Test func compareTreatsNonFiniteExactly() {
        #expect(compare(Tensor([Float.nan]), Tensor([Float.nan]), atol: 0, rtol: 0) == nil)
        #expect(compare(Tensor([Float.infinity]), Tensor([-Float.infinity]), atol: 1, rtol: 1) != nil)
        #expect(compare(Tensor([Float.nan]), Tensor([1 as Float]), atol: 1, rtol: 1) != nil)
    }

    @Test func gradientCheckerAcceptsCorrectGradient() {
        let a = Tensor([0.3, -1.2, 2.0, 0.7] as [Double], shape: [2, 2])
        let b = Tensor([1.5, 0.1] as [Double], shape: [2])
        #expect(checkGradients([a, b]) { $0[0] * $0[1] + $0[0] } == nil)
    }

    /// The checker itself must catch a wrong backward: here `x * x` whose backward forgets the 2.
    @Test func gradientCheckerRejectsWrongGradient() throws {
        let x = Tensor([0.3, -1.2, 2.0] as [Double])
        let m = checkGradients([x]) { args in
            let v = args[0]
            return Kernels.mul(v, v).recorded("wrong_square", v) { g in [Kernels.mul(g, v)] }
        }
        let mismatch = try #require(m)
        #expect(mismatch.message.contains("gradient of input 0"))
    }
}
