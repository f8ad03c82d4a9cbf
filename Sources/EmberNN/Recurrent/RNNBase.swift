import EmberAutograd
import EmberFunctional
import Foundation
import EmberTensor
import EmberStorage

/// What ``RNN``, ``LSTM`` and ``GRU`` share: configuration, parameters, input and state checks,
/// and the stack of fused layers with dropout between them.
///
/// ## Modes and state
/// The module keeps **no hidden state between calls**: each call starts from the state you pass,
/// or from zeros. `eval()` does not reset anything (there is nothing to reset); carrying state
/// across batches (streaming, truncated backpropagation through time) is the caller's job: pass
/// the returned state, usually `detached()`, into the next call.
///
/// The mode changes one thing only: in training mode with `dropout > 0`, each layer's output
/// sequence except the last layer's goes through ordinary dropout (an independent mask per
/// element and time step, scale `1 / (1 - dropout)`) before the next layer. Recurrent
/// connections, the last layer's output and the returned final states are never dropped; in
/// evaluation mode, with one layer, or with `dropout == 0`, training and evaluation outputs are
/// bitwise equal.
///
/// PyTorch parity: `torch.nn.RNNBase` (the same checks, messages, warning, parameter names and
/// order, and `U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))` initialisation of every parameter).
public class RNNBase: Module {
    /// Features of each input element.
    public let inputSize: Int
    /// Features of the hidden state.
    public let hiddenSize: Int
    /// Stacked recurrent layers.
    public let numLayers: Int
    /// Whether the layers have the bias vectors `b_ih` and `b_hh`.
    public let bias: Bool
    /// Whether input and output are `[N, L, F]` instead of `[L, N, F]` (states are always
    /// `[D * numLayers, N, H]`).
    public let batchFirst: Bool
    /// Dropout probability on the outputs of every layer but the last, in training mode.
    public let dropout: Double
    /// Whether each layer also runs the sequence backwards (outputs concatenated on features).
    public let bidirectional: Bool
    /// LSTM projection size (0: none).
    public let projSize: Int
    /// The random source of the inter-layer dropout; `nil` uses ``Generator/default``.
    public var dropoutGenerator: Generator?

    let kind: RecurrentCellKind
    @Flattened var parameterTable: RecurrentParameterTable
    /// Scratch buffers reused across calls (see ``RecurrentWorkspace``).
    let workspace = RecurrentWorkspace()

    init(kind: RecurrentCellKind, inputSize: Int, hiddenSize: Int, numLayers: Int, bias: Bool, batchFirst: Bool,
         dropout: Double, bidirectional: Bool, projSize: Int, dtype: DType, generator: Generator)
    {
        let name = kind == .lstm ? "LSTM" : kind == .gru ? "GRU" : "RNN"
        precondition(dropout >= 0 && dropout <= 1,
                     "\(name): dropout should be a number in range [0, 1] representing the probability of an element being zeroed (got \(dropout))")
        if dropout > 0 && numLayers == 1 {
            let text = "dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects num_layers greater than 1, but got dropout=\(pythonFloat(dropout)) and num_layers=\(numLayers)"
            FileHandle.standardError.write(Data("Ember warning: \(name): UserWarning: \(text)\n".utf8))
        }
        precondition(inputSize > 0, "\(name): input_size must be greater than zero (got \(inputSize))")
        precondition(hiddenSize > 0, "\(name): hidden_size must be greater than zero (got \(hiddenSize))")
        precondition(numLayers > 0, "\(name): num_layers must be greater than zero (got \(numLayers))")
        precondition(projSize >= 0, "\(name): proj_size should be a positive integer or zero to disable projections (got \(projSize))")
        precondition(projSize < hiddenSize, "\(name): proj_size has to be smaller than hidden_size (got proj_size=\(projSize), hidden_size=\(hiddenSize))")
        precondition(projSize == 0 || kind == .lstm, "\(name): proj_size argument is only supported for LSTM, not RNN or GRU")
        precondition(dtype.isFloatingPoint, "\(name): parameters must be float32 or float64, got \(dtype)")
        self.kind = kind
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.bias = bias
        self.batchFirst = batchFirst
        self.dropout = dropout
        self.bidirectional = bidirectional
        self.projSize = projSize

        let directions = bidirectional ? 2 : 1
        let gates = kind.gateCount * hiddenSize
        let outputSize = projSize > 0 ? projSize : hiddenSize
        let bound = 1 / Double(hiddenSize).squareRoot()
        func parameter(_ shape: Shape) -> Parameter {
            Parameter(Tensor.uniform(shape, low: -bound, high: bound, dtype: dtype, generator: generator))
        }
        var sets: [RecurrentWeightSet] = []
        for layer in 0..<numLayers {
            let layerInput = layer == 0 ? inputSize : directions * outputSize
            for _ in 0..<directions {
                // Drawn in PyTorch's registration order.
                let wIH = parameter([gates, layerInput]), wHH = parameter([gates, outputSize])
                let bIH = bias ? parameter([gates]) : nil, bHH = bias ? parameter([gates]) : nil
                let wHR = projSize > 0 ? parameter([projSize, hiddenSize]) : nil
                sets.append(RecurrentWeightSet(weightIH: wIH, weightHH: wHH, biasIH: bIH, biasHH: bHH, weightHR: wHR))
            }
        }
        _parameterTable = Flattened(wrappedValue: RecurrentParameterTable(sets: sets, directions: directions))
        super.init()
    }

    /// Frees the scratch buffers the module keeps between calls (gate pre-activations, saved
    /// states and gate gradients, a few megabytes per layer at typical sizes). The next call
    /// allocates them again. Buffers still held by a recorded graph stay alive until it is freed.
    public func releaseScratchBuffers() { workspace.release() }

    /// Directions per layer (2 when bidirectional).
    public var numDirections: Int { bidirectional ? 2 : 1 }

    /// Features per direction of the output and of `h`: `projSize` when set, else `hiddenSize`.
    public var outputSize: Int { projSize > 0 ? projSize : hiddenSize }

    /// The parameters of one layer and direction (`weight_ih_l{layer}[_reverse]`, ...).
    public func weights(layer: Int, reverse: Bool = false) -> RecurrentWeightSet {
        precondition(layer >= 0 && layer < numLayers, "\(errorContext): layer \(layer) out of range 0..<\(numLayers)")
        precondition(!reverse || bidirectional, "\(errorContext): only a bidirectional module has reverse weights")
        return parameterTable.sets[layer * numDirections + (reverse ? 1 : 0)]
    }

    /// The sequence, validated and made time-major `[L, N, F]`, the states as `[D * layers, N, *]`,
    /// run through every layer; the results in the caller's layout.
    func run(_ input: Tensor, hidden: Tensor?, cell: Tensor?) -> (output: Tensor, hidden: Tensor, cell: Tensor?) {
        let isLSTM = kind == .lstm
        if isModeDependent { checkTrainingWithoutGrad() }
        precondition(input.rank == 2 || input.rank == 3,
                     "\(errorContext): Expected input to be 2D or 3D, got \(input.rank)D instead")
        let dtype = parameterTable.sets[0].weightIH.value.dtype
        precondition(input.dtype == dtype,
                     "\(errorContext): RNN input dtype (\(input.dtype)) does not match weight dtype (\(dtype)). Convert input: input.to(\(dtype)), or convert model: model.to(\(input.dtype))")
        precondition(input.shape[input.rank - 1] == inputSize,
                     "\(errorContext): input.size(-1) must be equal to input_size. Expected \(inputSize), got \(input.shape[input.rank - 1])")
        let batched = input.rank == 3
        func rankText(_ t: Tensor?) -> String { "\(t?.rank ?? 0)-D" }
        if let hidden {
            let ranksMatch = hidden.rank == input.rank && (cell.map { $0.rank == input.rank } ?? true)
            let dims = batched ? "batched 3-D" : "unbatched 2-D"
            let want = batched ? "3-D" : "2-D"
            precondition(ranksMatch, isLSTM
                ? "\(errorContext): For \(dims) input, hx and cx should also be \(want) but got (\(rankText(hidden)), \(rankText(cell))) tensors"
                : "\(errorContext): For \(dims) input, hx should also be \(want) but got \(rankText(hidden)) tensor")
        }
        var x = batched ? input : input.unsqueezed(axis: 1)
        let h0 = batched ? hidden : hidden?.unsqueezed(axis: 1)
        let c0 = batched ? cell : cell?.unsqueezed(axis: 1)
        if batched && batchFirst { x = x.transposed(0, 1) }
        precondition(x.shape[0] > 0, "\(errorContext): Expected sequence length to be larger than 0 in RNN (input shape \(input.shape))")
        let n = x.shape[1], layers = numLayers * numDirections
        let expectedH: Shape = [layers, n, outputSize], expectedC: Shape = [layers, n, hiddenSize]
        if let h = h0 {
            precondition(h.shape == expectedH, isLSTM
                ? "\(errorContext): Expected hidden[0] size \(tupleText(expectedH)), got \(listText(h.shape))"
                : "\(errorContext): Expected hidden size \(tupleText(expectedH)), got \(listText(h.shape))")
            precondition(h.dtype == dtype, "\(errorContext): hidden state is \(h.dtype) but the weights are \(dtype)")
        }
        if let c = c0 {
            precondition(c.shape == expectedC, "\(errorContext): Expected hidden[1] size \(tupleText(expectedC)), got \(listText(c.shape))")
            precondition(c.dtype == dtype, "\(errorContext): cell state is \(c.dtype) but the weights are \(dtype)")
        }

        var layerInput = x
        var hs: [Tensor] = [], cs: [Tensor] = []
        let d = numDirections
        for layer in 0..<numLayers {
            let sets = parameterTable.sets[(layer * d)..<((layer + 1) * d)].map(\.values)
            let h = h0.map { numLayers == 1 ? $0 : $0.narrow(axis: 0, start: layer * d, length: d) }
            let c = c0.map { numLayers == 1 ? $0 : $0.narrow(axis: 0, start: layer * d, length: d) }
            let result = recurrentLayer(kind, input: layerInput, weights: sets, h0: h, c0: c,
                                        buffers: BufferSource(workspace: workspace, layer: layer))
            hs.append(result.hidden)
            if let cell = result.cell { cs.append(cell) }
            layerInput = result.output
            if layer < numLayers - 1 && isTraining && dropout > 0 {
                layerInput = EmberFunctional.dropout(layerInput, p: dropout, training: true, generator: dropoutGenerator ?? .default)
            } else if layer < numLayers - 1 && dropout > 0 {
                layerInput = noteEvalModeOutput(layerInput)
            }
        }
        var output = layerInput
        var hN = hs.count == 1 ? hs[0] : Tensor.cat(hs, axis: 0)
        var cN = isLSTM ? (cs.count == 1 ? cs[0] : Tensor.cat(cs, axis: 0)) : nil
        if batched && batchFirst { output = output.transposed(0, 1) }
        if !batched {
            output = output.squeezed(axis: 1)
            hN = hN.squeezed(axis: 1)
            cN = cN?.squeezed(axis: 1)
        }
        return (output, hN, cN)
    }

    /// Stacked layers with inter-layer dropout behave differently by mode.
    public override var isModeDependent: Bool { numLayers > 1 && dropout > 0 }

    public override var extraDescription: String {
        var s = "\(inputSize), \(hiddenSize)"
        if projSize != 0 { s += ", proj_size=\(projSize)" }
        if numLayers != 1 { s += ", num_layers=\(numLayers)" }
        if !bias { s += ", bias=False" }
        if batchFirst { s += ", batch_first=True" }
        if dropout != 0 { s += ", dropout=\(pythonFloat(dropout))" }
        if bidirectional { s += ", bidirectional=True" }
        return s
    }
}

/// Python's `str(float)`: `0.5`, `1.0`, `0.25`.
func pythonFloat(_ x: Double) -> String {
    x == x.rounded() && abs(x) < 1e16 ? "\(Int(x)).0" : "\(x)"
}

/// A shape as a Python tuple, `(1, 2, 3)`, as PyTorch's RNN messages print expected sizes.
func tupleText(_ s: Shape) -> String {
    let dims = (0..<s.count).map { String(s[$0]) }
    return dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.joined(separator: ", ") + ")"
}

/// A shape as a Python list, `[1, 2, 3]`, as PyTorch's RNN messages print actual sizes.
func listText(_ s: Shape) -> String { "[" + (0..<s.count).map { String(s[$0]) }.joined(separator: ", ") + "]" }
