import Ember
import Testing
import _EmberTestSupport

@Suite struct BasicOpsTests {
    let fx = try! Fixture("basic_ops")

    @Test func broadcastingArithmeticMatchesPyTorch() {
        let a = fx["a"], b = fx["b"]
        expectClose(a + b, fx["add"], atol: 1e-6, rtol: 1e-6)
        expectClose(a - b, fx["sub"], atol: 1e-6, rtol: 1e-6)
        expectClose(a * b, fx["mul"], atol: 1e-6, rtol: 1e-6)
        expectClose(a / (b * b + 0.5), fx["div"], atol: 1e-6, rtol: 1e-6)
    }

    @Test(arguments: ["mm", "dot", "mv", "vm", "bmm", "bcast", "vb"])
    func matmulMatchesPyTorch(_ name: String) {
        let x = fx["matmul_\(name)_x"].requiringGrad(), y = fx["matmul_\(name)_y"].requiringGrad()
        let out = x.matmul(y)
        expectClose(out, fx["matmul_\(name)_out"], atol: 1e-12, rtol: 1e-10)
        (out * fx["matmul_\(name)_w"]).sum().backward()
        expectClose(x.grad!, fx["matmul_\(name)_gx"], atol: 1e-12, rtol: 1e-10)
        expectClose(y.grad!, fx["matmul_\(name)_gy"], atol: 1e-12, rtol: 1e-10)
    }

    @Test func arithmeticGradientsMatchFiniteDifferences() {
        let a = Tensor([0.3, -1.2, 2.0, 0.7, 1.1, -0.4] as [Double], shape: [2, 3])
        let b = Tensor([1.5, 0.8, -2.0] as [Double], shape: [3])
        #expect(checkGradients([a, b]) { $0[0] + $0[1] } == nil)
        #expect(checkGradients([a, b]) { $0[0] - $0[1] } == nil)
        #expect(checkGradients([a, b]) { $0[0] * $0[1] } == nil)
        #expect(checkGradients([a, b]) { $0[0] / $0[1] } == nil)
        #expect(checkGradients([a]) { -$0[0] } == nil)
        #expect(checkGradients([a]) { $0[0].sum(axis: 1) } == nil)
        #expect(checkGradients([a]) { $0[0].mean(axes: [0], keepDim: true) } == nil)
    }
}
