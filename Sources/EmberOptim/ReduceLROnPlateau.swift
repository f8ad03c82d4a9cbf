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
        /// Best metric so far.
        public var best: Double
        /// Epochs since the last improvement.
        public var numBadEpochs: Int
        /// Cooldown epochs left.
        public var cooldownCounter: Int
        /// Calls of `step(metric:)` so far.
        public var lastEpoch: Int
        /// The learning rates after the last step.
        public var lastLearningRates: [Double]

        enum CodingKeys: String, CodingKey {
            case mode, factor, patience, threshold, thresholdMode = "threshold_mode", cooldown
            case minLearningRates = "min_lrs", defaultMinLearningRate = "default_min_lr", eps, best
            case numBadEpochs = "num_bad_epochs", cooldownCounter = "cooldown_counter", lastEpoch = "last_epoch"
            case lastLearningRates = "_last_lr"
        }

        init(_ s: ReduceLROnPlateau) {
            mode = s.mode; factor = s.factor; patience = s.patience; threshold = s.threshold
            thresholdMode = s.thresholdMode; cooldown = s.cooldown; minLearningRates = s.minLRs
            defaultMinLearningRate = s.defaultMinLR; eps = s.eps; best = s.best; numBadEpochs = s.numBadEpochs
            cooldownCounter = s.cooldownCounter; lastEpoch = s.lastEpoch; lastLearningRates = s.lastLearningRates
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            mode = try c.decode(Mode.self, forKey: .mode)
            factor = try c.decode(Double.self, forKey: .factor)
            patience = try c.decode(Int.self, forKey: .patience)
            threshold = try c.decode(Double.self, forKey: .threshold)
            thresholdMode = try c.decode(ThresholdMode.self, forKey: .thresholdMode)
            cooldown = try c.decode(Int.self, forKey: .cooldown)
            minLearningRates = try c.decode([Double].self, forKey: .minLearningRates)
            defaultMinLearningRate = try c.decodeIfPresent(Double.self, forKey: .defaultMinLearningRate)
            eps = try c.decode(Double.self, forKey: .eps)
            switch try c.decode(OptimizerState.Hyperparameter.self, forKey: .best) {
            case .number(let v): best = v
            default: throw DecodingError.dataCorruptedError(forKey: .best, in: c, debugDescription: "best must be a number")
            }
            numBadEpochs = try c.decode(Int.self, forKey: .numBadEpochs)
            cooldownCounter = try c.decode(Int.self, forKey: .cooldownCounter)
            lastEpoch = try c.decode(Int.self, forKey: .lastEpoch)
            lastLearningRates = try c.decode([Double].self, forKey: .lastLearningRates)
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(mode, forKey: .mode)
            try c.encode(factor, forKey: .factor)
            try c.encode(patience, forKey: .patience)
            try c.encode(threshold, forKey: .threshold)
            try c.encode(thresholdMode, forKey: .thresholdMode)
            try c.encode(cooldown, forKey: .cooldown)
            try c.encode(minLearningRates, forKey: .minLearningRates)
            try c.encodeIfPresent(defaultMinLearningRate, forKey: .defaultMinLearningRate)
            try c.encode(eps, forKey: .eps)
            try c.encode(OptimizerState.Hyperparameter.number(best), forKey: .best)
            try c.encode(numBadEpochs, forKey: .numBadEpochs)
            try c.encode(cooldownCounter, forKey: .cooldownCounter)
            try c.encode(lastEpoch, forKey: .lastEpoch)
            try c.encode(lastLearningRates, forKey: .lastLearningRates)
        }

        public static func == (a: State, b: State) -> Bool {
            a.mode == b.mode && a.factor == b.factor && a.patience == b.patience && a.threshold == b.threshold
                && a.thresholdMode == b.thresholdMode && a.cooldown == b.cooldown && a.minLearningRates == b.minLearningRates
                && a.defaultMinLearningRate == b.defaultMinLearningRate && a.eps == b.eps
                && (a.best == b.best || (a.best.isNaN && b.best.isNaN)) && a.numBadEpochs == b.numBadEpochs
                && a.cooldownCounter == b.cooldownCounter && a.lastEpoch == b.lastEpoch
                && a.lastLearningRates == b.lastLearningRates
        }
    }

    /// The optimizer whose learning rates this schedule reduces.
    public let optimizer: any Optimizer
    /// Whether lower or higher metrics are better.
    public private(set) var mode: Mode
    /// Multiplies a learning rate on a reduction.
    public private(set) var factor: Double
    /// Bad epochs tolerated before a reduction.
    public private(set) var patience: Int
    /// Improvement needed to count as better.
    public private(set) var threshold: Double
    /// Relative or absolute threshold.
    public private(set) var thresholdMode: ThresholdMode
    /// Epochs to wait after a reduction.
    public private(set) var cooldown: Int
    var minLRs: [Double]
    var defaultMinLR: Double?
    /// Smallest change worth making.
    public private(set) var eps: Double
    /// The best metric so far (`+inf` for `.min`, `-inf` for `.max` before the first step).
    public private(set) var best: Double
    /// Epochs since the last improvement (reset during cooldown).
    public private(set) var numBadEpochs = 0
    /// Epochs of cooldown left.
    public private(set) var cooldownCounter = 0
    /// Calls of `step(metric:)` so far.
    public private(set) var lastEpoch = 0
    /// The learning rates after the last step. PyTorch parity: `get_last_lr()`.
    public private(set) var lastLearningRates: [Double]

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
        self.mode = mode
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.thresholdMode = thresholdMode
        self.cooldown = cooldown
        self.minLRs = minLRs ?? Array(repeating: defaultMinLR ?? 0, count: groups)
        self.defaultMinLR = defaultMinLR
        self.eps = eps
        self.best = mode == .min ? .infinity : -.infinity
        self.lastLearningRates = optimizer.learningRates
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
        lastEpoch += 1
        if isBetter(metric, than: best) {
            best = metric
            numBadEpochs = 0
        } else {
            numBadEpochs += 1
        }
        if cooldownCounter > 0 {
            cooldownCounter -= 1
            numBadEpochs = 0
        }
        if numBadEpochs > patience {
            reduceLearningRates()
            cooldownCounter = cooldown
            numBadEpochs = 0
        }
        lastLearningRates = optimizer.learningRates
    }

    private func reduceLearningRates() {
        let groups = optimizer.parameterGroupCount
        if minLRs.count != groups {
            guard let d = defaultMinLR else {
                preconditionFailure("ReduceLROnPlateau: The number of param groups in the `optimizer` (\(groups)) differs from when `ReduceLROnPlateau` was initialized (\(minLRs.count)), usually due to a new param group being added to the optimizer. Please modify the `min_lrs` field to match the length of the `optimizer` param groups.")
            }
            minLRs = Array(repeating: d, count: groups)
        }
        let lrs = optimizer.learningRates
        for g in 0..<groups {
            let old = lrs[g]
            let new = Swift.max(old * factor, minLRs[g])
            if old - new > eps { optimizer.setLearningRate(new, group: g) }
        }
    }

    /// Hyperparameters and counters.
    public func state() -> State { State(self) }

    /// Restores hyperparameters and counters; the optimizer's learning rates are not changed.
    public func load(_ state: State) throws(OptimizerStateError) {
        let groups = optimizer.parameterGroupCount
        if state.defaultMinLearningRate == nil && state.minLearningRates.count != groups {
            throw .groupCountMismatch(expected: groups, found: state.minLearningRates.count)
        }
        mode = state.mode; factor = state.factor; patience = state.patience; threshold = state.threshold
        thresholdMode = state.thresholdMode; cooldown = state.cooldown; minLRs = state.minLearningRates
        defaultMinLR = state.defaultMinLearningRate; eps = state.eps; best = state.best
        numBadEpochs = state.numBadEpochs; cooldownCounter = state.cooldownCounter; lastEpoch = state.lastEpoch
        lastLearningRates = state.lastLearningRates
    }
}
