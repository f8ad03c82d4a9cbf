import EmberAutograd
import EmberTensor
import EmberStorage

/// One LSTM time step:
///
///     [i | f | g | o] = x W_ih^T + b_ih + h W_hh^T + b_hh
///     c' = sigmoid(f) * c + sigmoid(i) * tanh(g),   h' = sigmoid(o) * tanh(c')
///
/// Input `[N, inputSize]` (or unbatched `[inputSize]`), states `[N, hiddenSize]` (unbatched
/// `[hiddenSize]`), zeros when omitted. Composed from differentiable public ops; for whole
/// sequences ``LSTM`` runs a fused, much faster kernel.
///
/// PyTorch parity: `torch.nn.LSTMCell(input_size, hidden_size, bias=True)`: gate order `i, f, g, o`,
/// parameter names and initialisation, and the same checks and messages.
public final class LSTMCell: RNNCellBase {
    public init(_ inputSize: Int, _ hiddenSize: Int, bias: Bool = true, dtype: DType = .float32, generator: Generator = .default) {
        super.init(name: "LSTMCell", gates: 4, inputSize: inputSize, hiddenSize: hiddenSize, bias: bias, dtype: dtype,
                   generator: generator)
    }

    /// One step from `state` (zeros when `nil`); returns the new `(h, c)`.
    public func callAsFunction(_ input: Tensor, _ state: (h: Tensor, c: Tensor)? = nil) -> (h: Tensor, c: Tensor) {
        let x = batchedInput(input)
        let h = batchedState(state?.h, index: 0, input: input, batchedInput: x, rankLabel: "hx[0]")
        let c = batchedState(state?.c, index: 1, input: input, batchedInput: x, rankLabel: "hx[1]")
        let (gx, gh) = projections(x, h)
        let gates = (gx + gh).chunk(4, axis: 1)
        let i = gates[0].sigmoid(), f = gates[1].sigmoid(), g = gates[2].tanh(), o = gates[3].sigmoid()
        let c1 = f * c + i * g
        let h1 = o * c1.tanh()
        return input.rank == 2 ? (h1, c1) : (h1.squeezed(axis: 0), c1.squeezed(axis: 0))
    }

    /// The new hidden state from a zero state.
    public override func forward(_ input: Tensor) -> Tensor { self(input, nil).h }
}
