import EmberAutograd
import EmberTensor
import EmberStorage

/// RMSprop: divides the gradient by a running root mean square of recent gradients.
///
/// For each parameter `p` with gradient `g`, per step:
/// ```
/// g = maximize ? -g : g
/// g = g + weightDecay * p                        (if weightDecay != 0)
/// s = alpha * s + (1 - alpha) * g * g
/// if centered:
///     a = lerp(a, g, 1 - alpha)                  (running mean of g)
///     avg = sqrt(s - a * a) + eps
/// else:
///     avg = sqrt(s) + eps
/// if momentum > 0:
///     b = momentum * b + g / avg
///     p = p - lr * b
/// else:
///     p = p - lr * g / avg
/// ```
/// Each parameter is updated in place in one fused pass over its elements.
///
/// PyTorch parity: `torch.optim.RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0,
/// momentum=0, centered=False, maximize=False)` with its single-tensor update in the same order of
/// operations, the same validation errors and the same state (`step`, `square_avg`,
/// `momentum_buffer`, `grad_avg`). float32 results may differ from PyTorch's in the last bit
/// (fused multiply-adds and MKL square roots in its vectorized kernels).
///
/// See also: ``Optimizer``, ``Adam``.
public final class RMSprop: OptimizerBase<RMSprop.Options, RMSprop.Slot>, Optimizer, UpdateRule {
    /// The hyperparameters of one group.
    public struct Options: OptimizerOptions {
        /// Step size (`lr`).
        public var learningRate: Double
        /// Smoothing constant of the running mean square.
        public var alpha: Double
        /// Added to the denominator for numerical stability.
        public var eps: Double
        /// L2 penalty added to the gradient (`weight_decay`).
        public var weightDecay: Double
        /// Momentum factor; 0 turns momentum off.
        public var momentum: Double
        /// Normalizes by an estimate of the gradient's variance instead of its second moment.
        public var centered: Bool
        /// Maximizes the objective instead of minimizing it.
        public var maximize: Bool

        /// Options with PyTorch\'s defaults for any value not given.
        public init(learningRate: Double = 1e-2, alpha: Double = 0.99, eps: Double = 1e-8, weightDecay: Double = 0,
                    momentum: Double = 0, centered: Bool = false, maximize: Bool = false)
        {
            self.learningRate = learningRate
            self.alpha = alpha
            self.eps = eps
            self.weightDecay = weightDecay
            self.momentum = momentum
            self.centered = centered
            self.maximize = maximize
        }

        /// The momentum (cycled by ``OneCycleLR``).
        public var cycledMomentum: Double? {
            get { momentum }
            set { if let v = newValue { momentum = v } }
        }

        public var validationFailure: String? {
            if !(0 <= learningRate) { return "Invalid learning rate: \(learningRate)" }
            if !(0 <= eps) { return "Invalid epsilon value: \(eps)" }
            if !(0 <= momentum) { return "Invalid momentum value: \(momentum)" }
            if !(0 <= weightDecay) { return "Invalid weight_decay value: \(weightDecay)" }
            if !(0 <= alpha) { return "Invalid alpha value: \(alpha)" }
            return nil
        }

        enum CodingKeys: String, CodingKey {
            case learningRate = "lr", alpha, eps, weightDecay = "weight_decay", momentum, centered, maximize
        }
    }

    /// The per-parameter state: the step count, the square average and, when used, the momentum
    /// buffer and the gradient average.
    public struct Slot: ParameterSlot {
        var step: Int
        var squareAvg: Tensor
        var momentumBuffer: Tensor?
        var gradAvg: Tensor?

        public var saved: OptimizerState.ParameterState {
            var b = ["square_avg": squareAvg]
            if let momentumBuffer { b["momentum_buffer"] = momentumBuffer }
            if let gradAvg { b["grad_avg"] = gradAvg }
            return .init(step: step, buffers: b)
        }

        public static func restored(
            from saved: OptimizerState.ParameterState, for p: Parameter, index: Int
        ) throws(OptimizerStateError) -> Slot {
            try saved.checkOnly(["square_avg", "momentum_buffer", "grad_avg"], index: index)
            return try Slot(step: saved.requiredStep(index: index),
                            squareAvg: saved.buffer("square_avg", for: p, index: index, required: true)!,
                            momentumBuffer: saved.buffer("momentum_buffer", for: p, index: index, required: false),
                            gradAvg: saved.buffer("grad_avg", for: p, index: index, required: false))
        }
    }

    /// RMSprop over `parameters` (one group).
    ///
    /// - Parameters:
    ///   - lr: learning rate.
    ///   - alpha: smoothing constant.
    ///   - eps: denominator term for numerical stability.
    ///   - weightDecay: L2 penalty.
    ///   - momentum: momentum factor.
    ///   - centered: normalize by the estimated variance of the gradient.
    ///   - maximize: maximize the objective.
    public convenience init(_ parameters: [Parameter], lr: Double = 1e-2, alpha: Double = 0.99, eps: Double = 1e-8,
                            weightDecay: Double = 0, momentum: Double = 0, centered: Bool = false, maximize: Bool = false)
    {
        let options = Options(learningRate: lr, alpha: alpha, eps: eps, weightDecay: weightDecay, momentum: momentum,
                              centered: centered, maximize: maximize)
        self.init(groups: [ParameterGroup(parameters, options: options)], defaults: options)
    }

    /// RMSprop over explicit groups; `defaults` (the first group's options when `nil`) is what
    /// ``addParameterGroup(_:configure:)`` starts from.
    public init(groups: [ParameterGroup<Options>], defaults: Options? = nil) {
        super.init(name: "RMSprop", groups: groups, defaults: defaults)
    }

    /// One RMSprop step over every parameter with a gradient.
    public func step() { step(with: self) }

    /// One RMSprop step of `p`; the averages and the momentum buffer start at zero.
    func update(_ p: Parameter, gradient g: Tensor, slot: inout Slot?, options o: Options) {
        if slot == nil { slot = Slot(step: 0, squareAvg: filledBuffer(like: p, 0)) }
        makeWritable(&slot!.squareAvg, like: p, name: "square_avg", optimizer: name)
        prepareBuffer(&slot!.momentumBuffer, if: o.momentum > 0, like: p, name: "momentum_buffer", optimizer: name)
        prepareBuffer(&slot!.gradAvg, if: o.centered, like: p, name: "grad_avg", optimizer: name)
        slot!.step += 1
        let s = slot!
        updateInPlace(p) { value in
            if value.dtype == .float32 {
                RMSprop.fusedUpdate(Float.self, value, g, s, o)
            } else {
                RMSprop.fusedUpdate(Double.self, value, g, s, o)
            }
        }
    }

    /// The fused update of one parameter, in its dtype `T`.
    private static func fusedUpdate<T: LaneScalar>(_: T.Type, _ param: Tensor, _ grad: Tensor, _ s: Slot, _ o: Options) {
        let p = param.mutablePointer(as: T.self), g = grad.pointer(as: T.self)
        let sq = s.squareAvg.mutablePointer(as: T.self)
        let buf = o.momentum > 0 ? s.momentumBuffer?.mutablePointer(as: T.self) : nil
        let avgG = o.centered ? s.gradAvg?.mutablePointer(as: T.self) : nil
        let maximize = o.maximize, useWD = o.weightDecay != 0
        let wd: T = scalar(o.weightDecay), alpha: T = scalar(o.alpha), c: T = scalar(1 - o.alpha)
        let eps: T = scalar(o.eps), mom: T = scalar(o.momentum), negLR: T = scalar(-o.learningRate)
        @inline(__always) func lane<L: UpdateLane>(_: L.Type, _ i: Int) where L.Scalar == T {
            let pi = L.load(p, i)
            var gi = maximize ? -L.load(g, i) : L.load(g, i)
            if useWD { gi = gi + L(repeating: wd) * pi }
            let si = L.load(sq, i) * L(repeating: alpha) + (L(repeating: c) * gi) * gi
            si.store(sq, i)
            var avg: L
            if let avgG {
                let ai = L.load(avgG, i).lerp(to: gi, weight: c)
                ai.store(avgG, i)
                avg = (si + (L(repeating: -1) * ai) * ai).squareRoot()
            } else {
                avg = si.squareRoot()
            }
            avg = avg + L(repeating: eps)
            if let buf {
                let bi = L.load(buf, i) * L(repeating: mom) + gi / avg
                bi.store(buf, i)
                (pi + L(repeating: negLR) * bi).store(p, i)
            } else {
                (pi + (L(repeating: negLR) * gi) / avg).store(p, i)
            }
        }
        forEachChunk(param.count) { range in
            forEachLane(range, wide: { lane(T.Wide.self, $0) }, narrow: { lane(T.self, $0) })
        }
    }
}
