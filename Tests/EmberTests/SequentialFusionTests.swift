import Ember
import Synchronization
import Testing
import _EmberTestSupport

// `Sequential` runs a `Linear` followed by an eval-mode `BatchNorm1d` and/or a `ReLU` in the
// product's epilogue (`Linear.forwardFusing`). The promise: the same bits as running the layers
// one by one, in every mode and dtype, at batch 1 and batch N; the fusion steps aside where the
// values in between could be observed (hooks) or need gradients (BatchNorm), and the eval-mode
// reports still come.

@Suite("Sequential fusion")
struct SequentialFusionTests {
    /// An MLP like the benchmark's, its running statistics moved by a few training forwards.
    static func model(_ dtype: DType) -> Sequential {
        let g = Generator(seed: 5)
        let m = withGenerator(g) {
            Sequential(Linear(30, 40, dtype: dtype), BatchNorm1d(40, dtype: dtype), ReLU(), Dropout(0.2),
                       Linear(40, 24, dtype: dtype), BatchNorm1d(24, affine: false, dtype: dtype),
                       Linear(24, 16, dtype: dtype), ReLU(), Linear(16, 3, dtype: dtype))
        }
        withGenerator(g) { for _ in 0..<3 { _ = m(Tensor.normal([64, 30]).to(dtype)) } }
        return m
    }

    static func input(_ dtype: DType, rows: Int = 50) -> Tensor {
        Tensor.normal([rows, 30], generator: Generator(seed: 6)).to(dtype)
    }

    @Test("eval without gradients: bitwise the layers one by one, batch 50 and batch 1",
          arguments: [DType.float32, .float64])
    func evalWithoutGradients(dtype: DType) {
        let m = Self.model(dtype)
        m.eval()
        for rows in [50, 1] {
            let x = Self.input(dtype, rows: rows)
            expectBitwiseEqual(withNoGrad { m(x) }, withNoGrad { m.oneByOne(x) }, "\(rows) rows")
        }
    }

    @Test("training and eval with gradients: the same outputs and gradients as one by one",
          arguments: [true, false])
    func withGradients(training: Bool) {
        let m = Self.model(.float64)
        if !training { m.eval() }
        let x = Self.input(.float64)
        // Dropout draws from the default generator: the same seed for both runs.
        let fused = withGenerator(Generator(seed: 9)) { m(x) }
        let params = m.parameters().map(\.value)
        let gf = Autograd.grad([fused.pow(2).sum()], params)
        let plain = withGenerator(Generator(seed: 9)) { m.oneByOne(x) }
        let gp = Autograd.grad([plain.pow(2).sum()], params)
        expectBitwiseEqual(fused, plain)
        for (a, b) in zip(gf, gp) { expectBitwiseEqual(a!, b!, "gradient") }
    }

    @Test("hooks between the layers see what they would see unfused, and the output is the same")
    func hooksStepAside() {
        let m = Self.model(.float32)
        m.eval()
        let x = Self.input(.float32)
        let expected = withNoGrad { m.oneByOne(x) }
        let seen = Mutex<[Shape]>([])
        let h1 = m[1].registerForwardHook { _, input, _ in seen.withLock { $0.append(input.shape) }; return nil }
        let h2 = m[0].registerForwardHook { _, _, output in
            #expect(output.doubles.contains { $0 < 0 }, "the Linear's own output, before BatchNorm and ReLU")
            return nil
        }
        // A hook on a ReLU right after a Linear (layers 6 and 7): it runs, on the Linear's output.
        let h3 = m[7].registerForwardHook { _, input, _ in
            #expect(input.doubles.contains { $0 < 0 }, "the ReLU's own input, before the ReLU")
            seen.withLock { $0.append(input.shape) }
            return nil
        }
        expectBitwiseEqual(withNoGrad { m(x) }, expected)
        #expect(seen.withLock { $0 } == [[50, 40], [50, 16]])
        h1.remove(); h2.remove(); h3.remove()
    }

    @Test("a fused eval-mode BatchNorm with untouched statistics is still reported")
    func untrainedStatisticsAreReported() {
        let m = withGenerator(Generator(seed: 1)) { Sequential(Linear(4, 6), BatchNorm1d(6), ReLU()) }
        m.eval()
        let kinds = Mutex<[DiagnosticKind]>([])
        withDiagnosticsHandler({ d in kinds.withLock { $0.append(d.kind) } }) {
            _ = withNoGrad { m(Tensor.ones([3, 4])) }
        }
        #expect(kinds.withLock { $0 } == [.untrainedStatistics])
    }

    @Test("a BatchNormBase subclass with its own forward is run, not fused")
    func subclassForwardIsRun() {
        final class ShiftedNorm: BatchNormBase {
            var calls = 0
            override var acceptedRanks: Set<Int> { [2] }
            override func forward(_ input: Tensor) -> Tensor {
                calls += 1
                return super.forward(input) + 1
            }
        }
        let norm = ShiftedNorm(6)
        let m = withGenerator(Generator(seed: 2)) { Sequential(Linear(4, 6), norm, ReLU()) }
        _ = m(Tensor.normal([8, 4], generator: Generator(seed: 3)))  // moves the statistics
        m.eval()
        let x = Tensor.normal([5, 4], generator: Generator(seed: 4))
        let y = withNoGrad { m(x) }
        #expect(norm.calls == 2, "its forward ran in training and in eval")
        expectBitwiseEqual(y, withNoGrad { m.oneByOne(x) })
    }
}
