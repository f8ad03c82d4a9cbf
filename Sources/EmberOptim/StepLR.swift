import Foundation

/// Multiplies each group's learning rate by `gamma` every `stepSize` epochs.
///
/// `lr(epoch) = lr(epoch - 1) * gamma` when `epoch` is a positive multiple of `stepSize`, else
/// unchanged; from a base rate `b` that is `b * gamma^(epoch / stepSize)` (integer division).
///
/// PyTorch parity: `torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma=0.1)`
/// (recursive form).
///
/// See also: ``MultiStepLR``, ``ExponentialLR``, ``LRScheduler``.
public final class StepLR: ScheduleBase<StepLR.State> {
    /// Hyperparameters and counters.
    public struct State: ScheduleState {
        /// Epochs between decays.
        public var stepSize: Int
        /// Multiplicative decay.
        public var gamma: Double
        /// Counters and base learning rates.
        public var progress: ScheduleProgress
    }

    /// Epochs between decays.
    public var stepSize: Int { current.stepSize }
    /// Multiplicative decay.
    public var gamma: Double { current.gamma }

    /// Attaches to `optimizer` and sets the epoch-0 learning rates (unchanged).
    public init(_ optimizer: any Optimizer, stepSize: Int, gamma: Double = 0.1) {
        precondition(stepSize > 0, "StepLR: stepSize must be positive, got \(stepSize)")
        super.init(optimizer, State(stepSize: stepSize, gamma: gamma, progress: attach(optimizer)))
    }

    override func learningRates(initial: Bool) -> [Double] {
        let lrs = optimizer.learningRates
        let e = progress.lastEpoch
        if e == 0 || e % stepSize != 0 { return lrs }
        return lrs.map { $0 * gamma }
    }

    override func validated(_ state: State) throws(OptimizerStateError) -> State {
        precondition(state.stepSize > 0, "StepLR.load: stepSize must be positive, got \(state.stepSize)")
        return state
    }
}

/// Multiplies each group's learning rate by `gamma` at each milestone epoch (by `gamma^k` for a
/// milestone listed `k` times).
///
/// PyTorch parity: `torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)`
/// (recursive form).
///
/// See also: ``StepLR``, ``LRScheduler``.
public final class MultiStepLR: ScheduleBase<MultiStepLR.State> {
    /// Hyperparameters and counters.
    public struct State: ScheduleState {
        /// Milestones, sorted, repeated as given.
        public var milestones: [Int]
        /// Multiplicative decay.
        public var gamma: Double
        /// Counters and base learning rates.
        public var progress: ScheduleProgress
    }

    /// Milestone epochs, sorted (repeats kept).
    public var milestones: [Int] { current.milestones }
    /// Multiplicative decay.
    public var gamma: Double { current.gamma }

    /// Attaches to `optimizer` and sets the epoch-0 learning rates (unchanged).
    public init(_ optimizer: any Optimizer, milestones: [Int], gamma: Double = 0.1) {
        super.init(optimizer, State(milestones: milestones.sorted(), gamma: gamma, progress: attach(optimizer)))
    }

    override func learningRates(initial: Bool) -> [Double] {
        let lrs = optimizer.learningRates
        let epoch = progress.lastEpoch
        let hits = milestones.count(where: { $0 == epoch })
        if hits == 0 { return lrs }
        let factor = Foundation.pow(gamma, Double(hits))
        return lrs.map { $0 * factor }
    }

    override func validated(_ state: State) throws(OptimizerStateError) -> State {
        var state = state
        state.milestones.sort()
        return state
    }
}

/// Multiplies each group's learning rate by `gamma` every epoch: `lr(epoch) = lr(epoch - 1) * gamma`.
///
/// PyTorch parity: `torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma)` (recursive form).
///
/// See also: ``StepLR``, ``LRScheduler``.
public final class ExponentialLR: ScheduleBase<ExponentialLR.State> {
    /// Hyperparameters and counters.
    public struct State: ScheduleState {
        /// Multiplicative decay per epoch.
        public var gamma: Double
        /// Counters and base learning rates.
        public var progress: ScheduleProgress
    }

    /// Multiplicative decay per epoch.
    public var gamma: Double { current.gamma }

    /// Attaches to `optimizer` and sets the epoch-0 learning rates (unchanged).
    public init(_ optimizer: any Optimizer, gamma: Double) {
        super.init(optimizer, State(gamma: gamma, progress: attach(optimizer)))
    }

    override func learningRates(initial: Bool) -> [Double] {
        let lrs = optimizer.learningRates
        return initial ? lrs : lrs.map { $0 * gamma }
    }
}
