import EmberTensor
import EmberStorage
/// A trainable tensor with identity: optimizers keep state per parameter, and backward
/// accumulates into its gradient.
///
/// `value` is a leaf tensor that requires gradients (unless frozen with `requiresGrad = false`).
/// Use it in forward code as `weight.value`; updating `value` in place (for example by an
/// optimizer under `withNoGrad`) keeps the parameter's identity.
///
/// PyTorch parity: `torch.nn.Parameter`. Freezing with `requiresGrad = false` is independent of
/// any module's training mode, as in PyTorch.
public final class Parameter {
    /// The current value. Assigning a new tensor keeps `requiresGrad` and clears nothing else.
    public var value: Tensor {
        get { storedValue }
        set {
            precondition(newValue.shape == storedValue.shape,
                         "Parameter: assigned shape \(newValue.shape) differs from the parameter's shape \(storedValue.shape); create a new Parameter to change shape")
            let wanted = storedValue.requiresGrad
            let grad = storedValue.grad
            var v = newValue.detached()
            if wanted || grad != nil {
                let meta = AutogradMeta(requiresGrad: wanted)
                meta.grad = grad
                v.autograd = meta
            }
            storedValue = v
        }
    }

    /// The value's backing store; `value`'s setter keeps gradient state, `updateValueInPlace`
    /// writes without copying. Unchecked exclusivity: read on every forward and optimizer step
    /// from other modules, where each read would otherwise call into the runtime; it is never
    /// accessed while an access to it is in progress (the one long access, `updateValueInPlace`,
    /// runs optimizer update bodies that never touch the parameter).
    @exclusivity(unchecked) private var storedValue: Tensor

    /// Whether an optimizer already reported gradients of this parameter that flowed through an
    /// eval-mode module (reported once per parameter set).
    package var reportedEvalModeGradient = false

    /// Creates a parameter holding `value` (detached from any graph).
    public init(_ value: Tensor, requiresGrad: Bool = true) {
        var v = value.detached()
        if requiresGrad { v.requiresGrad = true }
        self.storedValue = v
    }

    /// Lets `body` write the value's elements in place (for optimizers): the storage is copied
    /// only when it is shared (copy-on-write), and the gradient state (`requiresGrad`, `grad`)
    /// stays attached. `body` must keep the shape and dtype.
    package func updateValueInPlace<R>(_ body: (inout Tensor) throws -> R) rethrows -> R {
        let shape = storedValue.shape, dtype = storedValue.dtype
        defer {
            precondition(storedValue.shape == shape && storedValue.dtype == dtype,
                         "Parameter.updateValueInPlace: the update changed shape or dtype")
        }
        return try body(&storedValue)
    }

    /// Whether backward computes a gradient for this parameter. Freezing keeps an existing
    /// gradient, as PyTorch does; unfreezing resumes accumulation into it.
    public var requiresGrad: Bool {
        get { storedValue.requiresGrad }
        set { storedValue.requiresGrad = newValue }
    }

    /// The accumulated gradient, `nil` before the first backward or after `zeroGrad(setToNil: true)`.
    /// May be assigned on a frozen parameter too (PyTorch allows it).
    public var grad: Tensor? {
        get { storedValue.grad }
        set {
            if storedValue.autograd == nil {
                guard newValue != nil else { return }
                storedValue.autograd = AutogradMeta(requiresGrad: false)
            }
            precondition(newValue.map { $0.shape == storedValue.shape } ?? true,
                         "Parameter.grad: assigned gradient has shape \(newValue!.shape) but the parameter has shape \(storedValue.shape)")
            storedValue.autograd!.grad = newValue?.detached()
        }
    }

    /// Shape of the value.
    public var shape: Shape { storedValue.shape }
    /// Number of elements.
    public var count: Int { storedValue.count }
    /// The value's element type.
    package var dtype: DType { storedValue.dtype }
    /// The value's gradient-tracking state, without copying the value.
    package var autograd: AutogradMeta? { storedValue.autograd }
}
