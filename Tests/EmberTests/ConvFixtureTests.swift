import Ember
import Foundation
import Testing
import _EmberTestSupport

/// A conv `padding` in the fixtures: a list of d sizes, or the string "same" / "valid".
enum FixturePadding: Decodable, Sendable, Equatable {
    case sizes([Int])
    case named(String)

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { self = .named(s) } else { self = .sizes(try c.decode([Int].self)) }
    }

    var convPadding: ConvPadding {
        switch self {
        case .sizes(let v): return .explicit(v)
        case .named("same"): return .same
        case .named("valid"): return .valid
        case .named(let s): preconditionFailure("unknown padding '\(s)'")
        }
    }

    var sizes: [Int] {
        guard case .sizes(let v) = self else { preconditionFailure("padding \(self) is not a list") }
        return v
    }
}

/// One PyTorch convolution from `Tools/fixtures/gen_conv.py` (`conv.safetensors`).
struct ConvCase: Decodable, CustomTestStringConvertible, Sendable {
    var name: String
    var op: String
    var dtype: String
    var inChannels: Int
    var outChannels: Int
    var kernelSize: [Int]
    var stride: [Int]
    var padding: FixturePadding
    var dilation: [Int]
    var groups: Int
    var bias: Bool
    var paddingMode: String?
    var outputPadding: [Int]?
    var outputSize: [Int]?

    var testDescription: String { name }
    var isTranspose: Bool { op.hasPrefix("conv_transpose") }
    /// The number of spatial dimensions.
    var d: Int { kernelSize.count }
    var tolerance: (atol: Double, rtol: Double) { dtype == "float64" ? (1e-10, 1e-9) : (2e-5, 1e-5) }
    var mode: PaddingMode { PaddingMode(rawValue: paddingMode ?? "zeros")! }

    static let all: [ConvCase] = {
        let fx = try! Fixture("conv")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try! decoder.decode([ConvCase].self, from: Data(fx.metadata["configs"]!.utf8))
    }()
    static let forward = all.filter { !$0.isTranspose }
    static let transpose = all.filter { $0.isTranspose }

    /// Ember's functional op for this case.
    func apply(_ x: Tensor, _ w: Tensor, _ b: Tensor?) -> Tensor {
        let s = SpatialSize(stride), dil = SpatialSize(dilation)
        switch op {
        case "conv1d":
            return conv1d(x, weight: w, bias: b, stride: s, padding: padding.convPadding, dilation: dil, groups: groups, paddingMode: mode)
        case "conv2d":
            return conv2d(x, weight: w, bias: b, stride: s, padding: padding.convPadding, dilation: dil, groups: groups, paddingMode: mode)
        case "conv3d":
            return conv3d(x, weight: w, bias: b, stride: s, padding: padding.convPadding, dilation: dil, groups: groups, paddingMode: mode)
        case "conv_transpose1d":
            return convTranspose1d(x, weight: w, bias: b, stride: s, padding: SpatialSize(padding.sizes),
                                   outputPadding: SpatialSize(outputPadding!), groups: groups, dilation: dil, outputSize: outputSize)
        case "conv_transpose2d":
            return convTranspose2d(x, weight: w, bias: b, stride: s, padding: SpatialSize(padding.sizes),
                                   outputPadding: SpatialSize(outputPadding!), groups: groups, dilation: dil, outputSize: outputSize)
        case "conv_transpose3d":
            return convTranspose3d(x, weight: w, bias: b, stride: s, padding: SpatialSize(padding.sizes),
                                   outputPadding: SpatialSize(outputPadding!), groups: groups, dilation: dil, outputSize: outputSize)
        default: preconditionFailure("unknown op \(op)")
        }
    }
}

/// conv1d/2d/3d and conv_transpose1d/2d/3d against PyTorch: outputs and the gradients of input,
/// weight and bias, for every case of `conv.safetensors`.
@Suite struct ConvFixtureTests {
    let fx = try! Fixture("conv")

    @Test func fixtureCoversTheGrid() {
        let cases = ConvCase.all
        #expect(Set(cases.map(\.op)) == ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"])
        for op in ["conv1d", "conv2d", "conv3d"] {
            let ofOp = cases.filter { $0.op == op }
            #expect(ofOp.contains { $0.padding == .named("same") && $0.kernelSize.contains { $0 % 2 == 0 } }, "\(op): 'same' with an even kernel")
            #expect(ofOp.contains { $0.padding == .named("valid") }, "\(op): 'valid'")
            #expect(ofOp.contains { $0.groups > 1 && $0.groups == $0.inChannels && $0.outChannels == 2 * $0.inChannels }, "\(op): depthwise")
            #expect(ofOp.contains { $0.dilation.contains { $0 > 1 } }, "\(op): dilation")
            #expect(ofOp.contains { zip($0.stride, $0.kernelSize).contains { $0 > $1 } }, "\(op): stride > kernel")
            #expect(ofOp.contains { $0.dtype == "float32" }, "\(op): float32")
            #expect(ofOp.contains { !$0.bias }, "\(op): no bias")
        }
        for mode in ["reflect", "replicate", "circular"] {
            #expect(cases.filter { $0.paddingMode == mode }.count >= 2, "padding_mode \(mode)")
        }
        #expect(cases.contains { $0.paddingMode != "zeros" && $0.padding == .named("same") }, "'same' with a padding mode")
        #expect(cases.contains { fx["\($0.name)/x"].shape.first == 0 }, "empty batch")
        #expect(cases.contains { $0.op == "conv2d" && fx["\($0.name)/x"].rank == 3 }, "unbatched conv2d")
        for op in ["conv_transpose1d", "conv_transpose2d"] {
            let ofOp = cases.filter { $0.op == op }
            #expect(ofOp.contains { $0.outputPadding!.contains { $0 > 0 } }, "\(op): output_padding")
            #expect(ofOp.contains { $0.outputSize != nil }, "\(op): output_size")
            #expect(ofOp.contains { $0.groups > 1 }, "\(op): groups")
            #expect(ofOp.contains { $0.dilation.contains { $0 > 1 } }, "\(op): dilation")
        }
    }

    @Test(arguments: ConvCase.all)
    func matchesPyTorch(_ c: ConvCase) throws {
        let (atol, rtol) = c.tolerance
        let p = c.name
        let x = fx["\(p)/x"].requiringGrad(), w = fx["\(p)/weight"].requiringGrad()
        let b = c.bias ? fx["\(p)/bias"].requiringGrad() : nil
        let expected = fx["\(p)/y"]
        let y = c.apply(x, w, b)
        #expect(y.dtype == expected.dtype, "\(p): dtype \(y.dtype)")
        expectClose(y, expected, atol: atol, rtol: rtol, "\(p) output")
        expectClose(withNoGrad { c.apply(fx["\(p)/x"], fx["\(p)/weight"], c.bias ? fx["\(p)/bias"] : nil) }, expected,
                    atol: atol, rtol: rtol, "\(p) output without grad")
        guard y.shape == expected.shape else { return }
        (y * fx["\(p)/up"]).sum().backward()
        expectClose(try #require(x.grad, "\(p): no input gradient"), fx["\(p)/dx"], atol: atol, rtol: rtol, "\(p) input gradient")
        expectClose(try #require(w.grad, "\(p): no weight gradient"), fx["\(p)/dweight"], atol: atol, rtol: rtol, "\(p) weight gradient")
        if let b {
            expectClose(try #require(b.grad, "\(p): no bias gradient"), fx["\(p)/dbias"], atol: atol, rtol: rtol, "\(p) bias gradient")
        }
    }

    /// `backward(up)` gives the same gradients as `(y * up).sum().backward()`.
    @Test(arguments: ["c2_groups2", "t2_stride2_outpad", "c1_reflect"])
    func backwardWithGradientMatchesPyTorch(_ name: String) throws {
        let c = try #require(ConvCase.all.first { $0.name == name })
        let x = fx["\(name)/x"].requiringGrad(), w = fx["\(name)/weight"].requiringGrad()
        let b = c.bias ? fx["\(name)/bias"].requiringGrad() : nil
        c.apply(x, w, b).backward(fx["\(name)/up"])
        expectClose(try #require(x.grad), fx["\(name)/dx"], atol: 1e-10, rtol: 1e-9, "\(name) input gradient")
        expectClose(try #require(w.grad), fx["\(name)/dweight"], atol: 1e-10, rtol: 1e-9, "\(name) weight gradient")
    }

    // MARK: finite differences

    static func values(_ shape: Shape, _ phase: Double = 0) -> Tensor {
        Tensor((0..<shape.elementCount).map { sin(Double($0) * 1.3 + phase) }, shape: shape)
    }

    @Test func conv1dGradientsMatchFiniteDifferences() {
        let x = Self.values([2, 4, 9]), w = Self.values([6, 2, 3], 0.5), b = Self.values([6], 1)
        // groups 2, dilation 2, stride 2, padding 2
        #expect(checkGradients([x, w, b]) { conv1d($0[0], weight: $0[1], bias: $0[2], stride: 2, padding: 2, dilation: 2, groups: 2) } == nil)
        // 'same' with an even kernel (asymmetric padding)
        let w4 = Self.values([3, 4, 4], 0.2)
        #expect(checkGradients([x, w4]) { conv1d($0[0], weight: $0[1], padding: .same) } == nil)
        // padding modes
        for mode in [PaddingMode.reflect, .replicate, .circular] {
            let w3 = Self.values([3, 4, 3], 0.7)
            #expect(checkGradients([x, w3, Self.values([3])]) {
                conv1d($0[0], weight: $0[1], bias: $0[2], stride: 2, padding: 2, paddingMode: mode)
            } == nil, "padding mode \(mode)")
        }
    }

    @Test func conv2dGradientsMatchFiniteDifferences() {
        let x = Self.values([1, 2, 6, 5]), w = Self.values([4, 1, 2, 3], 0.3), b = Self.values([4], 2)
        // depthwise (groups == in, out = 2 * in), tuple stride, padding and dilation
        #expect(checkGradients([x, w, b]) {
            conv2d($0[0], weight: $0[1], bias: $0[2], stride: [2, 1], padding: [1, 2], dilation: [2, 1], groups: 2)
        } == nil)
        let w2 = Self.values([2, 2, 2, 3], 0.9)
        #expect(checkGradients([x, w2]) { conv2d($0[0], weight: $0[1], padding: .same, dilation: [1, 2]) } == nil)
        for mode in [PaddingMode.reflect, .replicate, .circular] {
            #expect(checkGradients([x, w2]) { conv2d($0[0], weight: $0[1], padding: [1, 2], paddingMode: mode) } == nil,
                    "padding mode \(mode)")
        }
    }

    @Test func conv3dGradientsMatchFiniteDifferences() {
        let x = Self.values([1, 2, 3, 4, 3]), w = Self.values([2, 1, 2, 2, 2], 0.4), b = Self.values([2], 1)
        #expect(checkGradients([x, w, b]) { conv3d($0[0], weight: $0[1], bias: $0[2], stride: [1, 2, 1], padding: 1, groups: 2) } == nil)
        let w2 = Self.values([2, 2, 2, 1, 2], 0.1)
        #expect(checkGradients([x, w2]) { conv3d($0[0], weight: $0[1], padding: [1, 0, 1], paddingMode: .circular) } == nil)
    }

    @Test func convTransposeGradientsMatchFiniteDifferences() {
        let x1 = Self.values([2, 4, 4]), w1 = Self.values([4, 3, 3], 0.6), b1 = Self.values([6], 0.1)
        // groups 2, stride 2, output_padding 1, padding 1, dilation 2
        #expect(checkGradients([x1, w1, b1]) {
            convTranspose1d($0[0], weight: $0[1], bias: $0[2], stride: 2, padding: 1, outputPadding: 1, groups: 2, dilation: 2)
        } == nil)
        let x2 = Self.values([1, 2, 3, 3]), w2 = Self.values([2, 3, 3, 2], 0.8), b2 = Self.values([3], 0.3)
        #expect(checkGradients([x2, w2, b2]) {
            convTranspose2d($0[0], weight: $0[1], bias: $0[2], stride: [2, 3], padding: [1, 0], outputPadding: [1, 2])
        } == nil)
        #expect(checkGradients([x2, w2]) { convTranspose2d($0[0], weight: $0[1], stride: 2, padding: 1, outputSize: [6, 5]) } == nil)
        let x3 = Self.values([1, 2, 2, 2, 2]), w3 = Self.values([2, 1, 2, 2, 2], 0.2)
        #expect(checkGradients([x3, w3]) { convTranspose3d($0[0], weight: $0[1], stride: 2, outputPadding: [1, 0, 1], groups: 2) } == nil)
    }
}
