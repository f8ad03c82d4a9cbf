import EmberAutograd

extension Module {
    /// Puts this module and every module under it into training mode (`on == true`) or evaluation
    /// mode, skipping pinned modules and their subtrees. Returns `self`.
    ///
    /// PyTorch parity: `train(mode=True)`, plus pins (PyTorch has none).
    @discardableResult
    public func train(_ on: Bool = true) -> Self {
        walk { _, module, _ in
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

    /// Every module with its current training flag.
    private func modes() -> [(Module, Bool)] { modules().map { ($0, $0.isTraining) } }

    private func restore(_ saved: [(Module, Bool)]) {
        for (module, wasTraining) in saved { module.setTraining(wasTraining) }
    }
}
