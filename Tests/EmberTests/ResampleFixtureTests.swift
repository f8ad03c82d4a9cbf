import Ember
import Foundation
import Testing
import _EmberTestSupport

/// One PyTorch resampling case from `Tools/fixtures/gen_resample.py` (`resample.safetensors`):
/// F.interpolate, pixel_shuffle / pixel_unshuffle, unfold / fold.
struct ResampleCase: Decodable, CustomTestStringConvertible, Sendable {
    var name: String
    var op: String
    var dtype: String
    // interpolate
    var mode: String?
    var size: [Int]?
    var scaleFactor: [Double]?
    /// Absent: PyTorch's None.
    var alignCorners: Bool?
    // pixel_shuffle / pixel_unshuffle
    var upscaleFactor: Int?
    var downscaleFactor: Int?
    // unfold / fold
    var kernelSize: [Int]?
    var dilation: [Int]?
    var padding: [Int]?
    var stride: [Int]?
    var outputSize: [Int]?

    var testDescription: String { name }
    var tolerance: (atol: Double, rtol: Double) { dtype == "float64" ? (1e-10, 1e-9) : (1e-5, 1e-5) }

    static let all: [ResampleCase] = {
        let fx = try! Fixture("resample")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try! decoder.decode([ResampleCase].self, from: Data(fx.metadata["configs"]!.utf8))
    }()

    var interpolationMode: InterpolationMode { InterpolationMode(rawValue: mode!)! }

    /// Ember's functional op for this case.
    func apply(_ x: Tensor) -> Tensor {
        switch op {
        case "interpolate":
            return interpolate(x, size: size, scaleFactor: scaleFactor, mode: interpolationMode, alignCorners: alignCorners)
        case "pixel_shuffle": return pixelShuffle(x, upscaleFactor: upscaleFactor!)
        case "pixel_unshuffle": return pixelUnshuffle(x, downscaleFactor: downscaleFactor!)
        case "unfold":
            return unfold(x, kernelSize: SpatialSize(kernelSize!), dilation: SpatialSize(dilation!), padding: SpatialSize(padding!),
                          stride: SpatialSize(stride!))
        case "fold":
            return fold(x, outputSize: SpatialSize(outputSize!), kernelSize: SpatialSize(kernelSize!), dilation: SpatialSize(dilation!),
                        padding: SpatialSize(padding!), stride: SpatialSize(stride!))
        default: preconditionFailure("unknown op \(op)")
        }
    }

    /// The module PyTorch has for this op, built from the same arguments.
    func module() -> Module {
        switch op {
        case "interpolate": return Upsample(size: size, scaleFactor: scaleFactor, mode: interpolationMode, alignCorners: alignCorners)
        case "pixel_shuffle": return PixelShuffle(upscaleFactor!)
        case "pixel_unshuffle": return PixelUnshuffle(downscaleFactor!)
        case "unfold":
            return Unfold(SpatialSize(kernelSize!), dilation: SpatialSize(dilation!), padding: SpatialSize(padding!), stride: SpatialSize(stride!))
        case "fold":
            return Fold(SpatialSize(outputSize!), SpatialSize(kernelSize!), dilation: SpatialSize(dilation!), padding: SpatialSize(padding!),
                        stride: SpatialSize(stride!))
        default: preconditionFailure("unknown op \(op)")
        }
    }
}

/// interpolate (nearest, linear, bilinear), pixel (un)shuffle, unfold and fold against PyTorch:
/// outputs and input gradients for every case of `resample.safetensors`, through the functions
/// and through their modules; finite-difference checks; module listings.
@Suite struct ResampleFixtureTests {
    let fx = try! Fixture("resample")

    @Test func fixtureCoversTheGrid() {
        let cases = ResampleCase.all
        #expect(Set(cases.map(\.op)) == ["interpolate", "pixel_shuffle", "pixel_unshuffle", "unfold", "fold"])
        let interp = cases.filter { $0.op == "interpolate" }
        #expect(Set(interp.map { $0.mode! }) == ["nearest", "linear", "bilinear"])
        for mode in ["nearest", "linear", "bilinear"] {
            let ofMode = interp.filter { $0.mode == mode }
            #expect(ofMode.contains { $0.size != nil } && ofMode.contains { $0.scaleFactor != nil }, "\(mode): size and scale_factor")
            #expect(ofMode.contains { $0.scaleFactor?.contains { $0 != $0.rounded() && $0 > 1 } == true }, "\(mode): non-integer upscale")
            #expect(ofMode.contains { $0.scaleFactor?.contains { $0 < 1 } == true }, "\(mode): downscale factor")
            #expect(ofMode.contains { $0.dtype == "float32" }, "\(mode): float32")
        }
        for mode in ["linear", "bilinear"] {
            let ofMode = interp.filter { $0.mode == mode }
            #expect(ofMode.contains { $0.alignCorners == true } && ofMode.contains { $0.alignCorners == false }
                    && ofMode.contains { $0.alignCorners == nil }, "\(mode): align_corners True, False and None")
            #expect(ofMode.contains { $0.alignCorners == true && $0.size?.contains(1) == true }, "\(mode): a 1-pixel output with align_corners")
        }
        #expect(Set(cases.compactMap(\.upscaleFactor)) == [1, 2, 3] && Set(cases.compactMap(\.downscaleFactor)) == [2, 3])
        #expect(fx["ps_lead/x"].rank == 5 && fx["pu_lead/x"].rank == 5 && fx["ps_unbatched/x"].rank == 3)
        #expect(fx["uf_unbatched/x"].rank == 3 && fx["fo_unbatched/x"].rank == 2)
        // 25 * 1.16 is 28.999999999999996 in double: PyTorch's floor gives 28.
        #expect(fx["n1_scale1_16_floor/y"].shape == [1, 2, 28])
        #expect(fx["l1_scale1_16_floor/y"].shape == [1, 1, 28])
    }

    @Test(arguments: ResampleCase.all)
    func matchesPyTorch(_ c: ResampleCase) throws {
        let (atol, rtol) = c.tolerance
        let name = c.name
        let x = fx["\(name)/x"].requiringGrad()
        let expected = fx["\(name)/y"]
        let y = c.apply(x)
        #expect(y.dtype == expected.dtype, "\(name): dtype \(y.dtype)")
        expectClose(y, expected, atol: atol, rtol: rtol, "\(name) output")
        guard y.shape == expected.shape else { return }
        (y * fx["\(name)/up"]).sum().backward()
        expectClose(try #require(x.grad, "\(name): no input gradient"), fx["\(name)/dx"], atol: atol, rtol: rtol, "\(name) input gradient")
    }

    /// The modules (Upsample, PixelShuffle, PixelUnshuffle, Unfold, Fold) give the functional
    /// results and gradients.
    @Test(arguments: ResampleCase.all)
    func moduleMatchesPyTorch(_ c: ResampleCase) throws {
        let (atol, rtol) = c.tolerance
        let x = fx["\(c.name)/x"].requiringGrad()
        let y = c.module()(x)
        expectClose(y, fx["\(c.name)/y"], atol: atol, rtol: rtol, "\(c.name) module output")
        guard y.shape == fx["\(c.name)/y"].shape else { return }
        y.backward(fx["\(c.name)/up"])
        expectClose(try #require(x.grad), fx["\(c.name)/dx"], atol: atol, rtol: rtol, "\(c.name) module input gradient")
    }

    /// pixel_unshuffle undoes pixel_shuffle exactly, and unfold/fold are adjoint: fold(unfold(x))
    /// multiplies each pixel by the number of blocks covering it.
    @Test func roundTrips() {
        let x = fx["ps_lead/x"]
        expectBitwiseEqual(pixelUnshuffle(pixelShuffle(x, upscaleFactor: 2), downscaleFactor: 2), x.contiguous(), "unshuffle(shuffle(x))")
        let img = fx["uf_k3_pad1/x"]
        let ones = Tensor.ones(img.shape, dtype: .float64)
        let counts = fold(unfold(ones, kernelSize: 3, padding: 1), outputSize: [5, 5], kernelSize: 3, padding: 1)
        // A 3x3 window with padding 1 over a 5x5 image: corners are covered 4 times, edges 6, the inside 9.
        let c = counts.doubles
        #expect(c[0] == 4 && c[1] == 6 && c[6] == 9 && c[24] == 4)
        expectClose(fold(unfold(img, kernelSize: 3, padding: 1), outputSize: [5, 5], kernelSize: 3, padding: 1), img * counts,
                    atol: 1e-12, rtol: 0, "fold(unfold(x)) = x * counts")
    }

    /// A single size is used for every spatial dimension, as PyTorch's `size=int`.
    @Test func singleSizeAppliesToEveryDimension() {
        let x = fx["b2_size_up/x"]
        let a = interpolate(x, size: [6], mode: .bilinear, alignCorners: false)
        let b = interpolate(x, size: [6, 6], mode: .bilinear, alignCorners: false)
        #expect(a.shape == [2, 2, 6, 6])
        expectBitwiseEqual(a, b, "size [6] vs [6, 6]")
        let s = interpolate(x, scaleFactor: [2], mode: .nearest)
        #expect(s.shape == [2, 2, 8, 10])
    }

    // MARK: finite differences

    static func values(_ shape: Shape, _ phase: Double = 0) -> Tensor {
        Tensor((0..<shape.elementCount).map { sin(Double($0) * 1.3 + phase) * 2 }, shape: shape)
    }

    @Test func interpolateGradientsMatchFiniteDifferences() {
        let x1 = Self.values([2, 2, 5])
        #expect(checkGradients([x1]) { interpolate($0[0], scaleFactor: [0.6], mode: .nearest) } == nil, "nearest 0.6")
        #expect(checkGradients([x1]) { interpolate($0[0], size: [8], mode: .nearest) } == nil, "nearest size 8")
        for align in [true, false] {
            #expect(checkGradients([x1]) { interpolate($0[0], scaleFactor: [1.5], mode: .linear, alignCorners: align) } == nil, "linear 1.5 \(align)")
            #expect(checkGradients([x1]) { interpolate($0[0], size: [3], mode: .linear, alignCorners: align) } == nil, "linear size 3 \(align)")
        }
        let x2 = Self.values([1, 2, 4, 5], 0.3)
        for align in [true, false] {
            #expect(checkGradients([x2]) { interpolate($0[0], size: [7, 3], mode: .bilinear, alignCorners: align) } == nil, "bilinear \(align)")
            #expect(checkGradients([x2]) { interpolate($0[0], scaleFactor: [1.5, 0.6], mode: .bilinear, alignCorners: align) } == nil,
                    "bilinear 1.5x0.6 \(align)")
        }
        #expect(checkGradients([x2]) { interpolate($0[0], size: [1, 3], mode: .bilinear, alignCorners: true) } == nil, "bilinear 1-pixel")
    }

    @Test func shuffleAndBlockGradientsMatchFiniteDifferences() {
        let x = Self.values([2, 8, 2, 3])
        #expect(checkGradients([x]) { pixelShuffle($0[0], upscaleFactor: 2) } == nil)
        #expect(checkGradients([Self.values([1, 2, 6, 3])]) { pixelUnshuffle($0[0], downscaleFactor: 3) } == nil)
        let img = Self.values([1, 2, 5, 6], 0.7)
        #expect(checkGradients([img]) { unfold($0[0], kernelSize: [2, 3], dilation: [2, 1], padding: 1, stride: [1, 2]) } == nil)
        // Overlapping blocks: stride 1 with kernel 3 on a 4x5 output.
        let blocks = Self.values([1, 2 * 9, 2 * 3], 0.2)
        #expect(checkGradients([blocks]) { fold($0[0], outputSize: [4, 5], kernelSize: 3) } == nil)
    }

    // MARK: modules

    @Test func modulesHoldNoState() {
        for m in [Upsample(scaleFactor: [2]), PixelShuffle(2), PixelUnshuffle(2), Unfold(2), Fold([4, 4], 2)] as [Module] {
            #expect(m.stateDict().keys.isEmpty, "\(type(of: m))")
            #expect(m.parameters().isEmpty, "\(type(of: m))")
        }
    }

    /// The listings PyTorch prints (`extra_repr`) for these modules.
    @Test func listingsMatchPyTorchWhereEmberAgrees() {
        #expect(Upsample(scaleFactor: [2]).extraDescription == "scale_factor=2.0, mode='nearest'")
        #expect(Upsample(scaleFactor: [1.5], mode: .linear).extraDescription == "scale_factor=1.5, mode='linear'")
        #expect(PixelShuffle(2).extraDescription == "upscale_factor=2")
        #expect(PixelUnshuffle(3).extraDescription == "downscale_factor=3")
        #expect(Unfold(2).extraDescription == "kernel_size=2, dilation=1, padding=0, stride=1")
        #expect(Unfold([2, 3], dilation: [1, 2], padding: 1, stride: 2).extraDescription
                == "kernel_size=(2, 3), dilation=(1, 2), padding=1, stride=2")
        #expect(Fold([4, 5], 2).extraDescription == "output_size=(4, 5), kernel_size=2, dilation=1, padding=0, stride=1")
        #expect(Fold(4, [2, 3], stride: [1, 2]).extraDescription == "output_size=4, kernel_size=(2, 3), dilation=1, padding=0, stride=(1, 2)")
    }

    /// PyTorch: `Upsample(size=(4, 6), mode='bilinear')`, `Upsample(size=5, mode='linear')`,
    /// `Upsample(scale_factor=(1.5, 2.0), mode='bilinear')`.
    @Test func upsampleListingsWithSeveralSizes() {
        #expect(Upsample(size: [4, 6], mode: .bilinear, alignCorners: true).extraDescription == "size=(4, 6), mode='bilinear'")
        #expect(Upsample(size: [5], mode: .linear).extraDescription == "size=5, mode='linear'")
        #expect(Upsample(scaleFactor: [1.5, 2], mode: .bilinear).extraDescription == "scale_factor=(1.5, 2.0), mode='bilinear'")
    }
}
