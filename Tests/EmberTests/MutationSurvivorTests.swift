import Ember
import Foundation
import Testing

/// A helper object (not a Module) that keeps a weak back-reference to the model it serves.
private final class Helper {
    let parent: WeakModuleReference<Module>
    init(_ parent: Module) { self.parent = WeakModuleReference(parent) }
}

private final class Model: Module {
    let fc = Linear(2, 2)
    var helper: Helper?
}

/// Tests for the automatic mutants that survived the suite (TESTING.md).
@Suite struct MutationSurvivorTests {
    /// A leaf (here a `WeakModuleReference`) inside a non-Module helper is not searched for
    /// hidden modules, so a helper holding a weak back-reference gives no discovery warning.
    @Test func aHelperHoldingAWeakBackReferenceIsNotWarnedAbout() {
        let model = Model()
        model.helper = Helper(model)
        #expect(model.discoveryWarnings().isEmpty, "\(model.discoveryWarnings())")
        #expect(model.namedModules().map(\.0) == ["", "fc"])
    }

    /// AlphaDropout on zeros: kept elements give `b = -a alpha' p`, dropped ones `a alpha' + b`
    /// (`y = a (m x + (1 - m) alpha') + b`); the same seed on ones shows which were kept.
    @Test func alphaDropoutAddsItsShift() {
        let p = 0.5, alpha = -1.7580993408473766
        let a = 1 / ((1 - p) * (1 + p * alpha * alpha)).squareRoot()
        let b = -a * alpha * p
        let layer = AlphaDropout(p)
        let zeros = withGenerator(Generator(seed: 4)) { layer(Tensor.zeros([256])) }.doubles
        let ones = withGenerator(Generator(seed: 4)) { layer(Tensor.ones([256])) }.doubles
        var kept = 0
        for i in 0..<256 {
            let wasKept = abs(ones[i] - zeros[i]) > 1e-6
            kept += wasKept ? 1 : 0
            let expected = wasKept ? b : a * alpha + b
            #expect(abs(zeros[i] - expected) < 1e-5, "element \(i): \(zeros[i]), expected \(expected)")
        }
        #expect(kept > 64 && kept < 192)
    }
}
