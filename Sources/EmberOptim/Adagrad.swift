import EmberAutograd
import EmberTensor
import EmberStorage

/// Adagrad: per-element learning rates scaled by the accumulated squared gradients.
///
/// For each parameter `p` with gradient `g`, at step `t` (counted per parameter, from 1):
/// ```
/// g = maximize ? -g : g
/// g = g + weightDecay * p                        (if weightDecay != 0)
/// clr = lr / (1 + (t - 1) * lrDecay)
/// sum = sum + g * g
/// p = p - clr * g / (sqrt(sum) + eps)
/// ```
/// `sum` starts at `initialAccumulatorValue`. Each parameter is updated in place in one fused pass
/// over its elements.
///
/// PyTorch parity: `torch.optim.Adagrad(params, lr=1e-2, lr_decay=0, weight_decay=0,
/// initial_accumulator_value=0, eps=1e-10, maximize=False)` with its single-tensor dense update in
/// the same order of operations, the same validation errors and the same state (`step`, `sum`).
/// As in PyTorch, state is created for every parameter at construction, and the accumulator
/// always starts from the optimizer's default `initialAccumulatorValue` (a group's own value is
/// not used). float32 results may differ from PyTorch's in the last bit (fused multiply-adds and
/// MKL square roots in its vectorized kernels). Sparse gradients do not exist in Ember.
///
/// See also: ``Optimizer``, ``RMSprop``.
public final class Adagrad: OptimizerBase<Adagrad.Options, Adagrad.Slot>, Optimizer, UpdateRule {
    /// The hyperparameters of one group.
    public struct Options: OptimizerOptions {
        /// Step size (`lr`).
        public var learningRate: Double
        /// Learning-rate decay per step (`lr_decay`).
        public var lrDecay: Double
        /// L2 penalty added to the gradient (`weight_decay`).
        public var weightDecay: Double
        /// Starting value of the squared-gradient accumulator (`initial_accumulator_value`).
        public var initialAccumulatorValue: Double
        /// Added to the denominator for numerical stability.
        public var eps: Double
        /// Maximizes the objective instead of minimizing it.
        public var maximize: Bool

        /// Options with PyTorch\'s defaults for any value not given.
        public init(learningRate: Double = 1e-2, lrDecay: Double = 0, weightDecay: Double = 0,
                    initialAccumulatorValue: Double = 0, eps: Double = 1e-10, maximize: Bool = false)
        {
            self.learningRate = learningRate
            self.lrDecay = lrDecay
            self.weightDecay = weightDecay
            self.initialAccumulatorValue = initialAccumulatorValue
            self.eps = eps
            self.maximize = maximize
        }

        /// Adagrad has no momentum: always `nil`, and setting it does nothing.
        public var cycledMomentum: Double? {
            get { nil }
            set {}
        }

        public var validationFailure: String? {
            if !(0 <= learningRate) { return "Invalid learning rate: \(learningRate)" }
            if !(0 <= lrDecay) { return "Invalid lr_decay value: \(lrDecay)" }
            if !(0 <= weightDecay) { return "Invalid weight_decay value: \(weightDecay)" }
            if !(0 <= initialAccumulatorValue) { return "Invalid initial_accumulator_value value: \(initialAccumulatorValue)" }
            if !(0 <= eps) { return "Invalid epsilon value: \(eps)" }
            return nil
        }

        enum CodingKeys: String, CodingKey {
            case learningRate = "lr", lrDecay = "lr_decay", weightDecay = "weight_decay"
            case initialAccumulatorValue = "initial_accumulator_value", eps, maximize
        }
    }

    /// The per-parameter state: the step count and the sum of squared gradients.
    public struct Slot: ParameterSlot {
        var step: Int
        var sum: Tensor

        public var saved: OptimizerState.ParameterState { .init(step: step, buffers: ["sum": sum]) }

        public static func restored(
            from saved: OptimizerState.ParameterState, for p: Parameter, index: Int
        ) throws(OptimizerStateError) -> Slot {
            try saved.checkOnly(["sum"], index: index)
            return try Slot(step: saved.requiredStep(index: index), sum: saved.buffer("sum", for: p, index: index, required: true)!)
        }
    }

    /// Adagrad over `parameters` (one group).
    ///
    /// - Parameters:
    ///   - lr: learning rate.
    ///   - lrDecay: learning-rate decay.
    ///   - weightDecay: L2 penalty.
    ///   - initialAccumulatorValue: starting value of the accumulator.
    ///   - eps: denominator term for numerical stability.
    ///   - maximize: maximize the objective.
    public convenience init(_ parameters: [Parameter], lr: Double = 1e-2, lrDecay: Double = 0, weightDecay: Double = 0,
                            initialAccumulatorValue: Double = 0, eps: Double = 1e-10, maximize: Bool = false)
    {
        let options = Options(learningRate: lr, lrDecay: lrDecay, weightDecay: weightDecay,
                              initialAccumulatorValue: initialAccumulatorValue, eps: eps, maximize: maximize)
        self.init(groups: [ParameterGroup(parameters, options: options)], defaults: options)
    }

    /// Adagrad over explicit groups; `defaults` (the first group's options when `nil`) is what
    /// ``addParameterGroup(_:configure:)`` starts from and gives every accumulator's initial value.
    public init(groups: [ParameterGroup<Options>], defaults: Options? = nil) {
        super.init(name: "Adagrad", groups: groups, defaults: defaults)
        for g in groups {
            for p in g.parameters where p.value.dtype.isFloatingPoint {
                slots[ObjectIdentifier(p)] = Slot(step: 0, sum: filledBuffer(like: p, self.defaults.initialAccumulatorValue))
            }
        }
    }

    /// One Adagrad step over every parameter with a gradient.
    public func step() { step(with: self) }

    /// One Adagrad step of `p`.
    func update(_ p: Parameter, gradient g: Tensor, slot: inout Slot?, options o: Options) {
        if slot == nil { slot = Slot(step: 0, sum: filledBuffer(like: p, defaults.initialAccumulatorValue)) }
        makeWritable(&slot!.sum, like: p, name: "sum", optimizer: name)
        slot!.step += 1
        let clr = o.learningRate / (1 + (Double(slot!.step) - 1) * o.lrDecay)
        let sum = slot!.sum
        updateInPlace(p) { value in
            if value.dtype == .float32 {
                Adagrad.fusedUpdate(Float.self, value, g, sum, clr: clr, o)
            } else {
                Adagrad.fusedUpdate(Double.self, value, g, sum, clr: clr, o)
            }
        }
    }

    /// The fused update of one parameter, in its dtype `T`.
    private static func fusedUpdate<T: LaneScalar>(_: T.Type, _ param: Tensor, _ grad: Tensor, _ sum: Tensor, clr: Double, _ o: Options) {
        let p = param.mutablePointer(as: T.self), g = grad.pointer(as: T.self), acc = sum.mutablePointer(as: T.self)
        let maximize = o.maximize, useWD = o.weightDecay != 0
        let wd: T = scalar(o.weightDecay), eps: T = scalar(o.eps), negCLR: T = scalar(-clr)
        @inline(__always) func lane<L: UpdateLane>(_: L.Type, _ i: Int) where L.Scalar == T {
            let pi = L.load(p, i)
            var gi = maximize ? -L.load(g, i) : L.load(g, i)
            if useWD { gi = gi + L(repeating: wd) * pi }
            let si = L.load(acc, i) + gi * gi
            si.store(acc, i)
            let std = si.squareRoot() + L(repeating: eps)
            (pi + (L(repeating: negCLR) * gi) / std).store(p, i)
        }
        forEachChunk(param.count) { range in
            forEachLane(range, wide: { lane(T.Wide.self, $0) }, narrow: { lane(T.self, $0) })
        }
    }
}
