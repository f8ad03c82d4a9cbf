import EmberAutograd
import EmberFunctional
import EmberTensor
import EmberStorage

/// The base class of loss modules: a ``Module`` called with two tensors, `loss(input, target)`.
///
/// Losses hold no parameters; class weights are ``Buffer``s, so they appear in `stateDict()` under
/// PyTorch's keys (`weight`, `pos_weight`) and move with the model. Module's single-input
/// ``Module/forward(_:)`` does not apply to a loss and stops with a message saying so.
///
/// Subclass it for a custom loss: add `callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor`.
///
/// PyTorch parity: `torch.nn.modules.loss._Loss` (the `reduction` attribute; the deprecated
/// `size_average` and `reduce` arguments are not offered).
open class Loss: Module {
    /// How per-element losses are combined.
    public let reduction: Reduction

    /// - Parameter reduction: `.mean`, `.sum` or `.none` (`.batchMean` for ``KLDivLoss`` only).
    public init(reduction: Reduction = .mean) {
        self.reduction = reduction
        super.init()
    }

    /// Stops: a loss takes an input and a target. Call `loss(input, target)`.
    public final override func forward(_ input: Tensor) -> Tensor {
        preconditionFailure("\(errorContext): a loss takes an input and a target; call it as loss(input, target), not with one tensor (input shape \(input.shape))")
    }
}
