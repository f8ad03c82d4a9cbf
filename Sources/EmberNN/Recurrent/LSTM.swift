import EmberAutograd
import EmberFunctional
import EmberTensor
import EmberStorage

/// A multi-layer long short-term memory (LSTM) network over a sequence.
///
/// For each element of the input sequence, each layer computes (gate rows in PyTorch's order
/// `i, f, g, o`):
///
///     i_t = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
///     f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
///     g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
///     o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
///     c_t = f_t * c_{t-1} + i_t * g_t
///     h_t = o_t * tanh(c_t)                 (then h_t = W_hr h_t with projSize > 0)
///
/// The input of layer `k > 0` is the output of layer `k - 1`, with dropout in training mode when
/// `dropout > 0`. See ``RNNBase`` for modes and state: **no state is kept between calls**, and
/// `eval()` only turns the inter-layer dropout off.
///
/// Shapes (`D` = 2 if bidirectional else 1, `P` = `projSize` if set else `hiddenSize`):
/// - input `[L, N, inputSize]` (`[N, L, inputSize]` with `batchFirst`), or unbatched `[L, inputSize]`;
/// - output `[L, N, D * P]` (`[N, L, D * P]` with `batchFirst`), or `[L, D * P]`;
/// - `h`: `[D * numLayers, N, P]`, `c`: `[D * numLayers, N, hiddenSize]` (unbatched: without `N`);
///   `batchFirst` never applies to states.
///
/// Each layer runs as one fused op over the whole sequence: the input projection of all steps is
/// one matrix multiply, each step one more plus one vectorised gate pass, and backward through
/// time is hand-written with large matrix multiplies for the weight and input gradients.
///
/// PyTorch parity: `torch.nn.LSTM(input_size, hidden_size, num_layers=1, bias=True,
/// batch_first=False, dropout=0.0, bidirectional=False, proj_size=0)`: the same parameter names
/// (`weight_ih_l0`, `weight_hr_l1_reverse`, ...), shapes, order and initialisation, so PyTorch state
/// dicts load unchanged; the same errors and warning. `forward(_:)` (and `lstm(x)` where a single
/// tensor is expected) returns the output sequence alone, so the module fits in ``Sequential``.
public final class LSTM: RNNBase {
    /// - Parameters:
    ///   - inputSize: features of each input element.
    ///   - hiddenSize: features of the hidden and cell states.
    ///   - numLayers: stacked layers.
    ///   - bias: whether the layers have `b_ih` and `b_hh`.
    ///   - batchFirst: input and output as `[N, L, F]`.
    ///   - dropout: dropout on every layer's output but the last, in training mode; in `[0, 1]`.
    ///   - bidirectional: run each layer in both directions.
    ///   - projSize: when `> 0`, project `h` to this size with `W_hr` (must be `< hiddenSize`).
    ///   - dtype: the parameters' dtype.
    ///   - generator: the random source of the initial weights.
    public init(_ inputSize: Int, _ hiddenSize: Int, numLayers: Int = 1, bias: Bool = true, batchFirst: Bool = false,
                dropout: Double = 0, bidirectional: Bool = false, projSize: Int = 0, dtype: DType = .float32,
                generator: Generator = .default)
    {
        super.init(kind: .lstm, inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers, bias: bias,
                   batchFirst: batchFirst, dropout: dropout, bidirectional: bidirectional, projSize: projSize,
                   dtype: dtype, generator: generator)
    }

    /// Runs the sequence from `state` (zeros when `nil`).
    ///
    /// - Returns: the last layer's output for every step, and the final `h` and `c` of every layer
    ///   and direction (taken before any dropout).
    public func callAsFunction(_ input: Tensor, _ state: (h: Tensor, c: Tensor)? = nil)
        -> (output: Tensor, state: (h: Tensor, c: Tensor))
    {
        let r = run(input, hidden: state?.h, cell: state?.c)
        return (r.output, (r.hidden, r.cell!))
    }

    /// The output sequence from a zero state.
    public override func forward(_ input: Tensor) -> Tensor { run(input, hidden: nil, cell: nil).output }
}
