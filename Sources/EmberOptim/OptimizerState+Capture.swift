import EmberAutograd
import Foundation
import EmberTensor
import EmberStorage

/// JSON coding that keeps non-finite numbers (as `"inf"`, `"-inf"`, `"nan"`).
private func makeEncoder() -> JSONEncoder {
    let e = JSONEncoder()
    e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    e.outputFormatting = .sortedKeys
    return e
}

private func makeDecoder() -> JSONDecoder {
    let d = JSONDecoder()
    d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return d
}

/// `options` as PyTorch-keyed hyperparameters (`lr`, `weight_decay`, `betas`, ...).
package func hyperparameters<O: OptimizerOptions>(of options: O) -> [String: OptimizerState.Hyperparameter] {
    do {
        let data = try makeEncoder().encode(options)
        return try makeDecoder().decode([String: OptimizerState.Hyperparameter].self, from: data)
    } catch {
        preconditionFailure("\(O.self): cannot convert options to hyperparameters: \(error)")
    }
}

/// Options decoded from PyTorch-keyed hyperparameters; keys the options do not know are ignored,
/// keys they give defaults for may be missing.
package func options<O: OptimizerOptions>(
    _: O.Type, from hyperparameters: [String: OptimizerState.Hyperparameter]
) throws -> O {
    let completed = hyperparameters.merging(O.defaultsForMissingKeys) { saved, _ in saved }
    let data = try makeEncoder().encode(completed)
    return try makeDecoder().decode(O.self, from: data)
}

/// A readable reason for a decoding failure, naming the key.
private func describe(_ error: any Error) -> String {
    guard let e = error as? DecodingError else { return "\(error)" }
    func path(_ c: [any CodingKey]) -> String { c.map(\.stringValue).joined(separator: ".") }
    switch e {
    case .keyNotFound(let k, _): return "missing key '\(k.stringValue)'"
    case .typeMismatch(_, let c): return "key '\(path(c.codingPath))' has a value of the wrong kind (\(c.debugDescription))"
    case .valueNotFound(_, let c): return "key '\(path(c.codingPath))' is null"
    case .dataCorrupted(let c): return "key '\(path(c.codingPath))': \(c.debugDescription)"
    @unknown default: return "\(e)"
    }
}

/// Captures `groups` and `slots` as an ``OptimizerState``: parameters are numbered over all
/// groups in order.
func captureState<O: OptimizerOptions, S: ParameterSlot>(
    optimizer: String, groups: [ParameterGroup<O>], slots: [ObjectIdentifier: S?]
) -> OptimizerState {
    var index = 0
    var outGroups: [OptimizerState.Group] = []
    var parameters: [Int: OptimizerState.ParameterState] = [:]
    for group in groups {
        var indices: [Int] = []
        for p in group.parameters {
            if let s = slots[ObjectIdentifier(p)] ?? nil { parameters[index] = s.saved }
            indices.append(index)
            index += 1
        }
        var h = hyperparameters(of: group.options)
        if let initial = group.initialLearningRate { h["initial_lr"] = .number(initial) }
        outGroups.append(OptimizerState.Group(parameterIndices: indices, hyperparameters: h))
    }
    return OptimizerState(optimizer: optimizer, groups: outGroups, parameters: parameters)
}

/// Validates `state` against `groups` and returns the groups with the saved hyperparameters and
/// the restored per-parameter state. Saved parameter indices map to parameters by position, as
/// in PyTorch's `load_state_dict`.
func restoreState<O: OptimizerOptions, S: ParameterSlot>(
    _ state: OptimizerState, optimizer: String, groups: [ParameterGroup<O>], slotType: S.Type
) throws(OptimizerStateError) -> (groups: [ParameterGroup<O>], slots: [ObjectIdentifier: S?]) {
    guard state.optimizer == optimizer else { throw .wrongOptimizer(expected: optimizer, found: state.optimizer) }
    guard state.groups.count == groups.count else {
        throw .groupCountMismatch(expected: groups.count, found: state.groups.count)
    }
    var newGroups = groups
    var byIndex: [Int: Parameter] = [:]
    for (g, (group, saved)) in zip(groups, state.groups).enumerated() {
        guard group.parameters.count == saved.parameterIndices.count else {
            throw .groupSizeMismatch(group: g, expected: group.parameters.count, found: saved.parameterIndices.count)
        }
        for (p, i) in zip(group.parameters, saved.parameterIndices) { byIndex[i] = p }
        do {
            newGroups[g].options = try options(O.self, from: saved.hyperparameters)
        } catch {
            throw .invalidHyperparameters(group: g, detail: describe(error))
        }
        if let failure = newGroups[g].options.validationFailure {
            throw .invalidHyperparameters(group: g, detail: failure)
        }
        switch saved.hyperparameters["initial_lr"] {
        case .number(let v): newGroups[g].initialLearningRate = v
        case nil: newGroups[g].initialLearningRate = nil
        default: throw .invalidHyperparameters(group: g, detail: "key 'initial_lr' must be a number")
        }
    }
    var slots: [ObjectIdentifier: S?] = [:]
    for (index, saved) in state.parameters {
        guard let p = byIndex[index] else { throw .unknownParameter(index: index) }
        slots[ObjectIdentifier(p)] = try S.restored(from: saved, for: p, index: index)
    }
    return (newGroups, slots)
}

extension OptimizerState.ParameterState {
    /// The buffer `name`, checked against the parameter's shape and converted to its dtype;
    /// `nil` when absent and not `required`.
    func buffer(_ name: String, for p: Parameter, index: Int, required: Bool) throws(OptimizerStateError) -> Tensor? {
        guard let t = buffers[name] else {
            if required { throw .invalidBuffers(parameter: index, detail: "missing buffer '\(name)'") }
            return nil
        }
        guard t.shape == p.shape else { throw .shapeMismatch(parameter: index, buffer: name, expected: p.shape, found: t.shape) }
        guard t.dtype.isFloatingPoint else {
            throw .invalidBuffers(parameter: index, detail: "buffer '\(name)' is \(t.dtype), expected a floating-point tensor")
        }
        return t.detached().convertedRaw(to: p.value.dtype)
    }

    /// Throws when a buffer other than `known` is present.
    func checkOnly(_ known: Set<String>, index: Int) throws(OptimizerStateError) {
        if let extra = buffers.keys.sorted().first(where: { !known.contains($0) }) {
            throw .invalidBuffers(parameter: index, detail: "unexpected buffer '\(extra)' (this optimizer keeps \(known.sorted()))")
        }
    }

    /// The step count, required.
    func requiredStep(index: Int) throws(OptimizerStateError) -> Int {
        guard let s = step else { throw .invalidStep(parameter: index, detail: "missing step") }
        return s
    }
}
