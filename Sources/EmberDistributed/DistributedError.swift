import EmberStorage

/// What a collective or a process group reports instead of trapping: mismatched calls across
/// ranks, unsupported element types, an unreachable engine, a rank that stopped answering.
///
/// PyTorch parity: the `RuntimeError`s of `torch.distributed` (PyTorch has no typed errors).
public enum DistributedError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The ranks called different collectives, or the same one with different shapes, dtypes,
    /// operations or roots (detected by the in-process engine always, by MPI with
    /// ``ProcessGroup/verifiesCalls`` on).
    case mismatch(operation: String, detail: String)
    /// The element type has no collective (only float32, float64 and int64 do), or the operation
    /// is not defined for it (`mean` of int64).
    case unsupportedDType(operation: String, dtype: DType)
    /// A local argument is invalid: a root outside `0..<worldSize`, a first dimension that the
    /// world size does not divide for `reduceScatter`.
    case invalidArgument(operation: String, detail: String)
    /// The MPI library returned an error code (its own message included).
    case mpi(operation: String, code: Int32, message: String)
    /// The process runs under `mpirun` with several ranks but Ember was built without the MPI
    /// trait, so each rank would train alone.
    case mpiUnavailable(worldSize: Int)
    /// Work that one rank did for all (``ProcessGroup/onRankZero(_:)``) failed there.
    case peerFailed(operation: String, rank: Int)
    /// The in-process engine waited longer than its timeout for the other ranks.
    case timeout(operation: String, seconds: Double)

    public var description: String {
        switch self {
        case .mismatch(let op, let detail): "\(op): the ranks disagree: \(detail)"
        case .unsupportedDType(let op, let dtype): "\(op): no collective for \(dtype) tensors (float32, float64 and int64 only; mean needs a float dtype)"
        case .invalidArgument(let op, let detail): "\(op): \(detail)"
        case .mpi(let op, let code, let message): "\(op): MPI error \(code): \(message)"
        case .mpiUnavailable(let n): "this process is one of \(n) ranks started by mpirun, but Ember was built without MPI: build with `swift build --traits MPI`"
        case .peerFailed(let op, let rank): "\(op): rank \(rank) failed"
        case .timeout(let op, let s): "\(op): the other ranks did not join within \(s) s (a rank failed or called a different collective)"
        }
    }
}
