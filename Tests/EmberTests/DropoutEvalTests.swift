import Ember
import Testing
import _EmberTestSupport

/// Every dropout variant is the identity in evaluation mode and draws no random numbers.
@Suite struct DropoutEvalTests {
    static let variants: [(String, @Sendable () -> Dropout)] = [
        ("Dropout", { Dropout(0.5) }), ("Dropout1d", { Dropout1d(0.5) }),
        ("Dropout2d", { Dropout2d(0.5) }), ("AlphaDropout", { AlphaDropout(0.5) }),
    ]

    @Test(arguments: 0..<variants.count)
    func everyVariantIsTheIdentityInEvalAndDrawsNothing(_ index: Int) {
        let (name, make) = Self.variants[index]
        let x = withGenerator(Generator(seed: 5)) { Tensor.normal([2, 3, 4, 5]) }
        let d = make()
        d.eval()
        let g = Generator(seed: 11)
        let before = g.state
        let y = withGenerator(g) { d(x.reshaped(name == "Dropout1d" ? [2, 3, 20] : [2, 3, 4, 5])) }
        expectBitwiseEqual(y.reshaped(x.shape), x, "\(name) in eval")
        #expect(g.state == before, "\(name): eval mode draws no random numbers")
        d.train()
        let z = withGenerator(Generator(seed: 11)) { d(x.reshaped(name == "Dropout1d" ? [2, 3, 20] : [2, 3, 4, 5])) }
        #expect(z.reshaped(x.shape).doubles != x.doubles, "\(name) changes its input in training")
    }

    @Test func alphaDropoutWithZeroProbabilityIsTheIdentityInTraining() {
        let x = Tensor.normal([100])
        expectBitwiseEqual(AlphaDropout(0)(x), x)
    }
}
