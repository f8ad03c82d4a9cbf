import EmberAutograd
import EmberFunctional
import EmberTensor
import EmberStorage

/// A multi-layer gated recurrent unit (GRU) network over a sequence.
///
/// For each element of the input sequence, each layer computes (gate rows in PyTorch's order
/// `r, z, n`; the reset gate multiplies the hidden part including its bias `b_hn`):
///
///     r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
///     z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
///     n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
///     h_t = (1 - z_t) * n_t + z_t * h_{t-1}
///
/// See ``RNNBase`` for modes and state: **no state is kept between calls**, and `eval()` only
/// turns the inter-layer dropout off. Shapes as ``LSTM`` without a cell state or projection.
///
/// PyTorch parity: `torch.nn.GRU(input_size, hidden_size, num_layers=1, bias=True,
/// batch_first=False, dropout=0.0, bidirectional=False)`: the same parameter names, shapes, order
/// and initialisation, errors and warning. `forward(_:)` returns the output sequence alone.
public final class GRU: RNNBase {
    /// Parameters as ``LSTM/init(_:_:numLayers:bias:batchFirst:dropout:bidirectional:projSize:dtype:generator:)``
    /// without `projSize`.
    public init(_ inputSize: Int, _ hiddenSize: Int, numLayers: Int = 1, bias: Bool = true, batchFirst: Bool = false,
                dropout: Double = 0, bidirectional: Bool = false, dtype: DType = .float32, generator: Generator = .default)
    {
        super.init(kind: .gru, inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers, bias: bias,
                   batchFirst: batchFirst, dropout: dropout, bidirectional: bidirectional, projSize: 0,
                   dtype: dtype, generator: generator)
    }

    /// Runs the sequence from `h0` (zeros when `nil`), `[D * numLayers, N, hiddenSize]`.
    ///
    /// - Returns: the last layer's output for every step and the final `h` of every layer and
    ///   direction (taken before any dropout).
    public func callAsFunction(_ input: Tensor, _ h0: Tensor? = nil) -> (output: Tensor, h: Tensor) {
        let r = run(input, hidden: h0, cell: nil)
        return (r.output, r.hidden)
    }

    /// The output sequence from a zero state.
    public override func forward(_ input: Tensor) -> Tensor { run(input, hidden: nil, cell: nil).output }
}
