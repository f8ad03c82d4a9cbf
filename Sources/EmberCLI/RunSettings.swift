import Ember
import Foundation
import SeedNetwork

/// Everything that determines a run: stored in every checkpoint, so that `ember evaluate` can
/// rebuild the model and `ember train --resume` can continue the run exactly.
///
/// The training fields (`epochs` ... `allowNonFinite`) are optional only so that checkpoints of
/// earlier versions, which lack them, still evaluate; `--resume` needs them.
struct RunSettings: Codable, Equatable {
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
    var epochs: Int?
    var batchSize: Int?
    var learningRate: Double?
    var optimizer: OptimizerKind?
    var schedule: ScheduleKind?
    var allowNonFinite: Bool?

    /// The largest class count inferred from labels without `--classes`.
    static let maxInferredClasses = 1_000
    /// The largest class count `--classes` accepts.
    static let maxClasses = 100_000

    func makeModel() -> Module {
        switch model {
        case .mlp: SeedNetwork(inputs: inputs, hidden: hidden, outputs: classes, dropout: dropout)
        case .lstm: RowLSTM(steps: 8, features: inputs / 8, hidden: hidden, classes: classes, layers: 2, dropout: dropout)
        case .cnn: DigitCNN(side: ModelKind.imageSide(features: inputs) ?? 8, channels: hidden / 4, classes: classes, dropout: dropout)
        case .transformer:
            DigitTransformer(tokens: 8, features: inputs / 8, dModel: hidden / 2, heads: ModelKind.transformerHeads,
                             feedforward: hidden, layers: 2, classes: classes, dropout: dropout)
        }
    }

    /// Every field checked, in the words of the option that sets it (`source` says where the
    /// settings came from: "" for the command line, "checkpoint 'PATH': " for a file).
    func validate(source: String = "") throws {
        func fail(_ what: String) -> UserFacingError { UserFacingError(source + what) }
        guard inputs >= 1 else { throw fail("the model's input size is \(inputs); expected at least 1") }
        guard (1...Self.maxClasses).contains(classes) else {
            throw fail("the class count is \(classes); expected 1 to \(Self.maxClasses)")
        }
        guard hidden >= 1 else { throw fail("--hidden must be at least 1, got \(hidden)") }
        guard dropout >= 0, dropout < 1 else { throw fail("--dropout must be in [0, 1), got \(dropout)") }
        guard validationFraction > 0, validationFraction < 1 else {
            throw fail("--validation-fraction must be between 0 and 1 (exclusive), got \(validationFraction)")
        }
        if model == .lstm && inputs % 8 != 0 {
            throw fail("--model lstm reads each sample as 8 time steps, so the feature count must be a multiple of 8 (got \(inputs))")
        }
        if model == .transformer {
            if inputs % 8 != 0 {
                throw fail("--model transformer reads each sample as 8 tokens, so the feature count must be a multiple of 8 (got \(inputs))")
            }
            let heads = ModelKind.transformerHeads
            guard hidden % (2 * heads) == 0 else {
                throw fail("--model transformer uses a token width of hidden / 2 split over \(heads) heads, so --hidden must be a multiple of \(2 * heads), got \(hidden)")
            }
        }
        if model == .cnn {
            guard let side = ModelKind.imageSide(features: inputs), side >= 4 else {
                throw fail("--model cnn reads each sample as a square one-channel image, so the feature count must be a square of at least 16 (got \(inputs))")
            }
            guard hidden >= 4 else { throw fail("--model cnn uses hidden / 4 channels, so --hidden must be at least 4, got \(hidden)") }
        }
        if let epochs, !(1...100_000).contains(epochs) { throw fail("--epochs must be between 1 and 100000, got \(epochs)") }
        if let batchSize {
            guard batchSize >= 1 else { throw fail("--batch-size must be at least 1, got \(batchSize)") }
            if batchSize == 1 && model == .mlp {
                throw fail("--batch-size 1 cannot train --model mlp: its BatchNorm1d needs at least 2 samples per batch in training mode (use --batch-size 2 or more)")
            }
        }
        if let learningRate, !(learningRate > 0 && learningRate.isFinite) {
            throw fail("--learning-rate must be a positive number, got \(learningRate)")
        }
        let available = ProcessInfo.processInfo.physicalMemory
        let needed = memoryNeeded()
        if needed.map({ UInt64($0) > available / 10 * 8 }) ?? true {
            let amount = needed.map { "about \(gigabytes($0))" } ?? "more than \(gigabytes(Int.max))"
            throw fail("the model (hidden \(hidden), \(inputs) inputs, \(classes) classes) needs \(amount) of memory to train; this machine has \(gigabytes(Int(clamping: available)))")
        }
    }

    /// The model's parameter count, or `nil` when it overflows.
    func parameterCount() -> Int? {
        func mul(_ values: Int...) -> Int? {
            var p = 1
            for v in values {
                let (r, o) = p.multipliedReportingOverflow(by: v)
                if o { return nil }
                p = r
            }
            return p
        }
        func add(_ values: Int?...) -> Int? {
            var s = 0
            for v in values {
                guard let v else { return nil }
                let (r, o) = s.addingReportingOverflow(v)
                if o { return nil }
                s = r
            }
            return s
        }
        switch model {
        case .mlp:
            return add(mul(inputs, hidden), mul(hidden, 5), mul(hidden, classes), classes)
        case .lstm:
            let layer0 = add(mul(4, hidden, inputs / 8), mul(4, hidden, hidden), mul(8, hidden))
            let layer1 = add(mul(8, hidden, hidden), mul(8, hidden))
            return add(layer0, layer1, mul(hidden, classes), classes)
        case .cnn:
            let c2 = hidden / 4, c1 = max(1, c2 / 2)
            return add(mul(9, c1), mul(4, c1), mul(9, c1, c2), mul(4, c2), mul(c2, classes), classes)
        case .transformer:
            // Token embedding and positions, two encoder layers (attention 4d^2 + 4d, feed-forward
            // 2 d ff + ff + d, two LayerNorms 4d), the final LayerNorm and the head.
            let d = hidden / 2, ff = hidden, f = inputs / 8
            let layer = add(mul(4, d, d), mul(2, d, ff), mul(9, d), ff)
            return add(mul(f, d), d, mul(8, d), layer, layer, mul(2, d), mul(d, classes), classes)
        }
    }

    /// Bytes to train: each parameter held about six times (value, gradient, two optimizer
    /// moments, a packed copy, a state-dict copy) in float32.
    func memoryNeeded() -> Int? {
        guard let p = parameterCount() else { return nil }
        let (bytes, overflow) = p.multipliedReportingOverflow(by: 24)
        return overflow ? nil : bytes
    }
}

/// A byte count as "1.5 GB" (or "12 MB").
func gigabytes(_ bytes: Int) -> String {
    bytes >= 1_000_000_000 ? String(format: "%.1f GB", Double(bytes) / 1e9) : String(format: "%.0f MB", Double(bytes) / 1e6)
}
