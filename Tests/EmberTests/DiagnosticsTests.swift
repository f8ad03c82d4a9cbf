import Ember
import Foundation
import SeedNetwork
import Synchronization
import Testing

/// Collects the reports made in a scope.
private final class Reports: Sendable {
    private let list = Mutex<[Diagnostic]>([])
    func add(_ d: Diagnostic) { list.withLock { $0.append(d) } }
    var all: [Diagnostic] { list.withLock { $0 } }
    var kinds: [DiagnosticKind] { all.map(\.kind) }
}

private func capturing(_ body: () throws -> Void) rethrows -> Reports {
    let reports = Reports()
    try withDiagnosticsHandler({ reports.add($0) }, body)
    return reports
}

private func batch(_ seed: UInt64 = 1) -> (x: Tensor, y: Tensor) {
    withGenerator(Generator(seed: seed)) {
        (Tensor.normal([16, 6]), Tensor.randint(low: 0, high: 3, shape: [16]))
    }
}

/// A seed network trained for a few steps, so its running statistics moved.
private func trainedModel() -> (SeedNetwork, SGD) {
    withGenerator(Generator(seed: 3)) {
        let model = SeedNetwork(inputs: 6, hidden: 8, outputs: 3, dropout: 0.5)
        let optimizer = SGD(model.parameters(), lr: 0.05)
        let (x, y) = batch()
        for _ in 0..<3 {
            optimizer.zeroGrad()
            crossEntropy(model(x), target: y).backward()
            optimizer.step()
        }
        return (model, optimizer)
    }
}

@Suite struct DiagnosticsTests {
    // MARK: each mistake is reported once, naming the modules

    @Test func trainingModeForwardWithoutGradIsReportedOnceNamingEveryModeDependentModule() {
        let (model, _) = trainedModel()
        let (x, _) = batch()
        let reports = capturing {
            withGenerator(Generator(seed: 9)) {
                _ = withNoGrad { model(x) }
                _ = withNoGrad { model(x) }
            }
        }
        #expect(reports.kinds == [.forgottenEval])
        #expect(reports.all.first?.modules == ["bn1", "dropout"])
        #expect(reports.all.first?.message.contains("'bn1' (BatchNorm1d) and 'dropout' (Dropout) ran in training mode") ?? false)
        #expect(reports.all.first?.message.contains("withDiagnostics(.off)") ?? false)
    }

    /// Each mode-dependent layer reports a training-mode forward under no-grad by itself (not only
    /// when another layer of the model does).
    @Test(arguments: ["BatchNorm1d", "Dropout", "AlphaDropout", "Dropout1d", "LSTM"])
    func eachModeDependentLayerAloneReportsATrainingModeForwardWithoutGrad(kind: String) {
        let (model, input): (Module, Tensor) = withGenerator(Generator(seed: 5)) {
            switch kind {
            case "BatchNorm1d": (Sequential(Linear(3, 4), BatchNorm1d(4)), Tensor.normal([8, 3]))
            case "Dropout": (Sequential(Linear(3, 4), Dropout(0.5)), Tensor.normal([8, 3]))
            case "AlphaDropout": (Sequential(Linear(3, 4), AlphaDropout(0.5)), Tensor.normal([8, 3]))
            case "Dropout1d": (Sequential(Linear(3, 4), Dropout1d(0.5)), Tensor.normal([2, 8, 3]))
            default: (LSTM(3, 4, numLayers: 2, dropout: 0.5), Tensor.normal([5, 2, 3]))
            }
        }
        let reports = capturing { _ = withNoGrad { model(input) } }
        #expect(reports.kinds == [.forgottenEval], "\(kind): \(reports.all.map(\.message))")
        // One module is named alone ("'x' (Kind) ran ...", no list joined with "and").
        let head = reports.all.first?.message.components(separatedBy: " ran in training mode").first ?? ""
        #expect(head.hasPrefix("Ember warning: ") && head.hasSuffix("(\(kind))") && !head.contains(" and "), "\(head)")
    }

    @Test func steppingGradientsThatFlowedThroughEvalModeModulesIsReportedOnce() {
        let (model, optimizer) = trainedModel()
        let (x, y) = batch()
        model.eval()
        let reports = capturing {
            for _ in 0..<2 {
                optimizer.zeroGrad()
                crossEntropy(model(x), target: y).backward()
                optimizer.step()
            }
        }
        #expect(reports.kinds == [.forgottenTrain])
        #expect(reports.all.first?.modules == ["bn1", "dropout"])
        #expect(reports.all.first?.message.contains("SGD.step()") ?? false)
    }

    /// Only dropout is mode-dependent here; the gradients of fc1 flow through it.
    @Test(arguments: ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
    func everyOptimizerReportsGradientsThroughAnEvalModeDropout(kind: String) {
        let model = Sequential(Linear(6, 8), Dropout(0.3), Linear(8, 3))
        let parameters = model.parameters()
        let optimizer: any Optimizer = switch kind {
        case "SGD": SGD(parameters, lr: 0.1)
        case "Adam": Adam(parameters, lr: 0.1)
        case "AdamW": AdamW(parameters, lr: 0.1)
        case "RMSprop": RMSprop(parameters, lr: 0.1)
        default: Adagrad(parameters, lr: 0.1)
        }
        let (x, y) = batch()
        model.eval()
        let reports = capturing {
            crossEntropy(model(x), target: y).backward()
            optimizer.step()
        }
        #expect(reports.kinds == [.forgottenTrain])
        #expect(reports.all.first?.modules == ["1"])
    }

    @Test func evalWithNeverMovedRunningStatisticsIsReported() {
        let model = SeedNetwork(inputs: 6, hidden: 8, outputs: 3)
        let (x, _) = batch()
        let reports = capturing {
            model.eval()
            _ = withNoGrad { model(x) }
            _ = withNoGrad { model(x) }
        }
        #expect(reports.kinds == [.untrainedStatistics])
        #expect(reports.all.first?.modules == ["bn1"])
    }

    /// The untouched-statistics report names every BatchNorm whose statistics never moved, and
    /// only statistics that are all initial count as never moved (a mean that moved with a
    /// variance still at 1 is a real set of statistics).
    @Test func untouchedStatisticsReportNamesEveryUntouchedBatchNormAndNoOther() throws {
        let model = Sequential(Linear(3, 3), BatchNorm1d(3), BatchNorm1d(3), BatchNorm1d(3))
        let moved = model[3] as! BatchNorm1d
        try moved.loadStateDict(["weight": .ones([3]), "bias": .zeros([3]), "running_mean": Tensor([0.5, 0, 0], shape: [3]),
                                 "running_var": .ones([3]), "num_batches_tracked": Tensor([Int64(0)], shape: []).to(.int64)])
        model.eval()
        let reports = capturing { _ = model(Tensor.ones([2, 3])) }
        #expect(reports.kinds == [.untrainedStatistics])
        #expect(reports.all.first?.modules == ["1", "2"])
    }

    @Test func aNonStrictLoadThatSkipsBuffersIsReported() throws {
        let (trained, _) = trainedModel()
        let weightsOnly = StateDict(trained.stateDict().filter { !$0.key.hasPrefix("bn1.running") && !$0.key.hasSuffix("num_batches_tracked") })
        let fresh = SeedNetwork(inputs: 6, hidden: 8, outputs: 3)
        let (x, _) = batch()
        let reports = try capturing {
            _ = try fresh.loadStateDict(weightsOnly, strict: false)
            fresh.eval()
            _ = withNoGrad { fresh(x) }
        }
        #expect(reports.kinds == [.skippedBuffers, .untrainedStatistics])
        #expect(reports.all.first?.modules == ["bn1"])
        let full = try capturing { _ = try SeedNetwork(inputs: 6, hidden: 8, outputs: 3).loadStateDict(trained.stateDict(), strict: false) }
        #expect(full.all.isEmpty)
    }

    // MARK: silent on every correct path

    @Test func correctPathsAreSilent() throws {
        let (model, optimizer) = trainedModel()
        let (x, y) = batch()
        let data = TensorDataset(features: x.floats, featureShape: [6], labels: y.scalars(as: Int64.self))
        let reports = try capturing {
            _ = model.evaluating { withNoGrad { model(x) } }
            _ = evaluate(model, on: DataLoader(data, batchSize: 8), loss: { crossEntropy($0, target: $1) })
            _ = evaluate(model, on: DataLoader(data, batchSize: 8), mode: .training, loss: { crossEntropy($0, target: $1) })
            model.eval()
            _ = withNoGrad { model(x) }
            model.train()
            let trainer = Trainer(model: model, optimizer: optimizer) { crossEntropy($0, target: $1) }
            trainer.trainEpoch(on: DataLoader(data, batchSize: 8))
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("ember-diag-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            _ = try trainer.fit(DataLoader(data, batchSize: 8, shuffle: true), validation: DataLoader(data, batchSize: 8),
                                options: FitOptions(epochs: 2, checkpointPath: path,
                                                    makeModelCopy: { SeedNetwork(inputs: 6, hidden: 8, outputs: 3) }),
                                scheduler: nil as StepLR?, generator: .default)
            // Gradients with respect to the input in eval mode, no optimizer step (saliency).
            model.eval()
            let input = x.requiringGrad()
            crossEntropy(model(input), target: y).backward()
            #expect(input.grad != nil)
            model.train()
        }
        #expect(reports.all.isEmpty, "\(reports.all)")
    }

    /// Refreshing BatchNorm statistics under no-grad, and Monte Carlo dropout, done on purpose:
    /// pinning the module says so.
    @Test func deliberateTrainingModeUnderNoGradIsSilentWhenPinned() {
        let (model, _) = trainedModel()
        let (x, _) = batch()
        let reports = capturing {
            model.eval()
            model.bn1.pin(.training)
            _ = withNoGrad { model(x) }
            model.bn1.unpin()
            model.eval()
            model.dropout.pin(.training)
            _ = withNoGrad { model(x) }
            model.dropout.unpin()
        }
        #expect(reports.all.isEmpty, "\(reports.all)")
    }

    @Test func silencedPerModuleAndPerScope() {
        let (x, _) = batch()
        let (a, _) = trainedModel()
        a.bn1.reportsModeMistakes = false
        a.dropout.reportsModeMistakes = false
        let (b, _) = trainedModel()
        let reports = capturing {
            _ = withNoGrad { a(x) }
            withDiagnostics(.off) { _ = withNoGrad { b(x) } }
        }
        #expect(reports.all.isEmpty, "\(reports.all)")
        // Still reported outside the scope (the scope did not use up the once-per-model report).
        let later = capturing { _ = withNoGrad { b(x) } }
        #expect(later.kinds == [.forgottenEval])
    }
}
