import EmberNN
import EmberOptim
import Foundation

/// The range checks of a checkpoint's contents: everything read from a file is checked here, so
/// that a corrupted or hand-edited checkpoint is a ``CheckpointError``, never a trap later in
/// training.
extension Checkpoint {
    /// The largest epoch or step count a checkpoint may hold: counters beyond 2^53 are no real run,
    /// and the training loop must be able to keep counting from them.
    public static let maxCounter = 1 << 53

    /// Throws unless `value` (the metadata field `key`) is in `0...maxCounter`.
    static func checkCounter(_ value: Int, _ key: String, path: String) throws(CheckpointError) {
        guard value >= 0, value <= maxCounter else {
            throw .invalid(path: path, detail: "metadata \(key) must be a count in 0...\(maxCounter), found \(value)")
        }
    }

    /// Throws when two records name the same module, or a pinned module is recorded in another
    /// mode than its pin (a pin keeps its module in the pinned mode, so no real model has that).
    static func checkModes(_ records: [ModeRecord], path: String) throws(CheckpointError) {
        var seen = Set<String>()
        for r in records {
            guard seen.insert(r.path).inserted else {
                throw .invalid(path: path, detail: "metadata ember.modes: two records for the module path '\(r.path)'")
            }
            if let pin = r.pinnedMode, pin != r.mode {
                throw .invalid(path: path, detail: "metadata ember.modes: module '\(r.path)' is pinned to \(pin) but recorded in \(r.mode)")
            }
        }
    }

    /// Throws when ``modes`` do not describe exactly `module`'s modules; changes nothing.
    func checkModes(against module: Module) throws(CheckpointError) {
        try Self.checkModes(modes, path: "")
        let paths = Set(module.namedModules().map(\.path))
        guard paths == Set(modes.map(\.path)) else {
            // `restoreModes` checks the same thing first and throws its own error without changing anything.
            do { try module.restoreModes(modes) } catch { throw .modes(error) }
            throw .invalid(path: "", detail: "mode records do not match the model")
        }
    }

    /// Throws when the optimizer state's groups list a negative or repeated parameter index, when
    /// state is kept for a parameter no group lists, or when a buffer is not floating-point.
    static func checkOptimizer(_ state: OptimizerState, path: String) throws(CheckpointError) {
        var listed = Set<Int>()
        for (g, group) in state.groups.enumerated() {
            for i in group.parameterIndices {
                guard i >= 0, listed.insert(i).inserted else {
                    throw .invalid(path: path, detail: "metadata ember.optimizer: parameter group \(g) lists the parameter index \(i), which is negative or listed before")
                }
            }
        }
        for (index, parameter) in state.parameters.sorted(by: { $0.key < $1.key }) {
            guard listed.contains(index) else {
                throw .invalid(path: path, detail: "optimizer state for parameter \(index), which no parameter group of ember.optimizer lists")
            }
            for (name, t) in parameter.buffers.sorted(by: { $0.key < $1.key }) where !t.dtype.isFloatingPoint {
                throw .invalid(path: path, detail: "tensor 'optimizer.state.\(index).\(name)' is \(t.dtype), expected a floating-point tensor")
            }
        }
    }

    /// Throws unless `data` (the `ember.scheduler` metadata) is a JSON object; its fields are
    /// checked by ``restore(model:optimizer:scheduler:generator:)``, which knows the schedule type.
    static func checkScheduleJSON(_ data: Data, path: String) throws(CheckpointError) {
        guard (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
            throw .invalid(path: path, detail: "metadata ember.scheduler is not a JSON object")
        }
    }

    /// Why a decoded schedule state of a built-in schedule cannot be loaded or stepped, or `nil`.
    /// (The schedules' own `load` stops the program on some of these: a checkpoint must not.)
    static func scheduleProblem<State>(_ state: State) -> String? {
        func progress(_ p: ScheduleProgress) -> String? {
            guard p.lastEpoch >= -1, p.lastEpoch <= maxCounter else { return "lastEpoch \(p.lastEpoch) is out of range" }
            guard p.stepCount >= 0, p.stepCount <= maxCounter else { return "stepCount \(p.stepCount) is out of range" }
            return nil
        }
        switch state {
        case let s as StepLR.State:
            return s.stepSize > 0 ? progress(s.progress) : "stepSize must be positive, found \(s.stepSize)"
        case let s as MultiStepLR.State:
            return progress(s.progress)
        case let s as ExponentialLR.State:
            return progress(s.progress)
        case let s as CosineAnnealingLR.State:
            return s.tMax > 0 ? progress(s.progress) : "tMax must be positive, found \(s.tMax)"
        case let s as LinearLR.State:
            guard s.startFactor > 0, s.startFactor <= 1 else { return "startFactor must be in (0, 1], found \(s.startFactor)" }
            guard s.endFactor >= 0, s.endFactor <= 1 else { return "endFactor must be in [0, 1], found \(s.endFactor)" }
            return progress(s.progress)
        case let s as OneCycleLR.State:
            guard s.totalSteps > 0, s.totalSteps <= maxCounter else { return "totalSteps must be positive, found \(s.totalSteps)" }
            guard s.pctStart >= 0, s.pctStart <= 1 else { return "pctStart must be in [0, 1], found \(s.pctStart)" }
            guard s.progress.lastEpoch <= s.totalSteps else {
                return "lastEpoch \(s.progress.lastEpoch) is beyond totalSteps \(s.totalSteps)"
            }
            return progress(s.progress)
        case let s as ReduceLROnPlateau.State:
            guard s.factor < 1 else { return "factor must be below 1, found \(s.factor)" }
            for (name, v) in [("patience", s.patience), ("cooldown", s.cooldown), ("numBadEpochs", s.numBadEpochs),
                              ("cooldownCounter", s.cooldownCounter)] where v < 0 || v > maxCounter {
                return "\(name) must be a count in 0...\(maxCounter), found \(v)"
            }
            guard s.lastEpoch >= -1, s.lastEpoch <= maxCounter else { return "lastEpoch \(s.lastEpoch) is out of range" }
            return nil
        default:
            return nil
        }
    }
}
