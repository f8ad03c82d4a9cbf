import Ember
import Testing
import _EmberTestSupport

/// What the mode changes in RNN, LSTM and GRU (only the dropout between layers) and what it does
/// not (no state is kept between calls; `eval()` resets nothing).
@Suite struct RNNModeTests {
    static func make(_ kind: String, layers: Int, dropout: Double, bidirectional: Bool = false, seed: UInt64 = 1) -> RNNBase {
        withGenerator(Generator(seed: seed)) {
            switch kind {
            case "lstm": LSTM(4, 5, numLayers: layers, dropout: dropout, bidirectional: bidirectional)
            case "lstm-proj": LSTM(4, 5, numLayers: layers, dropout: dropout, bidirectional: bidirectional, projSize: 3)
            case "gru": GRU(4, 5, numLayers: layers, dropout: dropout, bidirectional: bidirectional)
            default: RNN(4, 5, numLayers: layers, dropout: dropout, bidirectional: bidirectional)
            }
        }
    }

    /// Output and final hidden state (and cell state for LSTM), time-major input.
    static func run(_ m: RNNBase, _ x: Tensor) -> (output: Tensor, h: Tensor, c: Tensor?) {
        switch m {
        case let lstm as LSTM: let r = lstm(x, nil); return (r.output, r.state.h, r.state.c)
        case let gru as GRU: let r = gru(x); return (r.output, r.h, nil)
        case let rnn as RNN: let r = rnn(x); return (r.output, r.h, nil)
        default: preconditionFailure()
        }
    }

    static var input: Tensor { withGenerator(Generator(seed: 99)) { Tensor.normal([6, 3, 4]) } }

    @Test(arguments: ["lstm", "lstm-proj", "gru", "rnn"], [false, true])
    func trainingDropoutActsOnlyBetweenLayers(_ kind: String, _ bidirectional: Bool) {
        let m = Self.make(kind, layers: 2, dropout: 0.5, bidirectional: bidirectional)
        let d = m.numDirections, x = Self.input
        m.eval()
        let eval1 = Self.run(m, x), eval2 = Self.run(m, x)
        expectBitwiseEqual(eval1.output, eval2.output, "eval calls repeat exactly")
        m.train()
        m.dropoutGenerator = Generator(seed: 3)
        let train1 = Self.run(m, x), train2 = Self.run(m, x)
        #expect(train1.output.doubles != eval1.output.doubles, "2-layer training output differs from eval")
        #expect(train1.output.doubles != train2.output.doubles, "each training call draws a new mask")
        // Layer 0 sees no dropout: its final states are eval's, bit for bit.
        expectBitwiseEqual(train1.h.narrow(axis: 0, start: 0, length: d), eval1.h.narrow(axis: 0, start: 0, length: d))
        if let c = train1.c { expectBitwiseEqual(c.narrow(axis: 0, start: 0, length: d), eval1.c!.narrow(axis: 0, start: 0, length: d)) }
        // The last layer's output is not dropped: its last step is the last layer's final state.
        let p = m.outputSize
        expectBitwiseEqual(train1.output.select(axis: 0, index: 5).narrow(axis: 1, start: 0, length: p),
                           train1.h.select(axis: 0, index: d))

        // The exact structure: layer 0, then dropout(p) with the same generator, then layer 1.
        let first = Self.make(kind, layers: 1, dropout: 0, bidirectional: bidirectional)
        let second = withGenerator(Generator(seed: 1)) { () -> RNNBase in
            switch kind {
            case "lstm": LSTM(d * 5, 5, bidirectional: bidirectional)
            case "lstm-proj": LSTM(d * 3, 5, bidirectional: bidirectional, projSize: 3)
            case "gru": GRU(d * 5, 5, bidirectional: bidirectional)
            default: RNN(d * 5, 5, bidirectional: bidirectional)
            }
        }
        let weights = m.stateDict()
        func layer(_ k: Int) -> StateDict {
            StateDict(weights.filter { $0.key.contains("_l\(k)") }.map { ($0.key.replacingOccurrences(of: "_l\(k)", with: "_l0"), $0.value) })
        }
        try! first.loadStateDict(layer(0))
        try! second.loadStateDict(layer(1))
        let y0 = Self.run(first, x).output
        let dropped = dropout(y0, p: 0.5, training: true, generator: Generator(seed: 3))
        expectBitwiseEqual(Self.run(second, dropped).output, train1.output, "layer 1 on dropout(layer 0)")
    }

    @Test(arguments: ["lstm", "gru", "rnn"])
    func withoutInterLayerDropoutTrainingEqualsEvalBitwise(_ kind: String) {
        for (layers, p) in [(1, 0.5), (2, 0.0), (3, 0.0)] {
            let m = Self.make(kind, layers: layers, dropout: p, bidirectional: layers == 2)
            m.train()
            let train = Self.run(m, Self.input)
            m.eval()
            let eval = Self.run(m, Self.input)
            expectBitwiseEqual(train.output, eval.output, "\(kind) layers=\(layers) dropout=\(p)")
            expectBitwiseEqual(train.h, eval.h)
        }
    }

    /// No hidden state is kept between calls: each call starts from zeros (or the given state);
    /// repeated calls agree bit for bit, `eval()` changes nothing, and there are no buffers.
    @Test(arguments: ["lstm", "gru", "rnn"])
    func noStateIsKeptBetweenCalls(_ kind: String) {
        let m = Self.make(kind, layers: 2, dropout: 0)
        let first = Self.run(m, Self.input)
        let second = Self.run(m, Self.input)
        expectBitwiseEqual(first.output, second.output)
        m.eval()
        expectBitwiseEqual(Self.run(m, Self.input).output, first.output, "eval() resets nothing")
        #expect(m.namedBuffers().isEmpty)
        #expect(m.stateDict().count == m.parameters().count)
        // Passing zeros equals passing nothing, bit for bit.
        let zeros = Tensor.zeros([2, 3, 5])
        switch m {
        case let lstm as LSTM: expectBitwiseEqual(lstm(Self.input, (zeros, zeros)).output, first.output)
        case let gru as GRU: expectBitwiseEqual(gru(Self.input, zeros).output, first.output)
        case let rnn as RNN: expectBitwiseEqual(rnn(Self.input, zeros).output, first.output)
        default: break
        }
        // Carrying state is the caller's job: two halves with the state passed on equal one call.
        let lstm = Self.make("lstm", layers: 2, dropout: 0) as! LSTM
        let whole = lstm(Self.input, nil)
        let a = lstm(Self.input.narrow(axis: 0, start: 0, length: 3), nil)
        let b = lstm(Self.input.narrow(axis: 0, start: 3, length: 3), a.state)
        expectClose(Tensor.cat([a.output, b.output]), whole.output, atol: 1e-6, rtol: 1e-6)
        expectClose(b.state.c, whole.state.c, atol: 1e-6, rtol: 1e-6)
    }

    /// The default generator drives dropout when the module has none: reproducible under a seed.
    @Test func dropoutDrawsFromTheTaskGenerator() {
        let m = Self.make("gru", layers: 3, dropout: 0.3)
        let a = withGenerator(Generator(seed: 4)) { Self.run(m, Self.input).output }
        let b = withGenerator(Generator(seed: 4)) { Self.run(m, Self.input).output }
        let c = withGenerator(Generator(seed: 5)) { Self.run(m, Self.input).output }
        expectBitwiseEqual(a, b)
        #expect(a.doubles != c.doubles)
    }

    /// Recording and mode are separate: no-grad in training mode still drops; eval with
    /// recording does not.
    @Test func gradModeAndTrainingModeAreIndependent() {
        let m = Self.make("lstm", layers: 2, dropout: 0.5)
        m.eval()
        let eval = Self.run(m, Self.input).output
        let evalRecorded = Self.run(m, Self.input.requiringGrad()).output
        #expect(evalRecorded.requiresGrad)
        expectBitwiseEqual(evalRecorded.detached(), eval)
        m.train()
        let trainNoGrad = withNoGrad { Self.run(m, Self.input).output }
        #expect(!trainNoGrad.requiresGrad)
        #expect(trainNoGrad.doubles != eval.doubles)
    }
}
