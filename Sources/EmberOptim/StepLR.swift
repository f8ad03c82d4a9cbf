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
public final class StepLR: LRScheduler, EpochScheduler {
    /// Hyperparameters and counters.
    public struct State: Codable, Sendable, Equatable {
        /// Epochs between decays.
        public var stepSize: Int
        /// Multiplicative decay.
        public var gamma: Double
        /// Counters and base learning rates.
        public var progress: ScheduleProgress
    }

    public let optimizer: any Optimizer
    /// Epochs between decays.
    public private(set) var stepSize: Int
    /// Multiplicative decay.
    public private(set) var gamma: Double
    var progress: ScheduleProgress

    /// Attaches to `optimizer` and sets the epoch-0 learning rates (unchanged).
    public init(_ optimizer: any Optimizer, stepSize: Int, gamma: Double = 0.1) {
        precondition(stepSize > 0, "StepLR: stepSize must be positive, got \(stepSize)")
        self.optimizer = optimizer
        self.stepSize = stepSize
        self.gamma = gamma
        self.progress = attach(optimizer)
        advance(initial: true)
    }

    func learningRates(initial: Bool) -> [Double] {
        let lrs = optimizer.learningRates
        let e = progress.lastEpoch
        if e == 0 || e % stepSize != 0 { return lrs }
        return lrs.map { $0 * gamma }
    }

    public func step() { advance(initial: false) }
    public var lastLearningRates: [Double] { progress.lastLearningRates }
    public var lastEpoch: Int { progress.lastEpoch }
    public func state() -> State { State(stepSize: stepSize, gamma: gamma, progress: progress) }

    public func load(_ state: State) throws(OptimizerStateError) {
        try checkGroups(state.progress)
        precondition(state.stepSize > 0, "StepLR.load: stepSize must be positive, got \(state.stepSize)")
        (stepSize, gamma, progress) = (state.stepSize, state.gamma, state.progress)
    }
}

/// Multiplies each group's learning rate by `gamma` at each milestone epoch (by `gamma^k` for a
/// milestone listed `k` times).
///
/// PyTorch parity: `torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)`
/// (recursive form).
///
/// See also: ``StepLR``, ``LRScheduler``.
public final class MultiStepLR: LRScheduler, EpochScheduler {
    /// Hyperparameters and counters.
    public struct State: Codable, Sendable, Equatable {
        /// Milestones, sorted, repeated as given.
        public var milestones: [Int]
        /// Multiplicative decay.
        public var gamma: Double
        /// Counters and base learning rates.
        public var progress: ScheduleProgress
    }

    public let optimizer: any Optimizer
    /// Milestone epochs, sorted (repeats kept).
    public private(set) var milestones: [Int]
    /// Multiplicative decay.
    public private(set) var gamma: Double
    var progress: ScheduleProgress

    /// Attaches to `optimizer` and sets the epoch-0 learning rates (unchanged).
    public init(_ optimizer: any Optimizer, milestones: [Int], gamma: Double = 0.1) {
        self.optimizer = optimizer
        self.milestones = milestones.sorted()
        self.gamma = gamma
        self.progress = attach(optimizer)
        advance(initial: true)
    }

    func learningRates(initial: Bool) -> [Double] {
        let lrs = optimizer.learningRates
        let epoch = progress.lastEpoch
        let hits = milestones.count(where: { $0 == epoch })
        if hits == 0 { return lrs }
        let factor = Foundation.pow(gamma, Double(hits))
        return lrs.map { $0 * factor }
    }

    public func step() { advance(initial: false) }
    public var lastLearningRates: [Double] { progress.lastLearningRates }
    public var lastEpoch: Int { progress.lastEpoch }
    public func state() -> State { State(milestones: milestones, gamma: gamma, progress: progress) }

    public func load(_ state: State) throws(OptimizerStateError) {
        try checkGroups(state.progress)
        (milestones, gamma, progress) = (state.milestones.sorted(), state.gamma, state.progress)
    }
}

/// Multiplies each group's learning rate by `gamma` every epoch: `lr(epoch) = lr(epoch - 1) * gamma`.
///
/// PyTorch parity: `torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma)` (recursive form).
///
/// See also: ``StepLR``, ``LRScheduler``.
public final class ExponentialLR: LRScheduler, EpochScheduler {
    /// Hyperparameters and counters.
    public struct State: Codable, Sendable, Equatable {
        /// Multiplicative decay per epoch.
        public var gamma: Double
        /// Counters and base learning rates.
        public var progress: ScheduleProgress
    }

    public let optimizer: any Optimizer
    /// Multiplicative decay per epoch.
    public private(set) var gamma: Double
    var progress: ScheduleProgress

    /// Attaches to `optimizer` and sets the epoch-0 learning rates (unchanged).
    public init(_ optimizer: any Optimizer, gamma: Double) {
        self.optimizer = optimizer
        self.gamma = gamma
        self.progress = attach(optimizer)
        advance(initial: true)
    }

    func learningRates(initial: Bool) -> [Double] {
        let lrs = optimizer.learningRates
        return initial ? lrs : lrs.map { $0 * gamma }
    }

    public func step() { advance(initial: false) }
    public var lastLearningRates: [Double] { progress.lastLearningRates }
    public var lastEpoch: Int { progress.lastEpoch }
    public func state() -> State { State(gamma: gamma, progress: progress) }

    public func load(_ state: State) throws(OptimizerStateError) {
        try checkGroups(state.progress)
        (gamma, progress) = (state.gamma, state.progress)
    }
}
