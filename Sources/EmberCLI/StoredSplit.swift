import Ember
import Foundation

/// The validation split of a run, stored in each of its checkpoints (metadata `user.split`), so
/// `ember evaluate` uses exactly the samples the run held out, without re-drawing them.
struct StoredSplit: Codable, Equatable {
    /// The number of samples the data had when it was split.
    var samples: Int
    /// The held-out samples' indices into the data, in the order the run validated them.
    var validation: [Int]

    static let metadataKey = "split"

    /// The split stored in `checkpoint`, or `nil` for a checkpoint written before splits were
    /// stored.
    static func stored(in checkpoint: Checkpoint, path: String) throws -> StoredSplit? {
        guard let text = checkpoint.metadata[metadataKey] else { return nil }
        do { return try JSONDecoder().decode(StoredSplit.self, from: Data(text.utf8)) } catch {
            throw UserFacingError("\(path): the stored validation split is not readable (\(error))")
        }
    }

    /// The metadata value: JSON with sorted keys (the same bytes in every run).
    var metadataValue: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// The validation samples of `dataset`, checked against the data the run was split from.
    func validationSubset<D: Dataset>(of dataset: D, path: String) throws -> Subset<D> {
        guard dataset.count == samples else {
            throw UserFacingError("\(path): the run split \(samples) samples but the data now has \(dataset.count); evaluate on the data the run was trained on")
        }
        guard !validation.isEmpty, validation.allSatisfy({ (0..<samples).contains($0) }), Set(validation).count == validation.count else {
            throw UserFacingError("\(path): the stored validation split is invalid (indices must be distinct and in 0..<\(samples))")
        }
        return Subset(dataset, indices: validation)
    }
}
