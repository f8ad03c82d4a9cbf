import EmberAutograd
import Foundation
import EmberTensor
import EmberStorage

/// The samples of `base` at `indices`, in that order.
///
/// PyTorch parity: `torch.utils.data.Subset(dataset, indices)`.
public struct Subset<Base: Dataset>: Dataset {
    /// The dataset the samples come from.
    public let base: Base
    /// Indices into `base`; sample `i` of the subset is `base[indices[i]]`.
    public let indices: [Int]

    /// The samples of `base` at `indices` (each in `0..<base.count`).
    public init(_ base: Base, indices: [Int]) {
        for i in indices {
            precondition(i >= 0 && i < base.count,
                         "Subset: index \(i) is out of bounds for a dataset of size \(base.count)")
        }
        self.base = base
        self.indices = indices
    }

    /// The number of samples in the subset.
    public var count: Int { indices.count }

    /// Sample `index` of the subset: `base[indices[index]]`.
    public subscript(index: Int) -> Base.Sample {
        precondition(index >= 0 && index < indices.count,
                     "Subset: index \(index) is out of range for a subset of size \(indices.count)")
        return base[indices[index]]
    }
}

/// Splits `dataset` at random into non-overlapping subsets of the given sizes.
///
/// A random permutation of `0..<dataset.count` (``Tensor/randperm(_:dtype:generator:)``) is cut
/// into consecutive pieces of `lengths[0]`, `lengths[1]`, ... samples.
///
/// - Parameters:
///   - dataset: the dataset to split.
///   - lengths: the size of each split; they must add up to `dataset.count`.
///   - generator: the random source; defaults to the task's ``Generator/default``.
///
/// PyTorch parity: `torch.utils.data.random_split(dataset, lengths, generator)` with integer
/// lengths, and its error "Sum of input lengths does not equal the length of the input dataset!".
/// The permutation differs from PyTorch's (a different random stream).
public func randomSplit<D: Dataset>(
    _ dataset: D, lengths: [Int], generator: Generator = .default
) -> [Subset<D>] {
    precondition(lengths.allSatisfy { $0 >= 0 }, "randomSplit: lengths must be non-negative, but got \(lengths)")
    precondition(lengths.reduce(0, +) == dataset.count,
                 "Sum of input lengths does not equal the length of the input dataset! (lengths \(lengths) add up to \(lengths.reduce(0, +)), the dataset has \(dataset.count) samples)")
    let permutation = Tensor.randperm(dataset.count, generator: generator).scalars(as: Int64.self).map { Int($0) }
    var start = 0
    return lengths.map { length in
        defer { start += length }
        return Subset(dataset, indices: Array(permutation[start..<(start + length)]))
    }
}

/// Splits `dataset` at random into non-overlapping subsets holding the given fractions of it.
///
/// Fractions that add up to 1 become sizes `floor(count * fraction)`; the samples left over are
/// then handed out one at a time, round-robin from the first split. So 10 samples split
/// `[0.5, 0.3, 0.2]` give 5, 3, 2 and 11 samples give 6, 3, 2. A split that ends up empty prints a
/// warning, as PyTorch does.
///
/// - Parameters:
///   - dataset: the dataset to split.
///   - lengths: fractions in `[0, 1]` that add up to 1 (within 1e-9, and not above 1).
///   - generator: the random source; defaults to the task's ``Generator/default``.
///
/// PyTorch parity: `torch.utils.data.random_split(dataset, [0.8, 0.2], generator)`, with the same
/// rounding and remainder rule and the same error texts ("Fraction at index 1 is not between 0
/// and 1", "Sum of input lengths does not equal the length of the input dataset!").
public func randomSplit<D: Dataset>(
    _ dataset: D, lengths fractions: [Double], generator: Generator = .default
) -> [Subset<D>] {
    let lengths = splitLengths(count: dataset.count, fractions: fractions)
    for (i, length) in lengths.enumerated() where length == 0 {
        FileHandle.standardError.write(
            Data("UserWarning: Length of split at index \(i) is 0. This might result in an empty dataset.\n".utf8))
    }
    return randomSplit(dataset, lengths: lengths, generator: generator)
}

/// The split sizes PyTorch's `random_split` derives from `fractions` for `count` samples (no
/// warning for an empty split: ``randomSplit(_:lengths:generator:)`` prints it).
package func splitLengths(count: Int, fractions: [Double]) -> [Int] {
    let total = fractions.reduce(0, +)
    // Python's math.isclose(total, 1) with its default rel_tol=1e-9, abs_tol=0.
    let isClose = Swift.abs(total - 1) <= 1e-9 * Swift.max(Swift.abs(total), 1)
    precondition(isClose && total <= 1,
                 "Sum of input lengths does not equal the length of the input dataset! (fractions \(fractions) add up to \(total), not 1)")
    var lengths: [Int] = []
    for (i, f) in fractions.enumerated() {
        precondition(f >= 0 && f <= 1, "Fraction at index \(i) is not between 0 and 1")
        lengths.append(Int((Double(count) * f).rounded(.down)))
    }
    let remainder = count - lengths.reduce(0, +)
    if !lengths.isEmpty {
        for i in 0..<Swift.max(remainder, 0) { lengths[i % lengths.count] += 1 }
    }
    return lengths
}
