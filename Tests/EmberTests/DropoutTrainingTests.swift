import Ember
import Testing
import _EmberTestSupport

/// Dropout in training beyond the statistics in DropoutTests: p = 1 and the backward pass with a
/// contiguous upstream gradient.
@Suite struct DropoutTrainingTests {
    /// PyTorch's `_dropout_impl` returns `input * 0` for p = 1 without drawing a mask.
    @Test func probabilityOneDrawsNothing() {
        let g = Generator(seed: 6)
        let before = g.state
        let y = withGenerator(g) { Dropout(1)(Tensor.ones([64])) }
        #expect(y.floats.allSatisfy { $0 == 0 })
        #expect(g.state == before, "p = 1 draws no random numbers")
    }

    /// With `x = 1` the output is the multiplier itself, so the gradient for an upstream gradient
    /// `w` must be `w * y` exactly.
    @Test func gradientWithAContiguousUpstreamGradientUsesTheMask() throws {
        for dtype in [DType.float32, .float64] {
            let x = Tensor.ones([1000], dtype: dtype).requiringGrad()
            let w = withGenerator(Generator(seed: 2)) { Tensor.normal([1000]).to(dtype) }
            let y = withGenerator(Generator(seed: 1)) { Dropout(0.3)(x) }
            (y * w).sum().backward()
            expectBitwiseEqual(try #require(x.grad), w * y.detached(), "\(dtype)")
        }
    }
}
