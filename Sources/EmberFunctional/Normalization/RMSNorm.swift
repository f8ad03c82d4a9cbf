import EmberAutograd
import EmberTensor
import EmberStorage

/// Root-mean-square normalization over the trailing dimensions `normalizedShape`:
/// `y = x / sqrt(mean(x², normalizedShape) + eps) * weight`, no centring and no bias.
///
/// `eps` defaults to the machine epsilon of the input's dtype (`Float.ulpOfOne` for float32,
/// `Double.ulpOfOne` for float64), as PyTorch. Built from recorded ops, so it has gradients of
/// every order.
///
/// PyTorch parity: `torch.nn.functional.rms_norm(input, normalized_shape, weight=None, eps=None)`,
/// with its shape error text; the mode never matters.
public func rmsNorm(_ input: Tensor, normalizedShape: Shape, weight: Tensor? = nil, eps: Double? = nil,
                    context: String = "rms_norm") -> Tensor {
    let k = normalizedShape.count
    precondition(k >= 1 && input.rank >= k && Array(input.shape.suffix(k)) == normalizedShape.array,
                 "\(context): Given normalized_shape=\(normalizedShape), expected input with shape [*, \(normalizedShape.map(String.init).joined(separator: ", "))], but got input of size \(input.shape)")
    precondition(input.dtype.isFloatingPoint, "\(context): expected a float32 or float64 input, got \(input.dtype)")
    if let weight {
        precondition(weight.shape == normalizedShape,
                     "\(context): weight of shape \(weight.shape) does not match normalized_shape=\(normalizedShape)")
    }
    let epsilon = eps ?? (input.dtype == .float64 ? Double.ulpOfOne : Double(Float.ulpOfOne))
    let axes = Array((input.rank - k)..<input.rank)
    let meanSquare = (input * input).mean(axes: axes, keepDim: true)
    let y = input * (meanSquare + epsilon).rsqrt()
    guard let weight else { return y }
    return y * weight
}
