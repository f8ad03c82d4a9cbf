import EmberAutograd
import EmberTensor
import EmberStorage

/// How a loss combines its per-element values into the returned tensor.
///
/// PyTorch parity: the `reduction` strings `'none'`, `'mean'`, `'sum'` and, for
/// `kl_div`/`KLDivLoss` only, `'batchmean'`. Any other loss given ``batchMean`` stops with PyTorch's
/// error, "batchmean is not a valid value for reduction".
public enum Reduction: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The unreduced per-element (per-sample for class losses) values.
    case none
    /// The mean over elements (cross entropy and NLL: the weighted mean, see there).
    case mean
    /// The sum over elements.
    case sum
    /// The sum divided by the batch size (the first dimension). KL divergence only.
    case batchMean = "batchmean"

    /// PyTorch's spelling: `none`, `mean`, `sum`, `batchmean`.
    public var description: String { rawValue }
}

extension Reduction {
    /// Stops with PyTorch's message when `op` does not accept this reduction (only `klDiv` accepts
    /// ``batchMean``).
    @inline(__always)
    package func validate(_ op: String, allowsBatchMean: Bool = false) {
        precondition(self != .batchMean || allowsBatchMean,
                     "\(op): batchmean is not a valid value for reduction (only klDiv/KLDivLoss accept .batchMean; use .mean, .sum or .none)")
    }

    /// The factor a reduced sum is multiplied by: `1` for ``sum``, `1 / count` for ``mean``,
    /// `1 / batch` for ``batchMean`` (`1` for a 0-d input). An empty mean gives NaN, as PyTorch.
    func scale(count: Int, shape: Shape) -> Double {
        switch self {
        case .none, .sum: 1
        case .mean: 1 / Double(count)
        case .batchMean: shape.count == 0 ? 1 : 1 / Double(shape[0])
        }
    }
}
