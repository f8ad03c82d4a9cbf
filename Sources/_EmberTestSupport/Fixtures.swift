import Ember
import Foundation

/// Reference data written by PyTorch (`Tools/fixtures/*.py`) as safetensors files in
/// `Tests/EmberTests/Fixtures`. Tests read them; CI never needs PyTorch.
public struct Fixture {
    /// The file's base name, e.g. `"ops_unary"`.
    public let name: String
    /// Its tensors by key.
    public let tensors: [String: Tensor]
    /// Its `__metadata__`.
    public let metadata: [String: String]

    /// The folder holding fixture files, found relative to this source file so it works from any
    /// checkout location.
    public static var directory: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Tests/EmberTests/Fixtures")
    }

    /// Loads `<name>.safetensors` from the fixture folder.
    public init(_ name: String) throws {
        let path = Fixture.directory.appendingPathComponent("\(name).safetensors").path
        let contents = try Safetensors.read(contentsOf: path)
        self.name = name
        self.tensors = contents.tensors
        self.metadata = contents.metadata
    }

    /// The tensor stored under `key`; stops the test with a clear message when absent.
    public subscript(key: String) -> Tensor {
        guard let t = tensors[key] else {
            preconditionFailure("fixture '\(name)' has no tensor '\(key)'; keys: \(tensors.keys.sorted().prefix(20))")
        }
        return t
    }

    /// Keys starting with `prefix`, sorted.
    public func keys(withPrefix prefix: String) -> [String] { tensors.keys.filter { $0.hasPrefix(prefix) }.sorted() }
}
