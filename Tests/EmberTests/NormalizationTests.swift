import Ember
import Foundation
import Testing
import _EmberTestSupport

struct NormConfig: Decodable, CustomTestStringConvertible, Sendable {
    var name: String
    var cls: String
    var shape: [Int]
    var normalized: [Int]?
    var groups: Int?
    var channels: Int?
    var affine: Bool?
    var dtype: String?
    var testDescription: String { name }

    static let all: [NormConfig] = {
        let fx = try! Fixture("norms")
        return try! JSONDecoder().decode([NormConfig].self, from: Data(fx.metadata["configs"]!.utf8))
    }()
}

@Suite struct NormalizationTests {
    let fx = try! Fixture("norms")

    @Test(arguments: NormConfig.all)
    func matchesPyTorchInBothModes(_ cfg: NormConfig) throws {
        let dt: DType = cfg.dtype == "float64" ? .float64 : .float32
        let (atol, rtol) = dt == .float64 ? (1e-12, 1e-10) : (2e-5, 1e-4)
        let layer: Module
        let weight: Parameter?, bias: Parameter?
        if cfg.cls == "LayerNorm" {
            let ln = LayerNorm(Shape(cfg.normalized!), elementwiseAffine: cfg.affine ?? true, dtype: dt)
            (layer, weight, bias) = (ln, ln.weight, ln.bias)
        } else {
            let gn = GroupNorm(cfg.groups!, cfg.channels!, affine: cfg.affine ?? true, dtype: dt)
            (layer, weight, bias) = (gn, gn.weight, gn.bias)
        }
        let p = cfg.name
        if let weight, let bias {
            weight.value = fx["\(p)/weight"]
            bias.value = fx["\(p)/bias"]
        }
        let x = fx["\(p)/x"].requiringGrad()
        let y = layer(x)
        expectClose(y, fx["\(p)/y"], atol: atol, rtol: rtol, "\(p) output")
        (y * fx["\(p)/up"]).sum().backward()
        expectClose(try #require(x.grad), fx["\(p)/dx"], atol: atol * 5, rtol: rtol, "\(p) input gradient")
        if let weight, let bias {
            expectClose(try #require(weight.grad), fx["\(p)/dweight"], atol: atol * 5, rtol: rtol, "\(p) weight gradient")
            expectClose(try #require(bias.grad), fx["\(p)/dbias"], atol: atol * 5, rtol: rtol, "\(p) bias gradient")
        }
        layer.eval()
        expectBitwiseEqual(layer(x), y, "\(p): the mode must not change the output")
        #expect(layer.namedBuffers().isEmpty)
    }

    @Test func gradientsMatchFiniteDifferences() {
        let x = Tensor((0..<24).map { sin(Double($0)) * 2 }, shape: [2, 4, 3])
        let w = Tensor([0.5, 1.5, -1, 2] as [Double]), b = Tensor([0.1, -0.2, 0.3, 0] as [Double])
        #expect(checkGradients([x, w, b]) { groupNorm($0[0], numGroups: 2, weight: $0[1], bias: $0[2]) } == nil)
        let lw = Tensor([0.5, 1.5, -1] as [Double]), lb = Tensor([0.1, -0.2, 0.3] as [Double])
        #expect(checkGradients([x, lw, lb]) { layerNorm($0[0], normalizedShape: [3], weight: $0[1], bias: $0[2]) } == nil)
    }

    @Test func groupNormDivisibilityError() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = GroupNorm(3, 4)
        }
        #expect(standardErrorText(result).contains("num_channels must be divisible by num_groups"))
    }
}
