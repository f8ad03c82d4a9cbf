import EmberAutograd
import EmberFunctional
import EmberTensor
import EmberStorage

/// The nonlinearity of an Elman ``RNN`` or ``RNNCell``.
public enum RNNNonlinearity: String, Sendable, Hashable {
    case tanh
    case relu
}

/// A multi-layer Elman RNN over a sequence: for each element, each layer computes
///
///     h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)      (or ReLU)
///
/// See ``RNNBase`` for modes and state: **no state is kept between calls**, and `eval()` only
/// turns the inter-layer dropout off. Shapes as ``GRU``.
///
/// PyTorch parity: `torch.nn.RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh',
/// bias=True, batch_first=False, dropout=0.0, bidirectional=False)`: the same parameter names,
/// shapes, order and initialisation, errors and warning. The nonlinearity is an enum, so PyTorch's
/// "Unknown nonlinearity" error cannot happen. `forward(_:)` returns the output sequence alone.
public final class RNN: RNNBase {
    public let nonlinearity: RNNNonlinearity

    /// Parameters as ``GRU/init(_:_:numLayers:bias:batchFirst:dropout:bidirectional:dtype:generator:)``,
    /// plus the `nonlinearity`.
    public init(_ inputSize: Int, _ hiddenSize: Int, numLayers: Int = 1, nonlinearity: RNNNonlinearity = .tanh,
                bias: Bool = true, batchFirst: Bool = false, dropout: Double = 0, bidirectional: Bool = false,
                dtype: DType = .float32, generator: Generator = .default)
    {
        self.nonlinearity = nonlinearity
        super.init(kind: nonlinearity == .tanh ? .rnnTanh : .rnnReLU, inputSize: inputSize, hiddenSize: hiddenSize,
                   numLayers: numLayers, bias: bias, batchFirst: batchFirst, dropout: dropout,
                   bidirectional: bidirectional, projSize: 0, dtype: dtype, generator: generator)
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
