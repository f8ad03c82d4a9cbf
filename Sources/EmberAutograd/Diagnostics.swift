import CEmberKernels
import EmberTensor
import Foundation

/// The mode mistakes Ember recognises while a model runs, each reported once per model (or per
/// optimizer) as one warning line.
public enum DiagnosticKind: String, Sendable, CaseIterable {
    /// A mode-dependent module (dropout, BatchNorm with running statistics, a recurrent layer with
    /// dropout) ran in training mode while gradient recording was off: validation or inference
    /// with `eval()` forgotten.
    case forgottenEval
    /// An optimizer stepped parameters whose gradients flowed through a mode-dependent module in
    /// evaluation mode: training with `train()` forgotten.
    case forgottenTrain
    /// An eval-mode BatchNorm ran with running statistics that never moved from their initial
    /// values (no tracked batches, mean 0, variance 1): usually weights loaded without buffers.
    case untrainedStatistics
    /// A non-strict state-dict load left every buffer of a mode-dependent module untouched.
    case skippedBuffers
    /// A functional dropout (``dropout`` with `training: true`, or attention with `dropoutP > 0`)
    /// ran inside the forward of a module in evaluation mode: it keeps dropping after `eval()`.
    case dropoutInEvalModule
}

/// One report: its kind, the module paths involved and the line printed.
public struct Diagnostic: Sendable, Equatable, CustomStringConvertible {
    public var kind: DiagnosticKind
    /// The modules involved, by path (`""` for a root module).
    public var modules: [String]
    /// The whole warning line.
    public var message: String

    public init(kind: DiagnosticKind, modules: [String], message: String) {
        self.kind = kind
        self.modules = modules
        self.message = message
    }

    public var description: String { message }
}

/// Whether reports are made.
public enum DiagnosticsSetting: Sendable {
    case on, off
}

/// The one channel Ember's mode warnings go through: standard error by default, or a handler
/// (tests, apps that log) set for a scope with ``withDiagnosticsHandler(_:_:)``. Silence them for a
/// scope with ``withDiagnostics(_:_:)``, for one module with `Module.reportsModeMistakes = false`,
/// or for the process with the environment variable `EMBER_DIAGNOSTICS=off`.
///
/// PyTorch parity: none; PyTorch runs a model in whatever mode it was left in, without a word.
public enum Diagnostics {
    @TaskLocal static var setting: DiagnosticsSetting = .on
    @TaskLocal static var handler: (@Sendable (Diagnostic) -> Void)?

    /// `EMBER_DIAGNOSTICS=off` in the environment.
    static let disabledByEnvironment = ProcessInfo.processInfo.environment["EMBER_DIAGNOSTICS"] == "off"

    /// The scope's setting (``withDiagnostics(_:_:)``).
    public static var current: DiagnosticsSetting { setting }

    /// Whether a report made now would be delivered.
    public static var isEnabled: Bool { setting == .on && !disabledByEnvironment }

    /// Delivers `diagnostic` to the scope's handler, or prints it on standard error.
    public static func report(_ diagnostic: Diagnostic) {
        guard isEnabled else { return }
        if let handler { handler(diagnostic) } else {
            FileHandle.standardError.write(Data((diagnostic.message + "\n").utf8))
        }
    }
}

/// Runs `body` with Ember's mode warnings on or off.
public func withDiagnostics<R>(_ setting: DiagnosticsSetting, _ body: () throws -> R) rethrows -> R {
    try Diagnostics.$setting.withValue(setting, operation: body)
}

/// Runs `body` with Ember's mode warnings on or off (async).
public func withDiagnostics<R>(_ setting: DiagnosticsSetting, _ body: () async throws -> R) async rethrows -> R {
    try await Diagnostics.$setting.withValue(setting, operation: body)
}

/// Runs `body` with every mode warning delivered to `handler` instead of standard error.
public func withDiagnosticsHandler<R>(_ handler: @escaping @Sendable (Diagnostic) -> Void, _ body: () throws -> R) rethrows -> R {
    try Diagnostics.$handler.withValue(handler, operation: body)
}

/// A module that can be named in a report (``Module`` in EmberNN), seen from the layers below it.
package protocol DiagnosticSubject: AnyObject {
    /// The modules to name when gradients that flowed through this one are stepped.
    func evalModeGradientReport() -> (paths: [String], description: String)?
}

extension Tensor {
    /// Notes that gradients of this tensor flow through `module`, a mode-dependent module in
    /// evaluation mode; an optimizer stepping the parameters they reach reports it.
    package func noteEvalModeModule(_ module: DiagnosticSubject) {
        autograd?.evalModeSource = module
    }
}

extension Parameter {
    /// The eval-mode module its gradient flowed through since the last step, cleared by the read.
    @inline(__always)
    package func takeEvalModeSource() -> AnyObject? {
        guard let meta = autograd, let source = meta.evalModeSource else { return nil }
        meta.evalModeSource = nil
        return reportedEvalModeGradient ? nil : source
    }
}

/// Reports, once per parameter set, that an optimizer is stepping parameters whose gradients
/// flowed through `source`, a mode-dependent module in evaluation mode. Optimizers call it from
/// `step()` when ``Parameter/takeEvalModeSource()`` found one.
package func reportEvalModeGradients(from source: AnyObject, parameters: [Parameter], optimizer: String) {
    guard Diagnostics.isEnabled, let subject = source as? DiagnosticSubject,
          let (paths, names) = subject.evalModeGradientReport() else { return }
    for p in parameters { p.reportedEvalModeGradient = true }
    Diagnostics.report(Diagnostic(
        kind: .forgottenTrain, modules: paths,
        message: "Ember warning: \(optimizer).step() is updating parameters whose gradients flowed through \(names) in eval mode: probably training with model.train() forgotten after validation (dropout does not drop, BatchNorm neither uses batch statistics nor updates its running ones). Call model.train() before training; if eval mode is meant, pin the module (module.pin(.evaluation)) or silence this with module.reportsModeMistakes = false or withDiagnostics(.off)."))
}

/// A module as the functional layer sees it while its forward runs in evaluation mode (``Module``
/// in EmberNN): functional dropout names it in a ``DiagnosticKind/dropoutInEvalModule`` report.
package protocol EvalForwardOwner: AnyObject {
    /// Makes the report, once per module; `operation` names the functional call and its rate.
    func reportDropoutInEvalForward(_ operation: String)
}

/// The innermost module whose forward runs on this thread, if it is in evaluation mode.
///
/// `Module.callAsFunction` sets it (one thread-local store when it changes); functional dropout
/// reads it only when it is about to drop, so the common paths pay nothing more.
package enum EvalForwardScope {
    /// The current owner as an opaque pointer (`nil`: no module, or a training-mode one).
    @inline(__always)
    package static var currentPointer: UnsafeRawPointer? { ember_eval_forward_owner() }

    @inline(__always)
    package static func setPointer(_ owner: UnsafeRawPointer?) { ember_set_eval_forward_owner(owner) }

    /// Reports a dropping functional call made inside an eval-mode module's forward, if any.
    package static func noteDropout(_ operation: @autoclosure () -> String) {
        guard let pointer = currentPointer, Diagnostics.isEnabled else { return }
        let object = Unmanaged<AnyObject>.fromOpaque(pointer).takeUnretainedValue()
        (object as? EvalForwardOwner)?.reportDropoutInEvalForward(operation())
    }
}
