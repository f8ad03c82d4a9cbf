import Ember
import Foundation
import Testing
import _EmberTestSupport

/// Helpers shared by the EmberData tests (`Data*Tests`, `*ReaderTests`).
enum DataFixtures {
    /// `Tests/EmberTests/Fixtures/data/<name>`, written by `Tools/data/make_reader_fixtures.py`.
    static func path(_ name: String) -> String {
        Fixture.directory.appendingPathComponent("data").appendingPathComponent(name).path
    }

    /// The bytes of a fixture file.
    static func bytes(_ name: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path(name))) }

    /// What numpy / Python read from one fixture file (`expected.json`).
    struct Entry: Decodable {
        var shape: [Int]?
        var dtype: String?
        var descr: String?
        var fortran_order: Bool?
        var version: String?
        var values: [String]?
        var featureNames: [String]?
        var labelName: String?
        var classNames: [String]?
        var features32: [String]?
        var features64: [String]?
        var labels: [Int64]?
        var ids: [String]?
    }

    static let expected: [String: Entry] = {
        do {
            return try JSONDecoder().decode([String: Entry].self, from: bytes("expected.json"))
        } catch {
            preconditionFailure("cannot read Fixtures/data/expected.json: \(error)")
        }
    }()

    static func entry(_ name: String) -> Entry {
        guard let e = expected[name] else { preconditionFailure("expected.json has no entry '\(name)'") }
        return e
    }
}

/// The values of `host` as exact strings comparable with `expected.json` (Python's repr for
/// floats: the shortest text that round-trips; Swift's `description` is the same text for finite
/// values, apart from notation, so compare parsed values instead).
func expectHostValues(_ host: HostTensor, equal expected: [String], _ comment: String,
                      sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(host.count == expected.count, "\(comment): \(host.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
    guard host.count == expected.count else { return }
    var mismatches: [String] = []
    switch host.scalars {
    case .float32(let a):
        for (i, (v, s)) in zip(a, expected).enumerated() {
            guard let d = Double(s) else { mismatches.append("[\(i)] unparsable \(s)"); continue }
            let e = Float(d)
            if !(v.bitPattern == e.bitPattern || (v.isNaN && e.isNaN)) { mismatches.append("[\(i)] \(v) != \(s)") }
        }
    case .float64(let a):
        for (i, (v, s)) in zip(a, expected).enumerated() {
            guard let e = Double(s) else { mismatches.append("[\(i)] unparsable \(s)"); continue }
            if !(v.bitPattern == e.bitPattern || (v.isNaN && e.isNaN)) { mismatches.append("[\(i)] \(v) != \(s)") }
        }
    case .int64(let a):
        for (i, (v, s)) in zip(a, expected).enumerated() where Int64(s) != v { mismatches.append("[\(i)] \(v) != \(s)") }
    case .bool(let a):
        for (i, (v, s)) in zip(a, expected).enumerated() where (s == "true") != v { mismatches.append("[\(i)] \(v) != \(s)") }
    }
    #expect(mismatches.isEmpty, "\(comment): \(mismatches.count) mismatches, first: \(mismatches.prefix(5))", sourceLocation: sourceLocation)
}

/// A dataset whose sample `i` has input `[i, i + 0.5, i + 0.25]` (float32) and label `i`, so a
/// batch tells exactly which samples it holds.
func indexDataset(_ n: Int, width: Int = 3) -> TensorDataset {
    var features: [Float] = []
    for i in 0..<n {
        for j in 0..<width { features.append(Float(i) + [0, 0.5, 0.25, 0.125][j % 4]) }
    }
    return TensorDataset(features: features, featureShape: [width], labels: (0..<n).map { Int64($0) })
}

/// The labels of every batch of one pass over `loader` (the sample indices with ``indexDataset``).
func labelBatches<D: Dataset>(_ loader: DataLoader<D, HostBatch>) -> [[Int64]] {
    loader.map { $0.labels.scalars(as: Int64.self) }
}

/// The error `body` throws, or `nil` when it succeeds.
func dataError<R>(_ body: () throws(DataError) -> R) -> DataError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error
    }
}
