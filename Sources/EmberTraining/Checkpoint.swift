import EmberData
import EmberIO
import EmberNN
import EmberOptim
import Foundation
import EmberFunctional
import EmberAutograd
import EmberTensor
import EmberStorage

/// Everything needed to resume training exactly: the model's state dict, the optimizer's state,
/// the learning-rate schedule's state, the random generator's state, the epoch and step counters,
/// and every module's mode and pin, in one safetensors file.
///
/// Layout: tensors `model.<key>` (the model's state-dict keys, so the file also loads as plain
/// weights after stripping the prefix) and `optimizer.<key>`; everything else is JSON in the
/// file's `__metadata__` under `ember.*` keys, plus caller metadata under `user.*`.
///
/// PyTorch parity: PyTorch leaves checkpoint contents to the user (`torch.save({...})`) and never
/// saves modes; Ember's file holds all of it, so resuming continues bitwise identically.
public struct Checkpoint {
    public static let formatVersion = "1"

    public var model: StateDict
    public var optimizer: OptimizerState?
    /// The schedule's state, JSON-encoded (any `LRScheduler.State`).
    public var scheduler: Data?
    public var generator: Generator.State?
    /// Completed epochs.
    public var epoch: Int
    /// Completed optimizer steps.
    public var step: Int
    public var modes: [ModeRecord]
    /// A fit's per-epoch history and, when written mid-epoch, where the epoch stopped
    /// (``Trainer/fit(_:validation:options:scheduler:generator:resumingFrom:shouldStop:onBatch:onEpoch:)``).
    public var progress: TrainingProgress?
    /// Caller data (for example the command-line settings that built the model).
    public var metadata: [String: String]

    public init(model: StateDict, optimizer: OptimizerState? = nil, scheduler: Data? = nil,
                generator: Generator.State? = nil, epoch: Int = 0, step: Int = 0, modes: [ModeRecord] = [],
                progress: TrainingProgress? = nil, metadata: [String: String] = [:]) {
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.generator = generator
        self.epoch = epoch
        self.step = step
        self.modes = modes
        self.progress = progress
        self.metadata = metadata
    }

    /// Captures a model (state and modes), and optionally an optimizer, schedule and generator.
    public init<S: SavableSchedule>(model module: Module, optimizer: (any Optimizer)?, scheduler: S?,
                                generator: Generator?, epoch: Int, step: Int, progress: TrainingProgress? = nil,
                                metadata: [String: String] = [:]) {
        self.init(model: module.stateDict(), optimizer: optimizer?.state(),
                  scheduler: scheduler.map { Self.encodeSchedule($0) },
                  generator: generator?.state, epoch: epoch, step: step, modes: module.modeRecords(),
                  progress: progress, metadata: metadata)
    }

    /// A schedule's state as checkpoint metadata: JSON with sorted keys (the same bytes on every
    /// run; Foundation's key order otherwise varies between processes) and non-finite numbers as
    /// strings (plain JSON cannot hold them).
    public static func encodeSchedule<S: SavableSchedule>(_ scheduler: S) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do { return try encoder.encode(scheduler.state()) } catch {
            preconditionFailure("Checkpoint.encodeSchedule: \(type(of: scheduler)) state is not encodable: \(error)")
        }
    }

    private static func scheduleDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }

    /// Writes the checkpoint atomically (temporary file in the same folder, then rename), so a
    /// crash never leaves a half-written file over a good one.
    public func write(to path: String) throws(CheckpointError) {
        var tensors: [(String, Tensor)] = model.map { ("model.\($0.key)", $0.value) }
        var meta: [String: String] = ["ember.checkpoint": Self.formatVersion,
                                      "ember.epoch": String(epoch), "ember.step": String(step)]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            meta["ember.modes"] = String(decoding: try encoder.encode(modes), as: UTF8.self)
            if let optimizer {
                meta["ember.optimizer"] = String(decoding: try encoder.encode(optimizer.header), as: UTF8.self)
                tensors += optimizer.tensors().sorted { $0.key < $1.key }.map { ("optimizer.\($0.key)", $0.value) }
            }
            if let generator { meta["ember.generator"] = String(decoding: try encoder.encode(generator), as: UTF8.self) }
            if let progress {
                // Losses may be NaN or infinite (validation data with --allow-non-finite): strings, as in schedules.
                let progressEncoder = JSONEncoder()
                progressEncoder.outputFormatting = [.sortedKeys]
                progressEncoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
                meta["ember.progress"] = String(decoding: try progressEncoder.encode(progress), as: UTF8.self)
            }
        } catch {
            throw .invalid(path: path, detail: "could not encode: \(error)")
        }
        if let scheduler { meta["ember.scheduler"] = String(decoding: scheduler, as: UTF8.self) }
        for (k, v) in metadata { meta["user.\(k)"] = v }
        do { try Safetensors.write(tensors, metadata: meta, to: path) } catch { throw .file(error) }
    }

    /// Reads a checkpoint written by ``write(to:)``.
    public static func read(from path: String) throws(CheckpointError) -> Checkpoint {
        let contents: Safetensors.Contents
        do { contents = try Safetensors.read(contentsOf: path) } catch { throw .file(error) }
        return try decode(contents, path: path)
    }

    /// Decodes a checkpoint image held in memory (the bytes of a file ``write(to:)`` wrote);
    /// `path` is only used in errors.
    public static func decode(_ data: Data, path: String = "<memory>") throws(CheckpointError) -> Checkpoint {
        let contents: Safetensors.Contents
        do { contents = try Safetensors.decode(data, path: path) } catch { throw .file(error) }
        return try decode(contents, path: path)
    }

    private static func decode(_ contents: Safetensors.Contents, path: String) throws(CheckpointError) -> Checkpoint {
        let meta = contents.metadata
        guard let version = meta["ember.checkpoint"] else {
            throw .invalid(path: path, detail: "not an Ember checkpoint (no ember.checkpoint metadata); for plain weights use Module.loadSafetensors")
        }
        guard version == formatVersion else { throw .invalid(path: path, detail: "unsupported checkpoint version \(version)") }
        func decode<T: Decodable>(_ type: T.Type, _ key: String) throws(CheckpointError) -> T? {
            guard let text = meta[key] else { return nil }
            do { return try JSONDecoder().decode(T.self, from: Data(text.utf8)) } catch {
                throw .invalid(path: path, detail: "metadata \(key) is not valid: \(error)")
            }
        }
        guard let epoch = meta["ember.epoch"].flatMap(Int.init), let step = meta["ember.step"].flatMap(Int.init) else {
            throw .invalid(path: path, detail: "missing or invalid ember.epoch / ember.step")
        }
        try checkCounter(epoch, "ember.epoch", path: path)
        try checkCounter(step, "ember.step", path: path)
        var model = StateDict()
        var optimizerTensors: [String: Tensor] = [:]
        for name in contents.names {
            if name.hasPrefix("model.") { model[String(name.dropFirst(6))] = contents.tensors[name] }
            else if name.hasPrefix("optimizer.") { optimizerTensors[String(name.dropFirst(10))] = contents.tensors[name] }
            else { throw .invalid(path: path, detail: "unexpected tensor '\(name)'") }
        }
        var optimizer: OptimizerState?
        if let header = try decode(OptimizerState.Header.self, "ember.optimizer") {
            do { optimizer = try OptimizerState(header: header, tensors: optimizerTensors) } catch {
                throw .invalid(path: path, detail: "optimizer state: \(error)")
            }
        }
        if let optimizer { try checkOptimizer(optimizer, path: path) }
        let modes = try decode([ModeRecord].self, "ember.modes") ?? []
        try checkModes(modes, path: path)
        let scheduler = meta["ember.scheduler"].map { Data($0.utf8) }
        if let scheduler { try checkScheduleJSON(scheduler, path: path) }
        var progress: TrainingProgress?
        if let text = meta["ember.progress"] {
            do { progress = try scheduleDecoder().decode(TrainingProgress.self, from: Data(text.utf8)) } catch {
                throw .invalid(path: path, detail: "metadata ember.progress is not valid: \(error)")
            }
        }
        if let problem = progress?.problems(completedEpochs: epoch).first {
            throw .invalid(path: path, detail: "metadata ember.progress does not fit: \(problem)")
        }
        var user: [String: String] = [:]
        for (k, v) in meta where k.hasPrefix("user.") { user[String(k.dropFirst(5))] = v }
        return Checkpoint(model: model, optimizer: optimizer, scheduler: scheduler,
                          generator: try decode(Generator.State.self, "ember.generator"), epoch: epoch, step: step,
                          modes: modes, progress: progress, metadata: user)
    }

    /// Restores the model's weights and modes (and, when given, the optimizer's, the schedule's
    /// and the generator's state). Everything is checked before anything changes: when it throws,
    /// the model (weights, buffers, modes, pins), the optimizer, the schedule and the generator
    /// are as they were.
    ///
    /// The weights (keys, shapes, dtypes), the mode records (one per module path) and the
    /// schedule's state (it decodes, and its values are in range for the built-in schedules) are
    /// checked without changing anything; the optimizer and the schedule load atomically, and
    /// a schedule that refuses its state after the optimizer took its own puts the optimizer's
    /// previous state back.
    public func restore<S: SavableSchedule>(model module: Module, optimizer: (any Optimizer)?, scheduler: S?,
                                        generator: Generator?) throws(CheckpointError) {
        do { try module.validateStateDict(model) } catch { throw .stateDict(error) }
        try checkModes(against: module)
        var scheduleState: S.State?
        if let scheduler, let data = self.scheduler {
            do { scheduleState = try Self.scheduleDecoder().decode(S.State.self, from: data) } catch {
                throw .invalid(path: "", detail: "schedule state: \(error)")
            }
            if let state = scheduleState, let problem = Self.scheduleProblem(state) {
                throw .invalid(path: "", detail: "schedule state of \(type(of: scheduler)): \(problem)")
            }
        }
        let previousOptimizerState = optimizer?.state()
        if let optimizer, let state = self.optimizer {
            do { try optimizer.load(state) } catch { throw .optimizer(error) }
        }
        if let scheduler, let state = scheduleState {
            do { try scheduler.load(state) } catch {
                if let optimizer, let previousOptimizerState { try? optimizer.load(previousOptimizerState) }
                throw .invalid(path: "", detail: "schedule state: \(error)")
            }
        }
        // Checked above: these cannot fail.
        do { try module.loadStateDict(model) } catch { throw .stateDict(error) }
        do { try module.restoreModes(modes) } catch { throw .modes(error) }
        if let generator, let state = self.generator { generator.state = state }
    }
}

/// Why a checkpoint could not be written, read or restored.
public enum CheckpointError: Error, CustomStringConvertible {
    case file(SafetensorsError)
    case invalid(path: String, detail: String)
    case stateDict(StateDictError)
    case modes(ModeRestoreError)
    case optimizer(OptimizerStateError)

    public var description: String {
        switch self {
        case .file(let e): e.description
        case .invalid(let path, let detail): path.isEmpty ? "invalid checkpoint: \(detail)" : "invalid checkpoint '\(path)': \(detail)"
        case .stateDict(let e): e.description
        case .modes(let e): e.description
        case .optimizer(let e): "optimizer state does not fit: \(e.description)"
        }
    }
}
