/// Reduces each group's learning rate by `factor` when a metric has stopped improving for more
/// than `patience` epochs.
///
/// Per call of ``step(metric:)``: the metric is better than the best so far when
/// `metric < best * (1 - threshold)` (mode `.min`, threshold mode `.rel`), `metric < best - threshold`
/// (`.min`, `.abs`), `metric > best * (1 + threshold)` (`.max`, `.rel`) or
/// `metric > best + threshold` (`.max`, `.abs`). After more than `patience` epochs without
/// improvement, each rate becomes `max(lr * factor, minLR)` (ignored when it changes by no more
/// than `eps`), then `cooldown` epochs pass before bad epochs count again.
///
/// PyTorch parity: `torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode='min', factor=0.1,
/// patience=10, threshold=1e-4, threshold_mode='rel', cooldown=0, min_lr=0, eps=1e-8)`, with its
/// errors ("Factor should be < 1.0.", a `min_lr` list of the wrong length, groups added after
/// construction with a `min_lr` list).
///
/// See also: ``LRScheduler``.
public final class ReduceLROnPlateau: SavableSchedule {
    /// Whether lower or higher metric values are better.
    public enum Mode: String, Codable, Sendable { case min, max }
    /// Whether `threshold` is relative to the best value or absolute.
    public enum ThresholdMode: String, Codable, Sendable { case rel, abs }

    /// Hyperparameters and counters. `best` is written as a string when infinite (`"inf"`).
    public struct State: Codable, Sendable, Equatable {
        /// Whether lower or higher metrics are better.
        public var mode: Mode
        /// Multiplies a learning rate on a reduction.
        public var factor: Double
        /// Bad epochs tolerated before a reduction.
        public var patience: Int
        /// Improvement needed to count as better.
        public var threshold: Double
        /// Relative or absolute threshold.
        public var thresholdMode: ThresholdMode
        /// Epochs to wait after a reduction.
        public var cooldown: Int
        /// Per group lower bounds (`min_lrs`).
        public var minLearningRates: [Double]
        /// The single `minLR` given at construction; `nil` when a per-group list was given.
        public var defaultMinLearningRate: Double?
        /// Smallest change worth making.
        public var eps: Double
        /// `best` as coded.
        var codedBest: SpelledNumber
        /// Epochs since the last improvement.
        public var numBadEpochs: Int
        /// Cooldown epochs left.
        public var cooldownCounter: Int
        /// Calls of `step(metric:)` so far.
        public var lastEpoch: Int
        /// The learning rates after the last step.
        public var lastLearningRates: [Double]

        /// Best metric so far.
        public var best: Double {
            get { codedBest.value }
            set { codedBest.value = newValue }
        }

        enum CodingKeys: String, CodingKey {
            case mode, factor, patience, threshold, thresholdMode = "threshold_mode", cooldown
            case minLearningRates = "min_lrs", defaultMinLearningRate = "default_min_lr", eps, codedBest = "best"
            case numBadEpochs = "num_bad_epochs", cooldownCounter = "cooldown_counter", lastEpoch = "last_epoch"
            case lastLearningRates = "_last_lr"
        }
    }

    /// The optimizer whose learning rates this schedule reduces.
    public let optimizer: any Optimizer
    /// The hyperparameters and counters.
    private var current: State

    /// Whether lower or higher metrics are better.
    public var mode: Mode { current.mode }
    /// Multiplies a learning rate on a reduction.
    public var factor: Double { current.factor }
    /// Bad epochs tolerated before a reduction.
    public var patience: Int { current.patience }
    /// Improvement needed to count as better.
    public var threshold: Double { current.threshold }
    /// Relative or absolute threshold.
    public var thresholdMode: ThresholdMode { current.thresholdMode }
    /// Epochs to wait after a reduction.
    public var cooldown: Int { current.cooldown }
    /// Smallest change worth making.
    public var eps: Double { current.eps }
    /// The best metric so far (`+inf` for `.min`, `-inf` for `.max` before the first step).
    public var best: Double { current.best }
    /// Epochs since the last improvement (reset during cooldown).
    public var numBadEpochs: Int { current.numBadEpochs }
    /// Epochs of cooldown left.
    public var cooldownCounter: Int { current.cooldownCounter }
    /// Calls of `step(metric:)` so far.
    public var lastEpoch: Int { current.lastEpoch }
    /// The learning rates after the last step. PyTorch parity: `get_last_lr()`.
    public var lastLearningRates: [Double] { current.lastLearningRates }

    /// Attaches to `optimizer` with one lower bound `minLR` for every group.
    ///
    /// - Parameters:
    ///   - mode: `.min` when lower metrics are better, `.max` otherwise.
    ///   - factor: multiplies the learning rate on a reduction; must be below 1.
    ///   - patience: bad epochs tolerated before a reduction.
    ///   - threshold: improvement needed to count as better.
    ///   - thresholdMode: `.rel` (relative to best) or `.abs`.
    ///   - cooldown: epochs to wait after a reduction.
    ///   - minLR: lower bound of every learning rate.
    ///   - eps: smallest change worth making.
    public convenience init(_ optimizer: any Optimizer, mode: Mode = .min, factor: Double = 0.1, patience: Int = 10,
                            threshold: Double = 1e-4, thresholdMode: ThresholdMode = .rel, cooldown: Int = 0,
                            minLR: Double = 0, eps: Double = 1e-8)
    {
        self.init(optimizer, mode: mode, factor: factor, patience: patience, threshold: threshold,
                  thresholdMode: thresholdMode, cooldown: cooldown, minLRs: nil, defaultMinLR: minLR, eps: eps)
    }

    /// Attaches to `optimizer` with one lower bound per group.
    public convenience init(_ optimizer: any Optimizer, mode: Mode = .min, factor: Double = 0.1, patience: Int = 10,
                            threshold: Double = 1e-4, thresholdMode: ThresholdMode = .rel, cooldown: Int = 0,
                            minLRs: [Double], eps: Double = 1e-8)
    {
        self.init(optimizer, mode: mode, factor: factor, patience: patience, threshold: threshold,
                  thresholdMode: thresholdMode, cooldown: cooldown, minLRs: minLRs, defaultMinLR: nil, eps: eps)
    }

    private init(_ optimizer: any Optimizer, mode: Mode, factor: Double, patience: Int, threshold: Double,
                 thresholdMode: ThresholdMode, cooldown: Int, minLRs: [Double]?, defaultMinLR: Double?, eps: Double)
    {
        precondition(factor < 1, "ReduceLROnPlateau: Factor should be < 1.0.")
        let groups = optimizer.parameterGroupCount
        if let minLRs {
            precondition(minLRs.count == groups, "ReduceLROnPlateau: expected \(groups) min_lrs, got \(minLRs.count)")
        }
        self.optimizer = optimizer
        current = State(mode: mode, factor: factor, patience: patience, threshold: threshold,
                        thresholdMode: thresholdMode, cooldown: cooldown,
                        minLearningRates: minLRs ?? Array(repeating: defaultMinLR ?? 0, count: groups),
                        defaultMinLearningRate: defaultMinLR, eps: eps,
                        codedBest: SpelledNumber(value: mode == .min ? .infinity : -.infinity), numBadEpochs: 0,
                        cooldownCounter: 0, lastEpoch: 0, lastLearningRates: optimizer.learningRates)
    }

    private func isBetter(_ a: Double, than best: Double) -> Bool {
        switch (mode, thresholdMode) {
        case (.min, .rel): a < best * (1.0 - threshold)
        case (.min, .abs): a < best - threshold
        case (.max, .rel): a > best * (threshold + 1.0)
        case (.max, .abs): a > best + threshold
        }
    }

    /// Records this epoch's `metric` and reduces the learning rates when it has not improved for
    /// more than `patience` epochs.
    public func step(metric: Double) {
        current.lastEpoch += 1
        if isBetter(metric, than: best) {
            current.best = metric
            current.numBadEpochs = 0
        } else {
            current.numBadEpochs += 1
        }
        if cooldownCounter > 0 {
            current.cooldownCounter -= 1
            current.numBadEpochs = 0
        }
        if numBadEpochs > patience {
            reduceLearningRates()
            current.cooldownCounter = cooldown
            current.numBadEpochs = 0
        }
        current.lastLearningRates = optimizer.learningRates
    }

    private func reduceLearningRates() {
        let groups = optimizer.parameterGroupCount
        if current.minLearningRates.count != groups {
            guard let d = current.defaultMinLearningRate else {
                preconditionFailure("ReduceLROnPlateau: The number of param groups in the `optimizer` (\(groups)) differs from when `ReduceLROnPlateau` was initialized (\(current.minLearningRates.count)), usually due to a new param group being added to the optimizer. Please modify the `min_lrs` field to match the length of the `optimizer` param groups.")
            }
            current.minLearningRates = Array(repeating: d, count: groups)
        }
        let minLRs = current.minLearningRates
        let lrs = optimizer.learningRates
        for g in 0..<groups {
            let old = lrs[g]
            let new = Swift.max(old * factor, minLRs[g])
            if old - new > eps { optimizer.setLearningRate(new, group: g) }
        }
    }

    /// Hyperparameters and counters.
    public func state() -> State { current }

    /// Restores hyperparameters and counters; the optimizer's learning rates are not changed.
    public func load(_ state: State) throws(OptimizerStateError) {
        let groups = optimizer.parameterGroupCount
        if state.defaultMinLearningRate == nil && state.minLearningRates.count != groups {
            throw .groupCountMismatch(expected: groups, found: state.minLearningRates.count)
        }
        current = state
    }
}

/// A number coded as JSON holds it whatever the coder's settings: infinities and NaN as the strings
/// `"inf"`, `"-inf"` and `"nan"`. NaN equals NaN, so a state equals its decoded copy.
struct SpelledNumber: Codable, Equatable, Sendable {
    var value: Double

    init(value: Double) { self.value = value }

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        guard case .number(let v) = try c.decode(OptimizerState.Hyperparameter.self) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "best must be a number")
        }
        value = v
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(OptimizerState.Hyperparameter.number(value))
    }

    static func == (a: Self, b: Self) -> Bool { a.value == b.value || (a.value.isNaN && b.value.isNaN) }
}
