import EmberTensor

extension Tensor {
    /// Whether gradients are computed for this tensor. Setting it on a non-leaf is an error, as in
    /// PyTorch; only floating-point tensors can require gradients.
    ///
    /// PyTorch parity: `requires_grad` / `requires_grad_()`.
    public var requiresGrad: Bool {
        get { autograd?.requiresGrad ?? false }
        set {
            if let meta = autograd, !meta.isLeaf {
                preconditionFailure("requiresGrad: you can only change requires_grad flags of leaf variables (this tensor came from \(meta.opName)); use detached() first")
            }
            precondition(!newValue || dtype.isFloatingPoint,
                         "requiresGrad: only Tensors of floating point dtype can require gradients (this one is \(dtype))")
            if let meta = autograd { meta.requiresGrad = newValue } else if newValue {
                autograd = AutogradMeta(requiresGrad: true)
            }
        }
    }

    /// Returns a copy that requires gradients (a new leaf).
    public func requiringGrad(_ on: Bool = true) -> Tensor {
        var t = detached()
        t.requiresGrad = on
        return t
    }

    /// The gradient accumulated into this leaf by `backward()` (or into a non-leaf that called
    /// `retainGrad()`), `nil` before any backward.
    ///
    /// PyTorch parity: `.grad`.
    public var grad: Tensor? {
        get { autograd?.grad }
        nonmutating set {
            precondition(autograd != nil, "grad: this tensor does not require gradients; set requiresGrad first")
            autograd?.grad = newValue
        }
    }

    /// Whether this tensor is a leaf of the graph (not produced by a recorded op).
    public var isLeaf: Bool { autograd?.isLeaf ?? true }

    /// The name of the op that produced this tensor, when it was recorded (`"mul"`, `"matmul"`).
    public var gradFnName: String? { autograd.flatMap { $0.isLeaf ? nil : $0.opName } }

    /// Keeps this non-leaf's gradient after backward. PyTorch parity: `retain_grad()`.
    public func retainGrad() {
        precondition(tracksGrad, "retainGrad: can't retain_grad on Tensor that has requires_grad=False")
        autograd?.retainsGrad = true
    }

    /// The same values without gradient tracking (shares storage). PyTorch parity: `detach()`.
    public func detached() -> Tensor {
        var t = self
        t.autograd = nil
        return t
    }

    /// Computes gradients of this tensor with respect to every leaf that requires them and adds
    /// them to those leaves' `grad`.
    ///
    /// - Parameters:
    ///   - gradient: the upstream gradient, same shape as `self`; may be omitted only for a
    ///     one-element tensor (then it is 1).
    ///   - retainGraph: keep the graph so backward can run through it again.
    ///
    /// The walk is iterative (no recursion limit on deep graphs); gradients of broadcast operands
    /// are summed back to their shapes by each op's backward. Backward closures run under no-grad.
    ///
    /// PyTorch parity: `Tensor.backward(gradient=None, retain_graph=None)`, including its errors
    /// for a non-scalar without `gradient` and for a tensor that does not require grad.
    public func backward(_ gradient: Tensor? = nil, retainGraph: Bool = false) {
        guard let root = autograd, root.requiresGrad else {
            preconditionFailure("backward: element 0 of tensors does not require grad and does not have a grad_fn (shape \(shape)); set requiresGrad on a leaf or run outside withNoGrad")
        }
        let seed: Tensor
        if let g = gradient {
            precondition(g.shape == shape, "backward: gradient has shape \(g.shape) but the tensor has shape \(shape)")
            seed = g.detached()
        } else {
            precondition(count == 1, "backward: grad can be implicitly created only for scalar outputs (this tensor has shape \(shape)); pass an upstream gradient")
            seed = Tensor.ones(shape, dtype: dtype)
        }
        precondition(!root.released,
                     "backward: Trying to backward through the graph a second time (or directly access saved tensors after they have already been freed). Specify retainGraph: true on the first call.")
        withNoGrad { runBackward(root: root, seed: seed, retainGraph: retainGraph) }
    }
}

/// Reverse-mode sweep: topological order by iterative depth-first search, then gradients flow
/// from the root to the leaves, accumulated per node.
private func runBackward(root: AutogradMeta, seed: Tensor, retainGraph: Bool) {
    // Post-order over non-leaf nodes.
    var order: [AutogradMeta] = []
    var visited = Set<ObjectIdentifier>()
    var stack: [(AutogradMeta, Int)] = [(root, 0)]
    visited.insert(ObjectIdentifier(root))
    while let (node, next) = stack.last {
        if next < node.inputs.count {
            stack[stack.count - 1].1 = next + 1
            if let child = node.inputs[next], child.backward != nil,
               visited.insert(ObjectIdentifier(child)).inserted
            {
                stack.append((child, 0))
            } else if let child = node.inputs[next], child.released {
                preconditionFailure("backward: Trying to backward through the graph a second time (or directly access saved tensors after they have already been freed). Specify retainGraph: true on the first call.")
            }
        } else {
            stack.removeLast()
            order.append(node)
        }
    }

    var pending: [ObjectIdentifier: Tensor] = [ObjectIdentifier(root): seed]
    if root.backward == nil {
        accumulate(seed, into: root)
        return
    }
    for node in order.reversed() {
        guard let grad = pending.removeValue(forKey: ObjectIdentifier(node)) else { continue }
        if node.retainsGrad { accumulate(grad, into: node) }
        guard let backward = node.backward else { continue }
        let inputGrads = backward(grad)
        precondition(inputGrads.count == node.inputs.count,
                     "backward of \(node.opName) returned \(inputGrads.count) gradients for \(node.inputs.count) inputs")
        for (input, g) in zip(node.inputs, inputGrads) {
            guard let input, let g else { continue }
            if input.backward != nil {
                let key = ObjectIdentifier(input)
                if let existing = pending[key] { pending[key] = Kernels.add(existing, g) } else { pending[key] = g }
            } else if input.requiresGrad {
                accumulate(g, into: input)
            }
        }
        if !retainGraph {
            node.backward = nil
            node.inputs = []
            node.released = true
        }
    }
}

private func accumulate(_ g: Tensor, into meta: AutogradMeta) {
    let g = g.detached()
    if let existing = meta.grad {
        precondition(existing.shape == g.shape, "backward: gradient shape \(g.shape) does not match accumulated gradient shape \(existing.shape)")
        meta.grad = Kernels.add(existing, g)
    } else {
        meta.grad = g.contiguousRaw
    }
}
