import EmberAutograd
import EmberTensor
import EmberStorage

/// Mode mistakes noticed while a model runs (``DiagnosticKind``), reported through
/// ``Diagnostics`` once per model tree.
extension Module: DiagnosticSubject, EvalForwardOwner {
    /// Reports, once per module, a functional dropout that dropped inside this eval-mode
    /// module's forward (see ``DiagnosticKind/dropoutInEvalModule``).
    package func reportDropoutInEvalForward(_ operation: String) {
        guard reportsModeMistakes, pinnedMode == nil, !reportedDiagnostics.contains(.dropoutInEvalModule) else { return }
        reportedDiagnostics.insert(.dropoutInEvalModule)
        let name = lastKnownPath.map { $0.isEmpty ? "the model (\(typeName))" : "'\($0)' (\(typeName))" } ?? typeName
        Diagnostics.report(Diagnostic(
            kind: .dropoutInEvalModule, modules: [lastKnownPath ?? ""],
            message: "Ember warning: \(operation) dropped inside the forward of \(name), which is in eval mode: functional dropout does not follow the module's mode, so it keeps dropping after model.eval(). Pass training: isTraining (or dropoutP: isTraining ? p : 0), or use a Dropout module; if dropping in eval is meant (Monte Carlo dropout), silence this with module.reportsModeMistakes = false or withDiagnostics(.off)."))
    }

    /// Mode-dependent layers call this at the start of `forward`: a training-mode forward with
    /// gradient recording off is reported (one task-local read, in training mode only).
    @inline(__always)
    func checkTrainingWithoutGrad() {
        if isTraining && !GradMode.isEnabled { reportTrainingWithoutGrad() }
    }

    /// Mode-dependent layers pass their output through this: in eval mode, when the output records
    /// a graph, the optimizer that steps the parameters its gradients reach reports it.
    @inline(__always)
    func noteEvalModeOutput(_ output: Tensor) -> Tensor {
        if !isTraining && output.requiresGrad { output.noteEvalModeModule(self) }
        return output
    }

    /// The mode-dependent modules of this tree that `include` selects, by path, leaving out pinned
    /// subtrees and modules that do not report mode mistakes.
    func modeDependentModules(where include: (Module) -> Bool) -> [(path: String, module: Module)] {
        var found: [(String, Module)] = []
        var pinned: [String] = []
        for (path, m) in namedModules() {
            if pinned.contains(where: { $0.isEmpty || path == $0 || path.hasPrefix($0 + ".") }) { continue }
            if m.pinnedMode != nil { pinned.append(path); continue }
            if m.isModeDependent && m.reportsModeMistakes && include(m) { found.append((path, m)) }
        }
        return found
    }

    /// `'bn1' (BatchNorm1d) and 'dropout' (Dropout)`.
    static func describe(_ modules: [(path: String, module: Module)]) -> String {
        let names = modules.map { $0.path.isEmpty ? "the model (\($0.module.typeName))" : "'\($0.path)' (\($0.module.typeName))" }
        guard names.count > 1 else { return names.first ?? "" }
        return names.dropLast().joined(separator: ", ") + " and " + names.last!
    }

    @inline(never)
    func reportTrainingWithoutGrad() {
        guard reportsModeMistakes, pinnedMode == nil, Diagnostics.isEnabled else { return }
        let root = lastKnownRoot ?? self
        guard root.reportedDiagnostics.insert(.forgottenEval).inserted else { return }
        var involved = root.modeDependentModules { $0.isTraining }
        if involved.isEmpty { involved = [(lastKnownPath ?? "", self)] }
        Diagnostics.report(Diagnostic(
            kind: .forgottenEval, modules: involved.map(\.path),
            message: "Ember warning: \(Self.describe(involved)) ran in training mode with gradient recording off (withNoGrad): probably validation or inference with model.eval() forgotten (dropout drops at random, BatchNorm normalises with the batch and moves its running statistics). Call model.eval(), or use model.evaluating { } or evaluate(...); if training mode is meant (refreshing BatchNorm statistics, Monte Carlo dropout), pin the module (module.pin(.training)) or silence this with module.reportsModeMistakes = false or withDiagnostics(.off)."))
    }

    package func evalModeGradientReport() -> (paths: [String], description: String)? {
        guard reportsModeMistakes, pinnedMode == nil else { return nil }
        let root = lastKnownRoot ?? self
        var involved = root.modeDependentModules { !$0.isTraining }
        if involved.isEmpty { involved = [(lastKnownPath ?? "", self)] }
        return (involved.map(\.path), Self.describe(involved))
    }

    /// BatchNorm calls this once, on its first eval-mode forward.
    @inline(never)
    func reportUntrainedStatistics() {
        guard reportsModeMistakes, pinnedMode == nil, Diagnostics.isEnabled else { return }
        let root = lastKnownRoot ?? self
        guard root.reportedDiagnostics.insert(.untrainedStatistics).inserted else { return }
        var involved = root.modeDependentModules { ($0 as? BatchNormBase)?.hasInitialStatistics ?? false }
        if involved.isEmpty { involved = [(lastKnownPath ?? "", self)] }
        Diagnostics.report(Diagnostic(
            kind: .untrainedStatistics, modules: involved.map(\.path),
            message: "Ember warning: \(Self.describe(involved)) ran in eval mode with running statistics that never moved from their initial values (num_batches_tracked 0, mean 0, variance 1): usually weights loaded without their buffers (strict: false, or a file saved without them), so eval normalises with the wrong statistics. Load running_mean, running_var and num_batches_tracked with the weights, or train first; silence this with module.reportsModeMistakes = false or withDiagnostics(.off)."))
    }

    /// After a non-strict load: the mode-dependent modules none of whose buffers the state dict
    /// held (their eval-mode behaviour is then the initial one).
    func reportSkippedBuffers(loaded keys: Set<String>) {
        guard Diagnostics.isEnabled else { return }
        let bufferKeys = namedBuffers().map(\.name)
        var involved: [(path: String, module: Module)] = []
        for (path, m) in modeDependentModules(where: { _ in true }) {
            let own = bufferKeys.filter { key in
                guard let dot = key.lastIndex(of: ".") else { return path.isEmpty }
                return key[..<dot] == path
            }
            if !own.isEmpty && !own.contains(where: keys.contains) { involved.append((path, m)) }
        }
        guard !involved.isEmpty else { return }
        Diagnostics.report(Diagnostic(
            kind: .skippedBuffers, modules: involved.map(\.path),
            message: "Ember warning: loadStateDict(strict: false) left every buffer of \(Self.describe(involved)) untouched (\(involved.count == 1 ? "its" : "their") running statistics are still the initial ones), so eval mode will normalise with them. Include the buffers in the state dict, or train before evaluating; silence this with module.reportsModeMistakes = false or withDiagnostics(.off)."))
    }
}
