import Ember
import Testing
import _EmberTestSupport

/// Construction, parameter shapes and initialisation, listings, layouts and edge cases of RNN,
/// LSTM and GRU.
@Suite struct RNNModuleTests {
    /// Shapes PyTorch gives (spec 5.4): LSTM(4, 3, 2 layers), bidirectional GRU(4, 3),
    /// LSTM(4, 6, projSize: 2).
    @Test func parameterShapesArePyTorchs() {
        let lstm = LSTM(4, 3, numLayers: 2)
        #expect(lstm.parameters().map { $0.shape } == [[12, 4], [12, 3], [12], [12], [12, 3], [12, 3], [12], [12]])
        let gru = GRU(4, 3, bidirectional: true)
        #expect(gru.stateDict().keys == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                                         "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse"])
        #expect(gru.parameters().map { $0.shape } == [[9, 4], [9, 3], [9], [9], [9, 4], [9, 3], [9], [9]])
        let proj = LSTM(4, 6, projSize: 2)
        #expect(proj.stateDict().keys == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0"])
        #expect(proj.weights(layer: 0).weightHH.shape == [24, 2] && proj.weights(layer: 0).weightHR!.shape == [2, 6])
        let noBias = RNN(4, 3, numLayers: 2, bias: false, bidirectional: true)
        #expect(noBias.stateDict().keys == ["weight_ih_l0", "weight_hh_l0", "weight_ih_l0_reverse", "weight_hh_l0_reverse",
                                            "weight_ih_l1", "weight_hh_l1", "weight_ih_l1_reverse", "weight_hh_l1_reverse"])
        #expect(noBias.weights(layer: 1, reverse: true).weightIH.shape == [3, 6])
        #expect(noBias.weights(layer: 1, reverse: true).weightIH === noBias.parameters()[6])
    }

    /// Every parameter, in every layer and direction, is drawn from U(-1/sqrt(H), 1/sqrt(H)).
    @Test func initialisationIsUniformOverOneOverSqrtHidden() {
        withGenerator(Generator(seed: 3)) {
            let lstm = LSTM(7, 100, numLayers: 2, bidirectional: true, projSize: 20)
            let bound = 0.1
            for (name, p) in lstm.namedParameters() {
                let v = p.value.doubles
                #expect(v.allSatisfy { abs($0) < bound }, "\(name)")
                #expect(v.max()! > 0.9 * bound && v.min()! < -0.9 * bound, "\(name) spans the interval")
            }
            let cell = GRUCell(5, 25)
            #expect(cell.parameters().allSatisfy { $0.value.doubles.allSatisfy { abs($0) < 0.2 } })
            #expect(cell.weightHH.value.doubles.max()! > 0.18)
        }
        let a = withGenerator(Generator(seed: 8)) { GRU(3, 4) }
        let b = withGenerator(Generator(seed: 8)) { GRU(3, 4) }
        expectBitwiseEqual(a.weights(layer: 0).weightHH.value, b.weights(layer: 0).weightHH.value)
    }

    @Test func descriptionsArePyTorchs() {
        #expect(LSTM(4, 3, numLayers: 2, bias: false, batchFirst: true, dropout: 0.2, bidirectional: true,
                     projSize: 2).extraDescription == "4, 3, proj_size=2, num_layers=2, bias=False, batch_first=True, dropout=0.2, bidirectional=True")
        #expect(RNN(4, 3, nonlinearity: .relu).extraDescription == "4, 3")
        #expect(GRU(64, 128, numLayers: 2, dropout: 1).extraDescription == "64, 128, num_layers=2, dropout=1.0")
        #expect(LSTM(4, 3).description.hasPrefix("LSTM(4, 3)"))
    }

    @Test func layoutsAndShapes() {
        withGenerator(Generator(seed: 4)) {
            let lstm = LSTM(4, 5, numLayers: 3, batchFirst: true, bidirectional: true, projSize: 2)
            let x = Tensor.normal([3, 7, 4])  // [N, L, F]
            let (out, state) = lstm(x)
            #expect(out.shape == [3, 7, 4] && state.h.shape == [6, 3, 2] && state.c.shape == [6, 3, 5])
            // Batch-first is the time-major computation transposed, bit for bit.
            let timeMajor = LSTM(4, 5, numLayers: 3, bidirectional: true, projSize: 2)
            try! timeMajor.loadStateDict(lstm.stateDict())
            let (out2, state2) = timeMajor(x.transposed(0, 1))
            expectBitwiseEqual(out.contiguous(), out2.transposed(0, 1).contiguous())
            expectBitwiseEqual(state.c, state2.c)
            // Unbatched input is the batch-of-one computation without its batch dimension.
            let gru = GRU(4, 5, numLayers: 2, batchFirst: true)
            let single = Tensor.normal([7, 4])
            let (u, uh) = gru(single)
            let (b, bh) = gru(single.unsqueezed(axis: 0))
            #expect(u.shape == [7, 5] && uh.shape == [2, 5])
            expectBitwiseEqual(u, b.squeezed(axis: 0))
            expectBitwiseEqual(uh, bh.squeezed(axis: 1))
        }
    }

    /// Non-contiguous input and states (transposed or expanded views) give the contiguous results.
    @Test func stridedInputsAndStates() {
        withGenerator(Generator(seed: 5)) {
            let rnn = RNN(4, 3, numLayers: 2, nonlinearity: .relu)
            let base = Tensor.normal([4, 6, 5])
            let x = base.permuted([1, 2, 0]).narrow(axis: 2, start: 0, length: 4)  // [6, 5, 4], strided
            #expect(!x.isContiguous)
            let h = Tensor.normal([2, 1, 3]).expanded(to: [2, 5, 3])
            expectBitwiseEqual(rnn(x, h).output, rnn(x.contiguous(), h.contiguous()).output)
        }
    }

    @Test func emptyBatchAndFloat64() {
        let lstm = LSTM(3, 2, numLayers: 2, bidirectional: true)
        let (out, state) = lstm(Tensor.zeros([4, 0, 3]))
        #expect(out.shape == [4, 0, 4] && state.h.shape == [4, 0, 2] && state.c.shape == [4, 0, 2])
        let gru = withGenerator(Generator(seed: 6)) { GRU(3, 2, dtype: .float64) }
        let x = Tensor.normal([2, 1, 3], dtype: .float64).requiringGrad()
        let (y, h) = gru(x)
        #expect(y.dtype == .float64 && h.dtype == .float64)
        (y.sum() + h.sum()).backward()
        #expect(x.grad?.dtype == .float64 && gru.parameters().allSatisfy { $0.grad?.dtype == .float64 })
    }

    /// `lstm(x)` returns output and states; where a tensor is expected (or through `forward` and
    /// containers) it is the output sequence.
    @Test func callForms() {
        withGenerator(Generator(seed: 7)) {
            let lstm = LSTM(4, 3)
            let x = Tensor.normal([5, 2, 4])
            let both = lstm(x)
            let y: Tensor = lstm(x)
            expectBitwiseEqual(both.output, y)
            #expect(both.state.h.shape == [1, 2, 3])
            let model = Sequential([GRU(4, 3), Linear(3, 1)])
            #expect(model(x).shape == [5, 2, 1])
            #expect(model.stateDict().keys.first == "0.weight_ih_l0")
        }
    }

    /// An optimizer step trains through the fused backward: the loss goes down.
    @Test func trainingReducesTheLoss() {
        withGenerator(Generator(seed: 8)) {
            let lstm = LSTM(2, 8, numLayers: 2, batchFirst: true)
            let head = Linear(8, 1)
            let x = Tensor.normal([4, 6, 2]), target = x.sum(axis: 2, keepDim: true).sum(axis: 1)
            let optimizer = Adam(lstm.parameters() + head.parameters(), lr: 0.02)
            func loss() -> Tensor {
                let (out, _) = lstm(x)
                let pred = head(out.select(axis: 1, index: 5))
                return ((pred - target) * (pred - target)).mean()
            }
            let initial = loss().doubleValue
            for _ in 0..<60 {
                optimizer.zeroGrad()
                loss().backward()
                optimizer.step()
            }
            #expect(loss().doubleValue < 0.2 * initial)
        }
    }
}

/// The module reuses its scratch buffers between calls only when no recorded graph still holds
/// them: interleaved forwards and backwards give the results of independent runs.
@Suite struct RNNWorkspaceTests {
    @Test(arguments: ["lstm", "gru", "rnn"])
    func interleavedCallsKeepTheirOwnTapes(_ kind: String) throws {
        func make() -> RNNBase {
            withGenerator(Generator(seed: 12)) {
                switch kind {
                case "lstm": LSTM(3, 4, numLayers: 2, bidirectional: true, dtype: .float64)
                case "gru": GRU(3, 4, numLayers: 2, bidirectional: true, dtype: .float64)
                default: RNN(3, 4, numLayers: 2, bidirectional: true, dtype: .float64)
                }
            }
        }
        let inputs = (0..<3).map { i in withGenerator(Generator(seed: UInt64(20 + i))) { Tensor.normal([5, 2, 3], dtype: .float64) } }
        // Reference: a fresh module per input.
        var expected: [(Tensor, [Tensor])] = []
        for x in inputs {
            let m = make()
            let xg = x.requiringGrad()
            m(xg).sum().backward()
            expected.append((try #require(xg.grad), m.parameters().map { $0.grad! }))
        }
        // One module: an eval call, two recorded forwards, then their backwards in reverse order.
        let m = make()
        m.eval()
        _ = withNoGrad { m(inputs[2]) as Tensor }
        m.train()
        let x0 = inputs[0].requiringGrad(), x1 = inputs[1].requiringGrad()
        let y0: Tensor = m(x0)
        let y0Copy = y0.detached().contiguous().doubles
        let y1: Tensor = m(x1)
        #expect(y0.doubles == y0Copy, "a held output keeps its values through later calls")
        _ = withNoGrad { m(inputs[2]) as Tensor }  // an inference call between forward and backward
        m.releaseScratchBuffers()  // and a release: graphs keep what they hold
        y1.sum().backward()
        let grads1 = m.parameters().map { $0.grad! }
        m.parameters().forEach { $0.grad = nil }
        y0.sum().backward()
        expectBitwiseEqual(try #require(x0.grad), expected[0].0)
        expectBitwiseEqual(try #require(x1.grad), expected[1].0)
        for (g, e) in zip(m.parameters().map { $0.grad! }, expected[0].1) { expectBitwiseEqual(g, e) }
        for (g, e) in zip(grads1, expected[1].1) { expectBitwiseEqual(g, e) }
    }
}

/// Large steps split their hidden units over threads; every unit is computed the same way on any
/// thread, so the thread count changes no bit of the outputs or gradients.
@Suite struct RNNThreadingTests {
    @Test(arguments: ["lstm", "lstm-proj", "gru", "rnn"])
    func threadCountDoesNotChangeResults(_ kind: String) throws {
        func run(threads: Int) -> [Tensor] {
            Threading.withThreads(threads) {
                let m: RNNBase = withGenerator(Generator(seed: 31)) {
                    switch kind {
                    case "lstm": LSTM(6, 64, numLayers: 2, bidirectional: true)
                    case "lstm-proj": LSTM(6, 64, projSize: 24)
                    case "gru": GRU(6, 72, bidirectional: true)
                    default: RNN(6, 80, numLayers: 2)
                    }
                }
                let x = withGenerator(Generator(seed: 32)) { Tensor.normal([4, 40, 6]) }.requiringGrad()
                let out: Tensor = m(x)
                (out * out).sum().backward()
                return [out.detached(), x.grad!] + m.parameters().map { $0.grad! }
            }
        }
        let one = run(threads: 1), two = run(threads: 2), four = run(threads: 4)
        for (a, b) in zip(one, two) { expectBitwiseEqual(b, a) }
        for (a, b) in zip(one, four) { expectBitwiseEqual(b, a) }
    }
}
