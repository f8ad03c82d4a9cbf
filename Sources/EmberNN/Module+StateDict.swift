import EmberAutograd
import EmberTensor
import EmberStorage

/// Where one state-dict entry lives in a model.
enum StateSlot {
    case parameter(Parameter)
    case buffer(Buffer)

    var value: Tensor {
        switch self {
        case .parameter(let p): p.value
        case .buffer(let b): b.value
        }
    }
}

extension Module {
    /// Every state-dict entry of the tree, in PyTorch's order: for each module, its own
    /// parameters, then its own persistent buffers, then each child's entries under the child's
    /// name. A module shared under two names appears under both, as in PyTorch.
    func stateSlots() -> [(key: String, slot: StateSlot)] {
        var out: [(key: String, slot: StateSlot)] = []
        // Explicit stack of (prefix, module, ancestors-on-path) to reject cycles.
        var stack: [(String, Module, Set<ObjectIdentifier>)] = [("", self, [])]
        while let (prefix, module, ancestors) = stack.popLast() {
            let id = ObjectIdentifier(module)
            precondition(!ancestors.contains(id),
                         "stateDict: module '\(prefix)' (\(module.typeName)) contains itself; hold back-references with WeakModuleReference")
            let members = module.localMembers(path: prefix) { _, _ in }
            var params: [(String, StateSlot)] = [], buffers: [(String, StateSlot)] = []
            var children: [(String, Module)] = []
            for m in members {
                let key = join(prefix, m.name)
                switch m.member {
                case .parameter(let p):
                    precondition(!m.unstableName, "stateDict: parameter '\(key)' is inside a Set, whose order is not stable across runs, so its key would not be either; hold it in an Array or Dictionary")
                    params.append((key, .parameter(p)))
                case .buffer(let b):
                    precondition(!m.unstableName, "stateDict: buffer '\(key)' is inside a Set, whose order is not stable across runs; hold it in an Array or Dictionary")
                    if b.isPersistent { buffers.append((key, .buffer(b))) }
                case .module(let child):
                    if m.unstableName {
                        precondition(child.stateSlots().isEmpty, "stateDict: module '\(key)' holds state but is inside a Set, whose order is not stable across runs; hold it in an Array or Dictionary")
                        continue
                    }
                    children.append((key, child))
                }
            }
            out.append(contentsOf: params.map { (key: $0.0, slot: $0.1) })
            out.append(contentsOf: buffers.map { (key: $0.0, slot: $0.1) })
            var path = ancestors
            path.insert(id)
            for (key, child) in children.reversed() { stack.append((key, child, path)) }
        }
        return out
    }

    /// The model's parameters and persistent buffers by PyTorch key, detached.
    ///
    /// PyTorch parity: `state_dict()`: same keys and order (`fc1.weight`, `bn1.running_mean`,
    /// `bn1.num_batches_tracked` as int64), no mode flag. Ember returns values (copy-on-write),
    /// so changing the model later does not change a state dict taken earlier.
    public func stateDict() -> StateDict {
        StateDict(stateSlots().map { ($0.key, $0.slot.value.detached()) })
    }

    /// Copies values from `stateDict` into this model's parameters and buffers, in place.
    ///
    /// Every key is checked before anything is copied, so a failed load changes nothing. A shape
    /// mismatch is always an error; with `strict`, missing and unexpected keys are errors too,
    /// all reported in one error. Floating-point values are converted to each destination's
    /// floating-point dtype (float64 into a float32 weight rounds, as PyTorch's `copy_` does);
    /// any other dtype change (int64 or bool into a float weight, a float into an int64 counter
    /// such as `num_batches_tracked`, bool and int64 into each other) is an error, since it is
    /// almost always a wrong or corrupted file: convert such a tensor explicitly (`to(_:)`) before
    /// loading it. The mode of every module is left as it is. A missing `num_batches_tracked` is
    /// accepted (PyTorch accepts it for checkpoints without BatchNorm version metadata, which
    /// safetensors files never carry).
    ///
    /// - Returns: the keys that did not match (empty lists after a strict load).
    /// - Throws: ``StateDictError`` naming every offending key.
    ///
    /// PyTorch parity: `load_state_dict(state_dict, strict=True)`, including the error text;
    /// PyTorch also converts between integer, bool and float dtypes silently, Ember refuses to.
    ///
    /// With a `prefix` (`"encoder"` or `"encoder."`), only the entries under it are loaded, with the
    /// prefix removed: a part of a larger model's state dict loads into the module that is that
    /// part. Keys outside the prefix are not unexpected; errors name keys without the prefix.
    @discardableResult
    public func loadStateDict(_ stateDict: StateDict, prefix: String = "", strict: Bool = true) throws(StateDictError) -> IncompatibleKeys {
        var stateDict = prefix.isEmpty ? stateDict : stateDict.entries(under: prefix)
        runLoadPreHooks(&stateDict, prefix: "")
        var (assignments, keys) = try planStateDictLoad(stateDict, strict: strict)
        withNoGrad {
            for (slot, value) in assignments {
                switch slot {
                case .parameter(let p): p.value = value.contiguous()
                case .buffer(let b): b.value = value.contiguous()
                }
            }
        }
        if !strict { reportSkippedBuffers(loaded: Set(stateDict.keys)) }
        runLoadPostHooks(&keys)
        return keys
    }

    /// Checks that ``loadStateDict(_:strict:)`` would accept `stateDict`, without changing
    /// anything: the same keys, shapes and dtypes rules and the same error.
    ///
    /// Use it to check several parts of a restore (weights, optimizer, schedule) before changing
    /// any of them.
    @discardableResult
    public func validateStateDict(_ stateDict: StateDict, prefix: String = "", strict: Bool = true) throws(StateDictError) -> IncompatibleKeys {
        try planStateDictLoad(prefix.isEmpty ? stateDict : stateDict.entries(under: prefix), strict: strict).keys
    }

    /// The values to copy into each slot, or the error naming every offending key.
    private func planStateDictLoad(
        _ stateDict: StateDict, strict: Bool
    ) throws(StateDictError) -> (assignments: [(StateSlot, Tensor)], keys: IncompatibleKeys) {
        let slots = stateSlots()
        var expected = Set<String>()
        var missing: [String] = [], mismatches: [StateDictError.ShapeMismatch] = []
        var dtypeMismatches: [StateDictError.DTypeMismatch] = []
        var assignments: [(StateSlot, Tensor)] = []
        for (key, slot) in slots {
            expected.insert(key)
            guard let value = stateDict[key] else {
                if !(key == "num_batches_tracked" || key.hasSuffix(".num_batches_tracked")) { missing.append(key) }
                continue
            }
            let target = slot.value
            let compatibleScalar = target.rank == 0 && value.rank == 1 && value.count == 1
            if value.shape != target.shape && !compatibleScalar {
                mismatches.append(.init(key: key, checkpointShape: value.shape, modelShape: target.shape))
                continue
            }
            guard value.dtype == target.dtype || (value.dtype.isFloatingPoint && target.dtype.isFloatingPoint) else {
                dtypeMismatches.append(.init(key: key, checkpointDType: value.dtype, modelDType: target.dtype))
                continue
            }
            assignments.append((slot, value.detached().reshaped(target.shape).to(target.dtype)))
        }
        let unexpected = stateDict.keys.filter { !expected.contains($0) }
        if !mismatches.isEmpty || !dtypeMismatches.isEmpty || (strict && (!missing.isEmpty || !unexpected.isEmpty)) {
            throw StateDictError(moduleName: typeName, missingKeys: strict ? missing : [],
                                 unexpectedKeys: strict ? unexpected : [], shapeMismatches: mismatches,
                                 dtypeMismatches: dtypeMismatches)
        }
        return (assignments, IncompatibleKeys(missingKeys: missing, unexpectedKeys: unexpected))
    }
}
