import EmberAutograd
import EmberTensor
import EmberStorage

/// One GRU time step (the reset gate multiplies the hidden part including `b_hn`):
///
///     r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
///     z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
///     n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
///     h' = (1 - z) * n + z * h
///
/// Input `[N, inputSize]` (or unbatched `[inputSize]`), state `[N, hiddenSize]` (unbatched
/// `[hiddenSize]`), zeros when omitted. Composed from differentiable public ops; for whole
/// sequences ``GRU`` runs a fused kernel.
///
/// PyTorch parity: `torch.nn.GRUCell(input_size, hidden_size, bias=True)`: gate order `r, z, n`,
/// parameter names and initialisation, and the same checks and messages.
public final class GRUCell: RNNCellBase {
    public init(_ inputSize: Int, _ hiddenSize: Int, bias: Bool = true, dtype: DType = .float32, generator: Generator = .default) {
        super.init(name: "GRUCell", gates: 3, inputSize: inputSize, hiddenSize: hiddenSize, bias: bias, dtype: dtype,
                   generator: generator)
    }

    /// One step from `state` (zeros when `nil`); returns the new `h`.
    public func callAsFunction(_ input: Tensor, _ state: Tensor? = nil) -> Tensor {
        let x = batchedInput(input)
        let h = batchedState(state, index: 0, input: input, batchedInput: x, rankLabel: "hidden")
        let (gx, gh) = projections(x, h)
        let xs = gx.chunk(3, axis: 1), hs = gh.chunk(3, axis: 1)
        let r = (xs[0] + hs[0]).sigmoid()
        let z = (xs[1] + hs[1]).sigmoid()
        let n = (xs[2] + r * hs[2]).tanh()
        let h1 = (h - n) * z + n
        return input.rank == 2 ? h1 : h1.squeezed(axis: 0)
    }

    /// The new hidden state from a zero state.
    public override func forward(_ input: Tensor) -> Tensor { self(input, nil) }
}
