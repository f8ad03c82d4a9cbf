import Ember
import Foundation
import Testing
import _EmberTestSupport

/// FNV-1a, 64-bit, as `Tools/data/make_digits.py` computes it.
private func fnv1a64(_ bytes: [UInt8]) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in bytes {
        h ^= UInt64(b)
        h = h &* 0x100_0000_01B3
    }
    return h
}

@Suite struct DataDigitsTests {
    // These numbers come from scikit-learn's `load_digits()`, printed by Tools/data/make_digits.py.
    static let classCounts = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    static let featureSum = 561_718
    static let featuresFNV: UInt64 = 0x493F_A2F6_7DF5_50A1
    static let labelsFNV: UInt64 = 0x5C66_ED87_5B0A_9785
    static let firstSample: [Float] = [
        0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0,
        0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0,
    ]

    @Test func theEmbeddedCopyIsScikitLearns() throws {
        let (features, labels) = try Digits.load()
        #expect(features.count == 1797 * 64)
        #expect(labels.count == 1797)
        #expect(Digits.sampleCount == 1797 && Digits.featureCount == 64 && Digits.classCount == 10)
        var counts = [Int](repeating: 0, count: 10)
        for l in labels { counts[Int(l)] += 1 }
        #expect(counts == Self.classCounts)
        #expect(features.allSatisfy { $0 >= 0 && $0 <= 16 && $0 == $0.rounded() })
        #expect(Int(features.reduce(0, +)) == Self.featureSum)
        #expect(fnv1a64(features.map { UInt8($0) }) == Self.featuresFNV)
        #expect(fnv1a64(labels.map { UInt8($0) }) == Self.labelsFNV)
        #expect(Array(features[0..<64]) == Self.firstSample && labels[0] == 0)
    }

    @Test func datasetIsNormalizedToTheUnitInterval() throws {
        let data = try Digits.dataset()
        #expect(data.count == 1797)
        #expect(data.inputs.shape == [1797, 64] && data.inputs.dtype == .float32)
        #expect(data.labels.shape == [1797] && data.labels.dtype == .int64)
        #expect(data[0].input.floats == Self.firstSample.map { $0 / 16 })
        #expect(data.inputs.floats.max() == 1 && data.inputs.floats.min() == 0)
        let raw = try Digits.dataset(normalized: false, asImages: true)
        #expect(raw.inputs.shape == [1797, 1, 8, 8])
        #expect(raw[0].input.floats == Self.firstSample)
    }

    @Test func aTrainTestSplitAndLoaderCoverEveryDigitOnce() throws {
        let data = try Digits.dataset()
        let g = Generator(seed: 0)
        let parts = randomSplit(data, lengths: [0.8, 0.2], generator: g)
        #expect(parts.map(\.count) == [1438, 359])
        let loader = DataLoader(parts[0], batchSize: 64, shuffle: true, dropLast: false, generator: g)
        #expect(loader.count == 23)
        var seen = 0
        var labelTotal: Int64 = 0
        for batch in loader {
            #expect(batch.inputs.shape[1] == 64)
            seen += batch.inputs.shape[0]
            labelTotal += batch.labels.scalars(as: Int64.self).reduce(0, +)
        }
        #expect(seen == 1438)
        let expectedTotal = parts[0].indices.reduce(Int64(0)) { $0 + data.labels.int64s[$1] }
        #expect(labelTotal == expectedTotal)
    }
}
