import Ember
import Testing
import _EmberTestSupport

/// `norm(p:axes:keepDim:)` against PyTorch's `torch.linalg.vector_norm` / `torch.norm`
/// (`gen_tensor_ops_math.py`): every order, ties for the infinity norms, a zero row (gradient 0,
/// not NaN), keepDim, float32; finite differences and double backward.
@Suite struct NormOpsTests {
    static func norm(_ name: String, _ x: Tensor) -> Tensor {
        switch name {
        case "norm_p2", "norm_p2_zeros": x.norm()
        case "norm_p2_dim1": x.norm(p: 2, axes: [1])
        case "norm_p2_dim0_keep": x.norm(p: 2, axes: [0], keepDim: true)
        case "norm_p1_dim1": x.norm(p: 1, axes: [1])
        case "norm_p3_dim1": x.norm(p: 3, axes: [1])
        case "norm_p05_dim1": x.norm(p: 0.5, axes: [1])
        case "norm_p15_dim1": x.norm(p: 1.5, axes: [1])
        case "norm_p0_dim1": x.norm(p: 0, axes: [1])
        case "norm_inf_dim1": x.norm(p: .infinity, axes: [1])
        case "norm_neginf_dim1": x.norm(p: -.infinity, axes: [1])
        case "norm_inf": x.norm(p: .inf)
        case "norm_fro": x.norm(p: .fro)
        case "norm_fro_dim01_keep": x.norm(p: .fro, axes: [0, 1], keepDim: true)
        case "norm_p2_dims01_3d": x.reshaped([3, 2, 2]).norm(p: 2, axes: [1, 2])
        case "norm_p2_f32": x.norm(p: 2, axes: [-1])
        default: fatalError("no Swift mapping for \(name)")
        }
    }

    @Test(arguments: OpsMath.cases("norm"))
    func matchesPyTorch(_ name: String) {
        let f32 = name.hasSuffix("_f32")
        OpsMath.check(name, atol: f32 ? 1e-6 : 1e-12, rtol: f32 ? 1e-5 : 1e-10) { Self.norm(name, $0[0]) }
    }

    @Test func gradientAtZeroIsZeroNotNaN() {
        let x = Tensor.zeros([3], dtype: .float64).requiringGrad()
        x.norm().backward()
        #expect(x.grad!.doubles == [0, 0, 0])
        let y = Tensor.zeros([2, 2]).requiringGrad()
        y.norm(p: 1.5, axes: [1]).sum().backward()
        #expect(y.grad!.floats == [0, 0, 0, 0])
    }

    @Test(arguments: [NormOrder.p(1), 2, 3, 0.5, 1.5, .inf, .negInf, .fro, 4.5])
    func finiteDifferences(_ p: NormOrder) {
        // Away from ties and zeros, where the norms are smooth.
        let x = Tensor([0.7, -1.2, 0.4, 1.9, -0.3, 2.2, 1.1, 0.5, -0.8, 0.35, 0.6, 1.3] as [Double], shape: [3, 4])
        #expect(checkGradients([x]) { $0[0].norm(p: p, axes: [1]) } == nil, "\(p) axis 1")
        #expect(checkGradients([x]) { $0[0].norm(p: p) } == nil, "\(p) all")
    }

    @Test func doubleBackwardMatchesPyTorch() {
        OpsMath.checkDouble("dd_norm_p2") { $0.norm(p: 2, axes: [1]) }
        OpsMath.checkDouble("dd_norm_p3") { $0.norm(p: 3, axes: [1]) }
    }

    @Test func literalsAndEdgeCases() {
        let x = Tensor([3, -4] as [Double])
        #expect(x.norm().doubleValue == 5)
        #expect(x.norm(p: -.infinity).doubleValue == 3)
        #expect(x.norm(p: .negInf).doubleValue == 3)
        #expect(x.norm(p: 1).doubleValue == 7)
        #expect(Tensor(2.0 as Double).norm().doubleValue == 2)
        #expect(Tensor.zeros([0, 3]).norm(axes: [0]).doubles == [0, 0, 0])
    }
}
