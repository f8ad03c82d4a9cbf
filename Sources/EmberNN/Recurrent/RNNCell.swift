import EmberAutograd
import EmberTensor
import EmberStorage

/// One Elman RNN time step: `h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)` (or ReLU).
///
/// Input `[N, inputSize]` (or unbatched `[inputSize]`), state `[N, hiddenSize]` (unbatched
/// `[hiddenSize]`), zeros when omitted. Composed from differentiable public ops; for whole
/// sequences ``RNN`` runs a fused kernel.
///
/// PyTorch parity: `torch.nn.RNNCell(input_size, hidden_size, bias=True, nonlinearity='tanh')`:
/// parameter names and initialisation, and the same checks and messages.
public final class RNNCell: RNNCellBase {
    public let nonlinearity: RNNNonlinearity

    public init(_ inputSize: Int, _ hiddenSize: Int, bias: Bool = true, nonlinearity: RNNNonlinearity = .tanh,
                dtype: DType = .float32, generator: Generator = .default)
    {
        self.nonlinearity = nonlinearity
        super.init(name: "RNNCell", gates: 1, inputSize: inputSize, hiddenSize: hiddenSize, bias: bias, dtype: dtype,
                   generator: generator)
    }

    /// One step from `state` (zeros when `nil`); returns the new `h`.
    public func callAsFunction(_ input: Tensor, _ state: Tensor? = nil) -> Tensor {
        let x = batchedInput(input)
        let h = batchedState(state, index: 0, input: input, batchedInput: x, rankLabel: "hidden")
        let (gx, gh) = projections(x, h)
        let pre = gx + gh
        let h1 = nonlinearity == .tanh ? pre.tanh() : pre.relu()
        return input.rank == 2 ? h1 : h1.squeezed(axis: 0)
    }

    /// The new hidden state from a zero state.
    public override func forward(_ input: Tensor) -> Tensor { self(input, nil) }

    public override var extraDescription: String {
        super.extraDescription + (nonlinearity == .tanh ? "" : ", nonlinearity=relu")
    }
}
