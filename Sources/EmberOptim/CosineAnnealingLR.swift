import Foundation

/// Anneals each group's learning rate along a cosine from its base rate down to `etaMin` over
/// `tMax` epochs, then back up over the next `tMax`, and so on (no restarts).
///
/// The rate is updated recursively from the current one, as PyTorch does:
/// ```
/// lr(e) = (1 + cos(pi * e / tMax)) / (1 + cos(pi * (e - 1) / tMax)) * (lr(e - 1) - etaMin) + etaMin
/// lr(e) = lr(e - 1) + (base - etaMin) * (1 - cos(pi / tMax)) / 2      when (e - 1 - tMax) % (2 tMax) == 0
/// ```
/// which follows the closed form `etaMin + (base - etaMin) * (1 + cos(pi * e / tMax)) / 2` while
/// nothing else changes the rate.
///
/// PyTorch parity: `torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max, eta_min=0.0)`,
/// the same recursive formula in the same order of operations, so the values match PyTorch's over
/// any number of periods.
///
/// See also: ``OneCycleLR``, ``LinearLR``, ``LRScheduler``.
public final class CosineAnnealingLR: ScheduleBase<CosineAnnealingLR.State> {
    /// Hyperparameters and counters.
    public struct State: ScheduleState {
        /// Epochs of one half period (`T_max`).
        public var tMax: Int
        /// The lowest learning rate (`eta_min`).
        public var etaMin: Double
        /// Counters and base learning rates.
        public var progress: ScheduleProgress
    }

    /// Epochs of one half period.
    public var tMax: Int { current.tMax }
    /// The lowest learning rate.
    public var etaMin: Double { current.etaMin }

    /// Attaches to `optimizer` and sets the epoch-0 learning rates (unchanged).
    public init(_ optimizer: any Optimizer, tMax: Int, etaMin: Double = 0) {
        precondition(tMax > 0, "CosineAnnealingLR: tMax must be positive, got \(tMax)")
        super.init(optimizer, State(tMax: tMax, etaMin: etaMin, progress: attach(optimizer)))
    }

    override func learningRates(initial: Bool) -> [Double] {
        let lrs = optimizer.learningRates
        if initial { return lrs }
        let e = progress.lastEpoch, t = Double(tMax)
        if (e - 1 - tMax) % (2 * tMax) == 0 {
            return zip(progress.baseLearningRates, lrs).map { base, lr in
                lr + (base - etaMin) * (1 - cos(Double.pi / t)) / 2
            }
        }
        return lrs.map { lr in
            (1 + cos(Double.pi * Double(e) / t)) / (1 + cos(Double.pi * Double(e - 1) / t)) * (lr - etaMin) + etaMin
        }
    }

    override func validated(_ state: State) throws(OptimizerStateError) -> State {
        precondition(state.tMax > 0, "CosineAnnealingLR.load: tMax must be positive, got \(state.tMax)")
        return state
    }
}
