import Foundation
import EmberAutograd
import EmberTensor
import EmberStorage

/// The sinusoidal positional encoding of "Attention Is All You Need", `[length, dModel]`:
///
///     PE[pos, 2i]     = sin(pos / 10000^(2i / dModel))
///     PE[pos, 2i + 1] = cos(pos / 10000^(2i / dModel))
///
/// computed in float64 as the PyTorch tutorial does (`div_term = exp(arange(0, dModel, 2) *
/// (-log(10000) / dModel))`), then converted to `dtype`. Add it to token embeddings
/// (`embeddings + pe[0..<L]`, broadcasting over the batch). An odd `dModel` has one more sine
/// column than cosine columns.
///
/// PyTorch parity: none in `torch.nn`; the `PositionalEncoding` module of the PyTorch
/// "Language Modeling with nn.Transformer" tutorial, without its dropout.
public func sinusoidalPositionalEncoding(length: Int, dModel: Int, dtype: DType = .float32) -> Tensor {
    precondition(length >= 0 && dModel >= 0, "sinusoidalPositionalEncoding: length and dModel must be non-negative, got \(length) and \(dModel)")
    var values = [Double](repeating: 0, count: length * dModel)
    let factor = -Foundation.log(10000.0) / Double(dModel)
    for pos in 0..<length {
        for col in stride(from: 0, to: dModel, by: 2) {
            let angle = Double(pos) * Foundation.exp(Double(col) * factor)
            values[pos * dModel + col] = Foundation.sin(angle)
            if col + 1 < dModel { values[pos * dModel + col + 1] = Foundation.cos(angle) }
        }
    }
    return Tensor(values, shape: [length, dModel]).to(dtype)
}
