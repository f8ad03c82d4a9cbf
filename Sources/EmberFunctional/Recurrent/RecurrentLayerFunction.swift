import EmberAutograd
import EmberTensor
import EmberStorage

/// The recurrence a fused layer runs.
package enum RecurrentCellKind: Sendable, Equatable {
    /// Elman RNN with tanh.
    case rnnTanh
    /// Elman RNN with ReLU.
    case rnnReLU
    case lstm
    case gru

    /// Gate blocks stacked in the weight matrices: 4 (LSTM), 3 (GRU), 1 (RNN).
    package var gateCount: Int {
        switch self {
        case .lstm: 4
        case .gru: 3
        case .rnnTanh, .rnnReLU: 1
        }
    }

    /// The op name recorded in the graph (`gradFnName`).
    var opName: String {
        switch self {
        case .lstm: "lstm"
        case .gru: "gru"
        case .rnnTanh: "rnn_tanh"
        case .rnnReLU: "rnn_relu"
        }
    }
}

/// One direction's weights: `W_ih [G, F]`, `W_hh [G, P]`, optional `b_ih`, `b_hh [G]`, and for
/// LSTM an optional projection `W_hr [P, H]`, with `G = gateCount * H`.
package struct RecurrentDirectionWeights {
    package var weightIH: Tensor
    package var weightHH: Tensor
    package var biasIH: Tensor?
    package var biasHH: Tensor?
    package var weightHR: Tensor?

    package init(weightIH: Tensor, weightHH: Tensor, biasIH: Tensor? = nil, biasHH: Tensor? = nil, weightHR: Tensor? = nil) {
        self.weightIH = weightIH
        self.weightHH = weightHH
        self.biasIH = biasIH
        self.biasHH = biasHH
        self.weightHR = weightHR
    }

    /// The present tensors in PyTorch's order: `W_ih, W_hh, b_ih, b_hh, W_hr`.
    var tensors: [Tensor] { [weightIH, weightHH] + [biasIH, biasHH, weightHR].compactMap { $0 } }
}

/// Collects the gradients of a fused layer's final states. The state tensors are recorded as
/// nodes that consume the output sequence; their backward (which the engine runs before the
/// layer's, since they consume its output) leaves the gradient here and hands the output a
/// broadcast zero, so the layer's single backward runs BPTT with all three gradients at once.
final class RecurrentGradientInbox {
    var hidden: Tensor?
    var cell: Tensor?
    /// Zero gradient for the output sequence (one element broadcast, no allocation); recognised
    /// by its storage, so a sequence gradient that is only this token counts as absent.
    let outputZero: Tensor
    /// Zero gradient for `h_n`, returned by the `c_n` node.
    let hiddenZero: Tensor

    init(outputShape: Shape, hiddenShape: Shape, dtype: DType) {
        let zero = Tensor(zeroedShape: [], dtype: dtype)
        outputZero = zero.expandedRaw(to: outputShape)
        hiddenZero = zero.expandedRaw(to: hiddenShape)
    }
}

/// One recurrent layer (all directions) over a whole time-major sequence as one differentiable
/// op, with a hand-written backward through time.
///
/// - Parameters:
///   - input: `[L, N, F]`, any strides.
///   - weights: one entry per direction (forward, then reverse).
///   - h0: `[D, N, P]`, or `nil` for zeros.
///   - c0: LSTM only, `[D, N, H]`, or `nil` for zeros.
/// - Returns: the output `[L, N, D * P]` (contiguous), `h_n [D, N, P]` and for LSTM `c_n [D, N, H]`.
///
/// The input projection of every step is one matrix multiply; each step adds the recurrent
/// product with one more and finishes all gates in one vectorised pass, with no allocation in the
/// time loop. Backward fills the gate gradients step by step (one multiply per step for the
/// recurrent path), then forms `dW_ih`, `dW_hh`, `dW_hr` and `dx` with one multiply each over all
/// steps.
///
/// PyTorch parity: one layer of `torch._VF.lstm` / `gru` / `rnn_tanh` / `rnn_relu` (the gate
/// orders and bias placement of `torch.nn.LSTM`, `GRU`, `RNN`).
package func recurrentLayer(
    _ kind: RecurrentCellKind, input: Tensor, weights: [RecurrentDirectionWeights], h0: Tensor? = nil, c0: Tensor? = nil
) -> (output: Tensor, hidden: Tensor, cell: Tensor?) {
    recurrentLayer(kind, input: input, weights: weights, h0: h0, c0: c0, buffers: BufferSource(workspace: nil, layer: 0))
}

/// ``recurrentLayer(_:input:weights:h0:c0:)`` taking its large scratch buffers from `buffers`.
package func recurrentLayer(
    _ kind: RecurrentCellKind, input: Tensor, weights: [RecurrentDirectionWeights], h0: Tensor?, c0: Tensor?,
    buffers: BufferSource
) -> (output: Tensor, hidden: Tensor, cell: Tensor?) {
    precondition(input.rank == 3, "\(kind.opName): expected time-major input [L, N, F], got shape \(input.shape)")
    precondition(weights.count == 1 || weights.count == 2, "\(kind.opName): expected weights for 1 or 2 directions, got \(weights.count)")
    let dtype = input.dtype
    precondition(dtype == .float32 || dtype == .float64, "\(kind.opName): expected a float32 or float64 input, got \(dtype)")
    let w0 = weights[0]
    precondition(w0.weightIH.rank == 2 && w0.weightIH.shape[0] % kind.gateCount == 0,
                 "\(kind.opName): weight_ih must be [\(kind.gateCount) * hidden_size, input_size], got \(w0.weightIH.shape)")
    let hidden = w0.weightIH.shape[0] / kind.gateCount
    let projected = w0.weightHR != nil
    precondition(!projected || kind == .lstm, "\(kind.opName): proj_size argument is only supported for LSTM, not RNN or GRU")
    let outputSize = w0.weightHR?.shape[0] ?? hidden
    let geometry = RecurrentGeometry(
        steps: input.shape[0], batch: input.shape[1], inputSize: input.shape[2], hiddenSize: hidden,
        outputSize: outputSize, directions: weights.count, gateWidth: kind.gateCount * hidden)
    for (d, w) in weights.enumerated() {
        let g = geometry.gateWidth
        let expected: [(String, Tensor?, Shape)] = [
            ("weight_ih", w.weightIH, [g, geometry.inputSize]), ("weight_hh", w.weightHH, [g, outputSize]),
            ("bias_ih", w.biasIH, [g]), ("bias_hh", w.biasHH, [g]),
            ("weight_hr", w.weightHR, projected ? [outputSize, hidden] : []),
        ]
        for (name, t, shape) in expected {
            guard let t else { continue }
            precondition(t.shape == shape, "\(kind.opName): \(name) of direction \(d) must have shape \(shape), got \(t.shape) (input shape \(input.shape))")
            precondition(t.dtype == dtype, "\(kind.opName): \(name) is \(t.dtype) but the input is \(dtype)")
        }
        precondition((w.weightHR != nil) == projected, "\(kind.opName): every direction must have a projection or none")
    }
    let stateShape: Shape = [weights.count, geometry.batch, outputSize]
    if let h0 {
        precondition(h0.shape == stateShape && h0.dtype == dtype, "\(kind.opName): Expected hidden size \(stateShape), got \(h0.shape) (\(h0.dtype))")
    }
    if let c0 {
        precondition(kind == .lstm, "\(kind.opName): only LSTM has a cell state")
        let shape: Shape = [weights.count, geometry.batch, hidden]
        precondition(c0.shape == shape && c0.dtype == dtype, "\(kind.opName): Expected cell state size \(shape), got \(c0.shape) (\(c0.dtype))")
    }
    precondition(geometry.steps > 0, "\(kind.opName): Expected sequence length to be larger than 0 in RNN")
    if dtype == .float32 {
        return recurrentLayerTyped(Float.self, kind, input, weights, h0, c0, geometry, buffers)
    }
    return recurrentLayerTyped(Double.self, kind, input, weights, h0, c0, geometry, buffers)
}

/// One direction's weights made contiguous, the transposes the kernels multiply by, and the
/// combined biases; pointers into them stay valid while the value is alive.
private struct PreparedWeights {
    var weightIH, weightHH: Tensor
    /// `W_hh^T`, only made for a call that records (only backward reads it); else `W_hh` stands in.
    var weightHHT: Tensor
    var weightHRT: Tensor?
    var inputBias, hiddenBias: Tensor

    init(_ w: RecurrentDirectionWeights, kind: RecurrentCellKind, direction: Int, forBackward: Bool, buffers: BufferSource) {
        func transposed(_ t: Tensor, _ role: RecurrentWorkspace.Role) -> Tensor {
            let (rows, cols) = (t.shape[0], t.shape[1])
            var out = buffers(role, direction: direction, [cols, rows], dtype: t.dtype)
            if t.dtype == .float32 && VectorKernels.hasTranspose {
                let source = t.contiguousRaw
                withExtendedLifetime(source) {
                    VectorKernels.transpose(source.pointer(as: Float.self), rows: rows, cols: cols,
                                            into: out.mutablePointer(as: Float.self))
                }
            } else {
                copyElements(from: t.transposedRaw(), into: &out)
            }
            return out
        }
        weightIH = w.weightIH.contiguousRaw
        weightHH = w.weightHH.contiguousRaw
        weightHHT = forBackward ? transposed(weightHH, .transposedHiddenWeights) : weightHH
        weightHRT = w.weightHR.map { transposed($0, .transposedProjection) }
        let g = weightIH.shape[0], dtype = weightIH.dtype
        let zeros = Tensor(zeroedShape: [g], dtype: dtype)
        let bih = w.biasIH?.detached(), bhh = w.biasHH?.detached()
        if kind == .gru {
            inputBias = bih?.contiguousRaw ?? zeros
            hiddenBias = bhh?.contiguousRaw ?? zeros
        } else {
            // LSTM and RNN add both biases to the same pre-activation.
            switch (bih, bhh) {
            case let (a?, b?): inputBias = Kernels.add(a, b)
            case let (a?, nil): inputBias = a.contiguousRaw
            case let (nil, b?): inputBias = b.contiguousRaw
            case (nil, nil): inputBias = zeros
            }
            hiddenBias = zeros
        }
    }

    func pointers<T: RecurrentFloat>(_: T.Type) -> DirectionPointers<T> {
        DirectionPointers(
            inputWeights: weightIH.pointer(as: T.self), hiddenWeights: weightHH.pointer(as: T.self),
            hiddenWeightsT: weightHHT.pointer(as: T.self), projectionT: weightHRT?.pointer(as: T.self),
            inputBias: inputBias.pointer(as: T.self), hiddenBias: hiddenBias.pointer(as: T.self))
    }
}

/// One direction's weight-gradient buffers (`nil` where none is needed).
private struct DirectionGradientTensors {
    var wIH, wHH, bIH, bHH, wHR: Tensor?
}

/// What one direction's forward kept for backward.
private enum DirectionTape {
    case lstm(LSTMSequence.Tape)
    case gru(GRUSequence.Tape)
    case rnn
}

private func recurrentLayerTyped<T: RecurrentFloat>(
    _: T.Type, _ kind: RecurrentCellKind, _ input: Tensor, _ weights: [RecurrentDirectionWeights],
    _ h0: Tensor?, _ c0: Tensor?, _ g: RecurrentGeometry, _ buffers: BufferSource
) -> (output: Tensor, hidden: Tensor, cell: Tensor?) {
    let L = g.steps, N = g.batch, H = g.hiddenSize, P = g.outputSize, D = g.directions
    let x: Tensor
    if input.isContiguous {
        x = input.contiguousRaw
    } else {  // a batch-first input arrives as a transposed view
        var copy = buffers(.contiguousInput, input.shape, dtype: T.dtype)
        copyElements(from: input.detached(), into: &copy)
        x = copy
    }
    let h0c = h0?.contiguousRaw, c0c = c0?.contiguousRaw
    var inputs = [input]
    for w in weights { inputs.append(contentsOf: w.tensors) }
    if let h0 { inputs.append(h0) }
    if let c0 { inputs.append(c0) }
    let recording = shouldRecord(inputs)
    let prepared = weights.enumerated().map {
        PreparedWeights($1, kind: kind, direction: $0, forBackward: recording, buffers: buffers)
    }

    // The output and the input gradient come from the workspace too: by the next call the caller
    // has usually dropped the previous ones, which makes them reusable (a held one is not).
    let y = buffers(.output, [L, N, D * P], dtype: T.dtype)
    let hN = Tensor(uninitializedShape: [D, N, P], dtype: T.dtype)
    let cN = kind == .lstm ? Tensor(uninitializedShape: [D, N, H], dtype: T.dtype) : nil
    // The plain RNN's pre-activations are scratch (its backward reads the outputs).
    let rnnScratch = kind.gateCount == 1 ? buffers(.preActivations, [H, g.featureStride], dtype: T.dtype) : nil
    var tapes: [DirectionTape] = []
    withExtendedLifetime((x, prepared, h0c, c0c, rnnScratch)) {
        let px = x.pointer(as: T.self), py = y.mutablePointer(as: T.self), phN = hN.mutablePointer(as: T.self)
        for d in 0..<D {
            let w = prepared[d].pointers(T.self)
            let h0d = h0c.map { $0.pointer(as: T.self) + d * N * P }
            switch kind {
            case .lstm:
                let c0d = c0c.map { $0.pointer(as: T.self) + d * N * H }
                tapes.append(.lstm(LSTMSequence.forward(T.self, geometry: g, direction: d, x: px, weights: w, h0: h0d, c0: c0d,
                                                        y: py, hN: phN, cN: cN!.mutablePointer(as: T.self), saving: recording, buffers: buffers)))
            case .gru:
                tapes.append(.gru(GRUSequence.forward(T.self, geometry: g, direction: d, x: px, weights: w, h0: h0d,
                                                      y: py, hN: phN, saving: recording, buffers: buffers)))
            case .rnnTanh, .rnnReLU:
                RNNSequence.forward(T.self, geometry: g, direction: d, relu: kind == .rnnReLU, x: px, weights: w, h0: h0d,
                                    y: py, hN: phN, preActivations: rnnScratch!.mutablePointer(as: T.self))
                tapes.append(.rnn)
            }
        }
    }
    guard recording else { return (y, hN, cN) }

    let inbox = RecurrentGradientInbox(outputShape: y.shape, hiddenShape: hN.shape, dtype: T.dtype)
    let output = y.recorded(kind.opName, inputs) { (gradOutput: Tensor) -> [Tensor?] in
        let dY = gradOutput.storage === inbox.outputZero.storage ? nil : gradOutput.contiguousRaw
        let dhN = inbox.hidden?.contiguousRaw, dcN = inbox.cell?.contiguousRaw
        inbox.hidden = nil
        inbox.cell = nil
        return recurrentLayerBackward(
            T.self, kind, g, x: x, input: input, weights: weights, prepared: prepared, h0: h0, h0c: h0c, c0: c0,
            y: y, tapes: tapes, dY: dY, dhN: dhN, dcN: dcN, buffers: buffers)
    }
    let hidden = hN.recorded(kind.opName + "_h_n", output) { (g: Tensor) -> [Tensor?] in
        inbox.hidden = inbox.hidden.map { Kernels.add($0, g) } ?? g
        return [inbox.outputZero]
    }
    let cell = cN.map { cN in
        cN.recorded("lstm_c_n", hidden) { (g: Tensor) -> [Tensor?] in
            inbox.cell = inbox.cell.map { Kernels.add($0, g) } ?? g
            return [inbox.hiddenZero]
        }
    }
    return (output, hidden, cell)
}

/// The gradients of every input of the fused op, in the order of its inputs.
private func recurrentLayerBackward<T: RecurrentFloat>(
    _: T.Type, _ kind: RecurrentCellKind, _ g: RecurrentGeometry, x: Tensor, input: Tensor,
    weights: [RecurrentDirectionWeights], prepared: [PreparedWeights], h0: Tensor?, h0c: Tensor?, c0: Tensor?,
    y: Tensor, tapes: [DirectionTape], dY: Tensor?, dhN: Tensor?, dcN: Tensor?, buffers: BufferSource
) -> [Tensor?] {
    let L = g.steps, N = g.batch, F = g.inputSize, H = g.hiddenSize, P = g.outputSize, G = g.gateWidth, D = g.directions
    func buffer(_ shape: Shape, if needed: Bool) -> Tensor? { needed ? Tensor(uninitializedShape: shape, dtype: T.dtype) : nil }
    let dx = input.tracksGrad ? buffers(.gradInput, [L, N, F], dtype: T.dtype) : nil
    let dh0 = buffer([D, N, P], if: h0?.tracksGrad ?? false)
    let dc0 = buffer([D, N, H], if: c0?.tracksGrad ?? false)
    var grads: [DirectionGradientTensors] = []
    for w in weights {
        let biasNeeded = (w.biasIH?.tracksGrad ?? false) || (w.biasHH?.tracksGrad ?? false)
        grads.append(DirectionGradientTensors(
            wIH: buffer([G, F], if: w.weightIH.tracksGrad), wHH: buffer([G, P], if: w.weightHH.tracksGrad),
            bIH: buffer([G], if: kind == .gru ? (w.biasIH?.tracksGrad ?? false) : biasNeeded),
            bHH: buffer([G], if: kind == .gru && (w.biasHH?.tracksGrad ?? false)),
            wHR: buffer([P, H], if: w.weightHR?.tracksGrad ?? false)))
    }
    let dGates = buffers(.gradGates, [G, g.featureStride], dtype: T.dtype)
    let scratchCount: Int
    switch kind {
    case .lstm: scratchCount = LSTMSequence.scratchCount(g, projected: weights[0].weightHR != nil)
    case .gru: scratchCount = GRUSequence.scratchCount(g)
    case .rnnTanh, .rnnReLU: scratchCount = N * H
    }
    let scratch = buffers(.gradScratch, [scratchCount], dtype: T.dtype)

    withExtendedLifetime((x, prepared, h0c, y, dY, dhN, dcN, dGates, scratch)) {
        let px = x.pointer(as: T.self), py = y.pointer(as: T.self)
        let pdY = dY?.pointer(as: T.self), pdhN = dhN?.pointer(as: T.self), pdcN = dcN?.pointer(as: T.self)
        let pdGates = dGates.mutablePointer(as: T.self), pScratch = scratch.mutablePointer(as: T.self)
        let pdx = dx?.mutablePointer(as: T.self)
        for d in 0..<D {
            let w = prepared[d].pointers(T.self)
            let h0d = h0c.map { $0.pointer(as: T.self) + d * N * P }
            let gd = grads[d]
            let out = DirectionGradients<T>(
                inputWeights: gd.wIH?.mutablePointer(as: T.self), hiddenWeights: gd.wHH?.mutablePointer(as: T.self),
                inputBias: gd.bIH?.mutablePointer(as: T.self), hiddenBias: gd.bHH?.mutablePointer(as: T.self),
                projection: gd.wHR?.mutablePointer(as: T.self),
                initialHidden: dh0.map { $0.mutablePointer(as: T.self) + d * N * P },
                initialCell: dc0.map { $0.mutablePointer(as: T.self) + d * N * H })
            switch tapes[d] {
            case .lstm(let tape):
                LSTMSequence.backward(T.self, geometry: g, direction: d, tape: tape, x: px, weights: w, h0: h0d, y: py,
                                      dY: pdY, dhN: pdhN, dcN: pdcN, dGates: pdGates, scratch: pScratch,
                                      grads: out, dx: pdx, accumulateDx: d > 0)
            case .gru(let tape):
                GRUSequence.backward(T.self, geometry: g, direction: d, tape: tape, x: px, weights: w, h0: h0d, y: py,
                                     dY: pdY, dhN: pdhN, dGates: pdGates, scratch: pScratch,
                                     grads: out, dx: pdx, accumulateDx: d > 0)
            case .rnn:
                RNNSequence.backward(T.self, geometry: g, direction: d, relu: kind == .rnnReLU, x: px, weights: w, h0: h0d,
                                     y: py, dY: pdY, dhN: pdhN, dGates: pdGates, scratch: pScratch,
                                     grads: out, dx: pdx, accumulateDx: d > 0)
            }
        }
    }

    var result: [Tensor?] = [dx.map { $0.reshapedRaw(input.shape) }]
    for (w, gd) in zip(weights, grads) {
        result.append(gd.wIH)
        result.append(gd.wHH)
        // LSTM and RNN: both biases get the same gradient (they are summed in the forward).
        if let bih = w.biasIH { result.append(bih.tracksGrad ? gd.bIH : nil) }
        if let bhh = w.biasHH { result.append(bhh.tracksGrad ? (kind == .gru ? gd.bHH : gd.bIH) : nil) }
        if w.weightHR != nil { result.append(gd.wHR) }
    }
    if h0 != nil { result.append(dh0) }
    if c0 != nil { result.append(dc0) }
    return result
}
