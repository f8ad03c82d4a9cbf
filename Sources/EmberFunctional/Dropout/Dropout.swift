import EmberAutograd
import EmberTensor
import EmberStorage

/// Checks a dropout probability with PyTorch's message.
package func validateDropout(_ p: Double, _ name: String) {
    precondition(p >= 0 && p <= 1, "\(name): dropout probability has to be between 0 and 1, but got \(formatPythonShort(p))")
}

/// Inverted dropout as a function: in training, each element is zeroed with probability `p` and
/// kept elements are multiplied by `1 / (1 - p)` (computed in the tensor's dtype); otherwise the
/// input is returned unchanged and no random numbers are drawn.
///
/// `maskShape` draws one decision per broadcast group (channel dropout uses `[N, C, 1, ...]`).
/// Element-wise dropout (no `maskShape`, or the input's shape) runs as one fused kernel: element
/// `i` is kept when 32-bit word `i % 4` of Philox block `i / 4` is below `round((1 - p) 2^32)`.
///
/// PyTorch parity: `torch.nn.functional.dropout`, except that `training` has no default: the call
/// site must say which mode it means (PyTorch's default `True` keeps dropping after `eval()`, the
/// classic bug of pytorch/pytorch#26338). `p = 1` multiplies by zero, so NaN and infinity become NaN,
/// as in PyTorch.
public func dropout(_ input: Tensor, p: Double, training: Bool, maskShape: Shape? = nil,
                    generator: Generator = .default) -> Tensor {
    validateDropout(p, "dropout")
    guard training, p > 0 else { return input }
    precondition(input.dtype.isFloatingPoint, "dropout: expected a float32 or float64 input, got \(input.dtype)")
    EvalForwardScope.noteDropout("dropout(p: \(formatPythonShort(p)), training: true)")
    let shape = maskShape ?? input.shape
    if p == 1 { return input * Tensor.zeros(shape, dtype: input.dtype) }
    if shape == input.shape {
        // One decision per element: the fused kernel (no mask temporaries without a gradient).
        let recording = input.tracksGrad && GradMode.isEnabled
        let (out, multipliers) = DropoutKernel.apply(input, p: p, generator: generator, keepMultipliers: recording)
        guard let multipliers else { return out }
        return out.recorded("dropout", input, twice: true) { g in
            creatingGraph ? [g.maskMap("dropoutBackward") { DropoutKernel.backward($0, multipliers: multipliers) }]
                          : [DropoutKernel.backward(g, multipliers: multipliers)]
        }
    }
    let keep = Tensor.bernoulli(shape, p: 1 - p, dtype: input.dtype, generator: generator)
    let scale: Double = input.dtype == .float32 ? Double(1 / Float(1 - p)) : 1 / (1 - p)
    return input * Kernels.scale(keep, scale)
}

/// Python's short float formatting for messages: `1.5`, `-0.1`, `2`.
package func formatPythonShort(_ x: Double) -> String {
    x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : "\(x)"
}
