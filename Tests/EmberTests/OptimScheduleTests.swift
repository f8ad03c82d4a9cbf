import Ember
import Foundation
import Testing
import _EmberTestSupport

/// A number or a list of numbers (PyTorch's `max_lr`, `min_lr`).
enum NumberOrList: Decodable, Sendable {
    case one(Double), many([Double])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let d = try? c.decode(Double.self) { self = .one(d) } else { self = .many(try c.decode([Double].self)) }
    }
}

/// A schedule's keyword arguments with PyTorch's defaults filled in (PyTorch's names).
struct ScheduleArguments: Decodable, Sendable {
    var step_size: Int?
    var gamma: Double?
    var milestones: [Int]?
    var T_max: Int?
    var eta_min: Double?
    var start_factor: Double?
    var end_factor: Double?
    var total_iters: Int?
    var max_lr: NumberOrList?
    var total_steps: Int?
    var pct_start: Double?
    var anneal_strategy: String?
    var cycle_momentum: Bool?
    var base_momentum: Double?
    var max_momentum: Double?
    var div_factor: Double?
    var final_div_factor: Double?
    var three_phase: Bool?
    var mode: String?
    var factor: Double?
    var patience: Int?
    var threshold: Double?
    var threshold_mode: String?
    var cooldown: Int?
    var min_lr: NumberOrList?
    var eps: Double?
}

struct ScheduleSpec: Decodable, Sendable {
    var `class`: String
    var kwargs: [String: NumberOrListOrOther]
    var resolved: ScheduleArguments
}

/// Any JSON value (only its presence matters: empty kwargs means "all defaults").
struct NumberOrListOrOther: Decodable, Sendable {
    init(from decoder: any Decoder) throws {}
}

struct ScheduleConfig: Decodable, CustomTestStringConvertible, Sendable {
    var name: String
    var optimizer: String
    var optimizer_kwargs: [String: Double]
    var group_lrs: [Double]
    var schedulers: [ScheduleSpec]
    var testDescription: String { name }

    static let all: [ScheduleConfig] = try! JSONDecoder().decode(
        [ScheduleConfig].self, from: Data(Fixture("optim_schedules").metadata["configs"]!.utf8))

    /// A fresh optimizer with two groups at `group_lrs`.
    func makeOptimizer() -> any Optimizer {
        let a = [Parameter(Tensor.zeros([2]))], b = [Parameter(Tensor.zeros([3]))]
        let momentum = optimizer_kwargs["momentum"] ?? 0
        switch optimizer {
        case "SGD":
            let o = SGD(a, lr: group_lrs[0], momentum: momentum)
            o.addParameterGroup(b) { $0.learningRate = group_lrs[1] }
            return o
        case "Adam":
            let o = Adam(a, lr: group_lrs[0])
            o.addParameterGroup(b) { $0.learningRate = group_lrs[1] }
            return o
        case "RMSprop":
            let o = RMSprop(a, lr: group_lrs[0], momentum: momentum)
            o.addParameterGroup(b) { $0.learningRate = group_lrs[1] }
            return o
        default:
            let o = Adagrad(a, lr: group_lrs[0])
            o.addParameterGroup(b) { $0.learningRate = group_lrs[1] }
            return o
        }
    }
}

/// A schedule behind closures: step, and state through JSON (as a checkpoint would hold it).
struct AnySchedule {
    var step: (Double) -> Void
    var save: () throws -> Data
    var load: (Data) throws -> Void
    var lastLearningRates: () -> [Double]
}

func wrap<S: LRScheduler>(_ s: S) -> AnySchedule {
    AnySchedule(step: { _ in s.step() }, save: { try JSONEncoder().encode(s.state()) },
                load: { try s.load(JSONDecoder().decode(S.State.self, from: $0)) },
                lastLearningRates: { s.lastLearningRates })
}

func wrap(_ s: ReduceLROnPlateau) -> AnySchedule {
    AnySchedule(step: { s.step(metric: $0) }, save: { try JSONEncoder().encode(s.state()) },
                load: { try s.load(JSONDecoder().decode(ReduceLROnPlateau.State.self, from: $0)) },
                lastLearningRates: { s.lastLearningRates })
}

/// Builds `spec` on `optimizer` from PyTorch's resolved arguments; with `defaults`, passes only
/// what PyTorch was given (so Swift's defaults are used for the rest).
func makeSchedule(_ spec: ScheduleSpec, _ optimizer: any Optimizer, defaults: Bool = false) -> AnySchedule {
    let r = spec.resolved
    switch spec.class {
    case "StepLR": return wrap(StepLR(optimizer, stepSize: r.step_size!, gamma: r.gamma!))
    case "MultiStepLR": return wrap(MultiStepLR(optimizer, milestones: r.milestones!, gamma: r.gamma!))
    case "ExponentialLR": return wrap(ExponentialLR(optimizer, gamma: r.gamma!))
    case "CosineAnnealingLR": return wrap(CosineAnnealingLR(optimizer, tMax: r.T_max!, etaMin: r.eta_min!))
    case "LinearLR":
        if defaults { return wrap(LinearLR(optimizer)) }
        return wrap(LinearLR(optimizer, startFactor: r.start_factor!, endFactor: r.end_factor!, totalIters: r.total_iters!))
    case "OneCycleLR":
        let strategy: OneCycleLR.AnnealStrategy = r.anneal_strategy == "linear" ? .linear : .cos
        switch r.max_lr! {
        case .one(let maxLR):
            if defaults { return wrap(OneCycleLR(optimizer, maxLR: maxLR, totalSteps: r.total_steps!)) }
            return wrap(OneCycleLR(optimizer, maxLR: maxLR, totalSteps: r.total_steps!, pctStart: r.pct_start!,
                                   annealStrategy: strategy, cycleMomentum: r.cycle_momentum!,
                                   baseMomentum: r.base_momentum!, maxMomentum: r.max_momentum!,
                                   divFactor: r.div_factor!, finalDivFactor: r.final_div_factor!, threePhase: r.three_phase!))
        case .many(let maxLRs):
            return wrap(OneCycleLR(optimizer, maxLRs: maxLRs, totalSteps: r.total_steps!, pctStart: r.pct_start!,
                                   annealStrategy: strategy, cycleMomentum: r.cycle_momentum!,
                                   baseMomentum: r.base_momentum!, maxMomentum: r.max_momentum!,
                                   divFactor: r.div_factor!, finalDivFactor: r.final_div_factor!, threePhase: r.three_phase!))
        }
    case "ReduceLROnPlateau":
        if defaults { return wrap(ReduceLROnPlateau(optimizer)) }
        let mode: ReduceLROnPlateau.Mode = r.mode == "max" ? .max : .min
        let tm: ReduceLROnPlateau.ThresholdMode = r.threshold_mode == "abs" ? .abs : .rel
        switch r.min_lr! {
        case .one(let minLR):
            return wrap(ReduceLROnPlateau(optimizer, mode: mode, factor: r.factor!, patience: r.patience!,
                                          threshold: r.threshold!, thresholdMode: tm, cooldown: r.cooldown!,
                                          minLR: minLR, eps: r.eps!))
        case .many(let minLRs):
            return wrap(ReduceLROnPlateau(optimizer, mode: mode, factor: r.factor!, patience: r.patience!,
                                          threshold: r.threshold!, thresholdMode: tm, cooldown: r.cooldown!,
                                          minLRs: minLRs, eps: r.eps!))
        }
    default:
        preconditionFailure("unknown schedule \(spec.class)")
    }
}

/// Each group's cycled momentum (NaN where the optimizer has none).
func momenta(_ o: any Optimizer) -> [Double] {
    if let s = o as? SGD { return s.parameterGroups.map(\.momentum) }
    if let s = o as? RMSprop { return s.parameterGroups.map(\.momentum) }
    if let s = o as? Adam { return s.parameterGroups.map(\.betas.0) }
    return o.learningRates.map { _ in .nan }
}

/// Every schedule's learning rates (and cycled momenta) over 30 steps against PyTorch.
@Suite struct OptimScheduleTests {
    let fx = try! Fixture("optim_schedules")

    var metrics: [Double] { fx["metrics"].scalars(as: Double.self) }

    func row(_ key: String, _ i: Int) -> [Double] {
        let t = fx[key]
        return Array(t.scalars(as: Double.self)[i * t.shape[1]..<(i + 1) * t.shape[1]])
    }

    /// Runs the configuration, optionally stopping after `resumeAfter` steps to save everything,
    /// rebuild it and load it back; returns the learning rates and momenta after construction and
    /// after each step.
    func run(_ cfg: ScheduleConfig, defaults: Bool = false, resumeAfter: Int? = nil) throws -> ([[Double]], [[Double]]) {
        var optimizer = cfg.makeOptimizer()
        var schedules = cfg.schedulers.map { makeSchedule($0, optimizer, defaults: defaults) }
        var lrs = [optimizer.learningRates], moms = [momenta(optimizer)]
        let steps = fx.metadata["steps"].flatMap { Int($0) } ?? 30
        for step in 0..<steps {
            if step == resumeAfter {
                let optimizerState = try roundTrip(optimizer.state())
                let saved = try schedules.map { try $0.save() }
                optimizer = cfg.makeOptimizer()
                schedules = cfg.schedulers.map { makeSchedule($0, optimizer, defaults: defaults) }
                try optimizer.load(optimizerState)
                for (s, data) in zip(schedules, saved) { try s.load(data) }
            }
            for s in schedules { s.step(metrics[step]) }
            #expect(schedules.last!.lastLearningRates() == optimizer.learningRates)
            lrs.append(optimizer.learningRates)
            moms.append(momenta(optimizer))
        }
        return (lrs, moms)
    }

    func expectMatches(_ cfg: ScheduleConfig, _ lrs: [[Double]], _ moms: [[Double]], _ what: String,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        for i in lrs.indices {
            #expect(lrs[i] == row("\(cfg.name)/lr", i), "\(cfg.name) \(what): learning rates after step \(i)",
                    sourceLocation: sourceLocation)
            let expected = row("\(cfg.name)/momentum", i)
            let same = zip(moms[i], expected).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
            #expect(same, "\(cfg.name) \(what): momenta after step \(i): \(moms[i]) vs \(expected)", sourceLocation: sourceLocation)
        }
    }

    /// Exactly PyTorch's values (same formulas, same order of operations, same libm).
    @Test(arguments: ScheduleConfig.all)
    func learningRatesMatchPyTorch(_ cfg: ScheduleConfig) throws {
        let (lrs, moms) = try run(cfg)
        expectMatches(cfg, lrs, moms, "")
        // The sequence is not flat (a test that cannot fail is a defect).
        #expect(Set(lrs.map { $0[0] }).count > 1 || cfg.name == "plateau_default")
    }

    /// Swift's defaults give PyTorch's sequence where PyTorch was given no arguments.
    @Test(arguments: ScheduleConfig.all.filter { cfg in
        cfg.schedulers.allSatisfy { Set($0.kwargs.keys).isSubset(of: ["max_lr", "total_steps"]) }
    })
    func defaultsMatchPyTorch(_ cfg: ScheduleConfig) throws {
        let (lrs, moms) = try run(cfg, defaults: true)
        expectMatches(cfg, lrs, moms, "with defaults")
    }

    /// Saving optimizer and schedule state mid-way, rebuilding and loading continues exactly.
    @Test(arguments: ScheduleConfig.all)
    func resumeContinuesExactly(_ cfg: ScheduleConfig) throws {
        let (lrs, moms) = try run(cfg, resumeAfter: 13)
        expectMatches(cfg, lrs, moms, "resumed after 13 steps")
    }

    @Test func cosineAnnealingFollowsTheClosedFormOverPeriods() {
        let o = SGD([Parameter(Tensor.zeros([1]))], lr: 0.1)
        let s = CosineAnnealingLR(o, tMax: 4, etaMin: 0.01)
        for epoch in 1...24 {
            s.step()
            let closed = 0.01 + (0.1 - 0.01) * (1 + cos(Double.pi * Double(epoch) / 4)) / 2
            #expect(abs(o.learningRates[0] - closed) < 1e-12, "epoch \(epoch)")
        }
    }

    @Test func firstScheduleRecordsInitialLearningRate() {
        let o = Adam([Parameter(Tensor.zeros([1]))], lr: 0.2)
        let warmup = LinearLR(o, startFactor: 0.5, totalIters: 2)
        #expect(o.parameterGroups[0].initialLearningRate == 0.2)
        #expect(o.learningRates == [0.1])
        let decay = ExponentialLR(o, gamma: 0.5)
        #expect(o.parameterGroups[0].initialLearningRate == 0.2, "a second schedule keeps the first initial_lr")
        #expect(decay.state().progress.baseLearningRates == [0.2])
        #expect(warmup.lastEpoch == 0 && decay.lastEpoch == 0)
    }

    @Test func oneCycleStopsOneStepPastTotalSteps() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let s = OneCycleLR(SGD([Parameter(Tensor.zeros([1]))], lr: 0.1), maxLR: 1, totalSteps: 3)
            for _ in 0..<4 { s.step() }
        }
        #if DEBUG
            #expect(standardErrorText(result).contains("Tried to step 4 times. The specified number of total steps is 3"))
        #endif
    }

    @Test func plateauStateWritesInfinityAsString() throws {
        let s = ReduceLROnPlateau(SGD([Parameter(Tensor.zeros([1]))], lr: 0.1), mode: .max)
        let data = try JSONEncoder().encode(s.state())
        #expect(String(decoding: data, as: UTF8.self).contains(#""best":"-inf""#))
        let back = try JSONDecoder().decode(ReduceLROnPlateau.State.self, from: data)
        #expect(back == s.state())
    }

    @Test func scheduleLoadRejectsOtherGroupCounts() throws {
        let one = SGD([Parameter(Tensor.zeros([1]))], lr: 0.1)
        let two = SGD([Parameter(Tensor.zeros([1]))], lr: 0.1)
        two.addParameterGroup([Parameter(Tensor.zeros([1]))])
        let state = StepLR(two, stepSize: 2).state()
        let s = StepLR(one, stepSize: 2)
        #expect(throws: OptimizerStateError.groupCountMismatch(expected: 1, found: 2)) { try s.load(state) }
    }
}
