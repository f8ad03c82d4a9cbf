import Ember
import Testing
import _EmberTestSupport

// `Linear.forwardReLU` (the product with its bias and ReLU applied per block of C in the GEMM
// epilogue) against `linear(x).relu()`: the same bits forward and backward, float32 and float64,
// 2-D and 3-D inputs, the batch-1 eval path, NaN and negative zero, gradients of gradients, and
// hooks, which see the product before the ReLU because the fusion steps aside.

@Suite("Linear + ReLU fusion")
struct LinearReLUFusionTests {
    /// An input with a NaN, a -0 and values around zero, and a layer whose outputs straddle 0.
    static func setUp(_ dtype: DType, shape: Shape) -> (Linear, Tensor) {
        let g = Generator(seed: 3)
        let layer = withGenerator(g) { Linear(shape.last!, 37, dtype: dtype) }
        var values = Tensor.normal(shape, generator: g).to(dtype).doubles
        values[1] = .nan
        values[2] = -0.0
        return (layer, Tensor(values, shape: shape).to(dtype))
    }

    @Test("forward and gradients are bitwise linear(x).relu()",
          arguments: [DType.float32, .float64], [[6, 300] as Shape, [2, 5, 300]])
    func matchesTheComposition(dtype: DType, shape: Shape) {
        let (layer, x) = Self.setUp(dtype, shape: shape)
        let xa = x.requiringGrad(), xb = x.requiringGrad()
        let fused = layer.forwardReLU(xa)
        let composed = layer(xb).relu()
        expectBitwiseEqual(fused, composed, "forward")
        #expect(fused.doubles.contains { $0 == 0 } && fused.doubles.contains { $0 > 0 }, "the ReLU clips some values")
        #expect(fused.doubles.contains { $0.isNaN }, "NaN stays NaN")
        let go = Tensor.normal(fused.shape, generator: Generator(seed: 4)).to(dtype)
        let ga = Autograd.grad([fused], [xa, layer.weight.value, layer.bias!.value], gradOutputs: [go])
        let gb = Autograd.grad([composed], [xb, layer.weight.value, layer.bias!.value], gradOutputs: [go])
        for (a, b) in zip(ga, gb) { expectBitwiseEqual(a!, b!, "gradient") }
    }

    @Test("batch-1 eval (the packed-weight path) is bitwise linear(x).relu()")
    func batchOneEval() {
        let (layer, x) = Self.setUp(.float32, shape: [1, 300])
        layer.eval()
        expectBitwiseEqual(withNoGrad { layer.forwardReLU(x) }, withNoGrad { layer(x).relu() })
    }

    @Test("gradients of gradients flow through the fused op as through the composition")
    func secondOrder() {
        let (layer, x) = Self.setUp(.float64, shape: [4, 300])
        func gradNorm(_ f: (Tensor) -> Tensor) -> Tensor {
            let xi = x.requiringGrad()
            let g = Autograd.grad([f(xi).pow(2).sum()], [xi], createGraph: true)[0]!
            return Autograd.grad([g.pow(2).sum()], [layer.weight.value])[0]!
        }
        expectClose(gradNorm { layer.forwardReLU($0) }, gradNorm { layer($0).relu() }, atol: 1e-12, rtol: 1e-12)
    }

    @Test("a forward hook on the Linear sees its output before the ReLU")
    func hooksSeeThePreActivation() {
        let (layer, x) = Self.setUp(.float32, shape: [6, 300])
        var seen: Tensor?
        let handle = layer.registerForwardHook { _, _, output in seen = output; return nil }
        let y = layer.forwardReLU(x)
        handle.remove()
        let pre = try! #require(seen)
        #expect(pre.doubles.contains { $0 < 0 }, "the hook saw negative values: the product, not the ReLU")
        expectBitwiseEqual(y, pre.relu())
    }
}
