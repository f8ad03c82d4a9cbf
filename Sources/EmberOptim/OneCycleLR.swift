import Foundation

/// The one-cycle policy: the learning rate rises from `maxLR / divFactor` to `maxLR`, then
/// anneals to `maxLR / divFactor / finalDivFactor`, over `totalSteps` steps (call `step()` once
/// per batch). Momentum (SGD's and RMSprop's `momentum`, Adam's `beta1`) cycles the other way,
/// between `maxMomentum` and `baseMomentum`, when `cycleMomentum` is on.
///
/// Phases (two by default; `threePhase` adds a symmetric descent before the final annealing):
/// ```
/// phase 1: steps 0 ... pctStart * totalSteps - 1      lr: initial -> max      momentum: max -> base
/// phase 2: ... totalSteps - 1                          lr: max -> min          momentum: base -> max
/// ```
/// where each phase interpolates with `pct = (step - phaseStart) / (phaseEnd - phaseStart)`:
/// cosine `end + (start - end) / 2 * (cos(pi * pct) + 1)` or linear `(end - start) * pct + start`.
///
/// PyTorch parity: `torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr, total_steps,
/// pct_start=0.3, anneal_strategy='cos', cycle_momentum=True, base_momentum=0.85,
/// max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False)`: same formulas
/// and order of operations, same errors (stepping past `totalSteps`, an optimizer without
/// momentum). As in PyTorch, cycling momentum on an SGD optimizer created without momentum turns
/// momentum on. Momentum bounds are one value for all groups (PyTorch also accepts a list).
///
/// See also: ``CosineAnnealingLR``, ``LRScheduler``.
public final class OneCycleLR: ScheduleBase<OneCycleLR.State> {
    /// How a phase interpolates.
    public enum AnnealStrategy: String, Codable, Sendable {
        case cos, linear
    }

    /// Hyperparameters and counters.
    public struct State: ScheduleState {
        /// Steps in the cycle.
        public var totalSteps: Int
        /// Fraction of the cycle spent increasing the learning rate.
        public var pctStart: Double
        /// Cosine or linear interpolation.
        public var annealStrategy: AnnealStrategy
        /// Whether momentum cycles.
        public var cycleMomentum: Bool
        /// Whether the schedule has three phases.
        public var threePhase: Bool
        /// Per group: the starting learning rate (`initial_lr`).
        public var initialLearningRates: [Double]
        /// Per group: the peak learning rate (`max_lr`).
        public var maxLearningRates: [Double]
        /// Per group: the final learning rate (`min_lr`).
        public var minLearningRates: [Double]
        /// Lowest momentum.
        public var baseMomentum: Double
        /// Highest momentum.
        public var maxMomentum: Double
        /// Counters and base learning rates.
        public var progress: ScheduleProgress
    }

    /// Steps in the cycle.
    public var totalSteps: Int { current.totalSteps }

    /// Attaches to `optimizer`, one peak learning rate per group, and sets the step-0 learning
    /// rates (`maxLRs[g] / divFactor`) and momenta (`maxMomentum`).
    ///
    /// - Parameters:
    ///   - maxLRs: peak learning rate of each group.
    ///   - totalSteps: steps in the cycle (epochs times steps per epoch).
    ///   - pctStart: fraction of the cycle spent increasing the learning rate.
    ///   - annealStrategy: cosine or linear interpolation.
    ///   - cycleMomentum: cycle momentum inversely to the learning rate.
    ///   - baseMomentum: lowest momentum (at the peak learning rate).
    ///   - maxMomentum: highest momentum (at the start and end).
    ///   - divFactor: initial learning rate is `maxLR / divFactor`.
    ///   - finalDivFactor: final learning rate is the initial one divided by this.
    ///   - threePhase: use the three-phase schedule.
    public init(_ optimizer: any Optimizer, maxLRs: [Double], totalSteps: Int, pctStart: Double = 0.3,
                annealStrategy: AnnealStrategy = .cos, cycleMomentum: Bool = true, baseMomentum: Double = 0.85,
                maxMomentum: Double = 0.95, divFactor: Double = 25, finalDivFactor: Double = 1e4, threePhase: Bool = false)
    {
        precondition(totalSteps > 0, "OneCycleLR: Expected positive integer total_steps, but got \(totalSteps)")
        precondition(pctStart >= 0 && pctStart <= 1,
                     "OneCycleLR: Expected float between 0 and 1 pct_start, but got \(pctStart)")
        let groups = optimizer.parameterGroupCount
        precondition(maxLRs.count == groups,
                     "OneCycleLR: max_lr must have the same length as optimizer.param_groups. max_lr has \(maxLRs.count) values, param_groups has \(groups).")
        precondition(!cycleMomentum || optimizer.supportsMomentumCycling,
                     "OneCycleLR: optimizer must support momentum or beta1 with `cycle_momentum` option enabled (\(optimizer.name) has neither; pass cycleMomentum: false)")
        let initialLRs = maxLRs.map { $0 / divFactor }
        for g in 0..<groups {
            optimizer.setInitialLearningRate(initialLRs[g], group: g)
            if cycleMomentum { optimizer.setCycledMomentum(maxMomentum, group: g) }
        }
        super.init(optimizer, State(totalSteps: totalSteps, pctStart: pctStart, annealStrategy: annealStrategy,
                                    cycleMomentum: cycleMomentum, threePhase: threePhase,
                                    initialLearningRates: initialLRs, maxLearningRates: maxLRs,
                                    minLearningRates: initialLRs.map { $0 / finalDivFactor },
                                    baseMomentum: baseMomentum, maxMomentum: maxMomentum, progress: attach(optimizer)))
    }

    /// One peak learning rate for every group.
    public convenience init(_ optimizer: any Optimizer, maxLR: Double, totalSteps: Int, pctStart: Double = 0.3,
                            annealStrategy: AnnealStrategy = .cos, cycleMomentum: Bool = true, baseMomentum: Double = 0.85,
                            maxMomentum: Double = 0.95, divFactor: Double = 25, finalDivFactor: Double = 1e4,
                            threePhase: Bool = false)
    {
        self.init(optimizer, maxLRs: Array(repeating: maxLR, count: optimizer.parameterGroupCount),
                  totalSteps: totalSteps, pctStart: pctStart, annealStrategy: annealStrategy, cycleMomentum: cycleMomentum,
                  baseMomentum: baseMomentum, maxMomentum: maxMomentum, divFactor: divFactor,
                  finalDivFactor: finalDivFactor, threePhase: threePhase)
    }

    /// A cycle of `epochs * stepsPerEpoch` steps.
    public convenience init(_ optimizer: any Optimizer, maxLR: Double, epochs: Int, stepsPerEpoch: Int,
                            pctStart: Double = 0.3, annealStrategy: AnnealStrategy = .cos, cycleMomentum: Bool = true,
                            baseMomentum: Double = 0.85, maxMomentum: Double = 0.95, divFactor: Double = 25,
                            finalDivFactor: Double = 1e4, threePhase: Bool = false)
    {
        precondition(epochs > 0, "OneCycleLR: Expected positive integer epochs, but got \(epochs)")
        precondition(stepsPerEpoch > 0, "OneCycleLR: Expected positive integer steps_per_epoch, but got \(stepsPerEpoch)")
        self.init(optimizer, maxLR: maxLR, totalSteps: epochs * stepsPerEpoch, pctStart: pctStart,
                  annealStrategy: annealStrategy, cycleMomentum: cycleMomentum, baseMomentum: baseMomentum,
                  maxMomentum: maxMomentum, divFactor: divFactor, finalDivFactor: finalDivFactor, threePhase: threePhase)
    }

    /// Which value a phase starts or ends at.
    private enum Anchor { case initial, max, min, baseMomentum, maxMomentum }

    private struct Phase {
        var endStep: Double
        var startLR: Anchor, endLR: Anchor
        var startMomentum: Anchor, endMomentum: Anchor
    }

    private var phases: [Phase] {
        let n = Double(totalSteps), pctStart = current.pctStart
        if current.threePhase {
            return [
                Phase(endStep: pctStart * n - 1, startLR: .initial, endLR: .max, startMomentum: .maxMomentum, endMomentum: .baseMomentum),
                Phase(endStep: 2 * pctStart * n - 2, startLR: .max, endLR: .initial, startMomentum: .baseMomentum, endMomentum: .maxMomentum),
                Phase(endStep: n - 1, startLR: .initial, endLR: .min, startMomentum: .maxMomentum, endMomentum: .maxMomentum),
            ]
        }
        return [
            Phase(endStep: pctStart * n - 1, startLR: .initial, endLR: .max, startMomentum: .maxMomentum, endMomentum: .baseMomentum),
            Phase(endStep: n - 1, startLR: .max, endLR: .min, startMomentum: .baseMomentum, endMomentum: .maxMomentum),
        ]
    }

    private func value(_ a: Anchor, group g: Int) -> Double {
        switch a {
        case .initial: current.initialLearningRates[g]
        case .max: current.maxLearningRates[g]
        case .min: current.minLearningRates[g]
        case .baseMomentum: current.baseMomentum
        case .maxMomentum: current.maxMomentum
        }
    }

    private func anneal(_ start: Double, _ end: Double, _ pct: Double) -> Double {
        switch current.annealStrategy {
        case .cos:
            let cosOut = cos(Double.pi * pct) + 1
            return end + (start - end) / 2.0 * cosOut
        case .linear:
            return (end - start) * pct + start
        }
    }

    override func learningRates(initial: Bool) -> [Double] {
        let stepNum = progress.lastEpoch
        precondition(stepNum <= totalSteps,
                     "OneCycleLR: Tried to step \(stepNum) times. The specified number of total steps is \(totalSteps)")
        let phases = self.phases
        var lrs: [Double] = []
        for g in 0..<optimizer.parameterGroupCount {
            var startStep = 0.0
            for (i, phase) in phases.enumerated() {
                guard Double(stepNum) <= phase.endStep || i == phases.count - 1 else {
                    startStep = phase.endStep
                    continue
                }
                precondition(phase.endStep != startStep,
                             "OneCycleLR: float division by zero (phase \(i + 1) has no steps with totalSteps \(totalSteps) and pctStart \(current.pctStart))")
                let pct = (Double(stepNum) - startStep) / (phase.endStep - startStep)
                lrs.append(anneal(value(phase.startLR, group: g), value(phase.endLR, group: g), pct))
                if current.cycleMomentum {
                    let m = anneal(value(phase.startMomentum, group: g), value(phase.endMomentum, group: g), pct)
                    optimizer.setCycledMomentum(m, group: g)
                }
                break
            }
        }
        return lrs
    }

    override func validated(_ state: State) throws(OptimizerStateError) -> State {
        let n = optimizer.parameterGroupCount
        for list in [state.initialLearningRates, state.maxLearningRates, state.minLearningRates] where list.count != n {
            throw .groupCountMismatch(expected: n, found: list.count)
        }
        return state
    }
}
