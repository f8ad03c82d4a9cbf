import Ember
import Foundation
import Testing

// float32 `log` is Cephes' polynomial (`logVector`, and its AVX2 copy): within 1 ulp of the
// correctly rounded logarithm everywhere, with IEEE's special values.

@Suite struct LogAccuracyTests {
    /// Units in the last place between `value` and the exact `reference`.
    static func ulps(_ value: Float, _ reference: Double) -> Double {
        let rounded = Float(reference)
        let ulp = Double(rounded.ulp == 0 ? Float.leastNonzeroMagnitude : rounded.ulp)
        return Swift.abs(Double(value) - reference) / ulp
    }

    @Test func logIsWithinOneUlp() {
        // Every binade from the smallest denormal to the largest float, 4096 values in each, and
        // the neighbourhood of 1 (where log is near 0) densely.
        var xs: [Float] = []
        var exponent = -149
        while exponent <= 127 {
            let base = Float(sign: .plus, exponent: exponent, significand: 1)
            for i in 0..<4096 { xs.append(base * (1 + Float(i) / 4096)) }
            exponent += 1
        }
        for i in -20_000...20_000 { xs.append(1 + Float(i) * 1e-7) }
        xs = xs.filter { $0.isFinite && $0 > 0 }
        for (name, values) in [("contiguous", Tensor(xs).log().floats),
                               ("strided", Tensor(xs + xs, shape: [2, xs.count]).transposed(0, 1)
                                   .contiguous().transposed(0, 1)[0].log().floats)] {
            var worst = 0.0, at: Float = 0
            for (x, y) in zip(xs, values) {
                let u = Self.ulps(y, Foundation.log(Double(x)))
                if u > worst { (worst, at) = (u, x) }
            }
            #expect(worst <= 1.0, "\(name): \(worst) ulp at x = \(at)")
        }
    }

    @Test func logSpecialValues() {
        let x = Tensor([0, -0.0, -1, -.infinity, .infinity, .nan, 1, Float.leastNonzeroMagnitude,
                        Float.greatestFiniteMagnitude] as [Float])
        let y = x.log().floats
        #expect(y[0] == -.infinity && y[1] == -.infinity)
        #expect(y[2].isNaN && y[3].isNaN && y[5].isNaN)
        #expect(y[4] == .infinity)
        #expect(y[6] == 0)
        #expect(Swift.abs(Double(y[7]) - Foundation.log(Double(Float.leastNonzeroMagnitude))) < 1e-5)
        #expect(Swift.abs(Double(y[8]) - Foundation.log(Double(Float.greatestFiniteMagnitude))) < 1e-4)
    }
}
