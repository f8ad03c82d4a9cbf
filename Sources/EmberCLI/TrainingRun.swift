import ArgumentParser
import Ember
import Foundation

/// One training run, from data to report: fresh, or continuing a checkpoint of the same run.
struct TrainingRun {
    let settings: RunSettings
    let data: LoadedData
    let folder: String
    let checkpointEvery: Int
    /// The checkpoint to continue from (`ember train --resume`).
    let resuming: Checkpoint?
    /// Train data-parallel over `mpirun`'s ranks (`--distributed`).
    var distributed = false

    func run() throws {
        let s = settings
        guard let epochs = s.epochs, let batchSize = s.batchSize, let learningRate = s.learningRate,
              let optimizerKind = s.optimizer, let scheduleKind = s.schedule
        else { throw UserFacingError("the run settings lack a training setting (epochs, batch size, learning rate, optimizer or schedule)") }
        let group: ProcessGroup? = distributed ? try ProcessGroup.world() : nil
        defer { group?.finalize() }
        let rank = group?.rank ?? 0, ranks = group?.worldSize ?? 1
        // Rank 0 alone prints, writes the checkpoint and the report; the others' output goes nowhere.
        if rank != 0 { silenceStandardOutput() }
        guard batchSize >= ranks else {
            throw UserFacingError("--batch-size \(batchSize) cannot give each of the \(ranks) ranks a sample; use at least \(ranks)")
        }
        let checkpointPath = rank == 0 ? try prepareFolder() : (folder as NSString).appendingPathComponent("checkpoint.safetensors")
        let generator = Generator(seed: s.seed)
        try withGenerator(generator) {
            let sizes = splitLengths(count: data.dataset.count, fractions: [1 - s.validationFraction, s.validationFraction])
            guard sizes[0] >= 2, sizes[1] >= 1 else {
                throw UserFacingError("\(data.dataset.count) samples split \(1 - s.validationFraction) : \(s.validationFraction) give \(sizes[0]) training and \(sizes[1]) validation samples; need at least 2 and 1 (change --validation-fraction or add data)")
            }
            let splits = randomSplit(data.dataset, lengths: sizes)
            let (trainSet, validationSet) = (splits[0], splits[1])
            let model = s.makeModel()
            var ddp: DistributedDataParallel?
            if let group, ranks > 1 {
                // BatchNorm over the global batch; rank 0's weights everywhere.
                model.convertSyncBatchNorm(processGroup: group)
                ddp = try DistributedDataParallel(model, processGroup: group)
            }
            let optimizer = optimizerKind.make(model.parameters(), learningRate: learningRate)
            let trainer = Trainer(model: model, optimizer: optimizer, loss: { crossEntropy($0, target: $1) }, distributed: ddp)
            let scheduler = scheduleKind == .cosine ? CosineAnnealingLR(optimizer, tMax: epochs) : nil
            // A final training batch of one sample would leave BatchNorm one value per channel, and
            // one smaller than the number of ranks would leave a rank without a sample.
            let remainder = trainSet.count % batchSize
            let trainLoader = DataLoader(trainSet, batchSize: batchSize, shuffle: true, dropLast: remainder > 0 && remainder < max(2, ranks))
            let validationLoader = DataLoader(validationSet, batchSize: batchSize)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let options = FitOptions(
                epochs: epochs, checkpointPath: checkpointPath, checkpointEvery: checkpointEvery,
                metadata: ["settings": String(decoding: try encoder.encode(s), as: UTF8.self),
                           StoredSplit.metadataKey: StoredSplit(samples: data.dataset.count, validation: validationSet.indices).metadataValue],
                makeModelCopy: { s.makeModel() }, forgottenEvalSeed: s.seed &+ 0x9E37_79B9)

            print("Training \(model.typeName) (\(model.parameterCount) parameters) on \(data.description(classes: s.classes))")
            print("\(trainSet.count) training / \(validationSet.count) validation samples, \(epochs) epochs, batch \(batchSize), \(optimizerKind.rawValue) lr \(learningRate) (\(scheduleKind.rawValue)), seed \(s.seed)")
            if let group {
                print(ranks > 1
                    ? "data-parallel over \(ranks) ranks (\(group.engine)): each trains on its 1/\(ranks) of every batch (about \(batchSize / ranks) samples), BatchNorm synchronized over the batch"
                    : "--distributed with one rank (not started by mpirun -n N): training in this process alone")
            }
            if let resuming {
                let within = resuming.progress?.position.map { ", and \($0.batch) of \(trainLoader.count) batches of epoch \($0.epoch)" } ?? ""
                print("resuming \(checkpointPath): \(resuming.epoch) of \(epochs) epochs done\(within), \(resuming.step) optimizer steps")
            }

            var progress = Progress(totalEpochs: epochs, batchesPerEpoch: trainLoader.count)
            var seconds: [Int: Double] = [:]
            var mark = Date()
            var processed = 0, lastSamples = 0
            let started = Date()
            let stop = StopSignal { [folder] in
                AtomicFile.abandonWrites()
                AtomicFile.removeLeftovers(in: folder)
            }
            // A second signal stops the process at once until the run has written its report.
            defer { withExtendedLifetime(stop) {} }
            let result: FitResult
            do {
                result = try withExtendedLifetime(stop) {
                    try trainer.fit(
                        trainLoader, validation: validationLoader, options: options, scheduler: scheduler, generator: generator,
                        resumingFrom: resuming, shouldStop: { stop.signalNumber != nil },
                        onBatch: { epoch, p in
                            processed += p.batch == 1 ? p.samplesSoFar : p.samplesSoFar - lastSamples
                            lastSamples = p.samplesSoFar
                            progress.batch(epoch: epoch, batch: p.batch, loss: p.loss, samples: processed)
                        },
                        onEpoch: { r in
                            seconds[r.epoch] = Date().timeIntervalSince(mark)
                            mark = Date()
                            lastSamples = 0
                            progress.epochEnd(String(
                                format: "epoch %3d/%d  train loss %.4f  val loss %@  val acc %@  (eval forgotten: %@)  %.2fs",
                                r.epoch, epochs, r.trainLoss, fmt(r.validationLoss), percent(r.validationAccuracy),
                                percent(r.forgottenEvalAccuracy), seconds[r.epoch] ?? 0))
                        })
                }
            } catch let error as FitError {
                if case .diverged = error { throw UserFacingError("\(error); try a lower --learning-rate") }
                if case .nonFiniteState = error { throw UserFacingError("\(error); try a lower --learning-rate") }
                throw error
            }
            let trainingSeconds = Date().timeIntervalSince(started)

            let report = TrainingReport(
                title: "Ember training run: \(model.typeName) on \(s.data ?? "the embedded digits")",
                settings: [("data", data.description(classes: s.classes)), ("model", s.modelDescription),
                           ("epochs", String(epochs)), ("batch size", String(batchSize)),
                           ("optimizer", "\(optimizerKind.rawValue), lr \(learningRate), \(scheduleKind.rawValue) schedule"),
                           ("seed", String(s.seed)), ("training time", String(format: "%.1f s", trainingSeconds))],
                epochs: result.history, seconds: seconds, finalAccuracy: result.history.last?.validationAccuracy ?? 0,
                summary: model.summary())
            let reportPath = (folder as NSString).appendingPathComponent("report.html")
            if rank == 0 {
                do { try AtomicFile.write(Data(report.html().utf8), to: reportPath) } catch {
                    throw UserFacingError("\(error)")
                }
            }

            if case .stopped(let done, let position) = result.outcome {
                let signal = stop.signalNumber ?? SIGINT
                let at = position.map { "during epoch \($0.epoch), after batch \($0.batch) of \(trainLoader.count)" } ?? "after epoch \(done)"
                print("stopped by \(StopSignal.name(signal)) \(at); checkpoint written to \(checkpointPath)")
                print("continue with: ember train --resume \(folder)")
                throw ExitCode(128 + signal)
            }
            let showConfusion = s.classes <= 30
            let final = evaluate(model, on: validationLoader, classes: showConfusion ? s.classes : nil, loss: { crossEntropy($0, target: $1) })
            print(String(format: "final validation accuracy %.2f%% (%d samples), loss %.4f; training took %.1fs",
                         final.accuracy * 100, final.samples, final.loss, trainingSeconds))
            if let confusion = final.confusion { print("confusion matrix (rows: true class, columns: predicted):\n\(confusion)") }
            print("wrote \(checkpointPath)")
            print("wrote \(reportPath)")
        }
    }

    /// Points standard output at /dev/null (the ranks other than 0 of a data-parallel run).
    private func silenceStandardOutput() {
        fflush(nil)  // all streams: nothing printed so far is lost
        let null = open("/dev/null", O_WRONLY)
        if null >= 0 {
            dup2(null, STDOUT_FILENO)
            close(null)
        }
    }

    /// Creates the output folder, removes temporary files that a killed run left there, checks
    /// that it is writable, and returns the checkpoint's path.
    private func prepareFolder() throws -> String {
        do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
            throw UserFacingError("cannot create output folder '\(folder)': \(error.localizedDescription)")
        }
        let removed = AtomicFile.removeLeftovers(in: folder)
        if !removed.isEmpty {
            print("removed \(removed.count) temporary file(s) left in \(folder) by an interrupted write")
        }
        let probe = (folder as NSString).appendingPathComponent(".write-check")
        do {
            try AtomicFile.write(Data(), to: probe)
            try? FileManager.default.removeItem(atPath: probe)
        } catch {
            throw UserFacingError("output folder '\(folder)' is not writable: \(error)")
        }
        return (folder as NSString).appendingPathComponent("checkpoint.safetensors")
    }
}

extension RunSettings {
    /// The architecture in one line, for the report.
    var modelDescription: String {
        let side = ModelKind.imageSide(features: inputs) ?? 0, c2 = hidden / 4, c1 = max(1, c2 / 2)
        return switch model {
        case .mlp: "Linear(\(inputs), \(hidden)) -> ReLU -> BatchNorm1d(\(hidden)) -> Dropout(\(dropout)) -> Linear(\(hidden), \(classes))"
        case .lstm: "LSTM(\(inputs / 8) -> \(hidden), 2 layers, dropout \(dropout), batchFirst) over 8 rows -> Linear(\(hidden), \(classes))"
        case .transformer:
            "Linear(\(inputs / 8), \(hidden / 2)) on 8 tokens + learned positions -> 2 x TransformerEncoderLayer(dModel \(hidden / 2), \(ModelKind.transformerHeads) heads, feed-forward \(hidden), dropout \(dropout), norm first) -> mean over tokens -> LayerNorm -> Linear(\(hidden / 2), \(classes))"
        case .cnn:
            "2 x [Conv2d(3x3) -> BatchNorm2d -> ReLU -> Dropout2d(\(dropout)) -> MaxPool2d(2)] (1 -> \(c1) -> \(c2) channels) on 1x\(side)x\(side) images -> AdaptiveAvgPool2d(1) -> Linear(\(c2), \(classes))"
        }
    }
}
