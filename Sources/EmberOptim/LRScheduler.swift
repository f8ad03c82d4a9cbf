/// A learning-rate schedule whose state can be saved and restored (checkpoints): every
/// ``LRScheduler`` and ``ReduceLROnPlateau``, which steps on a metric instead.
public protocol SavableSchedule: AnyObject {
    /// The schedule's saveable state.
    associatedtype State: Codable, Sendable, Equatable

    /// The hyperparameters and counters.
    func state() -> State

    /// Restores hyperparameters and counters; the optimizer's learning rates are not changed
    /// (they are part of the optimizer's state).
    ///
    /// - Throws: ``OptimizerStateError/groupCountMismatch(expected:found:)`` when the state was
    ///   saved for a different number of parameter groups.
    func load(_ state: State) throws(OptimizerStateError)
}

/// Adjusts the learning rates of an optimizer's parameter groups as training progresses.
///
/// A schedule sets each group's `learningRate` at construction (its value for epoch 0) and at
/// every ``step()``; call `step()` after the optimizer's `step()`, once per epoch or once per
/// batch as the schedule intends. Most schedules are recursive, as PyTorch's are: each step
/// scales the group's *current* learning rate, so changes made from outside (another schedule,
/// manual edits) compose.
///
/// State (hyperparameters and counters) is a small `Codable` value: ``state()`` and
/// ``load(_:)``. On resume, create the optimizer and the schedule, then load the optimizer's state
/// (it restores the learning rates), then the schedule's.
///
/// PyTorch parity: `torch.optim.lr_scheduler.LRScheduler` (`step()`, `get_last_lr()`,
/// `last_epoch`, `state_dict()`, `load_state_dict()`); the first schedule attached records each
/// group's `initial_lr`. The deprecated `step(epoch)` form is not provided.
///
/// See also: ``ScheduleBase`` (what the epoch-based schedules share), ``StepLR``, ``MultiStepLR``,
/// ``ExponentialLR``, ``CosineAnnealingLR``, ``LinearLR``, ``OneCycleLR``, ``ReduceLROnPlateau``.
public protocol LRScheduler: SavableSchedule {
    /// The optimizer whose learning rates this schedule sets.
    var optimizer: any Optimizer { get }

    /// Advances the schedule by one epoch (or batch) and sets the groups' learning rates.
    func step()

    /// The learning rates set by the last step (or by construction), one per group.
    ///
    /// PyTorch parity: `get_last_lr()`.
    var lastLearningRates: [Double] { get }

    /// Steps taken since construction (`last_epoch`): 0 right after construction.
    var lastEpoch: Int { get }
}

/// The counters every epoch-based schedule keeps.
///
/// PyTorch parity: `base_lrs`, `last_epoch`, `_step_count` and `_last_lr` of a scheduler's
/// `state_dict()`.
public struct ScheduleProgress: Codable, Sendable, Equatable {
    /// Each group's learning rate when the schedule was attached (`initial_lr`).
    public var baseLearningRates: [Double]
    /// Steps taken since construction.
    public var lastEpoch: Int
    /// Calls to `step`, counting the one made at construction.
    public var stepCount: Int
    /// The learning rates set last.
    public var lastLearningRates: [Double]

    /// Progress from its parts.
    public init(baseLearningRates: [Double], lastEpoch: Int, stepCount: Int, lastLearningRates: [Double]) {
        self.baseLearningRates = baseLearningRates
        self.lastEpoch = lastEpoch
        self.stepCount = stepCount
        self.lastLearningRates = lastLearningRates
    }

    enum CodingKeys: String, CodingKey {
        case baseLearningRates = "base_lrs", lastEpoch = "last_epoch", stepCount = "_step_count"
        case lastLearningRates = "_last_lr"
    }
}

/// Records each group's `initial_lr` (when no schedule did before) and returns them: a new
/// schedule's base learning rates, and its progress before the initial step.
func attach(_ optimizer: any Optimizer) -> ScheduleProgress {
    var base: [Double] = []
    for g in 0..<optimizer.parameterGroupCount {
        let initial = optimizer.initialLearningRate(group: g) ?? optimizer.learningRates[g]
        optimizer.setInitialLearningRate(initial, group: g)
        base.append(initial)
    }
    return ScheduleProgress(baseLearningRates: base, lastEpoch: -1, stepCount: 0, lastLearningRates: optimizer.learningRates)
}

// Access to group values that schedules need, usable on `any Optimizer`.
extension Optimizer {
    var parameterGroupCount: Int { parameterGroups.count }

    func initialLearningRate(group: Int) -> Double? { parameterGroups[group].initialLearningRate }

    func setInitialLearningRate(_ value: Double?, group: Int) { parameterGroups[group].initialLearningRate = value }

    var cycledMomenta: [Double?] { parameterGroups.map(\.options.cycledMomentum) }

    func setCycledMomentum(_ value: Double, group: Int) { parameterGroups[group].options.cycledMomentum = value }

    var supportsMomentumCycling: Bool { defaults.cycledMomentum != nil }
}
