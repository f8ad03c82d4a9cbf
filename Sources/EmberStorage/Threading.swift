import Dispatch
import Foundation

/// How many threads Ember's kernels may use, scoped to a task.
///
/// The default is the number of active processors. Kernels split work only when it is large enough
/// to pay for a thread hand-off, and always into disjoint chunks.
///
/// PyTorch parity: `torch.set_num_threads`, but scoped (`withThreads(1) { ... }`) instead of a
/// process-wide setting, so it cannot leak between tests or tasks.
public enum Threading {
    @TaskLocal public static var maxThreads: Int = ProcessInfo.processInfo.activeProcessorCount

    /// Runs `body` with kernels limited to `count` threads (at least 1).
    public static func withThreads<R>(_ count: Int, _ body: () throws -> R) rethrows -> R {
        precondition(count >= 1, "Threading.withThreads: thread count must be at least 1, got \(count)")
        return try $maxThreads.withValue(count, operation: body)
    }

    /// Runs `body(chunk)` for `chunk` in `0..<chunks`, in parallel when `chunks > 1`.
    /// Callers must make chunks write disjoint memory.
    ///
    /// The calling thread runs chunks too; helper threads from a small process-wide pool (one per
    /// extra processor) take the others. Helpers spin briefly after each job before they sleep, so
    /// back-to-back parallel kernels do not pay a thread wake-up (tens of microseconds on a VM)
    /// each time. See `WorkerPool`.
    public static func parallelFor(chunks: Int, _ body: (Int) -> Void) {
        if chunks <= 1 {
            if chunks == 1 { body(0) }
        } else {
            WorkerPool.shared.run(chunks: chunks, body)
        }
    }
}
