/// Whether operations record a graph for backward, scoped to the current task.
///
/// Gradient recording and a module's training mode are separate things: `withNoGrad` never changes
/// any module's mode, and `eval()` never stops recording.
///
/// PyTorch parity: `torch.no_grad()` / `torch.enable_grad()`, but task-local, so a scope cannot
/// leak into other tasks or tests.
public enum GradMode {
    @TaskLocal public static var isEnabled: Bool = true
}

/// Runs `body` without recording operations for backward.
///
/// PyTorch parity: `with torch.no_grad():`.
public func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
    try GradMode.$isEnabled.withValue(false, operation: body)
}

/// Runs `body` with recording enabled, even inside `withNoGrad`.
///
/// PyTorch parity: `with torch.enable_grad():`.
public func withGrad<R>(_ body: () throws -> R) rethrows -> R {
    try GradMode.$isEnabled.withValue(true, operation: body)
}
