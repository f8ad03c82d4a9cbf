import ArgumentParser
import Ember
import Foundation
import SeedNetwork

/// A failure from outside (a file, an option): printed as one line on stderr, exit status 1.
struct UserFacingError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body`; any error becomes one clear line on stderr and a non-zero exit.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("ember: error: \(error)\n".utf8))
        throw ExitCode.failure
    }
}

/// The learning rate over the epochs: `cosine` anneals it to 0 (PyTorch's `CosineAnnealingLR`
/// stepped once per epoch, `T_max` = the epoch count), so the last epochs settle instead of
/// oscillating; `constant` keeps it.
enum ScheduleKind: String, ExpressibleByArgument, CaseIterable, Codable {
    case cosine, constant
}

enum OptimizerKind: String, ExpressibleByArgument, CaseIterable, Codable {
    case sgd, adam, adamw, rmsprop, adagrad

    func make(_ parameters: [Parameter], learningRate: Double) -> any Optimizer {
        switch self {
        case .sgd: SGD(parameters, lr: learningRate, momentum: 0.9)
        case .adam: Adam(parameters, lr: learningRate)
        case .adamw: AdamW(parameters, lr: learningRate)
        case .rmsprop: RMSprop(parameters, lr: learningRate)
        case .adagrad: Adagrad(parameters, lr: learningRate)
        }
    }
}

enum ModelKind: String, ExpressibleByArgument, CaseIterable, Codable {
    /// Linear -> ReLU -> BatchNorm1d -> Dropout -> Linear.
    case mlp
    /// A 2-layer LSTM reading each sample as 8 steps (rows), then a Linear head.
    case lstm
}

/// Everything that determines a run: stored in the checkpoint so `evaluate` can rebuild it.
struct RunSettings: Codable {
    var model: ModelKind
    var inputs: Int
    var hidden: Int
    var classes: Int
    var dropout: Double
    var seed: UInt64
    var validationFraction: Double
    var data: String?
    var labels: String?
    var labelColumn: String?
    var hasHeader: Bool

    func makeModel() -> Module {
        switch model {
        case .mlp: SeedNetwork(inputs: inputs, hidden: hidden, outputs: classes, dropout: dropout)
        case .lstm: RowLSTM(steps: 8, features: inputs / 8, hidden: hidden, classes: classes, layers: 2, dropout: dropout)
        }
    }
}

/// The samples a run trains and validates on.
struct LoadedData {
    var dataset: TensorDataset
    var description: String
    var features: Int
    var classes: Int
}

/// Loads the embedded digits, or a CSV / .npy / IDX file (with a labels file for .npy and IDX).
func loadData(path: String?, labels: String?, labelColumn: String?, hasHeader: Bool = true) throws -> LoadedData {
    guard let path else {
        let d = try Digits.dataset(normalized: true)
        return LoadedData(dataset: d, description: "embedded digits (1,797 8x8 images, 10 classes)", features: 64, classes: 10)
    }
    guard FileManager.default.fileExists(atPath: path) else { throw UserFacingError("data file '\(path)' does not exist") }
    let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
    var dataset: TensorDataset
    switch ext {
    case "csv":
        let column: CSVColumn = labelColumn.map { Int($0).map(CSVColumn.index) ?? .name($0) } ?? .index(-1)
        let table = try CSV.read(contentsOf: path, hasHeader: hasHeader, label: column)
        dataset = table.dataset()
    case "npy", "idx", "ubyte":
        guard let labels else { throw UserFacingError("--labels is required with a .\(ext) features file") }
        let x = ext == "npy" ? try NPY.read(contentsOf: path, as: .float32) : try IDX.read(contentsOf: path, as: .float32)
        let yExt = URL(fileURLWithPath: labels).pathExtension.lowercased()
        let y = yExt == "npy" ? try NPY.read(contentsOf: labels, as: .int64) : try IDX.read(contentsOf: labels, as: .int64)
        guard y.shape.count == 1, x.shape.count >= 1, x.shape[0] == y.shape[0] else {
            throw UserFacingError("features '\(path)' have shape \(x.shape) but labels '\(labels)' have shape \(y.shape); expected [N, ...] and [N]")
        }
        dataset = TensorDataset(inputs: x, labels: y)
    default:
        throw UserFacingError("unsupported data file '\(path)': expected .csv, .npy or .idx")
    }
    let n = dataset.count
    guard n >= 2 else { throw UserFacingError("data file '\(path)' has \(n) samples; need at least 2") }
    let features = dataset.inputs.shape.dropFirst().reduce(1, *)
    if dataset.inputs.shape.count != 2 {
        // Flatten images to vectors for the MLP.
        let t = Tensor(dataset.inputs).reshaped([n, features])
        dataset = TensorDataset(inputs: t, labels: Tensor(dataset.labels))
    }
    let labelValues = Tensor(dataset.labels).to(.int64).scalars(as: Int64.self)
    guard let lo = labelValues.min(), let hi = labelValues.max(), lo >= 0 else {
        throw UserFacingError("labels in '\(labels ?? path)' must be non-negative class indices")
    }
    guard hi < 10_000 else { throw UserFacingError("labels in '\(labels ?? path)' go up to \(hi); expected class indices") }
    return LoadedData(dataset: dataset, description: "\(path) (\(n) samples, \(features) features, \(hi + 1) classes)",
                      features: features, classes: Int(hi) + 1)
}
