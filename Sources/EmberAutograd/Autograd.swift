import EmberTensor
import Synchronization

/// Functions of the autograd engine that are not methods of one tensor.
///
/// PyTorch parity: the `torch.autograd` namespace (`torch.autograd.grad`,
/// `torch.autograd.gradcheck`).
public enum Autograd {
    /// The gradients of `outputs` with respect to `inputs`, returned instead of accumulated
    /// into any `grad`.
    ///
    /// - Parameters:
    ///   - outputs: the tensors to differentiate (each requires grad).
    ///   - inputs: the tensors to differentiate with respect to (each requires grad; leaves or
    ///     not).
    ///   - gradOutputs: the upstream gradient of each output (the vector of the vector-Jacobian
    ///     product); `nil` entries, or omitting it, mean 1 for one-element outputs.
    ///   - retainGraph: keep the graph for another backward; defaults to `createGraph`.
    ///   - createGraph: record the computation of the gradients, so that they can be
    ///     differentiated again (Hessian-vector products, gradient penalties). Every op on the
    ///     way must support it: the elementwise ops, reductions, shapes and indexing, `matmul`,
    ///     `linear`, the activations, softmax and log-softmax, the losses and the normalizations;
    ///     an op that does not (convolution, pooling, recurrent layers) stops with a message.
    ///   - allowUnused: return `nil` for an input the outputs do not depend on, instead of
    ///     stopping.
    /// - Returns: one gradient per input, `nil` only for unused inputs with `allowUnused`.
    ///
    /// Only the part of the graph between the outputs and the inputs runs backward. Gradient
    /// hooks on tensors in that part run; `retainGrad` tensors and leaves' `grad` are untouched.
    ///
    /// PyTorch parity: `torch.autograd.grad(outputs, inputs, grad_outputs=None,
    /// retain_graph=None, create_graph=False, allow_unused=False)`, including its messages.
    public static func grad(
        _ outputs: [Tensor], _ inputs: [Tensor], gradOutputs: [Tensor?]? = nil,
        retainGraph: Bool? = nil, createGraph: Bool = false, allowUnused: Bool = false
    ) -> [Tensor?] {
        precondition(!outputs.isEmpty, "grad: grad requires at least one output")
        if let gradOutputs {
            precondition(gradOutputs.count == outputs.count,
                         "grad: grad can be implicitly created only for scalar outputs; gradOutputs has \(gradOutputs.count) entries for \(outputs.count) outputs")
        }
        var roots: [(AutogradMeta, Tensor)] = []
        for (k, out) in outputs.enumerated() {
            guard let meta = out.autograd, meta.requiresGrad else {
                preconditionFailure("grad: element \(k) of tensors does not require grad and does not have a grad_fn (shape \(out.shape))")
            }
            roots.append((meta, out.seedGradient(gradOutputs?[k], op: "grad")))
        }
        var targets: [AutogradMeta] = []
        for (k, x) in inputs.enumerated() {
            guard let meta = x.autograd, meta.requiresGrad else {
                preconditionFailure("grad: One of the differentiated Tensors does not require grad (input \(k), shape \(x.shape))")
            }
            targets.append(meta)
        }
        let grads = BackwardSweep(retainGraph: retainGraph ?? createGraph, createGraph: createGraph,
                                  targets: targets).run(roots: roots)
        if AnomalyDetection.isActive, AnomalyDetection.current?.anomaly != nil {
            return grads
        }
        if !allowUnused {
            for (k, g) in grads.enumerated() where g == nil {
                preconditionFailure("grad: One of the differentiated Tensors appears to not have been used in the graph (input \(k), shape \(inputs[k].shape)). Set allowUnused: true if this is the desired behavior.")
            }
        }
        return grads
    }

    /// The gradient of one output with respect to `inputs`. See
    /// ``grad(_:_:gradOutputs:retainGraph:createGraph:allowUnused:)``.
    public static func grad(
        _ output: Tensor, _ inputs: [Tensor], gradOutput: Tensor? = nil,
        retainGraph: Bool? = nil, createGraph: Bool = false, allowUnused: Bool = false
    ) -> [Tensor?] {
        grad([output], inputs, gradOutputs: [gradOutput], retainGraph: retainGraph,
             createGraph: createGraph, allowUnused: allowUnused)
    }
}

/// A registered hook; ``remove()`` unregisters it (removing twice does nothing).
///
/// PyTorch parity: `torch.utils.hooks.RemovableHandle`.
public final class RemovableHandle: @unchecked Sendable {
    private var removal: (() -> Void)?
    /// The hook's identity, unique in the process.
    public let id: Int

    package init(id: Int, removal: @escaping () -> Void) {
        self.id = id
        self.removal = removal
    }

    /// Unregisters the hook.
    public func remove() {
        removal?()
        removal = nil
    }

    private static let counter = Atomic<Int>(0)
    /// A fresh hook identity.
    package static func nextID() -> Int { counter.add(1, ordering: .relaxed).newValue }
}

extension Tensor {
    /// Registers a hook called on this leaf's accumulated gradient (`grad`) each time backward
    /// has accumulated into it, as soon as the last op that feeds the leaf has run its backward:
    /// the rest of the backward pass is still to come. Hooks run in registration order.
    ///
    /// PyTorch parity: `Tensor.register_post_accumulate_grad_hook(hook)`, including its errors
    /// for a tensor that does not require gradients and for a non-leaf. PyTorch passes the
    /// tensor itself (read its `.grad`); Ember passes the accumulated gradient.
    @discardableResult
    public func registerPostAccumulateGradHook(_ hook: @escaping (Tensor) -> Void) -> RemovableHandle {
        guard let meta = autograd, meta.requiresGrad else {
            preconditionFailure("registerPostAccumulateGradHook: cannot register a hook on a tensor that doesn't require gradient (shape \(shape))")
        }
        precondition(!meta.hasBackward && !meta.released,
                     "registerPostAccumulateGradHook: post accumulate grad hooks cannot be registered on non-leaf tensors (shape \(shape))")
        let id = RemovableHandle.nextID()
        meta.postAccumulateHooks = (meta.postAccumulateHooks ?? []) + [GradientHook(id: id) { hook($0); return nil }]
        BackwardSweep.postAccumulateHookCount.add(1, ordering: .relaxed)
        return RemovableHandle(id: id) { [weak meta] in
            guard let meta, meta.postAccumulateHooks?.contains(where: { $0.id == id }) == true else { return }
            meta.postAccumulateHooks?.removeAll { $0.id == id }
            if meta.postAccumulateHooks?.isEmpty == true { meta.postAccumulateHooks = nil }
            BackwardSweep.postAccumulateHookCount.subtract(1, ordering: .relaxed)
        }
    }
}

extension Tensor {
    /// Registers a hook called with this tensor's gradient each time backward computes it
    /// (its total for the pass, before it flows on or is accumulated into `grad`). Return a
    /// tensor of the same shape to replace the gradient, or `nil` to keep it.
    ///
    /// Hooks run in registration order, each on the previous one's result. The hook is kept by
    /// the tensor's graph node, shared by every copy of this value.
    ///
    /// PyTorch parity: `Tensor.register_hook(hook)`, including its error for a tensor that does
    /// not require gradients.
    @discardableResult
    public func registerHook(_ hook: @escaping (Tensor) -> Tensor?) -> RemovableHandle {
        guard let meta = autograd, meta.requiresGrad else {
            preconditionFailure("registerHook: cannot register a hook on a tensor that doesn't require gradient (shape \(shape))")
        }
        let id = RemovableHandle.nextID()
        meta.hooks = (meta.hooks ?? []) + [GradientHook(id: id, body: hook)]
        return RemovableHandle(id: id) { [weak meta] in
            guard let meta else { return }
            meta.hooks?.removeAll { $0.id == id }
            if meta.hooks?.isEmpty == true { meta.hooks = nil }
        }
    }
}
