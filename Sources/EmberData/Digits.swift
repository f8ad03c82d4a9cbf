import EmberAutograd
import Foundation
import EmberTensor
import EmberStorage

/// The 1,797 handwritten digits that ship with Ember: 8x8 images with pixel values 0...16 and
/// labels 0...9, so examples and tests can train on real data without downloading anything.
///
/// Source: the test part of the UCI "Optical Recognition of Handwritten Digits" data set
/// (E. Alpaydin, C. Kaynak, 1998; CC BY 4.0), as scikit-learn (BSD-3-Clause) ships it in
/// `load_digits()`. Each pixel counts the set pixels of a 4x4 block of a 32x32 bitmap. The copy
/// in `Sources/EmberData/Resources` (two IDX files, 117 KB) is written by
/// `Tools/data/make_digits.py`; tests check it against scikit-learn's class counts and checksums.
///
/// ```swift
/// let data = try Digits.dataset()                       // inputs [64] in [0, 1], labels 0...9
/// let (train, test) = { let s = randomSplit(data, lengths: [0.8, 0.2]); return (s[0], s[1]) }()
/// ```
///
/// PyTorch parity: the data of `sklearn.datasets.load_digits()` (`data`, `target`), in the same
/// sample order.
public enum Digits {
    /// The number of samples.
    public static let sampleCount = 1797
    /// Features per sample (8 x 8 pixels).
    public static let featureCount = 64
    /// The number of classes (the digits 0...9).
    public static let classCount = 10

    /// The raw data: `features` holds 1,797 x 64 pixel values 0...16 in row-major order (sample
    /// by sample, each image row by row), `labels` the digits 0...9.
    ///
    /// PyTorch parity: `load_digits().data.ravel()` and `load_digits().target`.
    public static func load() throws(DataError) -> (features: [Float], labels: [Int64]) {
        let images = try IDX.read(contentsOf: resourcePath("digits-images.idx"), as: .float32)
        let labels = try IDX.read(contentsOf: resourcePath("digits-labels.idx"), as: .int64)
        let expected: Shape = [sampleCount, 8, 8]
        guard images.shape == expected else {
            throw .idx(file: "digits-images.idx", offset: 4, expected: "the shape \(expected)", found: "\(images.shape)")
        }
        guard labels.shape == [sampleCount] else {
            throw .idx(file: "digits-labels.idx", offset: 4, expected: "the shape [\(sampleCount)]", found: "\(labels.shape)")
        }
        return (images.floats, labels.int64s)
    }

    /// The digits as a dataset: inputs of shape `[64]` (or `[1, 8, 8]` with `asImages`), float32,
    /// divided by 16 when `normalized` (so in `[0, 1]`); labels 0-d int64.
    ///
    /// - Parameters:
    ///   - normalized: scale the pixel values 0...16 to `[0, 1]` (default `true`).
    ///   - asImages: give each input the shape `[1, 8, 8]` (channels, height, width) for
    ///     convolutions instead of `[64]` (default `false`).
    public static func dataset(normalized: Bool = true, asImages: Bool = false) throws(DataError) -> TensorDataset {
        let (features, labels) = try load()
        let values = normalized ? features.map { $0 / 16 } : features
        return TensorDataset(features: values, featureShape: asImages ? [1, 8, 8] : [featureCount], labels: labels)
    }

    /// The path of a file in EmberData's resource bundle.
    static func resourcePath(_ name: String) throws(DataError) -> String {
        let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Resources")
            ?? Bundle.module.url(forResource: name, withExtension: nil)
        guard let url else { throw .missingResource(name: name) }
        return url.path
    }
}
