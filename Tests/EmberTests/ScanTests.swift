import Ember
import Testing
import _EmberTestSupport

/// `cumsum` and `cumprod` against PyTorch (`gen_tensor_ops_math.py`): values, dtypes, gradients
/// (with zeros in the input for cumprod), finite differences and double backward.
@Suite struct ScanTests {
    static func scan(_ name: String, _ x: Tensor) -> Tensor {
        switch name {
        case "cumsum_0", "cumsum_int", "cumsum_bool": x.cumsum(axis: 0)
        case "cumsum_1", "cumsum_f32": x.cumsum(axis: 1)
        case "cumprod_0": x.cumprod(axis: 0)
        case "cumprod_1", "cumprod_f32", "cumprod_int": x.cumprod(axis: 1)
        case "cumprod_m1_3d": x.cumprod(axis: -1)
        default: fatalError("no Swift mapping for \(name)")
        }
    }

    @Test(arguments: OpsMath.cases("scan"))
    func matchesPyTorch(_ name: String) {
        let f32 = name.hasSuffix("_f32")
        OpsMath.check(name, atol: f32 ? 1e-6 : 1e-12, rtol: f32 ? 1e-5 : 1e-10) { Self.scan(name, $0[0]) }
    }

    @Test func cumprodGradientWithZerosIsFinite() {
        // One zero: positions after it get 0, the zero itself the product of the others.
        let x = Tensor([2, 0, 3, 4] as [Double]).requiringGrad()
        x.cumprod(axis: 0).sum().backward()
        // d/dx0 = 1 + 0 + 0 + 0 = 1; d/dx1 = 2 + 2*3 + 2*3*4 = 32; d/dx2 = d/dx3 = 0.
        #expect(x.grad!.doubles == [1, 32, 0, 0])
        let y = Tensor([0, 0, 5] as [Double]).requiringGrad()
        y.cumprod(axis: 0).sum().backward()
        #expect(y.grad!.doubles == [1, 0, 0])
    }

    @Test func finiteDifferences() {
        let x = Tensor([0.7, -1.2, 0.4, 1.9, -0.3, 0.0, 1.1, 0.5, -0.8, 0.0, 0.0, 1.3] as [Double], shape: [3, 4])
        for axis in [0, 1, -1] {
            #expect(checkGradients([x]) { $0[0].cumsum(axis: axis) } == nil, "cumsum \(axis)")
            #expect(checkGradients([x]) { $0[0].cumprod(axis: axis) } == nil, "cumprod \(axis)")
        }
    }

    @Test func doubleBackwardMatchesPyTorch() {
        OpsMath.checkDouble("dd_cumprod") { $0.cumprod(axis: 1) }
        OpsMath.checkDouble("dd_cumsum") { $0.cumsum(axis: 0).pow(2) }
    }

    @Test func edgeCases() {
        #expect(Tensor.zeros([0, 3]).cumsum(axis: 0).shape == [0, 3])
        #expect(Tensor.zeros([2, 0]).cumprod(axis: 1).shape == [2, 0])
        let s = Tensor(2.5 as Double)
        #expect(s.cumsum(axis: 0).doubleValue == 2.5 && s.cumprod(axis: -1).shape == [])
        // float32 accumulates in double, as PyTorch's CPU kernel: 1 + 1e-8 * 4 is not lost.
        let x = Tensor([1, 1e-8, 1e-8, 1e-8, 1e-8] as [Float])
        #expect(x.cumsum(axis: 0).floats.last == Float(1.0 + 4e-8))
    }
}
