import Ember
import Testing
import _EmberTestSupport

/// A convolution module keeps its weight packed between calls that record no gradient
/// (`ConvolutionWeightCache`). The promise: every such call gives bitwise what the functional
/// convolution gives with the module's current weight and bias, before and after every way they
/// can change; a call that records a gradient is unaffected; and the inference epilogue path
/// (`conv(x, then: bn)` in eval mode) follows the weight too.
@Suite("Convolution: the weight packed between inference calls")
struct ConvolutionWeightCacheTests {
    @Test func inferenceFollowsEveryWeightChange() throws {
        let g = Generator(seed: 21)
        let conv = withGenerator(g) { Conv2d(6, 8, 3, padding: 1) }
        let bn = withGenerator(g) { BatchNorm2d(8) }
        bn.eval()
        let x = Tensor.uniform([3, 6, 10, 9], generator: g)
        func check(_ when: String) -> Tensor {
            let cached = withNoGrad { conv(x) }
            let reference = withNoGrad { conv2d(x, weight: conv.weight.value, bias: conv.bias?.value, padding: 1) }
            expectBitwiseEqual(cached, reference, "\(when)")
            expectBitwiseEqual(withNoGrad { conv(x) }, reference, "\(when): again (kept packing)")
            let fused = withNoGrad { conv(x, then: bn, relu: true) }
            expectBitwiseEqual(fused, withNoGrad { bn(reference).relu() }, "\(when): with the BatchNorm epilogue")
            return cached
        }
        var last = check("first call")
        func expectChanged(_ when: String) {
            let now = check(when)
            #expect(now.floats != last.floats, "\(when): the output follows the new weight")
            last = now
        }
        let sgd = SGD(conv.parameters(), lr: 0.1, momentum: 0.9)
        conv(x).sum().backward()
        sgd.step()
        expectChanged("after an SGD step")
        sgd.step()
        expectChanged("after a second SGD step (in place)")
        let other = withGenerator(Generator(seed: 22)) { Conv2d(6, 8, 3, padding: 1) }
        try conv.loadStateDict(other.stateDict())
        expectChanged("after loadStateDict")
        conv.weight.value = Tensor.uniform([8, 6, 3, 3], generator: g)
        expectChanged("after assigning a weight")
        conv.weight.value = Tensor.uniform([3, 3, 6, 8], generator: g).permuted([3, 2, 0, 1])
        expectChanged("after assigning a permuted view")
        // The same storage, offset and shape, other strides (the taps transposed).
        conv.weight.value = conv.weight.value.transposed(2, 3)
        expectChanged("after assigning a view of the same storage with other strides")
        conv.bias!.value = Tensor.uniform([8], generator: g)
        expectChanged("after assigning a bias")
        // A call that records a gradient: the same values, and the next inference call still follows.
        let recorded = conv(x)
        expectBitwiseEqual(recorded.detached(), last, "a recorded call")
        withNoGrad { conv.weight.value[0] = Tensor.uniform([6, 3, 3], generator: g) }
        expectChanged("after writing one filter in place")
    }
}
