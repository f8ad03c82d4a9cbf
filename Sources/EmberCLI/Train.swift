import ArgumentParser
import Ember
import Foundation

/// `ember train`: trains the seed-style network on the embedded digits (or a data file), with
/// validation in eval mode after every epoch, a checkpoint after every epoch, and `report.html`.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train Linear -> ReLU -> BatchNorm1d -> Dropout -> Linear on the embedded digits (or your data).",
        discussion: """
        Prints one line per epoch (a progress bar on a terminal), validates in eval mode after each epoch, \
        and writes <output>/checkpoint.safetensors (model, optimizer, schedule, generator, modes, history) \
        after every epoch (see --checkpoint-every) and <output>/report.html (loss and accuracy charts, \
        including what validation would have shown had eval() been forgotten).

        Batches of one sample: BatchNorm cannot train on one sample, so a final training batch of one \
        sample is dropped each epoch, and the forgotten-eval measurement (a copy of the model in training \
        mode) merges a final one-sample validation batch into the batch before it.

        Ctrl-C (SIGINT) or SIGTERM finishes the current step, writes a checkpoint and exits with 130 / 143; \
        'ember train --resume <output>' then continues the run and ends exactly as an uninterrupted run. \
        A loss that becomes NaN or infinite stops training (exit 1) and keeps the last good checkpoint.

        Data-parallel: 'mpirun -n N ember train --distributed ...' (an ember built with 'swift build \
        --traits MPI') trains on N processes: every rank loads the same data and draws the same batches, \
        trains on its 1/N of each batch with BatchNorms synchronized over the global batch, and gradients \
        are averaged before each step, so the run follows the single-process run (dropout masks differ per \
        rank). Rank 0 alone prints and writes the checkpoint and report; --resume works on any number of ranks.
        """)

    @Option(help: "Training epochs (default 30).") var epochs: Int?
    @Option(help: "Samples per batch (default 64; at least 2 for --model mlp).") var batchSize: Int?
    @Option(help: "Learning rate (default 0.01; 0.05 for --model cnn, 0.005 for --model transformer).") var learningRate: Double?
    @Option(help: "Optimizer: \(OptimizerKind.allCases.map(\.rawValue).joined(separator: ", ")) (default adam).") var optimizer: OptimizerKind?
    @Option(help: "Learning-rate schedule over the epochs: cosine (annealed to 0; the default) or constant.") var schedule: ScheduleKind?
    @Option(help: "Seed for the split, initial weights, shuffling and dropout (default 0).") var seed: UInt64?
    @Option(help: "Hidden width (default 128; --model cnn has hidden / 4 channels).") var hidden: Int?
    @Option(help: "Dropout probability after the BatchNorm (default 0.5; 0.1 for the channels of --model cnn and inside --model transformer).") var dropout: Double?
    @Option(help: "Model: \(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")) (default mlp).") var model: ModelKind?
    @Option(help: "Data file (.csv, .npy or .idx); default: the embedded digits.") var data: String?
    @Option(help: "Labels file for .npy / .idx data (integer class indices).") var labels: String?
    @Option(help: "Label column of a CSV file (name or index; default: the last column).") var labelColumn: String?
    @Flag(help: "The CSV file has no header row.") var noHeader = false
    @Option(help: "Fraction of samples held out for validation (default 0.2).") var validationFraction: Double?
    @Option(help: "Number of classes (default: one more than the largest label, at most \(RunSettings.maxInferredClasses)).") var classes: Int?
    @Flag(help: "Accept NaN and infinite values in the data (rejected by default, with their position).") var allowNonFinite = false
    @Option(help: "Write a checkpoint every N epochs (and always after the last one and when stopped).") var checkpointEvery: Int = 1
    @Option(help: "Output folder for the checkpoint and report (default ember-run).") var output: String?
    @Option(help: "Continue the run whose checkpoint is in this folder, with its saved settings.") var resume: String?
    @Flag(help: "Replace a checkpoint of a different or unfinished run in the output folder.") var overwrite = false
    @Flag(help: "Train data-parallel over the ranks of 'mpirun -n N' (needs an ember built with --traits MPI).") var distributed = false

    func run() throws {
        try reportingErrors(distributed: distributed) {
            guard (1...100_000).contains(checkpointEvery) else {
                throw UserFacingError("--checkpoint-every must be between 1 and 100000, got \(checkpointEvery)")
            }
            if let resume {
                try resumeRun(folder: resume)
            } else {
                try freshRun()
            }
        }
    }

    /// The options that define a run, as given on the command line (for `--resume`'s check).
    private var runOptionsGiven: [String] {
        var given: [String] = []
        if epochs != nil { given.append("--epochs") }
        if batchSize != nil { given.append("--batch-size") }
        if learningRate != nil { given.append("--learning-rate") }
        if optimizer != nil { given.append("--optimizer") }
        if schedule != nil { given.append("--schedule") }
        if seed != nil { given.append("--seed") }
        if hidden != nil { given.append("--hidden") }
        if dropout != nil { given.append("--dropout") }
        if model != nil { given.append("--model") }
        if data != nil { given.append("--data") }
        if labels != nil { given.append("--labels") }
        if labelColumn != nil { given.append("--label-column") }
        if noHeader { given.append("--no-header") }
        if validationFraction != nil { given.append("--validation-fraction") }
        if classes != nil { given.append("--classes") }
        if allowNonFinite { given.append("--allow-non-finite") }
        if output != nil { given.append("--output") }
        if overwrite { given.append("--overwrite") }
        return given
    }

    private func freshRun() throws {
        if labels != nil && data == nil { throw UserFacingError("--labels needs --data") }
        var settings = RunSettings(
            model: model ?? .mlp, inputs: 64, hidden: hidden ?? 128, classes: 10, dropout: dropout ?? (model ?? .mlp).defaultDropout, seed: seed ?? 0,
            validationFraction: validationFraction ?? 0.2, data: data, labels: labels, labelColumn: labelColumn,
            hasHeader: !noHeader, epochs: epochs ?? 30, batchSize: batchSize ?? 64, learningRate: learningRate ?? (model ?? .mlp).defaultLearningRate,
            optimizer: optimizer ?? .adam, schedule: schedule ?? .cosine, allowNonFinite: allowNonFinite)
        // The options alone first, with the digits' sizes, so that a typo fails before any data loads.
        try settings.validate()
        let loaded = try loadData(path: data, labels: labels, labelColumn: labelColumn, hasHeader: !noHeader, allowNonFinite: allowNonFinite)
        settings.inputs = loaded.features
        settings.classes = try loaded.classes(explicit: classes)
        try settings.validate()
        let folder = output ?? "ember-run"
        if !overwrite { try checkReplaceable(folder: folder, by: settings) }
        try TrainingRun(settings: settings, data: loaded, folder: folder, checkpointEvery: checkpointEvery,
                        resuming: nil, distributed: distributed).run()
    }

    /// A fresh run replaces a checkpoint already in its folder only when that checkpoint is the
    /// finished run of the same settings (which the new run writes again, byte for byte);
    /// anything else needs `--overwrite`, so that no run's work is lost to a mistyped command.
    private func checkReplaceable(folder: String, by settings: RunSettings) throws {
        let path = (folder as NSString).appendingPathComponent("checkpoint.safetensors")
        guard FileManager.default.fileExists(atPath: path) else { return }
        let options = "continue it with --resume \(folder), choose another --output, or pass --overwrite to replace it"
        guard let existing = try? Checkpoint.read(from: path), let saved = try? RunSettings.stored(in: existing, path: path) else {
            throw UserFacingError("\(path) exists and is not a checkpoint of 'ember train'; choose another --output, or pass --overwrite to replace it")
        }
        guard saved == settings else {
            throw UserFacingError("\(path) holds a run with other settings (after epoch \(existing.epoch)); \(options)")
        }
        guard existing.epoch == saved.epochs, existing.progress?.position == nil else {
            throw UserFacingError("\(path) holds this run, stopped after epoch \(existing.epoch) of \(saved.epochs ?? 0); \(options)")
        }
    }

    private func resumeRun(folder: String) throws {
        if let first = runOptionsGiven.first {
            throw UserFacingError("--resume continues the run with the settings saved in its checkpoint; leave out \(first)")
        }
        let path = (folder as NSString).appendingPathComponent("checkpoint.safetensors")
        guard FileManager.default.fileExists(atPath: path) else {
            throw UserFacingError("--resume \(folder): there is no checkpoint.safetensors in that folder")
        }
        let checkpoint = try Checkpoint.read(from: path)
        let settings = try RunSettings.stored(in: checkpoint, path: path)
        guard let epochs = settings.epochs, settings.batchSize != nil, settings.learningRate != nil,
              settings.optimizer != nil, settings.schedule != nil else {
            throw UserFacingError("checkpoint '\(path)' was written by an earlier version of 'ember train' that did not save its training settings; it cannot be resumed")
        }
        if checkpoint.epoch >= epochs && checkpoint.progress?.position == nil {
            print("the run in \(folder) already completed its \(epochs) epochs; nothing to resume")
            return
        }
        let loaded = try loadData(path: settings.data, labels: settings.labels, labelColumn: settings.labelColumn,
                                  hasHeader: settings.hasHeader, allowNonFinite: settings.allowNonFinite ?? false)
        guard loaded.features == settings.inputs else {
            throw UserFacingError("the data now has \(loaded.features) features but the checkpoint's model expects \(settings.inputs)")
        }
        _ = try loaded.classes(explicit: settings.classes)
        try TrainingRun(settings: settings, data: loaded, folder: folder, checkpointEvery: checkpointEvery,
                        resuming: checkpoint, distributed: distributed).run()
    }
}

extension RunSettings {
    /// The settings saved in a checkpoint by `ember train`, checked field by field.
    static func stored(in checkpoint: Checkpoint, path: String) throws -> RunSettings {
        guard let json = checkpoint.metadata["settings"] else {
            throw UserFacingError("checkpoint '\(path)' was not written by 'ember train' (no run settings in its metadata)")
        }
        let settings: RunSettings
        do { settings = try JSONDecoder().decode(RunSettings.self, from: Data(json.utf8)) } catch {
            throw UserFacingError("checkpoint '\(path)': its run settings are not valid: \(describe(error))")
        }
        try settings.validate(source: "checkpoint '\(path)': ")
        return settings
    }
}

/// A decoding error in one line, naming the field.
func describe(_ error: Error) -> String {
    guard let error = error as? DecodingError else { return "\(error)" }
    func path(_ context: DecodingError.Context) -> String {
        context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    }
    switch error {
    case .keyNotFound(let key, _): return "missing field '\(key.stringValue)'"
    case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
        return "field '\(path(c))': \(c.debugDescription)"
    @unknown default: return "\(error)"
    }
}
