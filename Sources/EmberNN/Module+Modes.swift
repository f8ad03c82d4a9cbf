import EmberAutograd

extension Module {
    /// Puts this module and every module under it into training mode (`on == true`) or evaluation
    /// mode, skipping pinned modules and their subtrees. Returns `self`.
    ///
    /// PyTorch parity: `train(mode=True)`, plus pins (PyTorch has none).
    @discardableResult
    public func train(_ on: Bool = true) -> Self {
        walk { _, module, _ in
            if on { module.refuseTrainingIfInferenceOnly("train()") }
            if module.pinnedMode != nil { return false }
            module.setTraining(on)
            return true
        }
        return self
    }

    /// Puts the tree into evaluation mode: `train(false)`. Returns `self`.
    ///
    /// PyTorch parity: `eval()`.
    @discardableResult
    public func eval() -> Self { train(false) }

    /// Puts this module and its subtree into `mode` now and keeps them there: later `train()` or
    /// `eval()` calls, on this module or any ancestor, leave them unchanged until ``unpin()``.
    ///
    /// Use it for a frozen BatchNorm or a frozen backbone, so the next `model.train()` cannot
    /// unfreeze the running statistics. Pinning does not change `requiresGrad`; freeze the
    /// parameters separately with `requiresGrad(false)` if they should not train either.
    @discardableResult
    public func pin(_ mode: Mode) -> Self {
        walk { _, module, _ in
            if mode == .training { module.refuseTrainingIfInferenceOnly("pin(.training)") }
            if module !== self, module.pinnedMode != nil { return false }
            module.setTraining(mode == .training)
            return true
        }
        pinnedMode = mode
        return self
    }

    /// Removes this module's pin; its mode stays as it is until the next `train()`/`eval()`.
    @discardableResult
    public func unpin() -> Self {
        pinnedMode = nil
        return self
    }

    /// Runs `body` with the tree switched to `mode`, then restores every module's previous mode,
    /// also when `body` throws. Scopes nest; pinned modules are never changed. Returns `body`'s value.
    ///
    /// PyTorch parity: none; PyTorch users write this by hand (pytorch/pytorch#18220).
    public func withMode<R>(_ mode: Mode, _ body: () throws -> R) rethrows -> R {
        let saved = modes()
        train(mode == .training)
        defer { restore(saved) }
        return try body()
    }

    /// Async form of ``withMode(_:_:)``.
    public func withMode<R>(_ mode: Mode, _ body: () async throws -> R) async rethrows -> R {
        let saved = modes()
        train(mode == .training)
        defer { restore(saved) }
        return try await body()
    }

    /// Runs `body` in evaluation mode and restores every module's previous mode afterwards.
    ///
    /// ```swift
    /// let logits = model.evaluating { model(x) }
    /// ```
    public func evaluating<R>(_ body: () throws -> R) rethrows -> R { try withMode(.evaluation, body) }

    /// Runs `body` in training mode (pins respected) and restores every module's previous mode.
    public func training<R>(_ body: () throws -> R) rethrows -> R { try withMode(.training, body) }

    /// Stops when this module belongs to a copy made by `fusedForInference()`, naming `operation`.
    func refuseTrainingIfInferenceOnly(_ operation: @autoclosure () -> String) {
        guard isInferenceOnly else { return }
        preconditionFailure("\(operation()): \(errorContext) belongs to an inference-only model made by fusedForInference(), whose BatchNorm layers are folded into the preceding layers and whose dropout layers are removed; it cannot train. Train the original model and call fusedForInference() again.")
    }

    /// Every module with its current training flag.
    private func modes() -> [(Module, Bool)] { modules().map { ($0, $0.isTraining) } }

    private func restore(_ saved: [(Module, Bool)]) {
        for (module, wasTraining) in saved { module.setTraining(wasTraining) }
    }
}

/// One module's mode and pin, as saved in a checkpoint.
public struct ModeRecord: Codable, Sendable, Equatable {
    /// Dotted path from the root (`""` for the root).
    public var path: String
    public var mode: Mode
    public var pinnedMode: Mode?

    public init(path: String, mode: Mode, pinnedMode: Mode?) {
        self.path = path
        self.mode = mode
        self.pinnedMode = pinnedMode
    }
}


/// A saved mode listing that does not fit the model it is restored into.
public struct ModeRestoreError: Error, CustomStringConvertible, Equatable {
    public var unknownPaths: [String]
    public var missingPaths: [String]
    public var description: String {
        "mode records do not match the model: unknown module paths \(unknownPaths), modules without a record \(missingPaths)"
    }
}

extension Module {
    /// Every module's mode and pin, by path (pre-order). Checkpoints store this, since PyTorch
    /// loses the mode on save and load.
    public func modeRecords() -> [ModeRecord] {
        namedModules().map { ModeRecord(path: $0.path, mode: $0.module.mode, pinnedMode: $0.module.pinnedMode) }
    }

    /// Restores every module's mode and pin from `records`, checking first that they describe
    /// exactly this model's modules (nothing changes when they don't).
    public func restoreModes(_ records: [ModeRecord]) throws(ModeRestoreError) {
        let modules = namedModules()
        let byPath = Dictionary(records.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        let known = Set(modules.map(\.path))
        let unknown = records.map(\.path).filter { !known.contains($0) }
        let missing = modules.map(\.path).filter { byPath[$0] == nil }
        guard unknown.isEmpty && missing.isEmpty else {
            throw ModeRestoreError(unknownPaths: unknown, missingPaths: missing)
        }
        for (path, module) in modules {
            let r = byPath[path]!
            if r.mode == .training || r.pinnedMode == .training { module.refuseTrainingIfInferenceOnly("restoreModes(_:)") }
            module.pinnedMode = r.pinnedMode
            module.setTraining(r.mode == .training)
        }
    }
}
