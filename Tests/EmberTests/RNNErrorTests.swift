import Ember
import Testing
import _EmberTestSupport

/// Programmer errors in RNN, LSTM, GRU and the cells stop with PyTorch's message (prefixed with
/// the module and its path); the one-layer dropout warning goes to standard error. Each case runs
/// in a child process.
@Suite struct RNNErrorTests {
    @Test func dropoutOutsideZeroOne() async {
        let high = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = LSTM(4, 3, numLayers: 2, dropout: 1.5)
        }
        #expect(standardErrorText(high).contains("LSTM: dropout should be a number in range [0, 1] representing the probability of an element being zeroed"))
        let low = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = GRU(4, 3, dropout: -0.1)
        }
        #expect(standardErrorText(low).contains("GRU: dropout should be a number in range [0, 1]"))
    }

    @Test func oneLayerDropoutWarnsOnceAtConstruction() async {
        let result = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            let lstm = LSTM(4, 3, dropout: 0.5)
            _ = lstm(Tensor.zeros([2, 1, 4]))
            _ = lstm(Tensor.zeros([2, 1, 4]))
        }
        let text = standardErrorText(result)
        let warning = "dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects num_layers greater than 1, but got dropout=0.5 and num_layers=1"
        #expect(text.contains("UserWarning: " + warning))
        #expect(text.components(separatedBy: warning).count == 2, "printed exactly once")
        let quiet = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            _ = LSTM(4, 3, numLayers: 2, dropout: 0.5)
            _ = RNN(4, 3)
        }
        #expect(standardErrorText(quiet).isEmpty)
    }

    @Test func constructorChecks() async {
        let proj = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = LSTM(4, 3, projSize: 3)
        }
        #expect(standardErrorText(proj).contains("LSTM: proj_size has to be smaller than hidden_size"))
        let negative = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = LSTM(4, 3, projSize: -1)
        }
        #expect(standardErrorText(negative).contains("proj_size should be a positive integer or zero to disable projections"))
        let hidden = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = GRU(4, 0)
        }
        #expect(standardErrorText(hidden).contains("GRU: hidden_size must be greater than zero"))
        let layers = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = RNN(4, 3, numLayers: 0)
        }
        #expect(standardErrorText(layers).contains("RNN: num_layers must be greater than zero"))
    }

    @Test func inputRankAndFeatureSize() async {
        let rank = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = LSTM(4, 3)(Tensor.zeros([2, 2, 2, 4]), nil)
        }
        #expect(standardErrorText(rank).contains("LSTM: Expected input to be 2D or 3D, got 4D instead"))
        let features = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            final class Model: Module { let encoder = LSTM(4, 3) }
            let model = Model()
            _ = model.modules()  // learns its path
            _ = model.encoder(Tensor.zeros([2, 2, 5]), nil)
        }
        #expect(standardErrorText(features).contains("LSTM 'encoder': input.size(-1) must be equal to input_size. Expected 4, got 5"))
        let empty = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = GRU(4, 3)(Tensor.zeros([0, 2, 4]))
        }
        #expect(standardErrorText(empty).contains("Expected sequence length to be larger than 0 in RNN"))
        let dtype = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = RNN(4, 3)(Tensor.zeros([2, 2, 4], dtype: .float64))
        }
        #expect(standardErrorText(dtype).contains("RNN input dtype (torch.float64) does not match weight dtype (torch.float32)"))
    }

    @Test func hiddenStateShapes() async {
        let h = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = LSTM(4, 3)(Tensor.zeros([2, 2, 4]), (Tensor.zeros([1, 3, 3]), Tensor.zeros([1, 2, 3])))
        }
        #expect(standardErrorText(h).contains("LSTM: Expected hidden[0] size (1, 2, 3), got [1, 3, 3]"))
        let c = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = LSTM(4, 3)(Tensor.zeros([2, 2, 4]), (Tensor.zeros([1, 2, 3]), Tensor.zeros([1, 3, 3])))
        }
        #expect(standardErrorText(c).contains("LSTM: Expected hidden[1] size (1, 2, 3), got [1, 3, 3]"))
        let gru = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = GRU(4, 3, numLayers: 2)(Tensor.zeros([2, 2, 4]), Tensor.zeros([1, 2, 3]))
        }
        #expect(standardErrorText(gru).contains("GRU: Expected hidden size (2, 2, 3), got [1, 2, 3]"))
        let batched = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = LSTM(4, 3)(Tensor.zeros([2, 2, 4]), (Tensor.zeros([2, 3]), Tensor.zeros([2, 3])))
        }
        #expect(standardErrorText(batched).contains("LSTM: For batched 3-D input, hx and cx should also be 3-D but got (2-D, 2-D) tensors"))
        let unbatched = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = GRU(4, 3)(Tensor.zeros([2, 4]), Tensor.zeros([1, 2, 3]))
        }
        #expect(standardErrorText(unbatched).contains("GRU: For unbatched 2-D input, hx should also be 2-D but got 3-D tensor"))
        let unbatchedSize = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = LSTM(4, 3)(Tensor.zeros([2, 4]), (Tensor.zeros([1, 4]), Tensor.zeros([1, 3])))
        }
        #expect(standardErrorText(unbatchedSize).contains("LSTM: Expected hidden[0] size (1, 1, 3), got [1, 1, 4]"))
    }

    @Test func cellChecks() async {
        let features = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = LSTMCell(4, 3)(Tensor.zeros([2, 5]), nil)
        }
        #expect(standardErrorText(features).contains("LSTMCell: input has inconsistent input_size: got 5 expected 4"))
        let rank = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = GRUCell(4, 3)(Tensor.zeros([3, 2, 4]), nil)
        }
        #expect(standardErrorText(rank).contains("GRUCell: Expected input to be 1D or 2D, got 3D instead"))
        let batch = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = RNNCell(4, 3)(Tensor.zeros([2, 4]), Tensor.zeros([3, 3]))
        }
        #expect(standardErrorText(batch).contains("RNNCell: Input batch size 2 doesn't match hidden0 batch size 3"))
        let size = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = LSTMCell(4, 3)(Tensor.zeros([2, 4]), (Tensor.zeros([2, 3]), Tensor.zeros([2, 4])))
        }
        #expect(standardErrorText(size).contains("LSTMCell: hidden1 has inconsistent hidden_size: got 4, expected 3"))
        let stateRank = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = GRUCell(4, 3)(Tensor.zeros([2, 4]), Tensor.zeros([2, 3, 1]))
        }
        #expect(standardErrorText(stateRank).contains("GRUCell: Expected hidden to be 1D or 2D, got 3D instead"))
        let mixed = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = GRUCell(4, 3)(Tensor.zeros([2, 4]), Tensor.zeros([3]))
        }
        #expect(standardErrorText(mixed).contains("GRUCell: Expected 2D hidden0 (batch x hidden_size), but got 1D tensor"))
    }
}
