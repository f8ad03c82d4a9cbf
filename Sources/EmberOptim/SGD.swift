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
public final class SGD: OptimizerBase<SGD.Options, SGD.Slot>, Optimizer, UpdateRule {
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

    /// The per-parameter state: the momentum buffer (only with momentum).
    public struct Slot: ParameterSlot {
        var momentumBuffer: Tensor

        public var saved: OptimizerState.ParameterState { .init(buffers: ["momentum_buffer": momentumBuffer]) }

        public static func restored(
            from saved: OptimizerState.ParameterState, for p: Parameter, index: Int
        ) throws(OptimizerStateError) -> Slot {
            try saved.checkOnly(["momentum_buffer"], index: index)
            return try Slot(momentumBuffer: saved.buffer("momentum_buffer", for: p, index: index, required: true)!)
        }
    }

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
        super.init(name: "SGD", groups: groups, defaults: defaults)
    }

    /// One SGD step over every parameter with a gradient.
    public func step() { step(with: self) }

    /// Without momentum SGD keeps no state.
    func keepsSlots(_ options: Options) -> Bool { options.momentum != 0 }

    /// One SGD step of `p`; the momentum buffer is created on the first step with momentum.
    func update(_ p: Parameter, gradient g: Tensor, slot: inout Slot?, options o: Options) {
        var buffer: Tensor?
        var first = false
        if o.momentum != 0 {
            if slot == nil {
                slot = Slot(momentumBuffer: Tensor(uninitializedShape: p.shape, dtype: p.dtype))
                first = true
            } else {
                makeWritable(&slot!.momentumBuffer, like: p, name: "momentum_buffer", optimizer: name)
            }
            buffer = slot!.momentumBuffer
        }
        updateInPlace(p) { value in
            if value.dtype == .float32 {
                SGD.fusedUpdate(Float.self, value, g, buffer, first: first, o)
            } else {
                SGD.fusedUpdate(Double.self, value, g, buffer, first: first, o)
            }
        }
    }

    /// The fused update of one parameter, in its dtype `T`.
    private static func fusedUpdate<T: LaneScalar>(
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
}
