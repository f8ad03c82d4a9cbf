import Ember
import Foundation
import Testing
import _EmberTestSupport

@Suite struct DropoutTests {
    @Test(arguments: [0.1, 0.3, 0.5, 0.7])
    func keptFractionAndScaleInTraining(_ p: Double) {
        let n = 100_000
        let x = Tensor((0..<n).map { Float($0 % 97) + 1 })
        let y = withGenerator(Generator(seed: 9)) { Dropout(p)(x) }
        let xs = x.floats, ys = y.floats
        let scale = 1 / Float(1 - p)
        var kept = 0
        for i in 0..<n where ys[i] != 0 {
            kept += 1
            #expect(ys[i] == xs[i] * scale, "kept values are exactly x * (1 / fl(1 - p))")
        }
        let mean = Double(n) * (1 - p), sigma = (Double(n) * p * (1 - p)).squareRoot()
        #expect(abs(Double(kept) - mean) <= 5 * sigma, "kept \(kept), expected \(mean) ± 5σ (\(5 * sigma))")
    }

    @Test func evalReturnsInputUnchangedAndDrawsNothing() {
        let x = Tensor.normal([8, 8])
        let d = Dropout(0.5)
        d.eval()
        let g = Generator(seed: 3)
        let before = g.state
        let y = withGenerator(g) { d(x) }
        expectBitwiseEqual(y, x)
        #expect(g.state == before, "eval mode draws no random numbers")
    }

    @Test func probabilityOneGivesZerosAndNaNForNonFinite() {
        let y = Dropout(1)(Tensor([1, -2, Float.infinity, 3] as [Float]))
        let v = y.floats
        #expect(v[0] == 0 && v[1] == 0 && v[3] == 0 && v[2].isNaN)
    }

    @Test func gradientUsesTheSameMask() throws {
        let x = Tensor.ones([1000]).requiringGrad()
        let y = withGenerator(Generator(seed: 1)) { Dropout(0.3)(x) }
        y.sum().backward()
        expectBitwiseEqual(try #require(x.grad), y.detached(), "dL/dx = mask * scale = y for x = 1")
    }

    @Test func channelDropoutZeroesWholeChannels() {
        let x = Tensor.ones([4, 6, 5])
        let y = withGenerator(Generator(seed: 2)) { Dropout1d(0.5)(x) }.floats
        for c in 0..<24 {
            let channel = Set(y[(c * 5)..<(c * 5 + 5)])
            #expect(channel == [0] || channel == [2], "channel \(c) is all dropped or all kept")
        }
        let z = withGenerator(Generator(seed: 2)) { Dropout2d(0.5)(Tensor.ones([2, 3, 2, 2])) }.floats
        for c in 0..<6 { #expect(Set(z[(c * 4)..<(c * 4 + 4)]).count == 1) }
    }

    @Test func alphaDropoutValuesOnZeroInput() {
        let y = withGenerator(Generator(seed: 4)) { AlphaDropout(0.5)(Tensor.zeros([1000])) }.doubles
        // PyTorch: p = 0.5 on zero input gives ±0.7791939.
        #expect(y.allSatisfy { abs(abs($0) - 0.7791939) < 1e-6 })
        #expect(y.contains { $0 > 0 } && y.contains { $0 < 0 })
    }

    @Test func functionalDropoutNeedsAnExplicitMode() {
        let x = Tensor.ones([10])
        expectBitwiseEqual(dropout(x, p: 0.5, training: false), x)
        #expect(Dropout(0.5).extraDescription == "p=0.5, inplace=False")
    }

    @Test func invalidProbabilityStops() async {
        let high = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) { _ = Dropout(1.5) }
        #expect(standardErrorText(high).contains("dropout probability has to be between 0 and 1, but got 1.5"))
        let low = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) { _ = Dropout(-0.1) }
        #expect(standardErrorText(low).contains("dropout probability has to be between 0 and 1, but got -0.1"))
    }
}
