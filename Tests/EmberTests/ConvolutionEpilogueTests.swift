import CEmberKernels
import Ember
@testable import EmberFunctional
@testable import EmberNN
import EmberStorage
import SeedNetwork
import Synchronization
import Testing
import _EmberTestSupport

// `conv(x, then: bn, adding: r, relu: true)` and `Sequential`'s `Conv2d, BatchNorm2d, ReLU` run
// the eval-mode BatchNorm, the residual sum and the ReLU on each sample's convolution output in
// cache (`convolutionWithEpilogue`). The promise: bitwise the separate calls, NaN included, on
// every kernel path; in training, with gradients, hooks or anything the op does not take, the
// separate calls run, with their statistics updates, gradients, hooks and reports.

@Suite("Conv2d with BatchNorm, residual and ReLU")
struct ConvolutionEpilogueTests {
    /// Normal values with exact zeros, negatives near zero and NaN sprinkled in.
    static func input(_ shape: Shape, seed: UInt64, nan: Bool = true) -> Tensor {
        var values = Tensor.normal(shape, generator: Generator(seed: seed)).doubles
        for i in stride(from: 0, to: values.count, by: 7) { values[i] = i % 2 == 0 ? 0 : -1e-30 }
        if nan { for i in stride(from: 5, to: values.count, by: 29) { values[i] = .nan } }
        return Tensor(values, shape: shape).to(.float32)
    }

    /// A convolution and a BatchNorm whose statistics, weight and bias are not their initial
    /// values (a few training forwards, then random affine parameters).
    static func layers(_ conv: () -> Conv2d, input shape: Shape, seed: UInt64) -> (Conv2d, BatchNorm2d) {
        let g = Generator(seed: seed)
        let c = withGenerator(g) { conv() }
        let bn = BatchNorm2d(c.outChannels)
        for i in 0..<2 { _ = withNoGrad { bn(c(Self.input(shape, seed: seed + UInt64(i), nan: false))) } }
        bn.weight!.value = Tensor.normal([c.outChannels], generator: g)
        bn.bias!.value = Tensor.normal([c.outChannels], generator: g)
        return (c, bn)
    }

    static func separate(_ conv: Conv2d, _ bn: BatchNorm2d, _ x: Tensor, _ residual: Tensor?, relu: Bool) -> Tensor {
        var y = bn(conv(x))
        if let residual { y = y + residual }
        return relu ? y.relu() : y
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String, shape: Shape, residual: Bool, relu: Bool
        let conv: @Sendable () -> Conv2d
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "ResNet block's second convolution", shape: [3, 8, 9, 9], residual: true, relu: true) {
            Conv2d(8, 8, 3, padding: 1, bias: false)
        },
        Case(name: "bias, ReLU, no residual", shape: [2, 3, 10, 12], residual: false, relu: true) { Conv2d(3, 8, 3, padding: 1) },
        Case(name: "BatchNorm alone", shape: [2, 3, 6, 5], residual: false, relu: false) { Conv2d(3, 4, 2) },
        Case(name: "groups and dilation, residual, no ReLU", shape: [1, 4, 12, 10], residual: true, relu: false) {
            Conv2d(4, 6, 3, padding: 2, dilation: 2, groups: 2)
        },
        Case(name: "'same' padding, even kernel", shape: [2, 5, 7, 7], residual: false, relu: true) {
            Conv2d(5, 5, 4, padding: .same, bias: false)
        },
        // Unfused, these small planes stack samples in one buffer; fused, one at a time.
        Case(name: "small planes, 17 samples", shape: [17, 3, 13, 13], residual: false, relu: true) { Conv2d(3, 4, 3) },
        // Enough work for the samples to split over threads.
        Case(name: "32 x 32, 16 channels, 8 samples", shape: [8, 16, 32, 32], residual: true, relu: true) {
            Conv2d(16, 16, 3, padding: 1, bias: false)
        },
    ]

    @Test("eval without gradients: bitwise the separate calls, and the fused op runs", arguments: cases)
    func sameBits(_ c: Case) throws {
        let (conv, bn) = Self.layers(c.conv, input: c.shape, seed: 3)
        bn.eval()
        let x = Self.input(c.shape, seed: 4)
        let outShape = withNoGrad { conv(x) }.shape
        let residual = c.residual ? Self.input(outShape, seed: 5) : nil
        let fused = withNoGrad { conv(x, then: bn, adding: residual, relu: c.relu) }
        expectBitwiseEqual(fused, withNoGrad { Self.separate(conv, bn, x, residual, relu: c.relu) }, c.name)
        let direct = try #require(withNoGrad { conv.forwardEpilogue(x, norm: bn, residual: residual, relu: c.relu) }, "the fused op applies")
        expectBitwiseEqual(direct, fused)
        // Without a BatchNorm: the convolution, the sum and the ReLU.
        let plain = try #require(withNoGrad { conv.forwardEpilogue(x, norm: nil, residual: residual, relu: c.relu) })
        var expected = withNoGrad { conv(x) }
        if let residual { expected = expected + residual }
        expectBitwiseEqual(plain, c.relu ? expected.relu() : expected, "\(c.name), no BatchNorm")
    }

    @Test("every kernel path gives the Swift loop's bits: the epilogue, ReLU's backward, row copies")
    func kernelPaths() {
        let channels = 3, plane = 37
        var x = Self.input([channels * plane], seed: 6).floats
        let residual = Self.input([channels * plane], seed: 7).floats
        for i in stride(from: 3, to: x.count, by: 11) { x[i] = -0.0 }  // ReLU makes -0 into +0
        let scale: [Float] = [0.5, -2, 0], shift: [Float] = [1, 0, -0.25]
        for path in GEMMKernelPath.supported {
            for (withScale, withResidual, relu) in [(true, true, true), (true, false, true), (false, true, false), (true, true, false),
                                                    (false, false, true), (false, false, false)] {
                var expected = x
                for i in 0..<channels {
                    for j in 0..<plane {
                        var v = x[i * plane + j]
                        if withScale { v = v * scale[i] + shift[i] }
                        if withResidual { v = v + residual[i * plane + j] }
                        if relu { v = v <= 0 ? 0 : v }
                        expected[i * plane + j] = v
                    }
                }
                var y = [Float](repeating: 7, count: channels * plane + 1)
                y.withUnsafeMutableBufferPointer { out in
                    ConvolutionEpilogue.apply(x, out.baseAddress!, channels: channels, plane: plane,
                                              scale: withScale ? scale : nil, shift: withScale ? shift : nil,
                                              residual: withResidual ? residual : nil, relu: relu, path: path)
                }
                #expect(zip(y, expected).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(path) \(withScale) \(withResidual) \(relu)")
                #expect(y.last == 7, "\(path): wrote past the end")
            }
            // ReLU's backward in the same file: the gradient where the output is above 0 or NaN.
            var out = [Float](repeating: 7, count: x.count + 1)
            out.withUnsafeMutableBufferPointer { o in
                ActivationKernels.reluBackward(residual, x, into: o.baseAddress!, count: x.count, path: path)
            }
            let expected = zip(residual, x).map { g, y in y <= 0 ? 0 : g }
            #expect(zip(out, expected).allSatisfy { $0.bitPattern == $1.bitPattern } && out.last == 7, "\(path): ReLU backward")
            // The padded buffer's row copies: 3 rows of 37 into rows 40 apart, the gaps untouched.
            var rows = [Float](repeating: 7, count: 3 * 40)
            rows.withUnsafeMutableBufferPointer { d in ember_copy_rows_f32(Int32(path.rawValue), 3, 37, x, 37, d.baseAddress!, 40) }
            let copied: [Float] = (0..<(3 * 40)).map { (i: Int) -> Float in
                let row = i / 40, column = i % 40
                return column < 37 ? x[row * 37 + column] : 7
            }
            #expect(zip(rows, copied).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(path): row copies")
        }
    }

    @Test("training mode: the separate calls, the same statistics updates and gradients")
    func training() {
        let make = { Self.layers({ Conv2d(4, 4, 3, padding: 1) }, input: [3, 4, 6, 6], seed: 8) }
        let (c1, b1) = make(), (c2, b2) = make()
        let x = Self.input([3, 4, 6, 6], seed: 9, nan: false), r = Self.input([3, 4, 6, 6], seed: 10, nan: false)
        #expect(withNoGrad { c1.forwardEpilogue(x, norm: b1, residual: r, relu: true) } == nil, "training-mode BatchNorm")
        let fused = c1(x, then: b1, adding: r, relu: true), plain = Self.separate(c2, b2, x, r, relu: true)
        expectBitwiseEqual(fused, plain)
        expectBitwiseEqual(b1.runningMean!.value, b2.runningMean!.value, "running mean")
        expectBitwiseEqual(b1.runningVar!.value, b2.runningVar!.value, "running variance")
        let g1 = Autograd.grad([fused.pow(2).sum()], (c1.parameters() + b1.parameters()).map(\.value))
        let g2 = Autograd.grad([plain.pow(2).sum()], (c2.parameters() + b2.parameters()).map(\.value))
        for (a, b) in zip(g1, g2) { expectBitwiseEqual(a!, b!, "gradient") }
    }

    /// Training-mode shapes for the BatchNorm's own fusion: planes (float32 in C), 1 x 1 outputs
    /// (`[N, C]` planes of one, the channels-last loops) and float64.
    static let trainingCases: [(name: String, dtype: DType, shape: Shape, kernel: Int, padding: Int)] = [
        ("float32 planes", .float32, [3, 4, 6, 7], 3, 1),
        ("1 x 1 outputs", .float32, [5, 4, 3, 3], 3, 0),
        ("float64", .float64, [2, 3, 5, 5], 3, 1),
    ]

    @Test("training: the BatchNorm adds and rectifies as it normalises, bitwise the separate ops with their gradients",
          arguments: [(true, true), (true, false), (false, true)])
    func trainingFusion(residual withResidual: Bool, relu: Bool) {
        for c in Self.trainingCases {
            let make = {
                let conv = withGenerator(Generator(seed: 30)) { Conv2d(c.shape[1], 4, SpatialSize(c.kernel), padding: c.padding == 0 ? 0 : 1, dtype: c.dtype) }
                let bn = BatchNorm2d(4, dtype: c.dtype)
                bn.weight!.value = Tensor.normal([4], generator: Generator(seed: 31)).to(c.dtype)
                return (conv, bn)
            }
            let (c1, b1) = make(), (c2, b2) = make()
            var values = Self.input(c.shape, seed: 32, nan: false).doubles
            for i in stride(from: 1, to: values.count, by: 13) { values[i] = -0.0 }
            let x = Tensor(values, shape: c.shape).to(c.dtype).requiringGrad()
            let outShape = withNoGrad { c1(x) }.shape
            let r = withResidual ? Self.input(outShape, seed: 33, nan: false).to(c.dtype).requiringGrad() : nil
            let fused = c1(x, then: b1, adding: r, relu: relu), plain = Self.separate(c2, b2, x, r, relu: relu)
            #expect(fused.gradFnName == "batch_norm_add_relu", "\(c.name)")
            expectBitwiseEqual(fused, plain, "\(c.name): values")
            expectBitwiseEqual(b1.runningMean!.value, b2.runningMean!.value, "\(c.name): running mean")
            expectBitwiseEqual(b1.runningVar!.value, b2.runningVar!.value, "\(c.name): running variance")
            let upstream = Tensor.normal(outShape, generator: Generator(seed: 34)).to(c.dtype)
            let inputs1 = [x] + (r.map { [$0] } ?? []) + (c1.parameters() + b1.parameters()).map(\.value)
            let inputs2 = [x] + (r.map { [$0] } ?? []) + (c2.parameters() + b2.parameters()).map(\.value)
            let g1 = Autograd.grad([(fused * upstream).sum()], inputs1), g2 = Autograd.grad([(plain * upstream).sum()], inputs2)
            for (i, (a, b)) in zip(g1, g2).enumerated() { expectBitwiseEqual(a!, b!, "\(c.name): gradient \(i)") }
        }
    }

    @Test("training, createGraph: second derivatives through the fused BatchNorm are the separate ops'")
    func trainingDoubleBackward() throws {
        let make = {
            (withGenerator(Generator(seed: 35)) { Conv2d(2, 3, 3, padding: 1, dtype: .float64) }, BatchNorm2d(3, dtype: .float64))
        }
        let (c1, b1) = make(), (c2, b2) = make()
        let x = Self.input([2, 2, 4, 5], seed: 36, nan: false).to(.float64).requiringGrad()
        let r = Self.input([2, 3, 4, 5], seed: 37, nan: false).to(.float64).requiringGrad()
        func penalty(_ y: Tensor, _ params: [Tensor]) throws -> [Tensor?] {
            let g = try #require(Autograd.grad([(y * y).sum()], [x], createGraph: true)[0])
            return Autograd.grad([(g * g).sum()], [x, r] + params)
        }
        let fused = try penalty(c1(x, then: b1, adding: r, relu: true), (c1.parameters() + b1.parameters()).map(\.value))
        let plain = try penalty(Self.separate(c2, b2, x, r, relu: true), (c2.parameters() + b2.parameters()).map(\.value))
        for (a, b) in zip(fused, plain) {
            expectClose(try #require(a), try #require(b), atol: 1e-12, rtol: 1e-9, "second derivative")
        }
    }

    @Test("eval with gradients: the separate calls, and gradients reach input, weights and residual")
    func evalWithGradients() {
        let (conv, bn) = Self.layers({ Conv2d(3, 3, 3, padding: 1) }, input: [2, 3, 5, 5], seed: 11)
        bn.eval()
        let x = Self.input([2, 3, 5, 5], seed: 12, nan: false).requiringGrad()
        let r = Self.input([2, 3, 5, 5], seed: 13, nan: false).requiringGrad()
        #expect(conv.forwardEpilogue(x, norm: bn, residual: r, relu: true) == nil)
        let fused = conv(x, then: bn, adding: r, relu: true), plain = Self.separate(conv, bn, x, r, relu: true)
        expectBitwiseEqual(fused, plain)
        let inputs = [x, r] + (conv.parameters() + bn.parameters()).map(\.value)
        let gf = Autograd.grad([fused.sum()], inputs), gp = Autograd.grad([plain.sum()], inputs)
        for (a, b) in zip(gf, gp) { expectBitwiseEqual(a!, b!, "gradient") }
        // Fine-tuning the norms: a frozen convolution, input without gradient, the BatchNorm's
        // weight and bias trained. Their gradients must come.
        let (frozen, norm) = Self.layers({ Conv2d(3, 3, 3, padding: 1) }, input: [2, 3, 5, 5], seed: 15)
        frozen.requiresGrad(false)
        norm.eval()
        let input = Self.input([2, 3, 5, 5], seed: 16, nan: false)
        #expect(frozen.forwardEpilogue(input, norm: norm, residual: nil, relu: true) == nil)
        let tuned = frozen(input, then: norm, relu: true), reference = Self.separate(frozen, norm, input, nil, relu: true)
        let normParameters = norm.parameters().map(\.value)
        let gt = Autograd.grad([tuned.sum()], normParameters), gr = Autograd.grad([reference.sum()], normParameters)
        for (a, b) in zip(gt, gr) { expectBitwiseEqual(a!, b!, "BatchNorm parameter gradient") }
        // Only the residual needs a gradient: still the separate calls.
        let r2 = Self.input([2, 3, 5, 5], seed: 14, nan: false).requiringGrad()
        #expect(conv.forwardEpilogue(x.detached(), norm: bn, residual: r2, relu: false) == nil)
    }

    @Test("steps aside: hooks, no running statistics, float64, unbatched, stride 2, broadcast residual")
    func stepsAside() {
        let (conv, bn) = Self.layers({ Conv2d(3, 3, 3, padding: 1) }, input: [2, 3, 6, 6], seed: 15)
        bn.eval()
        let x = Self.input([2, 3, 6, 6], seed: 16)
        let seen = Mutex<Int>(0)
        for module in [conv as Module, bn] {
            let h = module.registerForwardHook { _, _, _ in seen.withLock { $0 += 1 }; return nil }
            #expect(withNoGrad { conv.forwardEpilogue(x, norm: bn, residual: nil, relu: true) } == nil)
            let y = withNoGrad { conv(x, then: bn, relu: true) }
            #expect(seen.withLock { $0 } == 1, "the hook ran")
            expectBitwiseEqual(y, withNoGrad { Self.separate(conv, bn, x, nil, relu: true) })
            h.remove()
            seen.withLock { $0 = 0 }
        }
        let untracked = BatchNorm2d(3, trackRunningStats: false)
        untracked.eval()
        #expect(withNoGrad { conv.forwardEpilogue(x, norm: untracked, residual: nil, relu: true) } == nil)
        expectBitwiseEqual(withNoGrad { conv(x, then: untracked, relu: true) }, withNoGrad { Self.separate(conv, untracked, x, nil, relu: true) })
        let broadcast = Self.input([1, 3, 1, 1], seed: 17)
        #expect(withNoGrad { conv.forwardEpilogue(x, norm: bn, residual: broadcast, relu: true) } == nil)
        expectBitwiseEqual(withNoGrad { conv(x, then: bn, adding: broadcast, relu: true) },
                           withNoGrad { Self.separate(conv, bn, x, broadcast, relu: true) })
        #expect(withNoGrad { conv.forwardEpilogue(x[0], norm: bn, residual: nil, relu: true) } == nil, "unbatched")
        let strided = withGenerator(Generator(seed: 18)) { Conv2d(3, 3, 3, stride: 2) }
        #expect(withNoGrad { strided.forwardEpilogue(x, norm: nil, residual: nil, relu: true) } == nil, "stride 2")
        let wide = withGenerator(Generator(seed: 19)) { Conv2d(3, 3, 3, padding: 1, dtype: .float64) }
        let bn64 = BatchNorm2d(3, dtype: .float64)
        bn64.eval()
        #expect(withNoGrad { wide.forwardEpilogue(x.to(.float64), norm: bn64, residual: nil, relu: true) } == nil, "float64")
    }

    @Test("Sequential: Conv2d, BatchNorm2d, ReLU fused in eval, bitwise one by one in every mode")
    func sequential() {
        let g = Generator(seed: 20)
        let m = withGenerator(g) {
            Sequential(Conv2d(3, 6, 3, padding: 1), BatchNorm2d(6), ReLU(), Conv2d(6, 6, 3, bias: false), ReLU(),
                       Conv2d(6, 4, 3, padding: 1), BatchNorm2d(4), Dropout2d(0.3), MaxPool2d(2), Conv2d(4, 4, 1), BatchNorm2d(4))
        }
        let x = Self.input([4, 3, 12, 12], seed: 21, nan: false)
        _ = withNoGrad { m(x) }  // moves the statistics
        m.eval()
        let nan = Self.input([4, 3, 12, 12], seed: 22)
        expectBitwiseEqual(withNoGrad { m(nan) }, withNoGrad { m.oneByOne(nan) }, "eval, no gradients")
        expectBitwiseEqual(m(x), m.oneByOne(x), "eval, recording")
        // Training: BatchNorm2d, ReLU fuse (the BatchNorm rectifies as it normalises); each run on
        // its own copy, since the statistics move.
        let copy = m.deepCopy(rebuilding: {
            Sequential(Conv2d(3, 6, 3, padding: 1), BatchNorm2d(6), ReLU(), Conv2d(6, 6, 3, bias: false), ReLU(),
                       Conv2d(6, 4, 3, padding: 1), BatchNorm2d(4), Dropout2d(0.3), MaxPool2d(2), Conv2d(4, 4, 1), BatchNorm2d(4))
        })
        m.train()
        copy.train()
        let input = x.requiringGrad()
        let fused = withGenerator(Generator(seed: 23)) { m(input) }, plain = withGenerator(Generator(seed: 23)) { copy.oneByOne(input) }
        expectBitwiseEqual(fused, plain, "training")
        for (a, b) in zip(m.buffers(), copy.buffers()) { expectBitwiseEqual(a.value, b.value, "running statistics") }
        let gf = Autograd.grad([fused.pow(2).sum()], [input] + m.parameters().map(\.value))
        let gp = Autograd.grad([plain.pow(2).sum()], [input] + copy.parameters().map(\.value))
        for (a, b) in zip(gf, gp) { expectBitwiseEqual(a!, b!, "training gradient") }
        // The fusion applies: a BatchNorm then a ReLU record one op.
        let pair = Sequential(BatchNorm2d(3), ReLU())
        #expect(pair(x.requiringGrad()).gradFnName == "batch_norm_add_relu")
    }

    @Test("a fused eval-mode BatchNorm2d with untouched statistics is still reported")
    func untrainedStatisticsAreReported() {
        let m = withGenerator(Generator(seed: 24)) { Sequential(Conv2d(2, 3, 3), BatchNorm2d(3), ReLU()) }
        m.eval()
        let kinds = Mutex<[DiagnosticKind]>([])
        withDiagnosticsHandler({ d in kinds.withLock { $0.append(d.kind) } }) {
            _ = withNoGrad { m(Tensor.ones([2, 2, 5, 5])) }
        }
        #expect(kinds.withLock { $0 } == [.untrainedStatistics])
    }

    @Test("BasicBlock: the same values as its calls written separately, in both modes, and the same gradients")
    func basicBlock() {
        let block = withGenerator(Generator(seed: 25)) { BasicBlock(4) }
        let x = Self.input([2, 4, 7, 7], seed: 26, nan: false)
        func separate(_ x: Tensor) -> Tensor {
            (block.bn2(block.conv2(block.bn1(block.conv1(x)).relu())) + x).relu()
        }
        // Training: the statistics move once per call, so each call runs on its own copy.
        let copy = block.deepCopy(rebuilding: { BasicBlock(4) })
        let y = block(x)
        let expected = (copy.bn2(copy.conv2(copy.bn1(copy.conv1(x)).relu())) + x).relu()
        expectBitwiseEqual(y, expected, "training")
        block.eval()
        expectBitwiseEqual(withNoGrad { block(x) }, withNoGrad { separate(x) }, "eval")
    }
}
