import EmberAutograd
import EmberNN
import EmberFunctional
import EmberOptim
import EmberData
import EmberIO
import EmberTensor
import EmberStorage

/// Counts of (true class, predicted class) pairs.
///
/// PyTorch parity: none in core PyTorch (torchmetrics' `ConfusionMatrix`): rows are true classes,
/// columns predicted classes.
public struct ConfusionMatrix: Equatable, Sendable, CustomStringConvertible {
    public let classes: Int
    /// Row-major `classes x classes` counts.
    public private(set) var counts: [Int]

    public init(classes: Int) {
        precondition(classes > 0, "ConfusionMatrix: classes must be positive, got \(classes)")
        self.classes = classes
        counts = Array(repeating: 0, count: classes * classes)
    }

    /// Adds a batch: `logits` `[N, classes]` (argmax taken) and int64 `labels` `[N]`.
    public mutating func add(logits: Tensor, labels: Tensor) {
        precondition(logits.rank == 2 && logits.shape[1] == classes && labels.shape == [logits.shape[0]],
                     "ConfusionMatrix.add: expected logits [N, \(classes)] and labels [N], got \(logits.shape) and \(labels.shape)")
        let predicted = logits.argmax(axis: 1).scalars(as: Int64.self)
        let truth = labels.to(.int64).scalars(as: Int64.self)
        for (t, p) in zip(truth, predicted) {
            precondition(t >= 0 && Int(t) < classes, "ConfusionMatrix.add: label \(t) is out of range for \(classes) classes")
            counts[Int(t) * classes + Int(p)] += 1
        }
    }

    /// Count of samples with true class `truth` predicted as `predicted`.
    public subscript(truth: Int, predicted: Int) -> Int { counts[truth * classes + predicted] }

    /// Samples counted.
    public var total: Int { counts.reduce(0, +) }

    /// Fraction predicted correctly (0 when empty).
    public var accuracy: Double {
        total == 0 ? 0 : Double((0..<classes).map { self[$0, $0] }.reduce(0, +)) / Double(total)
    }

    public var description: String {
        let width = max(String(counts.max() ?? 0).count, String(classes - 1).count) + 1
        func pad(_ s: String) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        var lines = ["true\\pred" + (0..<classes).map { pad(String($0)) }.joined()]
        for t in 0..<classes {
            lines.append(pad(String(t)).padding(toLength: 9, withPad: " ", startingAt: 0) + (0..<classes).map { pad(String(self[t, $0])) }.joined())
        }
        return lines.joined(separator: "\n")
    }
}

/// Fraction of rows of `logits` whose argmax equals `labels`.
public func accuracy(logits: Tensor, labels: Tensor) -> Double {
    precondition(logits.rank == 2 && labels.shape == [logits.shape[0]],
                 "accuracy: expected logits [N, C] and labels [N], got \(logits.shape) and \(labels.shape)")
    guard logits.shape[0] > 0 else { return 0 }
    let predicted = logits.argmax(axis: 1).scalars(as: Int64.self)
    let truth = labels.to(.int64).scalars(as: Int64.self)
    return Double(zip(predicted, truth).filter { $0 == $1 }.count) / Double(truth.count)
}
