import EmberAutograd
import EmberTensor
import EmberStorage

/// Stochastic gradient descent, optionally with momentum, dampening, Nesterov momentum and weight
/// decay.
///
/// For each parameter `p` with gradient `g`, per step:
/// ```
/// g = maximize ? -g : g
/// g = g + weightDecay * p                        (if weightDecay != 0)
/// if momentum != 0:
///     b = g                                      (first step)
///     b = momentum * b + (1 - dampening) * g     (later steps)
///     g = nesterov ? g + momentum * b : b
/// p = p - lr * g
/// ```
/// Each parameter is updated in place in one fused pass over its elements.
///
/// PyTorch parity: `torch.optim.SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
/// nesterov=False, maximize=False)` with its single-tensor update, the same order of floating-point
/// operations in the parameter's dtype, the same validation errors ("Nesterov momentum requires a
/// momentum and zero dampening") and the same state (`momentum_buffer`). One difference: PyTorch's
/// vectorized CPU kernels fuse some multiply-adds, so float32 results may differ in the last bit.
///
/// See also: ``Optimizer``, ``Adam``, ``LRScheduler``.
public final class SGD: Optimizer {
    /// The hyperparameters of one group.
    public struct Options: OptimizerOptions {
        /// Step size (`lr`).
        public var learningRate: Double
        /// Momentum factor; 0 turns momentum off.
        public var momentum: Double
        /// Dampening of the gradient's contribution to the momentum buffer.
        public var dampening: Double
        /// L2 penalty added to the gradient (`weight_decay`).
        public var weightDecay: Double
        /// Nesterov momentum.
        public var nesterov: Bool
        /// Maximizes the objective instead of minimizing it.
        public var maximize: Bool

        /// Options with PyTorch\'s defaults for any value not given.
        public init(learningRate: Double = 1e-3, momentum: Double = 0, dampening: Double = 0,
                    weightDecay: Double = 0, nesterov: Bool = false, maximize: Bool = false)
        {
            self.learningRate = learningRate
            self.momentum = momentum
            self.dampening = dampening
            self.weightDecay = weightDecay
            self.nesterov = nesterov
            self.maximize = maximize
        }

        /// The momentum (cycled by ``OneCycleLR``).
        public var cycledMomentum: Double? {
            get { momentum }
            set { if let v = newValue { momentum = v } }
        }

        public var validationFailure: String? {
            if learningRate < 0 { return "Invalid learning rate: \(learningRate)" }
            if momentum < 0 { return "Invalid momentum value: \(momentum)" }
            if weightDecay < 0 { return "Invalid weight_decay value: \(weightDecay)" }
            if nesterov && (momentum <= 0 || dampening != 0) {
                return "Nesterov momentum requires a momentum and zero dampening"
            }
            return nil
        }

        enum CodingKeys: String, CodingKey {
            case learningRate = "lr", momentum, dampening, weightDecay = "weight_decay", nesterov, maximize
        }
    }

    /// The per-parameter state: the momentum buffer.
    struct Slot: ParameterSlot {
        var momentumBuffer: Tensor

        init(momentumBuffer: Tensor) { self.momentumBuffer = momentumBuffer }

        var saved: OptimizerState.ParameterState { .init(buffers: ["momentum_buffer": momentumBuffer]) }

        init(restoring saved: OptimizerState.ParameterState, for p: Parameter, index: Int) throws(OptimizerStateError) {
            try saved.checkOnly(["momentum_buffer"], index: index)
            momentumBuffer = try saved.buffer("momentum_buffer", for: p, index: index, required: true)!
        }
    }

    public var name: String { "SGD" }
    public let defaults: Options
    public var parameterGroups: [ParameterGroup<Options>]
    var slots: [ObjectIdentifier: Slot] = [:]

    /// SGD over `parameters` (one group).
    ///
    /// - Parameters:
    ///   - lr: learning rate (PyTorch's default 1e-3).
    ///   - momentum: momentum factor.
    ///   - dampening: dampening for momentum.
    ///   - weightDecay: L2 penalty.
    ///   - nesterov: Nesterov momentum (needs `momentum > 0` and `dampening == 0`).
    ///   - maximize: maximize the objective.
    public convenience init(_ parameters: [Parameter], lr: Double = 1e-3, momentum: Double = 0, dampening: Double = 0,
                            weightDecay: Double = 0, nesterov: Bool = false, maximize: Bool = false)
    {
        let options = Options(learningRate: lr, momentum: momentum, dampening: dampening,
                              weightDecay: weightDecay, nesterov: nesterov, maximize: maximize)
        self.init(groups: [ParameterGroup(parameters, options: options)], defaults: options)
    }

    /// SGD over explicit groups; `defaults` (the first group's options when `nil`) is what
    /// ``addParameterGroup(_:configure:)`` starts from.
    public init(groups: [ParameterGroup<Options>], defaults: Options? = nil) {
        let defaults = defaults ?? groups.first?.options ?? Options()
        checkOptions(defaults, optimizer: "SGD")
        for g in groups { checkOptions(g.options, optimizer: "SGD") }
        checkParameterGroups(groups, optimizer: "SGD")
        self.defaults = defaults
        self.parameterGroups = groups
    }

    /// One SGD step over every parameter with a gradient.
    public func step() {
        reportEvalModeGradients(parameterGroups, optimizer: name)
        for group in parameterGroups {
            let o = group.options
            for p in group.parameters {
                guard let g = gradientForUpdate(p, optimizer: name) else { continue }
                var buffer: Tensor?
                var first = false
                if o.momentum != 0 {
                    // One lookup; the stored buffer is made writable where it lies, so it is
                    // copied only when a saved state still shares it.
                    let key = ObjectIdentifier(p)
                    if let index = slots.index(forKey: key) {
                        makeWritable(&slots.values[index].momentumBuffer, like: p, name: "momentum_buffer", optimizer: name)
                        buffer = slots.values[index].momentumBuffer
                    } else {
                        buffer = Tensor(uninitializedShape: p.shape, dtype: p.dtype)
                        first = true
                        slots[key] = Slot(momentumBuffer: buffer!)
                    }
                }
                updateInPlace(p) { value in
                    if value.dtype == .float32 {
                        SGD.update(Float.self, value, g, buffer, first: first, o)
                    } else {
                        SGD.update(Double.self, value, g, buffer, first: first, o)
                    }
                }
            }
        }
    }

    /// The fused update of one parameter, in its dtype `T`.
    private static func update<T: LaneScalar>(
        _: T.Type, _ param: Tensor, _ grad: Tensor, _ buffer: Tensor?, first: Bool, _ o: Options
    ) {
        let p = param.mutablePointer(as: T.self), g = grad.pointer(as: T.self)
        let b = buffer?.mutablePointer(as: T.self)
        let negLR: T = scalar(-o.learningRate), wd: T = scalar(o.weightDecay)
        let mom: T = scalar(o.momentum), keep: T = scalar(1 - o.dampening)
        let useWD = o.weightDecay != 0, nesterov = o.nesterov, maximize = o.maximize
        @inline(__always) func lane<L: UpdateLane>(_: L.Type, _ i: Int) where L.Scalar == T {
            let pi = L.load(p, i)
            var d = maximize ? -L.load(g, i) : L.load(g, i)
            if useWD { d = d + L(repeating: wd) * pi }
            if let b {
                let bi = first ? d : L.load(b, i) * L(repeating: mom) + L(repeating: keep) * d
                bi.store(b, i)
                d = nesterov ? d + L(repeating: mom) * bi : bi
            }
            (pi + L(repeating: negLR) * d).store(p, i)
        }
        forEachChunk(param.count) { range in
            forEachLane(range, wide: { lane(T.Wide.self, $0) }, narrow: { lane(T.self, $0) })
        }
    }

    public func state() -> OptimizerState {
        captureState(optimizer: name, groups: parameterGroups, slots: slots)
    }

    public func load(_ state: OptimizerState) throws(OptimizerStateError) {
        (parameterGroups, slots) = try restoreState(state, optimizer: name, groups: parameterGroups, slotType: Slot.self)
    }
}
