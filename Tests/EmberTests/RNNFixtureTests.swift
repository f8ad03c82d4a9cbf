import Ember
import Foundation
import Testing
import _EmberTestSupport

/// RNN, LSTM and GRU against PyTorch (`Tools/fixtures/gen_rnn.py`): outputs, final states, and the
/// gradients of the input, the initial states and every parameter, for a loss that weights the
/// output and both final states.
@Suite struct RNNFixtureTests {
    let fx = try! Fixture("rnn")

    static let moduleCases = [
        "lstm_basic", "lstm_two_layers_state", "lstm_bidir_batch_first", "lstm_projection", "lstm_projection_no_state",
        "lstm_unbatched", "lstm_unbatched_no_state", "lstm_no_bias", "lstm_states_only", "lstm_wide", "lstm_loaded",
        "gru_basic", "gru_bidir_state", "gru_batch_first_dropout", "gru_unbatched", "gru_no_bias", "gru_states_only",
        "rnn_tanh", "rnn_relu_bidir", "rnn_relu_state", "rnn_unbatched_no_bias",
    ]

    /// A case's constructor arguments and mode, as the generator recorded them.
    struct Config {
        var kind: String
        var inputSize, hiddenSize, numLayers, projSize: Int
        var bias, batchFirst, bidirectional, batched, train, useOutput, useStates: Bool
        var dropout: Double
        var nonlinearity: RNNNonlinearity

        init(_ name: String, _ fx: Fixture) throws {
            let json = try #require(fx.metadata["\(name)/config"])
            let d = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            kind = d["kind"] as! String
            inputSize = d["input_size"] as! Int
            hiddenSize = d["hidden_size"] as! Int
            numLayers = d["num_layers"] as? Int ?? 1
            projSize = d["proj_size"] as? Int ?? 0
            bias = d["bias"] as? Bool ?? true
            batchFirst = d["batch_first"] as? Bool ?? false
            bidirectional = d["bidirectional"] as? Bool ?? false
            batched = d["batched"] as! Bool
            train = d["train"] as! Bool
            useOutput = d["use_output"] as! Bool
            useStates = d["use_states"] as! Bool
            dropout = (d["dropout"] as? NSNumber)?.doubleValue ?? 0
            nonlinearity = (d["nonlinearity"] as? String) == "relu" ? .relu : .tanh
        }

        func makeModule() -> RNNBase {
            switch kind {
            case "lstm":
                LSTM(inputSize, hiddenSize, numLayers: numLayers, bias: bias, batchFirst: batchFirst,
                     dropout: dropout, bidirectional: bidirectional, projSize: projSize)
            case "gru":
                GRU(inputSize, hiddenSize, numLayers: numLayers, bias: bias, batchFirst: batchFirst,
                    dropout: dropout, bidirectional: bidirectional)
            default:
                RNN(inputSize, hiddenSize, numLayers: numLayers, nonlinearity: nonlinearity, bias: bias,
                    batchFirst: batchFirst, dropout: dropout, bidirectional: bidirectional)
            }
        }
    }

    /// The case's module with PyTorch's weights, loaded through `loadStateDict` by PyTorch's keys.
    func loadedModule(_ name: String) throws -> (RNNBase, Config) {
        let config = try Config(name, fx)
        let module = config.makeModule()
        let keys = try #require(fx.metadata["\(name)/keys"]).split(separator: ",").map(String.init)
        try module.loadStateDict(StateDict(keys.map { ($0, fx["\(name)/param/\($0)"]) }))
        module.train(config.train)
        return (module, config)
    }

    /// Runs the case's module on its input (and initial state), recording gradients.
    static func run(_ module: RNNBase, _ name: String, x: Tensor, h0: Tensor?, c0: Tensor?) -> (Tensor, Tensor, Tensor?) {
        switch module {
        case let lstm as LSTM:
            let (out, state) = lstm(x, h0.map { ($0, c0!) })
            return (out, state.h, state.c)
        case let gru as GRU:
            let (out, h) = gru(x, h0)
            return (out, h, nil)
        case let rnn as RNN:
            let (out, h) = rnn(x, h0)
            return (out, h, nil)
        default:
            preconditionFailure("unknown module \(module)")
        }
    }

    @Test(arguments: moduleCases)
    func stateDictKeysAndOrderArePyTorchs(_ name: String) throws {
        let config = try Config(name, fx)
        let expected = try #require(fx.metadata["\(name)/keys"]).split(separator: ",").map(String.init)
        let module = config.makeModule()
        #expect(module.stateDict().keys == expected)
        #expect(module.namedParameters().map(\.name) == expected)
        for key in expected {
            #expect(module.stateDict()[key]!.shape == fx["\(name)/param/\(key)"].shape, "\(key)")
        }
    }

    @Test(arguments: moduleCases)
    func outputsStatesAndGradientsMatchPyTorch(_ name: String) throws {
        let (module, config) = try loadedModule(name)
        let x = fx["\(name)/x"].requiringGrad()
        let h0 = fx.tensors["\(name)/h0"]?.requiringGrad(), c0 = fx.tensors["\(name)/c0"]?.requiringGrad()
        let (out, h, c) = Self.run(module, name, x: x, h0: h0, c0: c0)
        expectClose(out, fx["\(name)/out"], atol: 1e-6, rtol: 1e-5, "output")
        expectClose(h, fx["\(name)/h_n"], atol: 1e-6, rtol: 1e-5, "h_n")
        if config.kind == "lstm" { expectClose(try #require(c), fx["\(name)/c_n"], atol: 1e-6, rtol: 1e-5, "c_n") }

        var loss = Tensor.zeros([])
        if config.useOutput { loss = loss + (out * fx["\(name)/up_out"]).sum() }
        if config.useStates {
            loss = loss + (h * fx["\(name)/up_h"]).sum()
            if let c { loss = loss + (c * fx["\(name)/up_c"]).sum() }
        }
        loss.backward()
        expectClose(try #require(x.grad), fx["\(name)/dx"], atol: 1e-5, rtol: 1e-4, "dx")
        if let h0 { expectClose(try #require(h0.grad), fx["\(name)/dh0"], atol: 1e-5, rtol: 1e-4, "dh0") }
        if let c0 { expectClose(try #require(c0.grad), fx["\(name)/dc0"], atol: 1e-5, rtol: 1e-4, "dc0") }
        for (key, p) in module.namedParameters() {
            expectClose(try #require(p.grad, "\(key)"), fx["\(name)/grad/\(key)"], atol: 1e-5, rtol: 1e-4, "grad of \(key)")
        }
    }

    /// Without recording (eval, no-grad): the same outputs through the path that keeps no tape.
    @Test(arguments: moduleCases)
    func inferenceWithoutRecordingMatchesPyTorch(_ name: String) throws {
        let (module, config) = try loadedModule(name)
        let (out, h, c) = withNoGrad {
            Self.run(module, name, x: fx["\(name)/x"], h0: fx.tensors["\(name)/h0"], c0: fx.tensors["\(name)/c0"])
        }
        #expect(!out.requiresGrad)
        expectClose(out, fx["\(name)/out"], atol: 1e-6, rtol: 1e-5, "output")
        expectClose(h, fx["\(name)/h_n"], atol: 1e-6, rtol: 1e-5, "h_n")
        if config.kind == "lstm" { expectClose(try #require(c), fx["\(name)/c_n"], atol: 1e-6, rtol: 1e-5, "c_n") }
    }

    /// `forward(_:)` is the output sequence from a zero state.
    @Test func forwardIsTheOutputFromZeroState() throws {
        let (module, _) = try loadedModule("lstm_basic")
        let y: Tensor = module(fx["lstm_basic/x"])
        expectClose(y, fx["lstm_basic/out"], atol: 1e-6, rtol: 1e-5)
        let lstm = try #require(module as? LSTM)
        let zeros = Tensor.zeros([1, 2, 3])
        expectBitwiseEqual(lstm(fx["lstm_basic/x"], (zeros, zeros)).output, lstm(fx["lstm_basic/x"]).output)
    }

    /// A state dict saved by `safetensors.torch.save_file(lstm.state_dict(), path)` loads unchanged
    /// and gives PyTorch's outputs.
    @Test func pyTorchSavedStateDictLoadsAndGivesPyTorchsOutputs() throws {
        let path = Fixture.directory.appendingPathComponent("rnn_state_lstm.safetensors").path
        let lstm = withGenerator(Generator(seed: 9)) {
            LSTM(4, 5, numLayers: 2, bidirectional: true, projSize: 3)
        }
        try lstm.loadSafetensors(path)
        let (out, state) = lstm.evaluating { lstm(fx["lstm_loaded/x"], (fx["lstm_loaded/h0"], fx["lstm_loaded/c0"])) }
        expectClose(out, fx["lstm_loaded/out"], atol: 1e-6, rtol: 1e-5)
        expectClose(state.h, fx["lstm_loaded/h_n"], atol: 1e-6, rtol: 1e-5)
        expectClose(state.c, fx["lstm_loaded/c_n"], atol: 1e-6, rtol: 1e-5)
        // And Ember's own state dict has exactly PyTorch's keys.
        #expect(Set(try StateDict(safetensorsAt: path).keys) == Set(lstm.stateDict().keys))
    }
}
