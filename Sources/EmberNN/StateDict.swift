import EmberAutograd
import EmberTensor
import EmberStorage

/// An ordered mapping from PyTorch-style keys (`fc1.weight`, `bn1.running_mean`) to tensors.
///
/// PyTorch parity: the `OrderedDict` returned by `state_dict()`; keys and their order match
/// PyTorch's for the equivalent model.
public struct StateDict: Sequence, ExpressibleByDictionaryLiteral {
    /// Keys in order.
    public private(set) var keys: [String] = []
    private var values: [String: Tensor] = [:]

    public init() {}

    /// A state dict from `(key, tensor)` pairs in order; a repeated key keeps its first position
    /// and its last value.
    public init<S: Sequence>(_ pairs: S) where S.Element == (String, Tensor) {
        for (k, v) in pairs { self[k] = v }
    }

    public init(dictionaryLiteral elements: (String, Tensor)...) { self.init(elements) }

    /// The tensor under `key`; setting appends a new key at the end or replaces in place.
    public subscript(key: String) -> Tensor? {
        get { values[key] }
        set {
            if let v = newValue {
                if values.updateValue(v, forKey: key) == nil { keys.append(key) }
            } else if values.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    /// Number of entries.
    public var count: Int { keys.count }

    /// The entries whose key starts with `prefix` followed by a dot (`"encoder"` and `"encoder."`
    /// select the same), with that part removed, in order: `encoder.0.weight` becomes `0.weight`.
    ///
    /// PyTorch parity: what `{k[len(p):]: v for k, v in sd.items() if k.startswith(p)}` gives with
    /// `p = "encoder."`.
    public func entries(under prefix: String) -> StateDict {
        let p = prefix.hasSuffix(".") ? prefix : prefix + "."
        return StateDict(keys.lazy.filter { $0.hasPrefix(p) && $0.count > p.count }.map { (String($0.dropFirst(p.count)), values[$0]!) })
    }

    public func makeIterator() -> AnyIterator<(key: String, value: Tensor)> {
        var i = 0
        return AnyIterator {
            guard i < keys.count else { return nil }
            defer { i += 1 }
            return (keys[i], values[keys[i]]!)
        }
    }
}

/// Why a state dict could not be loaded.
///
/// PyTorch parity: its description has `load_state_dict`'s exact format: a header line, then the
/// missing keys, the unexpected keys and each size mismatch, each on its own tab-indented line.
public struct StateDictError: Error, CustomStringConvertible, Equatable {
    public var moduleName: String
    public var missingKeys: [String]
    public var unexpectedKeys: [String]
    /// `(key, shape in the checkpoint, shape in the model)`.
    public var shapeMismatches: [ShapeMismatch]
    /// `(key, dtype in the checkpoint, dtype in the model)` for conversions Ember refuses (any
    /// other than between floating-point dtypes).
    public var dtypeMismatches: [DTypeMismatch] = []

    public struct ShapeMismatch: Equatable, Sendable {
        public var key: String
        public var checkpointShape: Shape
        public var modelShape: Shape
    }

    public struct DTypeMismatch: Equatable, Sendable {
        public var key: String
        public var checkpointDType: DType
        public var modelDType: DType

        public init(key: String, checkpointDType: DType, modelDType: DType) {
            self.key = key
            self.checkpointDType = checkpointDType
            self.modelDType = modelDType
        }
    }

    public var description: String {
        var lines = ["Error(s) in loading state_dict for \(moduleName):"]
        if !missingKeys.isEmpty {
            lines.append("\tMissing key(s) in state_dict: " + missingKeys.map { "\"\($0)\"" }.joined(separator: ", ") + ". ")
        }
        if !unexpectedKeys.isEmpty {
            lines.append("\tUnexpected key(s) in state_dict: " + unexpectedKeys.map { "\"\($0)\"" }.joined(separator: ", ") + ". ")
        }
        for m in shapeMismatches {
            lines.append("\tsize mismatch for \(m.key): copying a param with shape torch.Size(\(m.checkpointShape)) from checkpoint, the shape in current model is torch.Size(\(m.modelShape)).")
        }
        for m in dtypeMismatches {
            lines.append("\tdtype mismatch for \(m.key): copying a param with dtype \(m.checkpointDType) from checkpoint, the dtype in current model is \(m.modelDType) (only floating-point dtypes convert into each other).")
        }
        return lines.joined(separator: "\n")
    }
}

/// Keys that did not match in a non-strict load.
///
/// PyTorch parity: the `_IncompatibleKeys` named tuple returned by `load_state_dict`.
public struct IncompatibleKeys: Equatable, CustomStringConvertible, Sendable {
    public var missingKeys: [String]
    public var unexpectedKeys: [String]

    public var description: String {
        if missingKeys.isEmpty && unexpectedKeys.isEmpty { return "<All keys matched successfully>" }
        func list(_ keys: [String]) -> String { "[" + keys.map { "'\($0)'" }.joined(separator: ", ") + "]" }
        return "_IncompatibleKeys(missing_keys=\(list(missingKeys)), unexpected_keys=\(list(unexpectedKeys)))"
    }
}
