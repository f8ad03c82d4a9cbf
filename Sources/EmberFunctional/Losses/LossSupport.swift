import EmberAutograd
import EmberTensor
import EmberStorage

// Checks shared by the loss functions. Each message starts with the operation (or the module
// path) and carries PyTorch's text where PyTorch has one.

/// PyTorch's spelling of a shape in messages: `torch.Size([3, 1])`.
func torchSize(_ shape: Shape) -> String { "torch.Size(\(shape))" }

/// How a loss treats a target whose shape differs from the input's, for the message.
enum TargetShapeRule: Equatable {
    /// PyTorch warns "Using a target size ... This will likely lead to incorrect results due to
    /// broadcasting" and broadcasts; Ember stops (a deliberate difference).
    case pyTorchWarnsAndBroadcasts
    /// PyTorch broadcasts without a word (`kl_div`); Ember stops.
    case pyTorchBroadcastsSilently
    /// PyTorch stops too, with this message.
    case pyTorchRefuses(String)
}

/// Stops unless `input` and `target` have the same shape. Ember never broadcasts a loss's target:
/// a `[N, 1]` prediction against a `[N]` target would silently become an `[N, N]` loss.
func requireSameShape(_ input: Tensor, _ target: Tensor, op: String, rule: TargetShapeRule) {
    guard input.shape != target.shape else { return }
    switch rule {
    case .pyTorchRefuses(let text):
        preconditionFailure("\(op): \(text)")
    case .pyTorchWarnsAndBroadcasts, .pyTorchBroadcastsSilently:
        let pyTorch = rule == .pyTorchBroadcastsSilently
            ? "PyTorch broadcasts them silently"
            : "PyTorch warns \"Using a target size (\(torchSize(target.shape))) that is different to the input size (\(torchSize(input.shape))). This will likely lead to incorrect results due to broadcasting.\" and broadcasts"
        preconditionFailure("""
            \(op): the target size \(target.shape) is different to the input size \(input.shape). \
            Ember does not broadcast a loss's target (\(pyTorch)); give both the same shape, \
            for example with reshaped(_:) or squeezed(axis:).
            """)
    }
}

/// Converts `input` and `target` to their promoted dtype (differentiably), which must be a float
/// type; stops with `notFloat` otherwise.
func promotedFloatPair(_ input: Tensor, _ target: Tensor, op: String, notFloat: @autoclosure () -> String) -> (Tensor, Tensor) {
    let dt = promotedDType(input.dtype, target.dtype)
    precondition(dt.isFloatingPoint, "\(op): \(notFloat()) (input \(input.dtype), target \(target.dtype)); convert to a float dtype first")
    return (input.to(dt), target.to(dt))
}

/// Stops, with PyTorch's message, when a weight that PyTorch cannot differentiate would need a
/// gradient.
func requireNoGradient(_ weight: Tensor?, argument: String, function: String, op: String) {
    guard let weight, weight.requiresGrad, GradMode.isEnabled else { return }
    preconditionFailure("\(op): The function '\(function)' is not differentiable with respect to argument '\(argument)'. This input cannot have requires_grad True. (Detach it, or compute the weighted loss with reduction: .none and ordinary ops.)")
}

/// `weight` checked to broadcast to `shape` and converted to `dtype` (without gradient), as a
/// broadcast view of `shape`.
func broadcastWeight(_ weight: Tensor, to shape: Shape, dtype: DType, argument: String, op: String) -> Tensor {
    var fits = weight.rank <= shape.count
    if fits {
        for i in 0..<weight.rank {
            let d = weight.shape[i], target = shape[shape.count - weight.rank + i]
            if d != target && d != 1 { fits = false }
        }
    }
    precondition(fits, "\(op): \(argument) of shape \(weight.shape) cannot be broadcast to the input shape \(shape)")
    precondition(weight.dtype.isFloatingPoint, "\(op): \(argument) must be a float tensor, got \(weight.dtype)")
    return weight.convertedRaw(to: dtype).expandedRaw(to: shape)
}
