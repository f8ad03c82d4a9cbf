import Ember
import Testing
import _EmberTestSupport

/// RNNCell, LSTMCell and GRUCell against PyTorch, their gradients, and their agreement with the
/// fused sequence layers.
@Suite struct RNNCellTests {
    let fx = try! Fixture("rnn")

    static let cases = ["cell_lstm", "cell_lstm_unbatched_no_state", "cell_gru", "cell_gru_unbatched", "cell_rnn_tanh", "cell_rnn_relu"]

    func makeCell(_ name: String) -> RNNCellBase {
        let bias = fx.tensors["\(name)/param/bias_ih"] != nil
        switch name {
        case _ where name.hasPrefix("cell_lstm"): return LSTMCell(4, 3, bias: bias)
        case _ where name.hasPrefix("cell_gru"): return GRUCell(4, 3, bias: bias)
        default: return RNNCell(4, 3, bias: bias, nonlinearity: name.hasSuffix("relu") ? .relu : .tanh)
        }
    }

    @Test(arguments: cases)
    func cellMatchesPyTorch(_ name: String) throws {
        let cell = makeCell(name)
        let keys = try #require(fx.metadata["\(name)/keys"]).split(separator: ",").map(String.init)
        #expect(cell.stateDict().keys == keys)
        try cell.loadStateDict(StateDict(keys.map { ($0, fx["\(name)/param/\($0)"]) }))
        let x = fx["\(name)/x"].requiringGrad()
        let h = fx.tensors["\(name)/h"]?.requiringGrad(), c = fx.tensors["\(name)/c"]?.requiringGrad()
        var loss: Tensor
        switch cell {
        case let lstm as LSTMCell:
            let (h1, c1) = lstm(x, h.map { ($0, c!) })
            expectClose(h1, fx["\(name)/h1"], atol: 1e-6, rtol: 1e-5)
            expectClose(c1, fx["\(name)/c1"], atol: 1e-6, rtol: 1e-5)
            loss = (h1 * fx["\(name)/up_h"]).sum() + (c1 * fx["\(name)/up_c"]).sum()
        case let gru as GRUCell:
            let h1 = gru(x, h)
            expectClose(h1, fx["\(name)/h1"], atol: 1e-6, rtol: 1e-5)
            loss = (h1 * fx["\(name)/up_h"]).sum()
        case let rnn as RNNCell:
            let h1 = rnn(x, h)
            expectClose(h1, fx["\(name)/h1"], atol: 1e-6, rtol: 1e-5)
            loss = (h1 * fx["\(name)/up_h"]).sum()
        default:
            preconditionFailure()
        }
        loss.backward()
        expectClose(try #require(x.grad), fx["\(name)/dx"], atol: 1e-5, rtol: 1e-4, "dx")
        if let h { expectClose(try #require(h.grad), fx["\(name)/dh"], atol: 1e-5, rtol: 1e-4, "dh") }
        if let c { expectClose(try #require(c.grad), fx["\(name)/dc"], atol: 1e-5, rtol: 1e-4, "dc") }
        for (key, p) in cell.namedParameters() {
            expectClose(try #require(p.grad), fx["\(name)/grad/\(key)"], atol: 1e-5, rtol: 1e-4, "grad of \(key)")
        }
    }

    @Test func cellGradientsMatchFiniteDifferences() {
        let values = { (shape: Shape, seed: UInt64) in
            withGenerator(Generator(seed: seed)) { Tensor.uniform(shape, low: -1, high: 1, dtype: .float64) }
        }
        let lstm = withGenerator(Generator(seed: 1)) { LSTMCell(3, 2, dtype: .float64) }
        let gru = withGenerator(Generator(seed: 2)) { GRUCell(3, 2, dtype: .float64) }
        let rnn = withGenerator(Generator(seed: 3)) { RNNCell(3, 2, nonlinearity: .relu, dtype: .float64) }
        let x = values([2, 3], 4), h = values([2, 2], 5), c = values([2, 2], 6)
        #expect(checkGradients([x, h, c]) { a in let r = lstm(a[0], (a[1], a[2])); return r.h * 2 + r.c } == nil)
        #expect(checkGradients([x, h]) { gru($0[0], $0[1]) } == nil)
        #expect(checkGradients([x, h]) { rnn($0[0], $0[1]) } == nil)
    }

    /// A loop of cells with the layer's weights computes what the fused layer computes.
    @Test(arguments: ["lstm", "gru", "rnn_tanh", "rnn_relu"])
    func cellLoopEqualsFusedLayer(_ kind: String) {
        withGenerator(Generator(seed: 7)) {
            let x = Tensor.normal([6, 3, 5], dtype: .float64)
            var outputs: [Tensor] = []
            let expected: Tensor, final: Tensor
            switch kind {
            case "lstm":
                let layer = LSTM(5, 4, dtype: .float64)
                let cell = LSTMCell(5, 4, dtype: .float64)
                copy(layer.weights(layer: 0), to: cell)
                var state: (h: Tensor, c: Tensor)? = nil
                for t in 0..<6 { state = cell(x.select(axis: 0, index: t), state); outputs.append(state!.h) }
                let r = layer(x, nil)
                (expected, final) = (r.output, r.state.h.squeezed(axis: 0))
                expectClose(r.state.c.squeezed(axis: 0), state!.c, atol: 1e-12, rtol: 1e-12)
            case "gru":
                let layer = GRU(5, 4, dtype: .float64)
                let cell = GRUCell(5, 4, dtype: .float64)
                copy(layer.weights(layer: 0), to: cell)
                var h: Tensor? = nil
                for t in 0..<6 { h = cell(x.select(axis: 0, index: t), h); outputs.append(h!) }
                (expected, final) = (layer(x).output, h!)
            default:
                let nl: RNNNonlinearity = kind == "rnn_relu" ? .relu : .tanh
                let layer = RNN(5, 4, nonlinearity: nl, dtype: .float64)
                let cell = RNNCell(5, 4, nonlinearity: nl, dtype: .float64)
                copy(layer.weights(layer: 0), to: cell)
                var h: Tensor? = nil
                for t in 0..<6 { h = cell(x.select(axis: 0, index: t), h); outputs.append(h!) }
                (expected, final) = (layer(x).output, h!)
            }
            expectClose(Tensor.stack(outputs), expected, atol: 1e-12, rtol: 1e-12)
            expectClose(outputs.last!, final, atol: 1e-12, rtol: 1e-12)
        }
    }

    func copy(_ w: RecurrentWeightSet, to cell: RNNCellBase) {
        cell.weightIH.value = w.weightIH.value
        cell.weightHH.value = w.weightHH.value
        cell.biasIH!.value = w.biasIH!.value
        cell.biasHH!.value = w.biasHH!.value
    }

    @Test func cellsAreModeIndependentAndDescribeLikePyTorch() {
        let cell = LSTMCell(4, 3)
        let x = Tensor.normal([2, 4])
        let train = cell(x).h
        cell.eval()
        expectBitwiseEqual(cell(x).h, train)
        #expect(LSTMCell(4, 3).extraDescription == "4, 3")
        #expect(GRUCell(4, 3, bias: false).extraDescription == "4, 3, bias=False")
        #expect(RNNCell(4, 3, bias: false, nonlinearity: .relu).extraDescription == "4, 3, bias=False, nonlinearity=relu")
        #expect(RNNCell(4, 3).stateDict().keys == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"])
        #expect(GRUCell(4, 3).weightIH.shape == [9, 4])
        #expect(LSTMCell(4, 3).weightHH.shape == [12, 3])
    }
}
