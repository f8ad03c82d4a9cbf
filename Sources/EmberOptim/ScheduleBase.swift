/// The saved state of an epoch-based schedule: its hyperparameters and its counters.
public protocol ScheduleState: Codable, Sendable, Equatable {
    /// Counters and base learning rates.
    var progress: ScheduleProgress { get set }
}

/// What every epoch-based schedule shares: attaching to the optimizer, the step made at
/// construction, counting steps, setting the groups' learning rates, and saving and restoring its
/// state, which it keeps as one ``ScheduleState`` value.
///
/// A schedule subclasses it with its `State` (hyperparameters and ``ScheduleProgress``),
/// overrides ``learningRates(initial:)`` (its rule) and, where a loaded state needs checks or
/// normalizing, ``validated(_:)``.
///
/// PyTorch parity: the part of `torch.optim.lr_scheduler.LRScheduler` that its subclasses inherit
/// (`step`, `get_last_lr`, `last_epoch`, `state_dict`, `load_state_dict`).
///
/// See also: ``LRScheduler``, ``StepLR``, ``CosineAnnealingLR``.
public class ScheduleBase<State: ScheduleState>: LRScheduler {
    public let optimizer: any Optimizer
    /// The hyperparameters and counters.
    var current: State

    /// Attaches to `optimizer` with `state`, whose progress comes from `attach(_:)`, and sets the
    /// epoch-0 learning rates.
    init(_ optimizer: any Optimizer, _ state: State) {
        self.optimizer = optimizer
        self.current = state
        advance(initial: true)
    }

    /// The counters.
    var progress: ScheduleProgress {
        get { current.progress }
        set { current.progress = newValue }
    }

    /// The learning rates for `progress.lastEpoch` (already advanced); `initial` is true for the
    /// step made at construction (PyTorch's `_is_initial`).
    func learningRates(initial: Bool) -> [Double] {
        preconditionFailure("\(type(of: self)): a schedule must override learningRates(initial:)")
    }

    /// `state` as it is loaded: a schedule stops on values it cannot step with, or normalizes them.
    func validated(_ state: State) throws(OptimizerStateError) -> State { state }

    public func step() { advance(initial: false) }
    public var lastLearningRates: [Double] { progress.lastLearningRates }
    public var lastEpoch: Int { progress.lastEpoch }
    public func state() -> State { current }

    public func load(_ state: State) throws(OptimizerStateError) {
        let n = optimizer.parameterGroupCount
        guard state.progress.baseLearningRates.count == n else {
            throw .groupCountMismatch(expected: n, found: state.progress.baseLearningRates.count)
        }
        current = try validated(state)
    }

    /// Advances the counters, computes and sets the learning rates.
    private func advance(initial: Bool) {
        progress.stepCount += 1
        progress.lastEpoch += 1
        let lrs = learningRates(initial: initial)
        for (g, lr) in lrs.enumerated() { optimizer.setLearningRate(lr, group: g) }
        progress.lastLearningRates = optimizer.learningRates
    }
}
