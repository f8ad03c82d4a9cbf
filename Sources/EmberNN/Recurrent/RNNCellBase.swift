import EmberAutograd
import EmberFunctional
import EmberTensor
import EmberStorage

/// What ``RNNCell``, ``LSTMCell`` and ``GRUCell`` share: the four parameters and the input and
/// state checks. A cell computes one time step; it has no mode-dependent behaviour and keeps no
/// state between calls.
///
/// Parameters (`G` = 1, 4 or 3 times `hiddenSize`), all initialised `U(-1/sqrt(H), 1/sqrt(H))`:
/// `weightIH [G, inputSize]`, `weightHH [G, hiddenSize]`, `biasIH [G]`, `biasHH [G]` (no biases
/// with `bias: false`).
///
/// PyTorch parity: `torch.nn.RNNCellBase`: state-dict keys `weight_ih`, `weight_hh`, `bias_ih`,
/// `bias_hh` in that order, and the same checks and messages.
public class RNNCellBase: Module {
    public let inputSize: Int
    public let hiddenSize: Int
    public let weightIH: Parameter
    public let weightHH: Parameter
    public let biasIH: Parameter?
    public let biasHH: Parameter?

    init(name: String, gates: Int, inputSize: Int, hiddenSize: Int, bias: Bool, dtype: DType, generator: Generator) {
        precondition(inputSize >= 0 && hiddenSize > 0, "\(name): sizes must be positive, got input_size=\(inputSize), hidden_size=\(hiddenSize)")
        precondition(dtype.isFloatingPoint, "\(name): parameters must be float32 or float64, got \(dtype)")
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        let bound = 1 / Double(hiddenSize).squareRoot()
        func parameter(_ shape: Shape) -> Parameter {
            Parameter(Tensor.uniform(shape, low: -bound, high: bound, dtype: dtype, generator: generator))
        }
        weightIH = parameter([gates * hiddenSize, inputSize])
        weightHH = parameter([gates * hiddenSize, hiddenSize])
        biasIH = bias ? parameter([gates * hiddenSize]) : nil
        biasHH = bias ? parameter([gates * hiddenSize]) : nil
        super.init()
    }

    /// Whether the cell has biases.
    public var bias: Bool { biasIH != nil }

    /// Checks `input` (`[N, inputSize]` or unbatched `[inputSize]`) and returns it as `[N, inputSize]`.
    func batchedInput(_ input: Tensor) -> Tensor {
        precondition(input.rank == 1 || input.rank == 2,
                     "\(errorContext): Expected input to be 1D or 2D, got \(input.rank)D instead")
        let dtype = weightIH.value.dtype
        precondition(input.dtype == dtype, "\(errorContext): expected input dtype \(dtype) (the weights' dtype), got \(input.dtype)")
        precondition(input.shape[input.rank - 1] == inputSize,
                     "\(errorContext): input has inconsistent input_size: got \(input.shape[input.rank - 1]) expected \(inputSize)")
        return input.rank == 2 ? input : input.unsqueezed(axis: 0)
    }

    /// Checks state `index` (`hidden0` = h, `hidden1` = c) against the batched input and returns it
    /// as `[N, hiddenSize]`; zeros when `nil`.
    func batchedState(_ state: Tensor?, index: Int, input: Tensor, batchedInput x: Tensor, rankLabel: String) -> Tensor {
        guard let state else { return Tensor.zeros([x.shape[0], hiddenSize], dtype: x.dtype) }
        precondition(state.rank == 1 || state.rank == 2,
                     "\(errorContext): Expected \(rankLabel) to be 1D or 2D, got \(state.rank)D instead")
        let h = input.rank == 2 ? state : state.unsqueezed(axis: 0)
        precondition(h.rank == 2,
                     "\(errorContext): Expected 2D hidden\(index) (batch x hidden_size), but got \(h.rank)D tensor (a \(input.rank)-D input needs \(input.rank)-D states)")
        precondition(h.dtype == x.dtype, "\(errorContext): expected hidden\(index) dtype \(x.dtype), got \(h.dtype)")
        precondition(h.shape[0] == x.shape[0],
                     "\(errorContext): Input batch size \(x.shape[0]) doesn't match hidden\(index) batch size \(h.shape[0])")
        precondition(h.shape[1] == hiddenSize,
                     "\(errorContext): hidden\(index) has inconsistent hidden_size: got \(h.shape[1]), expected \(hiddenSize)")
        return h
    }

    /// `x W_ih^T + b_ih` and `h W_hh^T + b_hh`.
    func projections(_ x: Tensor, _ h: Tensor) -> (input: Tensor, hidden: Tensor) {
        (linear(x, weight: weightIH.value, bias: biasIH?.value), linear(h, weight: weightHH.value, bias: biasHH?.value))
    }

    public override var extraDescription: String {
        "\(inputSize), \(hiddenSize)" + (bias ? "" : ", bias=False")
    }
}
