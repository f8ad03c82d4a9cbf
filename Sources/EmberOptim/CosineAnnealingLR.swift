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
public final class CosineAnnealingLR: LRScheduler, EpochScheduler {
    /// Hyperparameters and counters.
    public struct State: Codable, Sendable, Equatable {
        /// Epochs of one half period (`T_max`).
        public var tMax: Int
        /// The lowest learning rate (`eta_min`).
        public var etaMin: Double
        /// Counters and base learning rates.
        public var progress: ScheduleProgress
    }

    public let optimizer: any Optimizer
    /// Epochs of one half period.
    public private(set) var tMax: Int
    /// The lowest learning rate.
    public private(set) var etaMin: Double
    var progress: ScheduleProgress

    /// Attaches to `optimizer` and sets the epoch-0 learning rates (unchanged).
    public init(_ optimizer: any Optimizer, tMax: Int, etaMin: Double = 0) {
        precondition(tMax > 0, "CosineAnnealingLR: tMax must be positive, got \(tMax)")
        self.optimizer = optimizer
        self.tMax = tMax
        self.etaMin = etaMin
        self.progress = attach(optimizer)
        advance(initial: true)
    }

    func learningRates(initial: Bool) -> [Double] {
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

    public func step() { advance(initial: false) }
    public var lastLearningRates: [Double] { progress.lastLearningRates }
    public var lastEpoch: Int { progress.lastEpoch }
    public func state() -> State { State(tMax: tMax, etaMin: etaMin, progress: progress) }

    public func load(_ state: State) throws(OptimizerStateError) {
        try checkGroups(state.progress)
        precondition(state.tMax > 0, "CosineAnnealingLR.load: tMax must be positive, got \(state.tMax)")
        (tMax, etaMin, progress) = (state.tMax, state.etaMin, state.progress)
    }
}
