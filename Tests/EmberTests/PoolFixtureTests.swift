import Ember
import Foundation
import Testing
import _EmberTestSupport

/// One PyTorch pooling or padding case from `Tools/fixtures/gen_conv.py` (`pool.safetensors`).
struct PoolCase: Decodable, CustomTestStringConvertible, Sendable {
    var name: String
    var op: String
    var dtype: String
    var kernelSize: [Int]?
    /// Absent: PyTorch's default (the kernel size).
    var stride: [Int]?
    var padding: [Int]?
    var dilation: [Int]?
    var ceilMode: Bool?
    var countIncludePad: Bool?
    var divisorOverride: Int?
    /// Adaptive pools: -1 is PyTorch's None. max_unpool2d: the requested spatial size.
    var outputSize: [Int]?
    var ties: Bool?
    var nan: Bool?
    // F.pad
    var pad: [Int]?
    var mode: String?
    var value: Double?

    var testDescription: String { name }
    var tolerance: (atol: Double, rtol: Double) { dtype == "float64" ? (1e-10, 1e-9) : (2e-5, 1e-5) }
    /// Whether Ember has a `...WithIndices` form to compare the stored indices with (max_pool3d's
    /// indices are stored but Ember has no `maxPool3dWithIndices`).
    var hasIndices: Bool { ["max_pool1d", "max_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d"].contains(op) }
    var hasGradients: Bool { nan != true }

    static let all: [PoolCase] = {
        let fx = try! Fixture("pool")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try! decoder.decode([PoolCase].self, from: Data(fx.metadata["configs"]!.utf8))
    }()
    static let pools = all.filter { $0.op != "pad" }
    static let pads = all.filter { $0.op == "pad" }

    var k: SpatialSize { SpatialSize(kernelSize!) }
    var s: SpatialSize? { stride.map(SpatialSize.init) }
    var p: SpatialSize { SpatialSize(padding ?? [Int](repeating: 0, count: kernelSize!.count)) }
    var dil: SpatialSize { SpatialSize(dilation ?? [Int](repeating: 1, count: kernelSize!.count)) }
    var adaptiveSize: [Int?] { outputSize!.map { $0 == -1 ? nil : $0 } }

    /// Ember's op for this case; `indices` is needed by max_unpool2d only.
    func apply(_ x: Tensor, indices: Tensor? = nil) -> Tensor {
        let ceil = ceilMode ?? false, incl = countIncludePad ?? true
        switch op {
        case "max_pool1d": return maxPool1d(x, kernelSize: k, stride: s, padding: p, dilation: dil, ceilMode: ceil)
        case "max_pool2d": return maxPool2d(x, kernelSize: k, stride: s, padding: p, dilation: dil, ceilMode: ceil)
        case "max_pool3d": return maxPool3d(x, kernelSize: k, stride: s, padding: p, dilation: dil, ceilMode: ceil)
        case "max_unpool1d": return maxUnpool1d(x, indices: indices!, kernelSize: k, stride: s, padding: p, outputSize: outputSize)
        case "max_unpool2d": return maxUnpool2d(x, indices: indices!, kernelSize: k, stride: s, padding: p, outputSize: outputSize)
        case "avg_pool1d":
            return avgPool1d(x, kernelSize: k, stride: s, padding: p, ceilMode: ceil, countIncludePad: incl)
        case "avg_pool2d":
            return avgPool2d(x, kernelSize: k, stride: s, padding: p, ceilMode: ceil, countIncludePad: incl,
                             divisorOverride: divisorOverride)
        case "avg_pool3d":
            return avgPool3d(x, kernelSize: k, stride: s, padding: p, ceilMode: ceil, countIncludePad: incl,
                             divisorOverride: divisorOverride)
        case "adaptive_avg_pool1d": return adaptiveAvgPool1d(x, outputSize: adaptiveSize)
        case "adaptive_avg_pool2d": return adaptiveAvgPool2d(x, outputSize: adaptiveSize)
        case "adaptive_max_pool1d": return adaptiveMaxPool1d(x, outputSize: adaptiveSize)
        case "adaptive_max_pool2d": return adaptiveMaxPool2d(x, outputSize: adaptiveSize)
        default: preconditionFailure("unknown op \(op)")
        }
    }

    /// The `...WithIndices` form of a max pool.
    func applyWithIndices(_ x: Tensor) -> (output: Tensor, indices: Tensor) {
        let ceil = ceilMode ?? false
        switch op {
        case "max_pool1d": return maxPool1dWithIndices(x, kernelSize: k, stride: s, padding: p, dilation: dil, ceilMode: ceil)
        case "max_pool2d": return maxPool2dWithIndices(x, kernelSize: k, stride: s, padding: p, dilation: dil, ceilMode: ceil)
        case "adaptive_max_pool1d": return adaptiveMaxPool1dWithIndices(x, outputSize: adaptiveSize)
        case "adaptive_max_pool2d": return adaptiveMaxPool2dWithIndices(x, outputSize: adaptiveSize)
        default: preconditionFailure("\(op) has no indices")
        }
    }
}

/// max/avg/adaptive pooling and max_unpool1d/2d against PyTorch: outputs, indices and input
/// gradients for every pooling case of `pool.safetensors`.
@Suite struct PoolFixtureTests {
    let fx = try! Fixture("pool")

    @Test func fixtureCoversTheGrid() {
        let cases = PoolCase.pools
        #expect(Set(cases.map(\.op)) == ["max_pool1d", "max_pool2d", "max_pool3d", "max_unpool1d", "max_unpool2d", "avg_pool1d", "avg_pool2d",
                                         "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d"])
        for op in ["max_pool1d", "max_pool2d"] {
            let ofOp = cases.filter { $0.op == op }
            #expect(ofOp.contains { $0.stride == nil } && ofOp.contains { $0.stride != nil }, "\(op): default and explicit stride")
            #expect(ofOp.contains { $0.ceilMode == true && ($0.padding ?? []).contains { $0 > 0 } }, "\(op): ceil_mode with padding")
            #expect(ofOp.contains { $0.dilation?.contains { $0 > 1 } == true }, "\(op): dilation")
            #expect(ofOp.contains { $0.ties == true } && ofOp.contains { $0.nan == true }, "\(op): ties and NaN")
        }
        for op in ["avg_pool1d", "avg_pool2d"] {
            let ofOp = cases.filter { $0.op == op }
            #expect(ofOp.contains { $0.countIncludePad == false } && ofOp.contains { $0.ceilMode == true }, "\(op)")
        }
        #expect(cases.contains { $0.divisorOverride != nil })
        #expect(cases.contains { $0.op.hasPrefix("adaptive") && $0.outputSize!.contains(-1) })
        #expect(cases.contains { $0.op == "max_unpool2d" && $0.outputSize != nil } && cases.contains { $0.op == "max_unpool2d" && $0.outputSize == nil })
        // The ceil_mode rule that drops a last window starting inside the right padding:
        // input 5, kernel 2, stride 2, padding 1 gives 3 windows, not 4.
        #expect(fx["mp1_ceil_drop/y"].shape == [2, 2, 3])
        #expect(fx["mp1_ceil_5_2/y"].shape == [2, 2, 3])
        #expect(fx["mp1_ceil_6_3_2_1/y"].shape == [2, 2, 4])
    }

    @Test(arguments: PoolCase.pools)
    func matchesPyTorch(_ c: PoolCase) throws {
        let (atol, rtol) = c.tolerance
        let name = c.name
        let x = fx["\(name)/x"].requiringGrad()
        let indices = c.op.hasPrefix("max_unpool") ? fx["\(name)/indices"] : nil
        let expected = fx["\(name)/y"]
        let y = c.apply(x, indices: indices)
        #expect(y.dtype == expected.dtype, "\(name): dtype \(y.dtype)")
        expectClose(y, expected, atol: atol, rtol: rtol, "\(name) output")
        if c.hasIndices {
            let (out, idx) = withNoGrad { c.applyWithIndices(fx["\(name)/x"]) }
            expectClose(out, expected, atol: atol, rtol: rtol, "\(name) output of the indices form")
            expectBitwiseEqual(idx, fx["\(name)/indices"], "\(name) indices")
        }
        guard c.hasGradients, y.shape == expected.shape else { return }
        (y * fx["\(name)/up"]).sum().backward()
        expectClose(try #require(x.grad, "\(name): no input gradient"), fx["\(name)/dx"], atol: atol, rtol: rtol, "\(name) input gradient")
    }

    /// Gradients through the output of the `...WithIndices` forms.
    @Test(arguments: PoolCase.pools.filter { $0.hasIndices && $0.hasGradients })
    func indicesFormGradientsMatchPyTorch(_ c: PoolCase) throws {
        let x = fx["\(c.name)/x"].requiringGrad()
        let (y, _) = c.applyWithIndices(x)
        y.backward(fx["\(c.name)/up"])
        expectClose(try #require(x.grad), fx["\(c.name)/dx"], atol: c.tolerance.atol, rtol: c.tolerance.rtol, "\(c.name) input gradient")
    }

    /// PyTorch's tie rule: the first maximum in the window (scanning with `>`) gets the index and
    /// the whole gradient.
    @Test func tiesGoToTheFirstMaximum() {
        let x = Tensor([1, 3, 3, 2, 3, 0] as [Double], shape: [1, 1, 6])
        let (y, idx) = maxPool1dWithIndices(x, kernelSize: 3, stride: 1)
        #expect(y.doubles == [3, 3, 3, 3])
        #expect(idx.scalars(as: Int64.self) == [1, 1, 2, 4])
    }

    /// Overlapping windows can pick the same element; PyTorch's max_unpool writes it once
    /// (`output[index] = value`), it does not add the copies. Its gradient gathers: every copy
    /// gets the output gradient at its index.
    @Test func maxUnpoolWritesRepeatedIndicesOnce() throws {
        let x = Tensor([1, 3, 2] as [Double], shape: [1, 1, 3])
        let (y, idx) = maxPool1dWithIndices(x, kernelSize: 2, stride: 1)
        #expect(idx.scalars(as: Int64.self) == [1, 1])
        let pooled = y.requiringGrad()
        let u = maxUnpool1d(pooled, indices: idx, kernelSize: 2, stride: 1)
        #expect(u.doubles == [0, 3, 0], "PyTorch: [0, 3, 0]")
        u.backward(Tensor([10, 20, 30] as [Double], shape: [1, 1, 3]))
        #expect(try #require(pooled.grad).doubles == [20, 20])
    }

    // MARK: finite differences (inputs without ties, so max pools are differentiable there)

    static func values(_ shape: Shape, _ phase: Double = 0) -> Tensor {
        let v: [Double] = (0..<shape.elementCount).map { i in
            let t = Double(i)
            return sin(t * 1.3 + phase) * 2 + t * 1e-3
        }
        return Tensor(v, shape: shape)
    }

    @Test func maxPoolGradientsMatchFiniteDifferences() {
        let x1 = Self.values([2, 2, 6])
        // ceil_mode edge windows: input 6, kernel 3, stride 2, padding 1
        #expect(checkGradients([x1]) { maxPool1d($0[0], kernelSize: 3, stride: 2, padding: 1, ceilMode: true) } == nil)
        // input 5: the last window would start inside the padding and is dropped
        let x5 = Self.values([1, 2, 5], 0.4)
        #expect(checkGradients([x5]) { maxPool1d($0[0], kernelSize: 2, stride: 2, padding: 1, ceilMode: true) } == nil)
        #expect(checkGradients([x1]) { maxPool1d($0[0], kernelSize: 2, stride: 1, padding: 1, dilation: 2) } == nil)
        let x2 = Self.values([1, 2, 5, 6], 0.3)
        #expect(checkGradients([x2]) { maxPool2d($0[0], kernelSize: [2, 3], stride: [2, 1], padding: [1, 1], dilation: [1, 2], ceilMode: true) } == nil)
        #expect(checkGradients([x2]) { maxPool2dWithIndices($0[0], kernelSize: 3, stride: 2, padding: 1).output } == nil)
    }

    @Test func avgPoolGradientsMatchFiniteDifferences() {
        let x1 = Self.values([2, 2, 6])
        for incl in [true, false] {
            #expect(checkGradients([x1]) { avgPool1d($0[0], kernelSize: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: incl) } == nil,
                    "count_include_pad \(incl)")
        }
        let x2 = Self.values([1, 2, 5, 6], 0.3)
        #expect(checkGradients([x2]) { avgPool2d($0[0], kernelSize: 3, stride: 2, padding: 1, ceilMode: true, divisorOverride: 5) } == nil)
        #expect(checkGradients([x2]) { avgPool2d($0[0], kernelSize: [2, 3], stride: [1, 2], padding: [1, 1], countIncludePad: false) } == nil)
    }

    @Test func adaptivePoolGradientsMatchFiniteDifferences() {
        let x1 = Self.values([2, 2, 7])
        #expect(checkGradients([x1]) { adaptiveAvgPool1d($0[0], outputSize: [3]) } == nil)
        #expect(checkGradients([x1]) { adaptiveMaxPool1d($0[0], outputSize: [3]) } == nil)
        let x2 = Self.values([1, 2, 5, 7], 0.2)
        #expect(checkGradients([x2]) { adaptiveAvgPool2d($0[0], outputSize: [2, 3]) } == nil)
        #expect(checkGradients([x2]) { adaptiveMaxPool2d($0[0], outputSize: [nil, 3]) } == nil)
        #expect(checkGradients([x2]) { adaptiveMaxPool2dWithIndices($0[0], outputSize: [3, 4]).output } == nil)
    }

    @Test func maxUnpoolGradientsMatchFiniteDifferences() {
        // Positive values, so the zeros max_unpool2d fills in never win the round trip below.
        let x = Tensor(Self.values([1, 2, 5, 7]).doubles.map { $0 + 3 }, shape: [1, 2, 5, 7])
        let (pooled, indices) = maxPool2dWithIndices(x, kernelSize: 2)
        #expect(checkGradients([pooled, indices]) { maxUnpool2d($0[0], indices: $0[1], kernelSize: 2, outputSize: [5, 7]) } == nil)
        // Round trip: unpooling puts every maximum back where it came from.
        let back = maxUnpool2d(pooled, indices: indices, kernelSize: 2, outputSize: [5, 7])
        expectClose(maxPool2d(back, kernelSize: 2), pooled, atol: 0, rtol: 0)
    }
}
