import CEmberKernels
import Ember
@testable import EmberFunctional
@testable import EmberNN
import EmberStorage
import Testing
import _EmberTestSupport

// A convolution followed by a BatchNorm in training hands the BatchNorm its output planes'
// moments (each plane's sum and squared deviations from its own mean), taken from each sample's
// output as it is written, so the BatchNorm's statistics need no pass over the output. The
// promise: the moments are bitwise those the BatchNorm would compute from the output, so nothing
// the BatchNorm returns, updates or differentiates changes; they are offered only where they are
// exact, and ignored where they do not fit.

@Suite("Convolution output moments for BatchNorm")
struct ConvolutionMomentsTests {
    /// The moments `BatchNormPlanes` computes from a float32 `[N, C, plane]` tensor.
    static func momentsOf(_ y: Tensor) -> [Double] {
        let planes = y.shape[0] * y.shape[1], plane = y.count / max(planes, 1)
        var values = [Double](repeating: 0, count: 2 * planes)
        let yc = y.contiguous()
        values.withUnsafeMutableBufferPointer { b in
            BatchNormPlanes.planeMoments(yc.pointer(as: Float.self), planes: planes, s: plane, sums: b.baseAddress!,
                                         deviations: b.baseAddress! + planes)
        }
        return values
    }

    static let shapes: [(name: String, input: Shape, conv: @Sendable () -> Conv2d)] = [
        ("bias, 3 x 3", [3, 4, 9, 11], { Conv2d(4, 6, 3, padding: 1) }),
        ("groups and dilation", [2, 4, 12, 10], { Conv2d(4, 6, 3, padding: 2, dilation: 2, groups: 2) }),
        ("small planes, many samples", [17, 3, 6, 6], { Conv2d(3, 5, 3) }),
        ("samples over threads", [8, 16, 32, 32], { Conv2d(16, 16, 3, padding: 1, bias: false) }),
    ]

    @Test("the moments are bitwise the output planes', and the output is the convolution's")
    func momentsMatchTheOutput() throws {
        for s in Self.shapes {
            let conv = withGenerator(Generator(seed: 5)) { s.conv() }
            let x = Tensor.normal(s.input, generator: Generator(seed: 6))
            let (y, moments) = convolutionWithMoments(x, weight: conv.weight.value, bias: conv.bias?.value, dims: 2,
                                                      stride: SpatialSize(conv.stride), padding: conv.padding,
                                                      dilation: SpatialSize(conv.dilation), groups: conv.groups,
                                                      paddingMode: conv.paddingMode, context: { "test" })
            expectBitwiseEqual(y, conv(x), "\(s.name): output")
            let m = try #require(moments, "\(s.name): moments")
            #expect(m.batch == y.shape[0] && m.channels == y.shape[1] && m.plane == y.count / (y.shape[0] * y.shape[1]), "\(s.name)")
            #expect(m.values.map(\.bitPattern) == Self.momentsOf(y).map(\.bitPattern), "\(s.name): moments")
        }
    }

    @Test("no moments where the path does not give them (stride 2, 1 x 1, float64, unbatched), and the convolution's output")
    func noMomentsElsewhere() {
        func moments(_ conv: Conv2d, _ x: Tensor) -> PlaneMoments? {
            let (y, moments) = convolutionWithMoments(x, weight: conv.weight.value, bias: conv.bias?.value, dims: 2,
                                                      stride: SpatialSize(conv.stride), padding: conv.padding,
                                                      dilation: SpatialSize(conv.dilation), groups: conv.groups,
                                                      paddingMode: conv.paddingMode, context: { "test" })
            expectBitwiseEqual(y, conv(x), "output")
            return moments
        }
        #expect(moments(Conv2d(3, 4, 3, stride: 2), .normal([2, 3, 9, 9])) == nil, "stride 2")
        #expect(moments(Conv2d(3, 4, 1), .normal([2, 3, 9, 9])) == nil, "1 x 1")
        #expect(moments(Conv2d(3, 4, 3, dtype: .float64), .normal([2, 3, 9, 9], dtype: .float64)) == nil, "float64")
        #expect(moments(Conv2d(3, 4, 3), .normal([3, 9, 9])) == nil, "unbatched")
    }

    @Test("batchNorm uses given moments and ignores moments of another shape")
    func batchNormTakesFittingMoments() {
        let x = Tensor.normal([4, 3, 5, 5], generator: Generator(seed: 7))
        let other = Tensor.normal([4, 3, 5, 5], generator: Generator(seed: 8)) * 3 + 1
        func run(_ moments: PlaneMoments?) -> (Tensor, Tensor, Tensor) {
            var rm: Tensor? = .zeros([3]), rv: Tensor? = .ones([3])
            let y = batchNorm(x, runningMean: &rm, runningVar: &rv, weight: nil, bias: nil, training: true, momentum: 0.1, eps: 1e-5,
                              adding: nil, relu: false, moments: moments, context: { "test" })
            return (y, rm!, rv!)
        }
        let plain = run(nil)
        let own = run(PlaneMoments(batch: 4, channels: 3, plane: 25, values: Self.momentsOf(x)))
        expectBitwiseEqual(own.0, plain.0, "own moments: values")
        expectBitwiseEqual(own.1, plain.1, "own moments: running mean")
        expectBitwiseEqual(own.2, plain.2, "own moments: running variance")
        // Moments of another tensor of the same shape are used (so the ones above were too).
        let foreign = run(PlaneMoments(batch: 4, channels: 3, plane: 25, values: Self.momentsOf(other)))
        #expect(foreign.1.floats != plain.1.floats, "moments given are used")
        // Moments of another shape are ignored.
        let misfit = run(PlaneMoments(batch: 2, channels: 3, plane: 50, values: Self.momentsOf(other.reshaped([2, 3, 50]))))
        expectBitwiseEqual(misfit.0, plain.0, "moments of another shape: ignored")
    }

    @Test("Conv2d offers moments only to a BatchNorm that normalises with batch statistics")
    func offeredWhenUsed() {
        let conv = Conv2d(3, 4, 3, padding: 1), x = Tensor.normal([2, 3, 6, 6])
        let bn = BatchNorm2d(4)
        #expect(conv.forwardWithMoments(x, for: bn).moments != nil, "training")
        bn.eval()
        #expect(conv.forwardWithMoments(x, for: bn).moments == nil, "eval, running statistics")
        let untracked = BatchNorm2d(4, trackRunningStats: false)
        untracked.eval()
        #expect(conv.forwardWithMoments(x, for: untracked).moments != nil, "eval without running statistics")
        let pinned = BatchNorm2d(4)
        pinned.pin(.evaluation)
        #expect(conv.forwardWithMoments(x, for: pinned).moments == nil, "pinned to eval in a training model")
    }
}
