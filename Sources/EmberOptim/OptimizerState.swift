import EmberAutograd
import EmberTensor
import EmberStorage

/// A snapshot of an optimizer: per-parameter buffers and step counts, and each group's
/// hyperparameters, enough to resume training bitwise identically.
///
/// Parameters are identified by their position over all groups (group 0's parameters first), as
/// in PyTorch; the snapshot holds no reference to the parameters themselves, so it can be loaded
/// into a new optimizer built over the same model. Buffers are tensors (copy-on-write values: the
/// optimizer's later steps never change a captured snapshot).
///
/// To write it to a file, split it into ``header`` (small, `Codable`, JSON-friendly) and
/// ``tensors()`` (`"state.<index>.<buffer>"` keys, safetensors-friendly); read it back with
/// ``init(header:tensors:)``.
///
/// PyTorch parity: `optimizer.state_dict()`: `state` maps a parameter index to its buffers
/// (`momentum_buffer`, `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`, `square_avg`, `grad_avg`, `sum`)
/// and `step`; each group records `params` (indices) and its hyperparameters under PyTorch's keys.
/// Steps are integers here (PyTorch keeps a float32 tensor).
public struct OptimizerState {
    /// The optimizer's name (`"SGD"`, `"Adam"`, ...).
    public var optimizer: String
    /// Each group's parameter indices and hyperparameters.
    public var groups: [Group]
    /// Per-parameter state by parameter index; parameters that were never updated have none.
    public var parameters: [Int: ParameterState]

    /// A snapshot from its parts.
    public init(optimizer: String, groups: [Group], parameters: [Int: ParameterState]) {
        self.optimizer = optimizer
        self.groups = groups
        self.parameters = parameters
    }

    /// One parameter group: which parameters (by index) and its hyperparameters.
    public struct Group: Codable, Sendable, Equatable {
        /// Indices of the group's parameters over all groups (`params`).
        public var parameterIndices: [Int]
        /// Hyperparameters under PyTorch's keys (`lr`, `momentum`, `betas`, `initial_lr`, ...).
        public var hyperparameters: [String: Hyperparameter]

        /// A group from its indices and hyperparameters.
        public init(parameterIndices: [Int], hyperparameters: [String: Hyperparameter]) {
            self.parameterIndices = parameterIndices
            self.hyperparameters = hyperparameters
        }

        /// JSON keys: `params` and each hyperparameter's own key, side by side as in PyTorch.
        private struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        /// Decodes a flat object: `params` is the index list, every other key a hyperparameter.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: Key.self)
            parameterIndices = try c.decode([Int].self, forKey: Key(stringValue: "params"))
            var h: [String: Hyperparameter] = [:]
            for key in c.allKeys where key.stringValue != "params" {
                h[key.stringValue] = try c.decode(Hyperparameter.self, forKey: key)
            }
            hyperparameters = h
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: Key.self)
            try c.encode(parameterIndices, forKey: Key(stringValue: "params"))
            for (k, v) in hyperparameters where k != "params" { try c.encode(v, forKey: Key(stringValue: k)) }
        }
    }

    /// The state of one parameter.
    public struct ParameterState {
        /// Updates done so far, for optimizers that count them (Adam, AdamW, RMSprop, Adagrad).
        public var step: Int?
        /// Buffers under PyTorch's names, each with the parameter's shape and dtype.
        public var buffers: [String: Tensor]

        /// A parameter's state from its step count and buffers.
        public init(step: Int? = nil, buffers: [String: Tensor] = [:]) {
            self.step = step
            self.buffers = buffers
        }
    }

    /// A hyperparameter value as JSON holds it: a number, a flag, or a list of numbers (`betas`).
    /// Non-finite numbers are written as the strings `"inf"`, `"-inf"` and `"nan"`.
    public enum Hyperparameter: Codable, Sendable, Equatable {
        case number(Double)
        case flag(Bool)
        case numbers([Double])

        public init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .flag(b); return }
            if let d = try? c.decode(Double.self) { self = .number(d); return }
            if let s = try? c.decode(String.self), let d = Hyperparameter.nonFinite(s) { self = .number(d); return }
            if let a = try? c.decode([Hyperparameter].self) {
                var values: [Double] = []
                for v in a {
                    guard case .number(let d) = v else {
                        throw DecodingError.dataCorruptedError(in: c, debugDescription: "a list hyperparameter must hold numbers")
                    }
                    values.append(d)
                }
                self = .numbers(values)
                return
            }
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "expected a number, a flag or a list of numbers")
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .flag(let b): try c.encode(b)
            case .number(let d): try Hyperparameter.encode(d, into: &c)
            case .numbers(let a): try c.encode(a.map { Hyperparameter.number($0) })
            }
        }

        static func encode(_ d: Double, into c: inout any SingleValueEncodingContainer) throws {
            if d.isFinite { try c.encode(d) } else { try c.encode(d.isNaN ? "nan" : (d > 0 ? "inf" : "-inf")) }
        }

        static func nonFinite(_ s: String) -> Double? {
            switch s {
            case "inf": .infinity
            case "-inf": -.infinity
            case "nan": .nan
            default: nil
            }
        }
    }

    /// The `Codable` part of the snapshot: everything but the tensors.
    public struct Header: Codable, Sendable, Equatable {
        /// The optimizer's name.
        public var optimizer: String
        /// Each group's parameter indices and hyperparameters (`param_groups`).
        public var groups: [Group]

        /// A header from its parts.
        public init(optimizer: String, groups: [Group]) {
            self.optimizer = optimizer
            self.groups = groups
        }

        enum CodingKeys: String, CodingKey {
            case optimizer
            case groups = "param_groups"
        }
    }

    /// The `Codable` part: optimizer name and groups.
    public var header: Header { Header(optimizer: optimizer, groups: groups) }

    /// The per-parameter state as flat keys: `"state.<index>.<buffer>"` for each buffer and
    /// `"state.<index>.step"` (a 0-d int64 tensor) for each step count.
    public func tensors() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (index, s) in parameters {
            for (name, t) in s.buffers { out["state.\(index).\(name)"] = t }
            if let step = s.step { out["state.\(index).step"] = Tensor(Int64(step)) }
        }
        return out
    }

    /// Rebuilds a snapshot from ``header`` and ``tensors()``.
    ///
    /// A `step` tensor may be of any dtype (PyTorch writes float32) but must hold one whole,
    /// non-negative number.
    ///
    /// - Throws: ``OptimizerStateError/malformedKey(_:)`` for a key not of the form
    ///   `state.<index>.<name>`, ``OptimizerStateError/invalidStep(parameter:detail:)`` for a bad
    ///   step tensor.
    public init(header: Header, tensors: [String: Tensor]) throws(OptimizerStateError) {
        var parameters: [Int: ParameterState] = [:]
        for (key, t) in tensors {
            let parts = key.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, parts[0] == "state", let index = Int(parts[1]), index >= 0, !parts[2].isEmpty else {
                throw .malformedKey(key)
            }
            let name = String(parts[2])
            var s = parameters[index] ?? ParameterState()
            if name == "step" {
                guard t.count == 1 else { throw .invalidStep(parameter: index, detail: "a step tensor must hold one value, this one has shape \(t.shape)") }
                let v = t.doubleValue
                guard v.isFinite, v >= 0, v.rounded() == v, v < 9.2e18 else {
                    throw .invalidStep(parameter: index, detail: "a step must be a whole non-negative number, got \(v)")
                }
                s.step = Int(v)
            } else {
                s.buffers[name] = t
            }
            parameters[index] = s
        }
        self.init(optimizer: header.optimizer, groups: header.groups, parameters: parameters)
    }
}

/// Why an ``OptimizerState`` could not be read or loaded. Each case names the group, parameter
/// index or key at fault, so a command-line tool can print it as one line.
public enum OptimizerStateError: Error, Equatable, CustomStringConvertible {
    /// The state was captured from a different kind of optimizer.
    case wrongOptimizer(expected: String, found: String)
    /// PyTorch: "loaded state dict has a different number of parameter groups".
    case groupCountMismatch(expected: Int, found: Int)
    /// PyTorch: "loaded state dict contains a parameter group that doesn't match the size of
    /// optimizer's group".
    case groupSizeMismatch(group: Int, expected: Int, found: Int)
    /// A group's hyperparameters are missing a key or hold a value of the wrong kind.
    case invalidHyperparameters(group: Int, detail: String)
    /// Per-parameter state names an index that no group lists.
    case unknownParameter(index: Int)
    /// A buffer the optimizer needs is missing, or one it does not know is present.
    case invalidBuffers(parameter: Int, detail: String)
    /// A buffer's shape differs from its parameter's.
    case shapeMismatch(parameter: Int, buffer: String, expected: Shape, found: Shape)
    /// A step count is missing or not a whole non-negative number.
    case invalidStep(parameter: Int, detail: String)
    /// A tensor key is not of the form `state.<index>.<name>`.
    case malformedKey(String)

    public var description: String {
        switch self {
        case .wrongOptimizer(let e, let f):
            "optimizer state was saved from \(f) and cannot be loaded into \(e)"
        case .groupCountMismatch(let e, let f):
            "loaded state dict has a different number of parameter groups (the optimizer has \(e), the state has \(f))"
        case .groupSizeMismatch(let g, let e, let f):
            "loaded state dict contains a parameter group that doesn't match the size of optimizer's group (group \(g): the optimizer has \(e) parameters, the state has \(f))"
        case .invalidHyperparameters(let g, let d):
            "invalid hyperparameters in parameter group \(g) of the optimizer state: \(d)"
        case .unknownParameter(let i):
            "optimizer state has state for parameter \(i), which no parameter group lists"
        case .invalidBuffers(let i, let d):
            "optimizer state for parameter \(i): \(d)"
        case .shapeMismatch(let i, let b, let e, let f):
            "optimizer state for parameter \(i): buffer '\(b)' has shape \(f) but the parameter has shape \(e)"
        case .invalidStep(let i, let d):
            "optimizer state for parameter \(i): invalid step: \(d)"
        case .malformedKey(let k):
            "optimizer state tensor key '\(k)' is not of the form state.<index>.<name>"
        }
    }
}
