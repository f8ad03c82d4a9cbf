import Ember
import Testing
import _EmberTestSupport

/// The fused layers' hand-written backward through time against float64 finite differences, for
/// every input: the sequence, each weight and bias of each direction, and the initial states.
@Suite struct RNNGradientTests {
    /// Deterministic float64 values in about [-1, 1].
    static func values(_ shape: Shape, seed: UInt64) -> Tensor {
        withGenerator(Generator(seed: seed)) { Tensor.uniform(shape, low: -1, high: 1, dtype: .float64) }
    }

    /// The fused layer's three results flattened into one tensor, so one check covers the
    /// gradients arriving through the output and through both final states.
    static func packed(_ r: (output: Tensor, hidden: Tensor, cell: Tensor?)) -> Tensor {
        Tensor.cat([r.output.flattened(), r.hidden.flattened()] + (r.cell.map { [$0.flattened()] } ?? []))
    }

    struct LayerCase: CustomTestStringConvertible, Sendable {
        var kind: RecurrentCellKind
        var hidden: Int
        var directions: Int
        var bias: Bool
        var projection: Int = 0
        var initialState: Bool
        var testDescription: String {
            "\(kind) H=\(hidden) D=\(directions) bias=\(bias) proj=\(projection) h0=\(initialState)"
        }
    }

    static let layerCases: [LayerCase] = [
        LayerCase(kind: .lstm, hidden: 3, directions: 1, bias: true, initialState: true),
        LayerCase(kind: .lstm, hidden: 3, directions: 2, bias: true, initialState: false),
        LayerCase(kind: .lstm, hidden: 4, directions: 2, bias: false, projection: 2, initialState: true),
        LayerCase(kind: .lstm, hidden: 9, directions: 1, bias: true, initialState: true),
        LayerCase(kind: .gru, hidden: 3, directions: 1, bias: true, initialState: true),
        LayerCase(kind: .gru, hidden: 2, directions: 2, bias: true, initialState: false),
        LayerCase(kind: .gru, hidden: 9, directions: 2, bias: false, initialState: true),
        LayerCase(kind: .rnnTanh, hidden: 3, directions: 2, bias: true, initialState: true),
        LayerCase(kind: .rnnTanh, hidden: 3, directions: 1, bias: false, initialState: false),
        LayerCase(kind: .rnnReLU, hidden: 4, directions: 2, bias: true, initialState: true),
    ]

    @Test(arguments: layerCases)
    func fusedLayerBackwardMatchesFiniteDifferences(_ c: LayerCase) {
        let (L, N, F) = (4, 2, 3)
        let G = c.kind.gateCount * c.hidden, P = c.projection > 0 ? c.projection : c.hidden
        var inputs = [Self.values([L, N, F], seed: 1)]
        var seed: UInt64 = 10
        func next(_ shape: Shape) -> Tensor {
            seed += 1
            return Self.values(shape, seed: seed)
        }
        for _ in 0..<c.directions {
            inputs += [next([G, F]), next([G, P])]
            if c.bias { inputs += [next([G]), next([G])] }
            if c.projection > 0 { inputs.append(next([P, c.hidden])) }
        }
        if c.initialState {
            inputs.append(next([c.directions, N, P]))
            if c.kind == .lstm { inputs.append(next([c.directions, N, c.hidden])) }
        }
        let perDirection = 2 + (c.bias ? 2 : 0) + (c.projection > 0 ? 1 : 0)
        let mismatch = checkGradients(inputs) { a in
            var weights: [RecurrentDirectionWeights] = []
            for d in 0..<c.directions {
                var i = 1 + d * perDirection
                func take() -> Tensor { defer { i += 1 }; return a[i] }
                var w = RecurrentDirectionWeights(weightIH: take(), weightHH: take())
                if c.bias { w.biasIH = take(); w.biasHH = take() }
                if c.projection > 0 { w.weightHR = take() }
                weights.append(w)
            }
            let stateStart = 1 + c.directions * perDirection
            let h0 = c.initialState ? a[stateStart] : nil
            let c0 = c.initialState && c.kind == .lstm ? a[stateStart + 1] : nil
            return Self.packed(recurrentLayer(c.kind, input: a[0], weights: weights, h0: h0, c0: c0))
        }
        #expect(mismatch == nil, "\(mismatch?.message ?? "")")
    }

    /// Gradients through only the final states (the output unused), only the cell state, and a
    /// non-contiguous (transposed) input.
    @Test func gradientsThroughStatesAloneAndStridedInput() {
        let x = Self.values([2, 4, 3], seed: 3)  // [N, L, F], transposed to [L, N, F] inside
        let w = [Self.values([8, 3], seed: 4), Self.values([8, 2], seed: 5), Self.values([8], seed: 6), Self.values([8], seed: 7)]
        func layer(_ a: [Tensor]) -> (output: Tensor, hidden: Tensor, cell: Tensor?) {
            recurrentLayer(.lstm, input: a[0].transposed(0, 1),
                           weights: [RecurrentDirectionWeights(weightIH: a[1], weightHH: a[2], biasIH: a[3], biasHH: a[4])])
        }
        #expect(checkGradients([x] + w) { layer($0).hidden } == nil)
        #expect(checkGradients([x] + w) { layer($0).cell! } == nil)
        #expect(checkGradients([x] + w) { a in let r = layer(a); return r.hidden * r.cell! } == nil)
        #expect(checkGradients([x] + w) { layer($0).output } == nil)
    }

    /// Whole modules in float64: several layers, batch-first, unbatched input and initial states,
    /// through the public API (the parameters are the module's own).
    @Test(arguments: ["lstm", "lstm-proj", "gru", "rnn"])
    func moduleInputAndStateGradientsMatchFiniteDifferences(_ kind: String) {
        let module: RNNBase = withGenerator(Generator(seed: 21)) {
            switch kind {
            case "lstm": LSTM(3, 4, numLayers: 2, batchFirst: true, bidirectional: true, dtype: .float64)
            case "lstm-proj": LSTM(3, 4, numLayers: 2, projSize: 2, dtype: .float64)
            case "gru": GRU(3, 4, numLayers: 2, batchFirst: true, bidirectional: true, dtype: .float64)
            default: RNN(3, 4, numLayers: 3, nonlinearity: .tanh, dtype: .float64)
            }
        }
        let layers = module.numLayers * module.numDirections
        let x = Self.values(module.batchFirst ? [2, 3, 3] : [3, 2, 3], seed: 30)  // N = 2, L = 3
        let h0 = Self.values([layers, 2, module.outputSize], seed: 31)
        let c0 = Self.values([layers, 2, module.hiddenSize], seed: 32)
        func run(_ x: Tensor, _ h: Tensor, _ c: Tensor) -> Tensor {
            switch module {
            case let m as LSTM: let r = m(x, (h, c)); return Tensor.cat([r.output.flattened(), r.state.h.flattened(), r.state.c.flattened()])
            case let m as GRU: let r = m(x, h); return Tensor.cat([r.output.flattened(), r.h.flattened()])
            case let m as RNN: let r = m(x, h); return Tensor.cat([r.output.flattened(), r.h.flattened()])
            default: preconditionFailure()
            }
        }
        #expect(checkGradients([x, h0, c0]) { run($0[0], $0[1], $0[2]) } == nil)
        // Unbatched: [L, F] input and [layers, H] states.
        let xu = Self.values([3, 3], seed: 33), hu = Self.values([layers, module.outputSize], seed: 34)
        let cu = Self.values([layers, module.hiddenSize], seed: 35)
        #expect(checkGradients([xu, hu, cu]) { run($0[0], $0[1], $0[2]) } == nil)
    }

    /// The checker catches a wrong backward: a layer whose recurrent gradient is dropped fails.
    @Test func checkerRejectsAWrongGradient() {
        let x = Self.values([3, 2, 2], seed: 40), wih = Self.values([3, 2], seed: 41), whh = Self.values([3, 3], seed: 42)
        let mismatch = checkGradients([x, wih, whh]) { a in
            // A detached recurrent weight gets no analytic gradient, but changes the output.
            recurrentLayer(.rnnTanh, input: a[0], weights: [RecurrentDirectionWeights(weightIH: a[1], weightHH: a[2].detached())]).output
        }
        #expect(mismatch != nil)
    }

    /// Running backward twice over a retained graph accumulates twice the gradient, states included.
    @Test func retainedGraphAccumulates() throws {
        let lstm = withGenerator(Generator(seed: 50)) { LSTM(2, 3, dtype: .float64) }
        let x = Self.values([3, 1, 2], seed: 51).requiringGrad()
        let (out, state) = lstm(x)
        let loss = out.sum() + state.h.sum() * 2 + state.c.sum() * 3
        loss.backward(retainGraph: true)
        let first = try #require(x.grad)
        loss.backward()
        expectClose(try #require(x.grad), first * 2, atol: 1e-12, rtol: 1e-12)
        #expect(out.gradFnName == "lstm" && state.h.gradFnName == "lstm_h_n" && state.c.gradFnName == "lstm_c_n")
    }
}
