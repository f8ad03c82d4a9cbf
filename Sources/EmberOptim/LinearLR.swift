/// Scales each group's learning rate by a factor that moves linearly from `startFactor` to
/// `endFactor` over `totalIters` epochs (a linear warm-up by default), then leaves it.
///
/// Epoch 0 multiplies the rate by `startFactor`; epoch `e` in `1...totalIters` multiplies the
/// current rate by
/// `1 + (endFactor - startFactor) / (totalIters * startFactor + (e - 1) * (endFactor - startFactor))`,
/// so that from a base rate `b` the rate is `b * (startFactor + (endFactor - startFactor) * e / totalIters)`.
///
/// PyTorch parity: `torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1/3,
/// end_factor=1.0, total_iters=5)` (recursive form, same order of operations), with its
/// validation errors.
///
/// See also: ``CosineAnnealingLR``, ``LRScheduler``.
public final class LinearLR: ScheduleBase<LinearLR.State> {
    /// Hyperparameters and counters.
    public struct State: ScheduleState {
        /// Factor at epoch 0.
        public var startFactor: Double
        /// Factor from epoch `totalIters` on.
        public var endFactor: Double
        /// Epochs over which the factor changes.
        public var totalIters: Int
        /// Counters and base learning rates.
        public var progress: ScheduleProgress
    }

    /// Factor at epoch 0.
    public var startFactor: Double { current.startFactor }
    /// Factor from epoch `totalIters` on.
    public var endFactor: Double { current.endFactor }
    /// Epochs over which the factor changes.
    public var totalIters: Int { current.totalIters }

    /// Attaches to `optimizer` and multiplies its learning rates by `startFactor`.
    public init(_ optimizer: any Optimizer, startFactor: Double = 1.0 / 3, endFactor: Double = 1, totalIters: Int = 5) {
        precondition(startFactor <= 1 && startFactor > 0,
                     "LinearLR: Starting multiplicative factor expected to be greater than 0 and less or equal to 1.")
        precondition(endFactor <= 1 && endFactor >= 0,
                     "LinearLR: Ending multiplicative factor expected to be between 0 and 1.")
        super.init(optimizer, State(startFactor: startFactor, endFactor: endFactor, totalIters: totalIters,
                                    progress: attach(optimizer)))
    }

    override func learningRates(initial: Bool) -> [Double] {
        let lrs = optimizer.learningRates
        let e = progress.lastEpoch
        if e == 0 { return lrs.map { $0 * startFactor } }
        if initial || e > totalIters { return lrs }
        let factor = 1.0 + (endFactor - startFactor)
            / (Double(totalIters) * startFactor + Double(e - 1) * (endFactor - startFactor))
        return lrs.map { $0 * factor }
    }
}
