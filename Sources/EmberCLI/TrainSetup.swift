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
///
/// With `distributed`, on the ranks other than 0 of an `mpirun` (their rank read from its
/// environment), only errors of the data-parallel run itself are printed, prefixed with the rank:
/// the others (options, files, divergence) are the same on every rank, and rank 0 prints them once.
func reportingErrors(distributed: Bool = false, _ body: () throws -> Void) throws {
    do { try body() } catch let error as ExitCode {
        throw error
    } catch {
        let env = ProcessInfo.processInfo.environment
        let rank = Int(env["OMPI_COMM_WORLD_RANK"] ?? env["PMI_RANK"] ?? "") ?? 0
        if !distributed || rank == 0 {
            FileHandle.standardError.write(Data("ember: error: \(oneLine("\(error)"))\n".utf8))
        } else if error is DistributedError || isDataParallelFailure(error) {
            FileHandle.standardError.write(Data("ember: error: rank \(rank): \(oneLine("\(error)"))\n".utf8))
        }
        throw ExitCode.failure
    }
}

private func isDataParallelFailure(_ error: Error) -> Bool {
    if case .distributed = error as? FitError { return true }
    return false
}

/// `text` with line breaks and other control characters escaped (`\n`, `\u{1B}`), so that an
/// error quoting a file's bytes still prints as one line.
func oneLine(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .lineSeparator
            || scalar.properties.generalCategory == .paragraphSeparator:
            out += "\\u{\(String(scalar.value, radix: 16))}"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
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
    /// Two Conv2d-BatchNorm2d-ReLU-Dropout2d-MaxPool2d blocks on each sample as a square image,
    /// global average pooling, then a Linear head.
    case cnn
    /// Each sample read as 8 tokens (rows), a learned position per token, a 2-layer pre-norm
    /// TransformerEncoder (token width hidden / 2, 4 heads, feed-forward width hidden), the mean
    /// over tokens, LayerNorm and a Linear head.
    case transformer

    /// The dropout probability when `--dropout` is not given.
    var defaultDropout: Double { self == .cnn || self == .transformer ? 0.1 : 0.5 }
    /// The learning rate when `--learning-rate` is not given.
    var defaultLearningRate: Double { self == .cnn ? 0.05 : self == .transformer ? 0.005 : 0.01 }

    /// The attention heads of `--model transformer`.
    static let transformerHeads = 4

    /// The image side of `--model cnn` for `features` inputs, when they make a square.
    static func imageSide(features: Int) -> Int? {
        let side = Int(Double(features).squareRoot().rounded())
        return side * side == features ? side : nil
    }
}

/// The samples a run trains and validates on.
struct LoadedData {
    var dataset: TensorDataset
    /// Where the data came from, for messages ("the embedded digits" or the file's path).
    var source: String
    /// Where the labels came from (the labels file, or `source`).
    var labelSource: String
    var features: Int
    /// The labels as class indices (non-negative), for the class count and its checks.
    var labelValues: [Int64]

    /// The class count: `explicit` when given (every label must be below it), otherwise one more
    /// than the largest label, at most ``RunSettings/maxInferredClasses``.
    func classes(explicit: Int?) throws -> Int {
        let largest = Int(labelValues.max() ?? 0)
        if let explicit {
            guard (1...RunSettings.maxClasses).contains(explicit) else {
                throw UserFacingError("--classes must be between 1 and \(RunSettings.maxClasses), got \(explicit)")
            }
            if let i = labelValues.firstIndex(where: { $0 >= explicit }) {
                throw UserFacingError("label \(labelValues[i]) of sample \(i) in \(labelSource) is not below the class count \(explicit)")
            }
            return explicit
        }
        guard largest < RunSettings.maxInferredClasses else {
            let i = labelValues.firstIndex(of: Int64(largest)) ?? 0
            throw UserFacingError("label \(largest) of sample \(i) in \(labelSource) would make \(largest + 1) classes; pass --classes \(largest + 1) if that is intended (without --classes at most \(RunSettings.maxInferredClasses) classes are inferred)")
        }
        return largest + 1
    }

    func description(classes: Int) -> String {
        source == "the embedded digits"
            ? "embedded digits (1,797 8x8 images, 10 classes)"
            : "\(source.dropFirst().dropLast()) (\(dataset.count) samples, \(features) features, \(classes) classes)"
    }
}

/// Loads the embedded digits, or a CSV / .npy / IDX file (with a labels file for .npy and IDX).
func loadData(path: String?, labels: String?, labelColumn: String?, hasHeader: Bool = true, allowNonFinite: Bool = false) throws -> LoadedData {
    var dataset: TensorDataset
    if let path {
        guard FileManager.default.fileExists(atPath: path) else { throw UserFacingError("data file '\(path)' does not exist") }
        let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
        switch ext {
        case "csv":
            let column: CSVColumn = labelColumn.map { Int($0).map(CSVColumn.index) ?? .name($0) } ?? .index(-1)
            let table = try CSV.read(contentsOf: path, hasHeader: hasHeader, label: column, allowNonFinite: allowNonFinite)
            dataset = table.dataset()
        case "npy", "idx", "ubyte":
            guard let labels else { throw UserFacingError("--labels is required with a .\(ext) features file") }
            let x = ext == "npy" ? try NPY.read(contentsOf: path, as: .float32, allowNonFinite: allowNonFinite)
                : try IDX.read(contentsOf: path, as: .float32, allowNonFinite: allowNonFinite)
            let yExt = URL(fileURLWithPath: labels).pathExtension.lowercased()
            let y = yExt == "npy" ? try NPY.read(contentsOf: labels, as: .int64) : try IDX.read(contentsOf: labels, as: .int64)
            guard y.shape.count == 1, x.shape.count >= 1, x.shape[0] == y.shape[0] else {
                throw UserFacingError("features '\(path)' have shape \(x.shape) but labels '\(labels)' have shape \(y.shape); expected [N, ...] and [N]")
            }
            dataset = TensorDataset(inputs: x, labels: y)
        default:
            throw UserFacingError("unsupported data file '\(path)': expected .csv, .npy or .idx")
        }
    } else {
        dataset = try Digits.dataset(normalized: true)
    }
    let source = path.map { "'\($0)'" } ?? "the embedded digits"
    let n = dataset.count
    guard n >= 2 else { throw UserFacingError("data file \(source) has \(n) samples; need at least 2") }
    let features = dataset.inputs.shape.dropFirst().reduce(1, *)
    guard features >= 1 else { throw UserFacingError("the samples in \(source) have no features (shape \(dataset.inputs.shape))") }
    if dataset.inputs.shape.count != 2 {
        // Flatten images to vectors for the MLP.
        let t = Tensor(dataset.inputs).reshaped([n, features])
        dataset = TensorDataset(inputs: t, labels: Tensor(dataset.labels))
    }
    let labelValues = Tensor(dataset.labels).to(.int64).scalars(as: Int64.self)
    if let i = labelValues.firstIndex(where: { $0 < 0 }) {
        throw UserFacingError("label \(labelValues[i]) of sample \(i) in \(labels.map { "'\($0)'" } ?? source) is negative; expected class indices 0, 1, 2, ...")
    }
    return LoadedData(dataset: dataset, source: source, labelSource: labels.map { "'\($0)'" } ?? source, features: features,
                      labelValues: labelValues)
}
