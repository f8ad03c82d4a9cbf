import Ember
import Synchronization
import Testing
import _EmberTestSupport

// `Sequential` runs a `ReLU` followed by a max pooling as the pooling and then the ReLU (on a
// quarter of the elements for 2x2 windows). The promise: the same output and the same gradients,
// bit for bit, as the layers one by one, whatever the input holds (negatives, windows of only
// negatives, ties, zeros of both signs, NaN) and whatever the windows (overlapping, padded,
// dilated, ceil mode, 1-d, 3-d, float64); hooks see what they would see unfused.

@Suite("ReLU before max pooling")
struct ReLUPoolOrderTests {
    /// Normal values, a third of them replaced by -1, 0, -0 or NaN (rounded to make ties).
    static func input(_ shape: Shape, seed: UInt64, dtype: DType = .float32, nan: Bool = true) -> Tensor {
        let base = Tensor.normal(shape, generator: Generator(seed: seed)).doubles
        let specials: [Double] = nan ? [-1, 0, -0.0, .nan, -2] : [-1, 0, -0.0, -2]
        let values = base.enumerated().map { i, v in i % 3 == 0 ? specials[(i / 3) % specials.count] : (v * 2).rounded() / 2 }
        return Tensor(values, shape: shape).to(dtype)
    }

    static func cases(_ t: DType) -> [(String, Sequential, Shape)] {
        withGenerator(Generator(seed: 3)) {
            [("2x2", Sequential(Conv2d(2, 3, 3, dtype: t), ReLU(), MaxPool2d(2), Flatten(), Linear(3 * 4 * 4, 2, dtype: t)), [4, 2, 10, 10]),
             ("odd sizes, ceil mode", Sequential(Conv2d(2, 3, 2, dtype: t), ReLU(), MaxPool2d(2, ceilMode: true)), [3, 2, 8, 9]),
             ("overlapping, padded", Sequential(Conv2d(1, 2, 3, padding: 1, dtype: t), ReLU(), MaxPool2d(3, stride: 1, padding: 1)), [2, 1, 7, 6]),
             ("dilated", Sequential(ReLU(), MaxPool2d(2, stride: 1, dilation: 2)), [2, 3, 7, 7]),
             ("1-d", Sequential(Conv1d(2, 4, 3, dtype: t), ReLU(), MaxPool1d(3, stride: 2, padding: 1)), [3, 2, 13]),
             ("3-d", Sequential(ReLU(), MaxPool3d(2)), [2, 2, 4, 5, 6])]
        }
    }

    @Test("training with gradients: bitwise the layers one by one", arguments: [DType.float32, .float64])
    func gradients(dtype: DType) {
        for (name, m, shape) in Self.cases(dtype) {
            let x = Self.input(shape, seed: 4, dtype: dtype, nan: false).requiringGrad()
            let reordered = m(x), plain = m.oneByOne(x)
            expectBitwiseEqual(reordered, plain, name)
            let inputs = [x] + m.parameters().map(\.value)
            let upstream = Self.input(reordered.shape, seed: 5, dtype: dtype, nan: false)
            let gr = Autograd.grad([(reordered * upstream).sum()], inputs)
            let gp = Autograd.grad([(plain * upstream).sum()], inputs)
            for (a, b) in zip(gr, gp) { expectBitwiseEqual(a!, b!, "\(name): gradient") }
        }
    }

    @Test("the ReLU runs after the pooling: it is the output's last recorded op")
    func reluRunsLast() {
        let x = Self.input([2, 2, 6, 6], seed: 9, nan: false).requiringGrad()
        for (m, input) in [(Sequential(ReLU(), MaxPool2d(2)), x), (Sequential(ReLU(), MaxPool1d(2)), x.reshaped([2, 12, 6])),
                           (Sequential(ReLU(), MaxPool3d(1, stride: 2)), x)] {
            #expect(m(input).gradFnName == "relu")
            #expect(m.oneByOne(input).gradFnName != "relu")
        }
    }

    @Test("eval without gradients, NaN included: bitwise the layers one by one")
    func evalWithNaN() {
        for (name, m, shape) in Self.cases(.float32) {
            m.eval()
            let x = Self.input(shape, seed: 6)
            expectBitwiseEqual(withNoGrad { m(x) }, withNoGrad { m.oneByOne(x) }, name)
        }
    }

    @Test("other poolings keep their order: ReLU does not commute with averages")
    func averagesKeepTheOrder() {
        let x = Self.input([2, 3, 6, 6], seed: 8, nan: false)
        for m in [Sequential(ReLU(), AvgPool2d(2)), Sequential(ReLU(), AdaptiveAvgPool2d(1)), Sequential(ReLU(), LPPool2d(2, 2))] {
            let plain = m.oneByOne(x)
            expectBitwiseEqual(m(x), plain)
            let swapped = m[0](m[1](x))
            #expect(swapped.doubles != plain.doubles, "the inputs tell the two orders apart")
        }
    }

    @Test("hooks on the ReLU or the pooling see the values they would see unfused")
    func hooksStepAside() {
        let m = Sequential(ReLU(), MaxPool2d(2))
        let x = Self.input([2, 2, 6, 6], seed: 7, nan: false)
        let seen = Mutex<[Shape]>([])
        let h = m[0].registerForwardHook { _, input, output in
            #expect(input.doubles.contains { $0 < 0 }, "the ReLU's own input")
            #expect(!output.doubles.contains { $0 < 0 })
            seen.withLock { $0.append(input.shape) }
            return nil
        }
        expectBitwiseEqual(m(x), m.oneByOne(x))
        #expect(seen.withLock { $0 } == [[2, 2, 6, 6], [2, 2, 6, 6]], "the ReLU ran first, on the unpooled input")
        h.remove()
        let h2 = m[1].registerForwardHook { _, input, _ in
            #expect(!input.doubles.contains { $0 < 0 }, "the pooling's own input is rectified")
            return nil
        }
        expectBitwiseEqual(m(x), m.oneByOne(x))
        h2.remove()
    }
}
