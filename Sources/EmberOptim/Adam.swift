import EmberAutograd
import Foundation
import EmberTensor
import EmberStorage

/// Adam: adaptive moment estimation, with optional L2 weight decay, AMSGrad and maximization.
///
/// For each parameter `p` with gradient `g`, at step `t` (counted per parameter, from 1):
/// ```
/// g = maximize ? -g : g
/// p = p * (1 - lr * weightDecay)                 (decoupled weight decay: AdamW)
/// g = g + weightDecay * p                        (otherwise, if weightDecay != 0)
/// m = lerp(m, g, 1 - beta1)                      (m + (1 - beta1) * (g - m))
/// v = v * beta2 + (1 - beta2) * g * g
/// vMax = max(vMax, v)                            (amsgrad; then vMax replaces v below)
/// denom = sqrt(v) / sqrt(1 - beta2^t) + eps
/// p = p - (lr / (1 - beta1^t)) * m / denom
/// ```
/// The bias corrections are computed in double precision, then each scalar is rounded to the
/// parameter's dtype where PyTorch rounds it. Each parameter is updated in place in one fused
/// pass over its elements.
///
/// PyTorch parity: `torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
/// weight_decay=0, amsgrad=False, maximize=False, decoupled_weight_decay=False)` with its
/// single-tensor (`foreach=False`) update, in the same order of operations
/// (`denom = (exp_avg_sq.sqrt() / sqrt(bias_correction2)).add_(eps)`,
/// `step_size = lr / bias_correction1`), the same validation errors and the same state (`step`,
/// `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`). Differences in the last bit of float32 results are
/// possible: PyTorch's vectorized CPU kernels fuse some multiply-adds and take square roots with
/// MKL.
///
/// See also: ``AdamW``, ``Optimizer``.
public class Adam: OptimizerBase<Adam.Options, Adam.Slot>, Optimizer, UpdateRule {
    /// The hyperparameters of one group (shared with ``AdamW``).
    public struct Options: OptimizerOptions {
        /// Step size (`lr`).
        public var learningRate: Double
        /// `betas`, coded as PyTorch writes them: a list of two numbers.
        var betaPair: BetaPair
        /// Added to the denominator for numerical stability.
        public var eps: Double
        /// Weight decay: an L2 penalty, or decoupled (AdamW) when `decoupledWeightDecay`.
        public var weightDecay: Double
        /// Uses the maximum of past second-moment estimates (AMSGrad).
        public var amsgrad: Bool
        /// Maximizes the objective instead of minimizing it.
        public var maximize: Bool
        /// Decays weights directly (`p *= 1 - lr * weightDecay`) instead of adding to the gradient.
        public var decoupledWeightDecay: Bool

        /// Options with PyTorch\'s defaults for any value not given.
        public init(learningRate: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                    weightDecay: Double = 0, amsgrad: Bool = false, maximize: Bool = false,
                    decoupledWeightDecay: Bool = false)
        {
            self.learningRate = learningRate
            self.betaPair = BetaPair(betas)
            self.eps = eps
            self.weightDecay = weightDecay
            self.amsgrad = amsgrad
            self.maximize = maximize
            self.decoupledWeightDecay = decoupledWeightDecay
        }

        /// Decay rates of the first and second moment estimates.
        public var betas: (Double, Double) {
            get { (betaPair.first, betaPair.second) }
            set { betaPair = BetaPair(newValue) }
        }

        /// `beta1` (cycled by ``OneCycleLR``).
        public var cycledMomentum: Double? {
            get { betas.0 }
            set { if let v = newValue { betas.0 = v } }
        }

        public var validationFailure: String? {
            if !(0 <= learningRate) { return "Invalid learning rate: \(learningRate)" }
            if !(0 <= eps) { return "Invalid epsilon value: \(eps)" }
            if !(0 <= betas.0 && betas.0 < 1) { return "Invalid beta parameter at index 0: \(betas.0)" }
            if !(0 <= betas.1 && betas.1 < 1) { return "Invalid beta parameter at index 1: \(betas.1)" }
            if !(0 <= weightDecay) { return "Invalid weight_decay value: \(weightDecay)" }
            return nil
        }

        /// PyTorch before 2.6 saved no `decoupled_weight_decay`: such a group is plain Adam.
        public static var defaultsForMissingKeys: [String: OptimizerState.Hyperparameter] {
            ["decoupled_weight_decay": .flag(false)]
        }

        enum CodingKeys: String, CodingKey {
            case learningRate = "lr", betaPair = "betas", eps, weightDecay = "weight_decay", amsgrad, maximize
            case decoupledWeightDecay = "decoupled_weight_decay"
        }
    }

    /// The per-parameter state: the step count and the moment estimates.
    public struct Slot: ParameterSlot {
        var step: Int
        var expAvg: Tensor
        var expAvgSq: Tensor
        var maxExpAvgSq: Tensor?

        public var saved: OptimizerState.ParameterState {
            var b = ["exp_avg": expAvg, "exp_avg_sq": expAvgSq]
            if let maxExpAvgSq { b["max_exp_avg_sq"] = maxExpAvgSq }
            return .init(step: step, buffers: b)
        }

        public static func restored(
            from saved: OptimizerState.ParameterState, for p: Parameter, index: Int
        ) throws(OptimizerStateError) -> Slot {
            try saved.checkOnly(["exp_avg", "exp_avg_sq", "max_exp_avg_sq"], index: index)
            return try Slot(step: saved.requiredStep(index: index),
                            expAvg: saved.buffer("exp_avg", for: p, index: index, required: true)!,
                            expAvgSq: saved.buffer("exp_avg_sq", for: p, index: index, required: true)!,
                            maxExpAvgSq: saved.buffer("max_exp_avg_sq", for: p, index: index, required: false))
        }
    }

    /// Adam over `parameters` (one group).
    ///
    /// - Parameters:
    ///   - lr: learning rate.
    ///   - betas: decay rates of the moment estimates, each in `[0, 1)`.
    ///   - eps: denominator term for numerical stability.
    ///   - weightDecay: L2 penalty (decoupled when `decoupledWeightDecay`).
    ///   - amsgrad: use AMSGrad.
    ///   - maximize: maximize the objective.
    ///   - decoupledWeightDecay: decay weights as AdamW does.
    public convenience init(_ parameters: [Parameter], lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999),
                            eps: Double = 1e-8, weightDecay: Double = 0, amsgrad: Bool = false, maximize: Bool = false,
                            decoupledWeightDecay: Bool = false)
    {
        let options = Options(learningRate: lr, betas: betas, eps: eps, weightDecay: weightDecay, amsgrad: amsgrad,
                              maximize: maximize, decoupledWeightDecay: decoupledWeightDecay)
        self.init(groups: [ParameterGroup(parameters, options: options)], defaults: options)
    }

    /// Adam over explicit groups; `defaults` (the first group's options when `nil`) is what
    /// ``addParameterGroup(_:configure:)`` starts from.
    public convenience init(groups: [ParameterGroup<Options>], defaults: Options? = nil) {
        self.init(name: "Adam", groups: groups, defaults: defaults)
    }

    /// One Adam step over every parameter with a gradient.
    public func step() { step(with: self) }

    /// One Adam step of `p`; the moments start at zero.
    func update(_ p: Parameter, gradient g: Tensor, slot: inout Slot?, options o: Options) {
        if slot == nil { slot = Slot(step: 0, expAvg: filledBuffer(like: p, 0), expAvgSq: filledBuffer(like: p, 0)) }
        makeWritable(&slot!.expAvg, like: p, name: "exp_avg", optimizer: name)
        makeWritable(&slot!.expAvgSq, like: p, name: "exp_avg_sq", optimizer: name)
        prepareBuffer(&slot!.maxExpAvgSq, if: o.amsgrad, like: p, name: "max_exp_avg_sq", optimizer: name)
        slot!.step += 1
        let s = slot!
        updateInPlace(p) { value in
            if value.dtype == .float32 {
                adamUpdate(Float.self, value, g, s, step: s.step, o)
            } else {
                adamUpdate(Double.self, value, g, s, step: s.step, o)
            }
        }
    }
}

/// AdamW: Adam with decoupled weight decay, `p = p * (1 - lr * weightDecay)` before the Adam
/// update, instead of adding `weightDecay * p` to the gradient.
///
/// The update is otherwise ``Adam``'s (see its formula); `weightDecay` defaults to 1e-2.
///
/// PyTorch parity: `torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
/// weight_decay=1e-2, amsgrad=False, maximize=False)`, which is `Adam` with
/// `decoupled_weight_decay=True`; loading a state keeps weight decay decoupled, as PyTorch's
/// `AdamW.__setstate__` does.
///
/// See also: ``Adam``, ``Optimizer``.
public final class AdamW: Adam {
    /// AdamW over `parameters` (one group).
    ///
    /// - Parameters:
    ///   - lr: learning rate.
    ///   - betas: decay rates of the moment estimates, each in `[0, 1)`.
    ///   - eps: denominator term for numerical stability.
    ///   - weightDecay: decoupled weight decay coefficient.
    ///   - amsgrad: use AMSGrad.
    ///   - maximize: maximize the objective.
    public convenience init(_ parameters: [Parameter], lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999),
                            eps: Double = 1e-8, weightDecay: Double = 1e-2, amsgrad: Bool = false, maximize: Bool = false)
    {
        let options = Options(learningRate: lr, betas: betas, eps: eps, weightDecay: weightDecay, amsgrad: amsgrad,
                              maximize: maximize, decoupledWeightDecay: true)
        self.init(groups: [ParameterGroup(parameters, options: options)], defaults: options)
    }

    /// AdamW over explicit groups (weight decay is made decoupled in every group); `defaults`
    /// (the first group's options when `nil`) is what ``addParameterGroup(_:configure:)`` starts
    /// from.
    public init(groups: [ParameterGroup<Options>], defaults: Options? = nil) {
        var defaults = defaults ?? groups.first?.options
        defaults?.decoupledWeightDecay = true
        var groups = groups
        for i in groups.indices { groups[i].options.decoupledWeightDecay = true }
        super.init(name: "AdamW", groups: groups, defaults: defaults)
    }

    /// Loads `state`, then makes weight decay decoupled in every group, as PyTorch's
    /// `AdamW.__setstate__` does.
    public override func load(_ state: OptimizerState) throws(OptimizerStateError) {
        try super.load(state)
        for i in parameterGroups.indices { parameterGroups[i].options.decoupledWeightDecay = true }
    }
}

/// Adam's `betas`, coded as a list of two numbers.
struct BetaPair: Codable, Equatable, Sendable {
    var first: Double, second: Double

    init(_ pair: (Double, Double)) { (first, second) = pair }

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let b = try c.decode([Double].self)
        guard b.count == 2 else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "betas must hold 2 numbers, got \(b.count)")
        }
        (first, second) = (b[0], b[1])
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode([first, second])
    }
}

/// The fused Adam update of one parameter, in its dtype `T`.
private func adamUpdate<T: LaneScalar>(_: T.Type, _ param: Tensor, _ grad: Tensor, _ s: Adam.Slot, step: Int, _ o: Adam.Options) {
    let (beta1, beta2) = o.betas
    // Scalars as PyTorch computes them: Python floats (double), then rounded to T by each op.
    let t = Double(step)
    let biasCorrection1 = 1 - Foundation.pow(beta1, t)
    let biasCorrection2 = 1 - Foundation.pow(beta2, t)
    let stepSize = o.learningRate / biasCorrection1
    let biasCorrection2Sqrt = Foundation.pow(biasCorrection2, 0.5)

    let p = param.mutablePointer(as: T.self), g = grad.pointer(as: T.self)
    let m = s.expAvg.mutablePointer(as: T.self), v = s.expAvgSq.mutablePointer(as: T.self)
    let vMax = s.maxExpAvgSq?.mutablePointer(as: T.self)
    let amsgrad = o.amsgrad && vMax != nil
    let maximize = o.maximize
    let decoupled = o.decoupledWeightDecay && o.weightDecay != 0
    let coupled = !o.decoupledWeightDecay && o.weightDecay != 0
    let decay: T = scalar(1 - o.learningRate * o.weightDecay), wd: T = scalar(o.weightDecay)
    let w1: T = scalar(1 - beta1), b2: T = scalar(beta2), c2: T = scalar(1 - beta2)
    let bc2Sqrt: T = scalar(biasCorrection2Sqrt), eps: T = scalar(o.eps), negStep: T = scalar(-stepSize)
    @inline(__always) func lane<L: UpdateLane>(_: L.Type, _ i: Int) where L.Scalar == T {
        var pi = L.load(p, i)
        var gi = maximize ? -L.load(g, i) : L.load(g, i)
        if decoupled { pi = pi * L(repeating: decay) }
        if coupled { gi = gi + L(repeating: wd) * pi }
        let mi = L.load(m, i).lerp(to: gi, weight: w1)
        let vi = L.load(v, i) * L(repeating: b2) + (L(repeating: c2) * gi) * gi
        mi.store(m, i)
        vi.store(v, i)
        var second = vi
        if amsgrad, let vMax {
            second = L.nanPropagatingMax(L.load(vMax, i), vi)
            second.store(vMax, i)
        }
        let denom = second.squareRoot() / L(repeating: bc2Sqrt) + L(repeating: eps)
        (pi + (L(repeating: negStep) * mi) / denom).store(p, i)
    }
    forEachChunk(param.count) { range in
        forEachLane(range, wide: { lane(T.Wide.self, $0) }, narrow: { lane(T.self, $0) })
    }
}
