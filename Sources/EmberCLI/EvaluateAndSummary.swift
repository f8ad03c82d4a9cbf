import ArgumentParser
import Ember
import Foundation

/// Rebuilds the model a checkpoint was trained as, with its weights, modes and pins.
func loadTrainedModel(checkpoint path: String) throws -> (Module, RunSettings, Checkpoint) {
    let checkpoint = try Checkpoint.read(from: path)
    let settings = try RunSettings.stored(in: checkpoint, path: path)
    let model = settings.makeModel()
    try checkpoint.restore(model: model, optimizer: nil, scheduler: nil as StepLR?, generator: nil)
    return (model, settings, checkpoint)
}

/// `ember evaluate --checkpoint PATH`: accuracy and loss of a trained model on its validation split.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a checkpoint written by 'ember train' on its validation split (in eval mode).")

    @Option(help: "Checkpoint written by 'ember train'.") var checkpoint: String = "ember-run/checkpoint.safetensors"

    func run() throws {
        try reportingErrors {
            let (model, settings, saved) = try loadTrainedModel(checkpoint: checkpoint)
            let loaded = try loadData(path: settings.data, labels: settings.labels, labelColumn: settings.labelColumn,
                                      hasHeader: settings.hasHeader, allowNonFinite: settings.allowNonFinite ?? false)
            guard loaded.features == settings.inputs else {
                throw UserFacingError("the data now has \(loaded.features) features but the checkpoint's model expects \(settings.inputs)")
            }
            _ = try loaded.classes(explicit: settings.classes)
            let validation: Subset<TensorDataset>
            if let split = try StoredSplit.stored(in: saved, path: checkpoint) {
                validation = try split.validationSubset(of: loaded.dataset, path: checkpoint)
            } else {
                // A checkpoint from before splits were stored: the split was the run's first draw.
                validation = withGenerator(Generator(seed: settings.seed)) {
                    randomSplit(loaded.dataset, lengths: [1 - settings.validationFraction, settings.validationFraction])[1]
                }
            }
            let result = evaluate(model, on: DataLoader(validation, batchSize: 256), classes: settings.classes <= 30 ? settings.classes : nil,
                                  loss: { crossEntropy($0, target: $1) })
            print("checkpoint \(checkpoint): epoch \(saved.epoch), \(saved.step) optimizer steps")
            print(String(format: "validation accuracy %.2f%% (%d samples), loss %.4f, evaluated in eval mode",
                         result.accuracy * 100, result.samples, result.loss))
            if let confusion = result.confusion { print("confusion matrix (rows: true class, columns: predicted):\n\(confusion)") }
        }
    }
}

/// `ember summary`: the model listing with modes, pins, parameter counts and shapes.
struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model's layers with their modes, pins, parameter counts and shapes.")

    @Option(help: "Checkpoint written by 'ember train' (default: the untrained default model).") var checkpoint: String?

    func run() throws {
        try reportingErrors {
            let model: Module
            if let checkpoint {
                model = try loadTrainedModel(checkpoint: checkpoint).0
                print("model from \(checkpoint), with the modes and pins it was saved with:")
            } else {
                model = RunSettings(model: .mlp, inputs: 64, hidden: 128, classes: 10, dropout: 0.5, seed: 0,
                                    validationFraction: 0.2, hasHeader: true).makeModel()
                print("the default model of 'ember train' (untrained):")
            }
            print(model)
            print()
            print(model.summary())
        }
    }
}
