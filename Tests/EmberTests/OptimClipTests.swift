import Ember
import Foundation
import Testing
import _EmberTestSupport

struct ClipConfig: Decodable, CustomTestStringConvertible, Sendable {
    struct Arguments: Decodable, Sendable {
        var max_norm: Double?
        /// A number, or "inf".
        var norm_type: OptimizerState.Hyperparameter?
        var clip_value: Double?
    }

    var name: String
    var kind: String
    var kwargs: Arguments
    var dtype: String
    var testDescription: String { name }

    static let all: [ClipConfig] = try! JSONDecoder().decode(
        [ClipConfig].self, from: Data(Fixture("optim_clip").metadata["configs"]!.utf8))
}

/// Gradient clipping against PyTorch's `clip_grad_norm_` and `clip_grad_value_`.
@Suite struct OptimClipTests {
    let fx = try! Fixture("optim_clip")

    @Test(arguments: ClipConfig.all)
    func matchesPyTorch(_ cfg: ClipConfig) throws {
        let dt: DType = cfg.dtype == "float64" ? .float64 : .float32
        // Two parameters with gradients, a third without (ignored).
        let params = [Parameter(Tensor.zeros([4, 5], dtype: dt)), Parameter(Tensor.zeros([3], dtype: dt)),
                      Parameter(Tensor.zeros([2, 2], dtype: dt))]
        for i in 0..<2 { params[i].grad = fx["\(cfg.name)/grad/\(i)"] }
        let (atol, rtol) = dt == .float64 ? (1e-15, 1e-13) : (1e-7, 2e-6)
        if cfg.kind == "norm" {
            let maxNorm = try #require(cfg.kwargs.max_norm)
            let total: Double
            switch cfg.kwargs.norm_type {
            case nil: total = clipGradNorm(params, maxNorm: maxNorm)
            case .number(let p)?: total = clipGradNorm(params, maxNorm: maxNorm, normType: p)
            default: Issue.record("bad norm_type"); return
            }
            let expected = fx["\(cfg.name)/total_norm"].doubleValue
            #expect(abs(total - expected) <= atol + rtol * abs(expected), "total norm \(total) vs \(expected)")
        } else {
            clipGradValue(params, clipValue: try #require(cfg.kwargs.clip_value))
        }
        for i in 0..<2 {
            let g = try #require(params[i].grad)
            #expect(g.dtype == dt)
            expectClose(g, fx["\(cfg.name)/clipped/\(i)"], atol: atol, rtol: rtol, "\(cfg.name) gradient \(i)")
        }
        #expect(params[2].grad == nil)
    }

    @Test func noGradientsMeansNormZeroAndNothingClipped() {
        let p = Parameter(Tensor([Float(1), 2]))
        #expect(clipGradNorm([p], maxNorm: 1) == 0)
        #expect(p.grad == nil)
        clipGradValue([p], clipValue: 1)
        #expect(p.grad == nil)
    }

    @Test func nonFiniteNormPropagatesAsInPyTorch() {
        let a = Parameter(Tensor([Float(1), 2])), b = Parameter(Tensor([Float(1)]))
        a.grad = Tensor([Float(3), .nan])
        b.grad = Tensor([Float(4)])
        #expect(clipGradNorm([a, b], maxNorm: 1).isNaN)
        #expect(b.grad!.floats[0].isNaN)

        a.grad = Tensor([Float(3), .infinity])
        b.grad = Tensor([Float(4)])
        #expect(clipGradNorm([a, b], maxNorm: 1, normType: .infinity) == .infinity)
        // max_norm / (inf + 1e-6) = 0: every finite gradient becomes 0, inf * 0 is NaN.
        #expect(b.grad!.floats == [0])
        #expect(a.grad!.floats[0] == 0 && a.grad!.floats[1].isNaN)
    }

    @Test func clipValueKeepsNaNAndClampsInfinity() {
        let a = Parameter(Tensor([Float(1), 2, 3, 4]))
        a.grad = Tensor([Float.nan, .infinity, -.infinity, 0.25])
        clipGradValue([a], clipValue: 0.5)
        let g = a.grad!.floats
        #expect(g[0].isNaN)
        #expect(Array(g[1...]) == [0.5, -0.5, 0.25])
    }

    /// Clipping works on the gradient in place, without changing a copy taken before.
    @Test func clipsInPlaceWithoutAliasing() {
        let a = Parameter(Tensor([Float(1), 2]))
        a.grad = Tensor([Float(3), 4])
        let before = a.grad!
        let total = clipGradNorm([a], maxNorm: 1)
        #expect(abs(total - 5) < 1e-12)
        #expect(before.floats == [3, 4])
        expectClose(a.grad!, Tensor([Float(0.6), 0.8]), atol: 1e-6, rtol: 1e-6)
    }
}
