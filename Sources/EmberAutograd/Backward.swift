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
///
/// Bookkeeping lives on the nodes (`visited`, `pendingGrad`) instead of a set and a dictionary
/// keyed by node identity: no hashing, and one array for the order and one for the search stack.
private func runBackward(root: AutogradMeta, seed: Tensor, retainGraph: Bool) {
    if !root.hasBackward {
        accumulate(seed, into: root)
        return
    }
    // Post-order over non-leaf nodes.
    var order: [AutogradMeta] = []
    var stack: [(node: AutogradMeta, next: Int)] = [(root, 0)]
    root.visited = true
    while let (node, next) = stack.last {
        if next < node.inputs.count {
            stack[stack.count - 1].next = next + 1
            guard let child = node.inputs[next] else { continue }
            if child.hasBackward {
                if !child.visited {
                    child.visited = true
                    stack.append((child, 0))
                }
            } else if child.released {
                for n in order { n.visited = false }
                for (n, _) in stack { n.visited = false }
                preconditionFailure("backward: Trying to backward through the graph a second time (or directly access saved tensors after they have already been freed). Specify retainGraph: true on the first call.")
            }
        } else {
            stack.removeLast()
            order.append(node)
        }
    }

    root.pendingGrad = seed
    var i = order.count - 1
    while i >= 0 {
        let node = order[i]
        i -= 1
        node.visited = false
        guard let grad = node.pendingGrad else { continue }
        node.pendingGrad = nil
        if node.retainsGrad { accumulate(grad, into: node) }
        guard let backward = node.backward else { continue }
        let inputGrads = backward(grad)
        let inputs = node.inputs
        precondition(inputGrads.count == inputs.count,
                     "backward of \(node.opName) returned \(inputGrads.count) gradients for \(inputs.count) inputs")
        let evalModeSource = node.evalModeSource
        for k in 0..<inputs.count {
            guard let input = inputs[k], let g = inputGrads[k] else { continue }
            if let evalModeSource, input.evalModeSource == nil { input.evalModeSource = evalModeSource }
            if input.hasBackward {
                if let existing = input.pendingGrad {
                    input.pendingGrad = Kernels.add(existing, g)
                } else {
                    input.pendingGrad = g
                }
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

/// Adds `g` to the gradient of `meta` (a leaf, or a non-leaf that retains its gradient).
private func accumulate(_ g: Tensor, into meta: AutogradMeta) {
    if let existing = meta.grad {
        precondition(existing.shape == g.shape, "backward: gradient shape \(g.shape) does not match accumulated gradient shape \(existing.shape)")
        meta.grad = Kernels.add(existing, g)
    } else {
        meta.grad = g.contiguousRaw
    }
}
