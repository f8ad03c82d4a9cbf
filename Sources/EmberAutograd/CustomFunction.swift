import EmberTensor

/// A differentiable operation written by the user: a forward computed without recording and a
/// backward that maps the gradients of the outputs to one gradient per input.
///
/// Store non-tensor arguments (a scale, an axis) in the conforming type; keep tensors the
/// backward needs with ``FunctionContext/saveForBackward(_:)``. Apply it with
/// ``apply(_:)`` (any number of outputs) or call it (exactly one output):
///
/// ```swift
/// struct LogCosh: AutogradFunction {
///     func forward(_ ctx: FunctionContext, _ inputs: [Tensor]) -> [Tensor] {
///         let x = inputs[0]
///         ctx.saveForBackward(x)
///         // log(cosh x) = |x| + log1p(exp(-2|x|)) - log 2, stable for large |x|
///         return [x.abs() + (x.abs() * -2).exp().log1p() - Foundation.log(2.0)]
///     }
///     func backward(_ ctx: FunctionContext, _ gradOutputs: [Tensor]) -> [Tensor?] {
///         [gradOutputs[0] * ctx.savedTensors[0].tanh()]
///     }
/// }
/// let y = LogCosh()(x)
/// ```
///
/// `backward` runs with recording off in an ordinary backward pass, and with recording on under
/// `createGraph`: written with Tensor ops on the saved inputs, it is itself differentiable
/// (gradients of gradients). Saved outputs act as constants there, as they carry no graph.
///
/// PyTorch parity: `torch.autograd.Function` with `forward(ctx, ...)`, `backward(ctx, ...)`,
/// `ctx.save_for_backward`, `ctx.saved_tensors`, `ctx.needs_input_grad`,
/// `ctx.mark_non_differentiable` and materialised (zero) gradients for outputs that received none.
public protocol AutogradFunction {
    /// Computes the outputs from `inputs`. Runs with gradient recording off.
    func forward(_ ctx: FunctionContext, _ inputs: [Tensor]) -> [Tensor]
    /// Returns one gradient per input (`nil` where none is needed: check
    /// ``FunctionContext/needsInputGrad``), each with its input's shape. `gradOutputs` has one
    /// gradient per differentiable output, zeros for outputs that received none.
    func backward(_ ctx: FunctionContext, _ gradOutputs: [Tensor]) -> [Tensor?]
}

/// What a custom function's forward leaves for its backward.
///
/// PyTorch parity: the `ctx` of `torch.autograd.Function`.
public final class FunctionContext {
    /// The tensors saved by ``saveForBackward(_:)``, in order.
    public private(set) var savedTensors: [Tensor] = []
    /// Non-tensor values the forward leaves for the backward (PyTorch's `ctx.attribute = value`).
    public var values: [String: Any] = [:]
    /// For each input, whether backward must compute its gradient.
    public let needsInputGrad: [Bool]
    /// The outputs marked non-differentiable, by position.
    public private(set) var nonDifferentiableOutputs: Set<Int> = []
    /// The name of the function, for messages.
    public let name: String

    init(name: String, needsInputGrad: [Bool]) {
        self.name = name
        self.needsInputGrad = needsInputGrad
    }

    /// Keeps `tensors` for the backward. PyTorch parity: `ctx.save_for_backward(*tensors)`.
    public func saveForBackward(_ tensors: Tensor...) {
        savedTensors += tensors
    }

    /// Marks the output at `index` as non-differentiable: it requires no gradient (integer
    /// indices, masks) and backward receives no gradient for it.
    ///
    /// PyTorch parity: `ctx.mark_non_differentiable(output)`, by position.
    public func markNonDifferentiable(outputAt index: Int) {
        nonDifferentiableOutputs.insert(index)
    }
}

extension AutogradFunction {
    /// Runs the function on `inputs` and records it for backward when an input requires a
    /// gradient and recording is on.
    ///
    /// Several differentiable outputs share one node: backward runs once, with every output's
    /// gradient (zeros for an output that received none).
    public func apply(_ inputs: [Tensor]) -> [Tensor] {
        let name = String(describing: Self.self)
        let recording = shouldRecord(inputs)
        let ctx = FunctionContext(name: name, needsInputGrad: inputs.map { recording && $0.tracksGrad })
        let outputs = withNoGrad { forward(ctx, inputs) }.map { $0.detached() }
        precondition(!outputs.isEmpty, "\(name).forward: a custom function must return at least one output")
        for i in ctx.nonDifferentiableOutputs {
            precondition(outputs.indices.contains(i), "\(name): markNonDifferentiable(outputAt: \(i)) but forward returned \(outputs.count) outputs")
        }
        guard recording else { return outputs }
        let differentiable = outputs.indices.filter {
            !ctx.nonDifferentiableOutputs.contains($0) && outputs[$0].dtype.isFloatingPoint
        }
        guard !differentiable.isEmpty else { return outputs }
        let shapes = differentiable.map { outputs[$0].shape }
        let dtypes = differentiable.map { outputs[$0].dtype }
        let backward: ([Tensor]) -> [Tensor?] = { grads in
            let result = self.backward(ctx, grads)
            precondition(result.count == inputs.count,
                         "\(name).backward: returned \(result.count) gradients, but forward had \(inputs.count) inputs")
            for (k, g) in result.enumerated() {
                guard let g else { continue }
                precondition(g.shape == inputs[k].shape,
                             "\(name).backward: the gradient for input \(k) has shape \(g.shape), but the input has shape \(inputs[k].shape)")
            }
            return result
        }
        var results = outputs
        if differentiable.count == 1 {
            let i = differentiable[0]
            results[i] = outputs[i].recorded(name, inputs, twice: true) { g in backward([g]) }
            return results
        }
        // Several outputs: one joint node (the outputs flattened and joined), whose gradient the
        // engine sums from every output's piece; backward splits it and runs once.
        let dtype = dtypes[0]
        precondition(dtypes.allSatisfy { $0 == dtype },
                     "\(name): differentiable outputs must share one dtype (got \(dtypes)); mark the others non-differentiable")
        let flat = differentiable.map { outputs[$0].reshapedRaw([outputs[$0].count]) }
        let joint = Tensor.cat(flat, axis: 0).recorded(name, inputs, twice: true) { g in
            var start = 0
            let grads = shapes.map { shape -> Tensor in
                let n = shape.elementCount
                defer { start += n }
                return g.narrow(axis: 0, start: start, length: n).reshaped(shape)
            }
            return backward(grads)
        }
        var start = 0
        for (k, i) in differentiable.enumerated() {
            let n = shapes[k].elementCount
            results[i] = joint.narrow(axis: 0, start: start, length: n).reshaped(shapes[k])
            start += n
        }
        return results
    }

    /// Runs a function with exactly one output. See ``apply(_:)``.
    public func callAsFunction(_ inputs: Tensor...) -> Tensor {
        let outputs = apply(inputs)
        precondition(outputs.count == 1,
                     "\(Self.self): forward returned \(outputs.count) outputs; use apply(_:) for several")
        return outputs[0]
    }
}
