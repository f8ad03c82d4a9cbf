import Ember
import Synchronization
import Testing
import _EmberTestSupport

// `Sequential` runs a `Conv2d` followed by a 2x2 `MaxPool2d` (a `ReLU` between or not) as one op
// that pools each sample's convolution output while it is in cache (`convolutionMaxPool2x2`).
// The promise: the same values and the same gradients of input, weight and bias, bit for bit,
// as the layers one by one, also under `createGraph`; the op steps aside where it does not apply
// or where hooks would see the convolution's output.

@Suite("Conv2d then 2x2 max pooling")
struct ConvolutionMaxPoolTests {
    /// Normal values, every fifth replaced by -1 or 0 (ties in the pooling windows).
    static func input(_ shape: Shape, seed: UInt64) -> Tensor {
        let base = Tensor.normal(shape, generator: Generator(seed: seed)).doubles
        return Tensor(base.enumerated().map { i, v in i % 5 == 0 ? Double(i % 2) - 1 : v }, shape: shape).to(.float32)
    }

    static func cases() -> [(String, Sequential, Shape)] {
        withGenerator(Generator(seed: 11)) {
            [("LeNet's first block", Sequential(Conv2d(1, 8, 3), ReLU(), MaxPool2d(2), Conv2d(8, 6, 3), ReLU(), MaxPool2d(2),
                                                Flatten(), Linear(6 * 5 * 5, 3)), [5, 1, 28, 28]),
             ("no ReLU, odd output (7 x 9), padding", Sequential(Conv2d(3, 4, 3, padding: 1), MaxPool2d(2)), [2, 3, 7, 9]),
             ("groups, dilation, no bias", Sequential(Conv2d(4, 6, 3, dilation: 2, groups: 2, bias: false), ReLU(),
                                                     MaxPool2d([2, 2], stride: [2, 2])), [3, 4, 12, 10]),
             ("one sample, 'same' padding", Sequential(Conv2d(2, 5, 4, padding: .same), MaxPool2d(2)), [1, 2, 6, 6])]
        }
    }

    /// With the input requiring a gradient (a later layer) and without (a network's first layer).
    @Test("training: bitwise the layers one by one, values and gradients", arguments: [true, false])
    func gradients(inputGradient: Bool) {
        for (name, m, shape) in Self.cases() {
            let x = Self.input(shape, seed: 12).requiringGrad(inputGradient)
            let fused = m(x), plain = m.oneByOne(x)
            expectBitwiseEqual(fused, plain, name)
            let inputs = (inputGradient ? [x] : []) + m.parameters().map(\.value)
            let upstream = Tensor.normal(fused.shape, generator: Generator(seed: 13))
            let gf = Autograd.grad([(fused * upstream).sum()], inputs)
            let gp = Autograd.grad([(plain * upstream).sum()], inputs)
            for (a, b) in zip(gf, gp) { expectBitwiseEqual(a!, b!, "\(name): gradient") }
        }
    }

    @Test("the fused op runs where it applies")
    func fusedOpRuns() {
        let m = withGenerator(Generator(seed: 1)) { Sequential(Conv2d(2, 3, 3), ReLU(), MaxPool2d(2)) }
        let x = Self.input([2, 2, 8, 8], seed: 2).requiringGrad()
        // The ReLU runs after the fused op, on its output.
        let y = m(x)
        #expect(y.gradFnName == "relu")
        let pooled = withGenerator(Generator(seed: 1)) { Sequential(Conv2d(2, 3, 3), MaxPool2d(2)) }(x)
        #expect(pooled.gradFnName == "convolution_max_pool2d")
    }

    @Test("eval without gradients, NaN included: bitwise the layers one by one")
    func evalWithNaN() {
        for (name, m, shape) in Self.cases() {
            m.eval()
            var values = Self.input(shape, seed: 14).doubles
            for i in stride(from: 3, to: values.count, by: 17) { values[i] = .nan }
            let x = Tensor(values, shape: shape).to(.float32)
            expectBitwiseEqual(withNoGrad { m(x) }, withNoGrad { m.oneByOne(x) }, name)
        }
    }

    @Test("createGraph: second derivatives are those of the layers one by one")
    func doubleBackward() throws {
        let m = withGenerator(Generator(seed: 15)) { Sequential(Conv2d(2, 3, 3), ReLU(), MaxPool2d(2)) }
        let x = Self.input([2, 2, 6, 8], seed: 16).requiringGrad()
        func penalty(_ y: Tensor) throws -> [Tensor?] {
            let g = try #require(Autograd.grad([(y * y).sum()], [x], createGraph: true)[0])
            return Autograd.grad([(g * g).sum()], [x] + m.parameters().map(\.value))
        }
        let fused = try penalty(m(x)), plain = try penalty(m.oneByOne(x))
        for (a, b) in zip(fused, plain) { expectBitwiseEqual(a!, b!, "second derivative") }
    }

    @Test("steps aside: hooks, other windows, float64, unbatched input")
    func stepsAside() {
        let g = Generator(seed: 17)
        let hooked = withGenerator(g) { Sequential(Conv2d(2, 3, 3), MaxPool2d(2)) }
        let x = Self.input([2, 2, 8, 8], seed: 18)
        let seen = Mutex<[Shape]>([])
        let h = hooked[0].registerForwardHook { _, _, output in seen.withLock { $0.append(output.shape) }; return nil }
        expectBitwiseEqual(hooked(x), hooked.oneByOne(x))
        #expect(seen.withLock { $0 }.first == [2, 3, 6, 6], "the hook saw the convolution's own output")
        h.remove()
        let others: [(Sequential, Tensor)] = withGenerator(g) {
            [(Sequential(Conv2d(2, 3, 3), MaxPool2d(3)), x),
             (Sequential(Conv2d(2, 3, 3), MaxPool2d(2, stride: 1)), x),
             (Sequential(Conv2d(2, 3, 3), MaxPool2d(2, ceilMode: true)), Self.input([1, 2, 9, 9], seed: 19)),
             (Sequential(Conv2d(2, 3, 3, dtype: .float64), MaxPool2d(2)), x.to(.float64)),
             (Sequential(Conv2d(2, 3, 3), MaxPool2d(2)), Self.input([2, 8, 8], seed: 20)),
             (Sequential(Conv2d(2, 3, 3, stride: 2), MaxPool2d(2)), Self.input([1, 2, 11, 11], seed: 21))]
        }
        for (m, input) in others {
            let y = m(input.requiringGrad())
            #expect(y.gradFnName != "convolution_max_pool2d")
            expectBitwiseEqual(y, m.oneByOne(input))
        }
    }
}
