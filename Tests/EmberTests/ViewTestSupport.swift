import Ember
import Testing
import _EmberTestSupport

/// A programmer error an op must stop on, with (part of) the message it must print.
struct PreconditionCase: Sendable {
    let message: String
    let body: @Sendable () -> Void
}

/// Every precondition case of the view, indexing and join tests, by unique key.
let allPreconditionCases: [String: PreconditionCase] = viewPreconditionCases
    .merging(indexingPreconditionCases) { a, _ in a }
    .merging(joinPreconditionCases) { a, _ in a }

/// Runs case `key` in a child process (a Swift Testing exit test; only the key can cross into
/// it) and checks that it stops with a failure whose standard error contains the expected
/// message. `precondition` prints messages only in debug builds, so optimized builds check the
/// exit status alone.
func expectPreconditionFailure(_ key: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let expected = try #require(allPreconditionCases[key], "no case \(key)", sourceLocation: sourceLocation).message
    let result = try await #require(processExitsWith: .failure, observing: [\.standardErrorContent],
                                    sourceLocation: sourceLocation) { [key] in
        allPreconditionCases[key]!.body()
    }
    #if DEBUG
        let stderr = String(decoding: result.standardErrorContent, as: UTF8.self)
        #expect(stderr.contains(expected), "expected \"\(expected)\" in: \(stderr.prefix(600))",
                sourceLocation: sourceLocation)
    #endif
}

/// Checks that `view` has PyTorch's values and strides (stored as `key` and `key_strides`) and
/// shares storage with `base` (no copy).
func expectView(_ view: Tensor, _ fx: Fixture, _ key: String, of base: Tensor,
                sourceLocation: SourceLocation = #_sourceLocation) {
    expectBitwiseEqual(view, fx[key], key, sourceLocation: sourceLocation)
    #expect(view.strides.map { Int64($0) } == fx[key + "_strides"].scalars(as: Int64.self),
            "\(key): strides \(view.strides)", sourceLocation: sourceLocation)
    #expect(view.storage === base.storage, "\(key): expected a view sharing storage, got a copy",
            sourceLocation: sourceLocation)
}
