import ArgumentParser
import Ember
import Foundation

/// `ember train`: trains the seed-style network on the embedded digits (or a data file), with
/// validation in eval mode after every epoch, and writes a checkpoint and `report.html`.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train Linear -> ReLU -> BatchNorm1d -> Dropout -> Linear on the embedded digits (or your data).",
        discussion: """
        Prints one line per epoch (a progress bar on a terminal), validates in eval mode after each epoch, \
        and writes <output>/checkpoint.safetensors (model, optimizer, schedule, generator, modes) and \
        <output>/report.html (loss and accuracy charts, including what validation would have shown had \
        eval() been forgotten).
        """)

    @Option(help: "Training epochs.") var epochs: Int = 30
    @Option(help: "Samples per batch.") var batchSize: Int = 64
    @Option(help: "Learning rate.") var learningRate: Double = 0.01
    @Option(help: "Optimizer: \(OptimizerKind.allCases.map(\.rawValue).joined(separator: ", ")).") var optimizer: OptimizerKind = .adam
    @Option(help: "Learning-rate schedule over the epochs: cosine (annealed to 0) or constant.") var schedule: ScheduleKind = .cosine
    @Option(help: "Seed for the split, initial weights, shuffling and dropout.") var seed: UInt64 = 0
    @Option(help: "Hidden width.") var hidden: Int = 128
    @Option(help: "Dropout probability after the BatchNorm.") var dropout: Double = 0.5
    @Option(help: "Model: \(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")).") var model: ModelKind = .mlp
    @Option(help: "Data file (.csv, .npy or .idx); default: the embedded digits.") var data: String?
    @Option(help: "Labels file for .npy / .idx data.") var labels: String?
    @Option(help: "Label column of a CSV file (name or index; default: the last column).") var labelColumn: String?
    @Flag(help: "The CSV file has no header row.") var noHeader = false
    @Option(help: "Fraction of samples held out for validation.") var validationFraction: Double = 0.2
    @Option(help: "Output folder for the checkpoint and report.") var output: String = "ember-run"

    func run() throws {
        try reportingErrors {
            try checkOptions()
            try TrainingRun(options: self).run()
        }
    }

    func checkOptions() throws {
        guard (1...100_000).contains(epochs) else { throw UserFacingError("--epochs must be between 1 and 100000, got \(epochs)") }
        guard batchSize >= 1 else { throw UserFacingError("--batch-size must be at least 1, got \(batchSize)") }
        guard learningRate > 0, learningRate.isFinite else { throw UserFacingError("--learning-rate must be a positive number, got \(learningRate)") }
        guard hidden >= 1 else { throw UserFacingError("--hidden must be at least 1, got \(hidden)") }
        guard (0..<1).contains(dropout) else { throw UserFacingError("--dropout must be in [0, 1), got \(dropout)") }
        guard validationFraction > 0, validationFraction < 1 else {
            throw UserFacingError("--validation-fraction must be between 0 and 1 (exclusive), got \(validationFraction)")
        }
        if labels != nil && data == nil { throw UserFacingError("--labels needs --data") }
    }
}

/// One training run, from data to report.
struct TrainingRun {
    let options: Train

    func run() throws {
        let o = options
        let loaded = try loadData(path: o.data, labels: o.labels, labelColumn: o.labelColumn, hasHeader: !o.noHeader)
        if o.model == .lstm && loaded.features % 8 != 0 {
            throw UserFacingError("--model lstm reads each sample as 8 time steps, so the feature count must be a multiple of 8 (got \(loaded.features))")
        }
        let settings = RunSettings(model: o.model, inputs: loaded.features, hidden: o.hidden, classes: loaded.classes,
                                   dropout: o.dropout, seed: o.seed, validationFraction: o.validationFraction,
                                   data: o.data, labels: o.labels, labelColumn: o.labelColumn, hasHeader: !o.noHeader)
        let outputURL = URL(fileURLWithPath: o.output)
        do { try FileManager.default.createDirectory(at: outputURL, withIntermediateDirectories: true) } catch {
            throw UserFacingError("cannot create output folder '\(o.output)': \(error.localizedDescription)")
        }
        let generator = Generator(seed: o.seed)
        try withGenerator(generator) {
            let splits = randomSplit(loaded.dataset, lengths: [1 - o.validationFraction, o.validationFraction])
            let (trainSet, validationSet) = (splits[0], splits[1])
            guard trainSet.count >= 2, validationSet.count >= 1 else {
                throw UserFacingError("the data is too small to split: \(trainSet.count) training and \(validationSet.count) validation samples")
            }
            let model = settings.makeModel()
            let optimizer = o.optimizer.make(model.parameters(), learningRate: o.learningRate)
            let trainer = Trainer(model: model, optimizer: optimizer) { crossEntropy($0, target: $1) }
            let scheduler = o.schedule == .cosine ? CosineAnnealingLR(optimizer, tMax: o.epochs) : nil
            // dropLast: a final batch of one sample would leave BatchNorm one value per channel.
            let trainLoader = DataLoader(trainSet, batchSize: o.batchSize, shuffle: true, dropLast: trainSet.count % o.batchSize == 1)
            let validationLoader = DataLoader(validationSet, batchSize: o.batchSize)
            let batches = trainLoader.count

            print("Training \(model.typeName) (\(model.parameterCount) parameters) on \(loaded.description)")
            print("\(trainSet.count) training / \(validationSet.count) validation samples, \(o.epochs) epochs, batch \(o.batchSize), \(o.optimizer.rawValue) lr \(o.learningRate) (\(o.schedule.rawValue)), seed \(o.seed)")
            var progress = Progress(totalEpochs: o.epochs, batchesPerEpoch: batches)
            var records: [EpochRecord] = []
            var seen = 0
            let started = Date()
            for epoch in 1...o.epochs {
                let epochStart = Date()
                let trainLoss = trainer.trainEpoch(on: trainLoader, batchCount: batches) { p in
                    progress.batch(epoch: epoch, batch: p.batch, loss: p.loss, samples: seen + p.samplesSoFar)
                }
                seen += trainSet.count
                scheduler?.step()
                let validation = evaluate(model, on: validationLoader, loss: { crossEntropy($0, target: $1) })
                let forgotten = forgottenEvalValidation(model, settings: settings, epoch: epoch, on: validationLoader)
                let seconds = Date().timeIntervalSince(epochStart)
                records.append(EpochRecord(epoch: epoch, trainLoss: trainLoss, validationLoss: validation.loss,
                                           validationAccuracy: validation.accuracy, forgottenEvalLoss: forgotten.loss,
                                           forgottenEvalAccuracy: forgotten.accuracy, seconds: seconds))
                progress.epochEnd(String(format: "epoch %3d/%d  train loss %.4f  val loss %.4f  val acc %6.2f%%  (eval forgotten: %6.2f%%)  %.2fs",
                                         epoch, o.epochs, trainLoss, validation.loss, validation.accuracy * 100,
                                         forgotten.accuracy * 100, seconds))
            }
            let trainingSeconds = Date().timeIntervalSince(started)
            let final = evaluate(model, on: validationLoader, classes: loaded.classes, loss: { crossEntropy($0, target: $1) })
            print(String(format: "final validation accuracy %.2f%% (%d samples), loss %.4f; training took %.1fs",
                         final.accuracy * 100, final.samples, final.loss, trainingSeconds))
            if let confusion = final.confusion { print("confusion matrix (rows: true class, columns: predicted):\n\(confusion)") }

            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let settingsJSON = String(decoding: try encoder.encode(settings), as: UTF8.self)
            let checkpoint = Checkpoint(model: model.stateDict(), optimizer: optimizer.state(),
                                        scheduler: scheduler.map { Checkpoint.encodeSchedule($0) },
                                        generator: generator.state,
                                        epoch: o.epochs, step: trainer.steps, modes: model.modeRecords(),
                                        metadata: ["settings": settingsJSON])
            let checkpointPath = outputURL.appendingPathComponent("checkpoint.safetensors").path
            try checkpoint.write(to: checkpointPath)
            let report = TrainingReport(
                title: "Ember training run: \(model.typeName) on \(o.data ?? "the embedded digits")",
                settings: [("data", loaded.description), ("model", settings.model == .mlp
                    ? "Linear(\(settings.inputs), \(settings.hidden)) -> ReLU -> BatchNorm1d(\(settings.hidden)) -> Dropout(\(settings.dropout)) -> Linear(\(settings.hidden), \(settings.classes))"
                    : "LSTM(\(settings.inputs / 8) -> \(settings.hidden), 2 layers, dropout \(settings.dropout), batchFirst) over 8 rows -> Linear(\(settings.hidden), \(settings.classes))"),
                           ("epochs", String(o.epochs)), ("batch size", String(o.batchSize)),
                           ("optimizer", "\(o.optimizer.rawValue), lr \(o.learningRate), \(o.schedule.rawValue) schedule"), ("seed", String(o.seed)),
                           ("training time", String(format: "%.1f s", trainingSeconds))],
                epochs: records, finalAccuracy: final.accuracy, summary: model.summary())
            let reportURL = outputURL.appendingPathComponent("report.html")
            do { try Data(report.html().utf8).write(to: reportURL, options: .atomic) } catch {
                throw UserFacingError("cannot write '\(reportURL.path)': \(error.localizedDescription)")
            }
            print("wrote \(checkpointPath)")
            print("wrote \(reportURL.path)")
        }
    }

    /// Validation as it would have gone had `eval()` been forgotten: a copy of the model, left in
    /// training mode, under its own generator, so neither the real model's running statistics nor
    /// the run's random stream change.
    func forgottenEvalValidation<L: Sequence>(_ model: Module, settings: RunSettings, epoch: Int, on loader: L) -> Evaluation
        where L.Element == Batch
    {
        withGenerator(Generator(seed: settings.seed &+ 0x9E37_79B9 &+ UInt64(epoch))) {
            let copy = settings.makeModel()
            try! copy.loadStateDict(model.stateDict())
            return evaluate(copy, on: loader, mode: .training, loss: { crossEntropy($0, target: $1) })
        }
    }
}
