import EmberTensor

extension Tensor {
    /// Whether this tensor takes part in gradient recording.
    @inline(__always) package var tracksGrad: Bool { autograd?.requiresGrad ?? false }
}

/// Whether an op on `inputs` must record a backward node: some input requires a gradient and
/// recording is enabled. Reads the task-local only when an input needs a gradient.
@inline(__always)
package func shouldRecord(_ a: Tensor) -> Bool {
    (a.autograd?.requiresGrad ?? false) && GradMode.isEnabled
}

@inline(__always)
package func shouldRecord(_ a: Tensor, _ b: Tensor) -> Bool {
    ((a.autograd?.requiresGrad ?? false) || (b.autograd?.requiresGrad ?? false)) && GradMode.isEnabled
}

@inline(__always)
package func shouldRecord(_ tensors: [Tensor]) -> Bool {
    tensors.contains { $0.autograd?.requiresGrad ?? false } && GradMode.isEnabled
}

extension Tensor {
    /// Attaches a backward node to this freshly computed result.
    ///
    /// `backward` receives the gradient of the result and returns one gradient per input (same
    /// order, `nil` for inputs that need none). It runs under no-grad.
    ///
    /// `twice` says that `backward`, when run with recording on (``Autograd/grad(of:withRespectTo:gradOutputs:retainGraph:createGraph:allowUnused:)``
    /// with `createGraph`), computes its gradients with recorded ops, so gradients of gradients
    /// flow through it; without it, `createGraph` through this op stops with a message.
    package mutating func record(_ op: String, inputs: [Tensor], twice: Bool = false,
                                 backward: @escaping (Tensor) -> [Tensor?]) {
        record(op, inputMetas: inputs.map { ($0.autograd?.requiresGrad ?? false) ? $0.autograd : nil },
               twice: twice, backward: backward)
    }

    /// ``record(_:inputs:twice:backward:)`` with the inputs' graph nodes (`nil` for inputs that
    /// need no gradient).
    package mutating func record(_ op: String, inputMetas: [AutogradMeta?], twice: Bool = false,
                                 backward: @escaping (Tensor) -> [Tensor?]) {
        let meta = AutogradMeta(
            opName: op,
            inputs: inputMetas,
            supportsDoubleBackward: twice,
            backward: backward)
        if AnomalyDetection.isActive { meta.creationContext = AnomalyDetection.currentContext() }
        autograd = meta
    }

    /// Returns `self` with a backward node attached when an input requires a gradient and
    /// recording is enabled.
    ///
    /// `backward` is an autoclosure: the backward closure (and the context it captures) is only
    /// created when recording, so the common no-gradient path allocates nothing here. Prefer the
    /// overloads taking one to three tensors over the array form, which allocates its array.
    @inline(__always)
    package func recorded(_ op: String, _ a: Tensor, twice: Bool = false, backward: @autoclosure () -> ((Tensor) -> [Tensor?])) -> Tensor {
        guard shouldRecord(a) else { return self }
        var out = self
        out.record(op, inputs: [a], twice: twice, backward: backward())
        return out
    }

    @inline(__always)
    package func recorded(_ op: String, _ a: Tensor, _ b: Tensor, twice: Bool = false, backward: @autoclosure () -> ((Tensor) -> [Tensor?])) -> Tensor {
        guard shouldRecord(a, b) else { return self }
        var out = self
        out.record(op, inputs: [a, b], twice: twice, backward: backward())
        return out
    }

    @inline(__always)
    package func recorded(_ op: String, _ a: Tensor, _ b: Tensor, _ c: Tensor, twice: Bool = false,
                          backward: @autoclosure () -> ((Tensor) -> [Tensor?])) -> Tensor {
        guard shouldRecord(a, b) || shouldRecord(c) else { return self }
        var out = self
        out.record(op, inputs: [a, b, c], twice: twice, backward: backward())
        return out
    }

    @inline(__always)
    package func recorded(_ op: String, _ inputs: [Tensor], twice: Bool = false, backward: @autoclosure () -> ((Tensor) -> [Tensor?])) -> Tensor {
        guard shouldRecord(inputs) else { return self }
        var out = self
        out.record(op, inputs: inputs, twice: twice, backward: backward())
        return out
    }
}

/// Whether a backward closure runs with recording on, that is, inside a backward pass with
/// `createGraph`: it must then compute its gradients with recorded (differentiable) ops instead
/// of fused kernels. Without any such pass running in the process it costs one relaxed atomic
/// load (no task-local read).
@inline(__always)
package var creatingGraph: Bool { BackwardSweep.graphCreatingSweeps.load(ordering: .relaxed) > 0 && GradMode.isEnabled }
