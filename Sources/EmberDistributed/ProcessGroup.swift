import EmberAutograd
import EmberStorage
import EmberTensor
import Foundation
import Synchronization

/// The processes (ranks) that train together, and the collectives between them.
///
/// Get the group of all ranks started by `mpirun` with ``world()`` (MPI with the `MPI` package
/// trait; one process without it). Every rank must call the same collectives in the same order
/// with tensors of the same shape and dtype. Collectives return new tensors (Ember's tensors are
/// values) and record no graph; float32, float64 and int64 move.
///
/// - ``allReduce(_:op:)``: the elementwise sum, mean, max or min over ranks, on every rank.
/// - ``broadcast(_:from:)``: the root's tensor on every rank.
/// - ``allGather(_:)``: every rank's tensor, concatenated along dimension 0 in rank order.
/// - ``reduceScatter(_:op:)``: the reduction over ranks, split along dimension 0, block `r` on rank `r`.
/// - ``barrier()``.
///
/// Local argument errors and engine failures throw ``DistributedError``. Calls that disagree
/// across ranks (shapes, dtypes, roots) are detected by the in-process engine always, and by MPI
/// when ``verifiesCalls`` is on (one extra small all-gather per collective; PyTorch's
/// `TORCH_DISTRIBUTED_DEBUG=DETAIL`); otherwise MPI's behaviour on such a mismatch is undefined.
///
/// ``collectiveCount`` counts the collectives this group ran (verification excluded), so tests can
/// prove that a code path communicates, or does not.
///
/// PyTorch parity: `torch.distributed` with `init_process_group("mpi")`, `get_rank()`,
/// `get_world_size()`, `all_reduce`, `broadcast`, `all_gather_into_tensor`,
/// `reduce_scatter_tensor`, `barrier`, `destroy_process_group()` (``finalize()``). PyTorch's
/// collectives work in place; Ember's return the result.
public final class ProcessGroup: Sendable {
    /// This process's index in the group, `0..<worldSize`.
    public let rank: Int
    /// The number of processes.
    public let worldSize: Int
    /// Whether each collective first checks that all ranks called it alike (see the type's notes).
    public let verifiesCalls: Bool
    let backend: any CollectiveBackend
    private let counter = Atomic<Int>(0)

    init(backend: any CollectiveBackend, verifiesCalls: Bool = false) {
        self.backend = backend
        rank = backend.rank
        worldSize = backend.worldSize
        self.verifiesCalls = verifiesCalls
    }

    /// The engine's name: "MPI", "single process" or "in-process".
    public var engine: String { backend.name }

    /// The collectives this group has run (allReduce, broadcast, allGather, reduceScatter,
    /// barrier; each counts once).
    public var collectiveCount: Int { counter.load(ordering: .relaxed) }

    /// A group of one process: every collective returns its input (gathers return it once).
    public static func singleProcess() -> ProcessGroup { ProcessGroup(backend: SingleProcessBackend()) }

    /// `worldSize` ranks inside this process, one per thread, for tests: run each rank's code on
    /// its own thread with its group. A rank that waits longer than `timeout` seconds for the
    /// others throws ``DistributedError/timeout(operation:seconds:)``. Calls that disagree throw
    /// ``DistributedError/mismatch(operation:detail:)`` on every rank. With `verifiesCalls`, the
    /// checks that MPI groups run with it (DistributedDataParallel's bucket layout) run too.
    public static func inProcess(worldSize: Int, timeout: Double = 60, verifiesCalls: Bool = false) -> [ProcessGroup] {
        precondition(worldSize >= 1, "ProcessGroup.inProcess: worldSize must be at least 1, got \(worldSize)")
        let rendezvous = Rendezvous(worldSize: worldSize, timeout: timeout)
        return (0..<worldSize).map {
            ProcessGroup(backend: InProcessBackend(rank: $0, rendezvous: rendezvous), verifiesCalls: verifiesCalls)
        }
    }

    /// Whether this build has the MPI engine (the `MPI` package trait).
    public static var isMPIAvailable: Bool {
        #if MPI
        true
        #else
        false
        #endif
    }

    /// The ranks `mpirun` started, from `OMPI_COMM_WORLD_SIZE` or `PMI_SIZE` (1 outside mpirun).
    public static var launcherWorldSize: Int {
        let env = ProcessInfo.processInfo.environment
        return Int(env["OMPI_COMM_WORLD_SIZE"] ?? env["PMI_SIZE"] ?? "") ?? 1
    }

    #if MPI
    private static let mpiWorld: Result<MPIBackend, DistributedError> = {
        do { return .success(try MPIBackend.start()) } catch let e as DistributedError { return .failure(e) } catch {
            return .failure(.mpi(operation: "MPI_Init", code: -1, message: "\(error)"))
        }
    }()
    #endif

    /// The group of every rank `mpirun` started: MPI_COMM_WORLD with the `MPI` trait (initialising
    /// MPI on first use; also a one-rank group outside `mpirun`); without the trait, a single
    /// process, or ``DistributedError/mpiUnavailable(worldSize:)`` under an `mpirun` of several
    /// ranks. Call ``finalize()`` before the process exits.
    ///
    /// - Parameter verifiesCalls: check each collective's shape, dtype and root across ranks.
    ///
    /// PyTorch parity: `torch.distributed.init_process_group(backend="mpi")`.
    public static func world(verifiesCalls: Bool = false) throws -> ProcessGroup {
        #if MPI
        return ProcessGroup(backend: try mpiWorld.get(), verifiesCalls: verifiesCalls)
        #else
        let n = launcherWorldSize
        if n > 1 { throw DistributedError.mpiUnavailable(worldSize: n) }
        return singleProcess()
        #endif
    }

    /// Ends MPI for this process (MPI_Finalize); call once, after the last collective, on every
    /// rank. A no-op for the other engines.
    ///
    /// PyTorch parity: `torch.distributed.destroy_process_group()`.
    public func finalize() { backend.finalize() }

    /// Ends every rank of the job with `code` (MPI_Abort), for a rank that cannot go on.
    ///
    /// PyTorch parity: none (PyTorch ranks time out or are killed by the launcher).
    public func abort(code: Int32 = 1) -> Never { backend.abort(code: code) }

    // MARK: - Collectives

    private func element(_ t: Tensor, _ operation: String) throws -> CollectiveElement {
        guard let e = CollectiveElement(t.dtype) else { throw DistributedError.unsupportedDType(operation: operation, dtype: t.dtype) }
        return e
    }

    /// Checks, with one all-gather of a few integers, that every rank makes the same call
    /// (``verifiesCalls`` only); `describe` names a signature in the error (default: a
    /// collective's dtype, extra argument and shape).
    package func verify(_ operation: String, _ signature: [Int64], describe: (([Int64]) -> String)? = nil) throws {
        guard verifiesCalls, worldSize > 1 else { return }
        let n = signature.count
        // The length goes first, so calls with different signature lengths still line up.
        var lengths = [Int64](repeating: 0, count: worldSize)
        try [Int64(n)].withUnsafeBytes { s in
            try lengths.withUnsafeMutableBytes { r in try backend.allGather(s.baseAddress!, into: r.baseAddress!, count: 1, type: .int64) }
        }
        guard lengths.allSatisfy({ $0 == Int64(n) }) else {
            throw DistributedError.mismatch(operation: operation, detail: "calls of different kinds or ranks (signature lengths \(lengths))")
        }
        var all = [Int64](repeating: 0, count: n * worldSize)
        try signature.withUnsafeBytes { s in
            try all.withUnsafeMutableBytes { r in try backend.allGather(s.baseAddress!, into: r.baseAddress!, count: n, type: .int64) }
        }
        let name = describe ?? self.describe
        for r in 1..<worldSize where Array(all[(r * n)..<((r + 1) * n)]) != Array(all[0..<n]) {
            throw DistributedError.mismatch(operation: operation,
                                            detail: "rank 0 called it with \(name(Array(all[0..<n]))), rank \(r) with \(name(Array(all[(r * n)..<((r + 1) * n)])))")
        }
    }

    private func describe(_ signature: [Int64]) -> String {
        guard signature.count >= 3 else { return "\(signature)" }
        let dtypes = ["float32", "float64", "int64"]
        let dtype = signature[1] >= 0 && signature[1] < 3 ? dtypes[Int(signature[1])] : "?"
        return "dtype \(dtype), extra \(signature[2]), shape \(signature.dropFirst(3).map { Int($0) })"
    }

    private func signature(_ kind: Int64, _ t: Tensor, _ e: CollectiveElement, extra: Int64 = 0) -> [Int64] {
        let code: Int64 = switch e { case .float32: 0; case .float64: 1; case .int64: 2 }
        return [kind, code, extra] + t.shape.map { Int64($0) }
    }

    private func reductionCode(_ op: ReduceOp) -> Int64 {
        switch op {
        case .sum: 0
        case .mean: 1
        case .max: 2
        case .min: 3
        }
    }

    private func engineReduction(_ op: ReduceOp) -> EngineReduction {
        switch op {
        case .sum, .mean: .sum
        case .max: .max
        case .min: .min
        }
    }

    /// The elementwise reduction of `tensor` over all ranks, returned on every rank.
    ///
    /// `mean` is the sum divided by the world size (float dtypes only).
    ///
    /// PyTorch parity: `torch.distributed.all_reduce(tensor, op)` (in place there).
    public func allReduce(_ tensor: Tensor, op: ReduceOp = .sum) throws -> Tensor {
        var out = tensor.detached().contiguousRaw
        try allReduce(inPlace: &out, op: op)
        return out
    }

    /// ``allReduce(_:op:)`` into `tensor`'s own storage (copied first only when it is shared or
    /// not contiguous): DistributedDataParallel's buckets reduce without a second buffer.
    package func allReduce(inPlace tensor: inout Tensor, op: ReduceOp = .sum) throws {
        let name = "allReduce"
        let e = try element(tensor, name)
        if op == .mean && e == .int64 { throw DistributedError.unsupportedDType(operation: "allReduce(mean)", dtype: tensor.dtype) }
        try verify(name, signature(1, tensor, e, extra: reductionCode(op)))
        counter.add(1, ordering: .relaxed)
        tensor.makeUniqueContiguous()
        try backend.allReduce(mutableRaw(&tensor, e), count: tensor.count, type: e, op: engineReduction(op))
        if op == .mean { divide(&tensor, e, by: worldSize) }
    }

    /// Starts the sum of `tensor` over all ranks; ``PendingAllReduce/wait()`` returns it.
    /// Started all-reduces complete in start order, on an ordering of their own (see
    /// ``CollectiveBackend/startAllReduce(_:count:type:)``), so blocking collectives may run while
    /// one is in flight. Not verified call by call: ranks may start them at different moments
    /// relative to other collectives (DistributedDataParallel verifies its bucket layout once, at
    /// wrap time); counted when started.
    package func startAllReduce(_ tensor: Tensor) throws -> PendingAllReduce {
        let e = try element(tensor, "allReduce")
        var t = tensor.detached()
        t.makeUniqueContiguous()
        counter.add(1, ordering: .relaxed)
        let request = try backend.startAllReduce(mutableRaw(&t, e), count: t.count, type: e)
        return PendingAllReduce(tensor: t, request: request)
    }

    /// The root rank's `tensor`, returned on every rank.
    ///
    /// PyTorch parity: `torch.distributed.broadcast(tensor, src)` (in place there).
    public func broadcast(_ tensor: Tensor, from root: Int = 0) throws -> Tensor {
        let name = "broadcast"
        let e = try element(tensor, name)
        guard (0..<worldSize).contains(root) else {
            throw DistributedError.invalidArgument(operation: name, detail: "root \(root) is not a rank of a group of \(worldSize)")
        }
        try verify(name, signature(2, tensor, e, extra: Int64(root)))
        counter.add(1, ordering: .relaxed)
        var out = tensor.detached().contiguousRaw
        out.makeUniqueContiguous()
        try backend.broadcast(mutableRaw(&out, e), count: out.count, type: e, root: root)
        return out
    }

    /// Every rank's `tensor` (shape `[d0, ...]`), concatenated along dimension 0 in rank order:
    /// `[worldSize * d0, ...]`; a 0-d tensor gives `[worldSize]`.
    ///
    /// PyTorch parity: `torch.distributed.all_gather_into_tensor(output, input)`.
    public func allGather(_ tensor: Tensor) throws -> Tensor {
        let name = "allGather"
        let e = try element(tensor, name)
        try verify(name, signature(3, tensor, e))
        counter.add(1, ordering: .relaxed)
        let input = tensor.detached().contiguousRaw
        var shape = tensor.shape
        if shape.isEmpty { shape = [worldSize] } else { shape[0] *= worldSize }
        var out = Tensor(uninitializedShape: shape, dtype: tensor.dtype)
        try backend.allGather(raw(input, e), into: mutableRaw(&out, e),
                              count: input.count, type: e)
        return out
    }

    /// The reduction over ranks of `tensor` (shape `[worldSize * k, ...]`), split along
    /// dimension 0: rank `r` gets block `r`, shape `[k, ...]`.
    ///
    /// PyTorch parity: `torch.distributed.reduce_scatter_tensor(output, input, op)`.
    public func reduceScatter(_ tensor: Tensor, op: ReduceOp = .sum) throws -> Tensor {
        let name = "reduceScatter"
        let e = try element(tensor, name)
        if op == .mean && e == .int64 { throw DistributedError.unsupportedDType(operation: "reduceScatter(mean)", dtype: tensor.dtype) }
        guard tensor.rank >= 1, tensor.shape[0] % worldSize == 0 else {
            throw DistributedError.invalidArgument(operation: name, detail: "the input's first dimension must be a multiple of the world size \(worldSize), got shape \(tensor.shape)")
        }
        try verify(name, signature(4, tensor, e, extra: reductionCode(op)))
        counter.add(1, ordering: .relaxed)
        let input = tensor.detached().contiguousRaw
        var shape = tensor.shape
        shape[0] /= worldSize
        var out = Tensor(uninitializedShape: shape, dtype: tensor.dtype)
        try backend.reduceScatter(raw(input, e), into: mutableRaw(&out, e),
                                  count: out.count, type: e, op: engineReduction(op))
        if op == .mean { divide(&out, e, by: worldSize) }
        return out
    }

    /// Runs `body` on rank 0 only (writing a checkpoint, logging), then waits until it is done
    /// on every rank, so that the others may read what it wrote. Returns `body`'s result on rank
    /// 0 and `nil` elsewhere. When `body` throws on rank 0, rank 0 rethrows its error and the
    /// other ranks throw ``DistributedError/peerFailed(operation:rank:)``: no rank goes on as if
    /// it had succeeded, and none waits forever.
    ///
    /// PyTorch parity: the `if dist.get_rank() == 0: torch.save(...)` idiom followed by
    /// `dist.barrier()`, with the failure shared.
    public func onRankZero<R>(_ body: () throws -> R) throws -> R? {
        var result: Result<R, any Error>?
        if rank == 0 { result = Result { try body() } }
        var failed: Int64 = 0
        if case .failure = result { failed = 1 }
        let anyFailed = try allReduce(Tensor([failed]), op: .max).scalars(as: Int64.self)[0]
        if let result { return try result.get() }
        if anyFailed != 0 { throw DistributedError.peerFailed(operation: "onRankZero", rank: 0) }
        return nil
    }

    /// Waits until every rank has called it.
    ///
    /// PyTorch parity: `torch.distributed.barrier()`.
    public func barrier() throws {
        try verify("barrier", [5, 0, 0])
        counter.add(1, ordering: .relaxed)
        try backend.barrier()
    }
}

/// The bytes of a contiguous tensor of a collective dtype.
func raw(_ t: Tensor, _ e: CollectiveElement) -> UnsafeRawPointer {
    switch e {
    case .float32: UnsafeRawPointer(t.pointer(as: Float.self))
    case .float64: UnsafeRawPointer(t.pointer(as: Double.self))
    case .int64: UnsafeRawPointer(t.pointer(as: Int64.self))
    }
}

/// The bytes of a uniquely held contiguous tensor of a collective dtype.
func mutableRaw(_ t: inout Tensor, _ e: CollectiveElement) -> UnsafeMutableRawPointer {
    switch e {
    case .float32: UnsafeMutableRawPointer(t.mutablePointer(as: Float.self))
    case .float64: UnsafeMutableRawPointer(t.mutablePointer(as: Double.self))
    case .int64: UnsafeMutableRawPointer(t.mutablePointer(as: Int64.self))
    }
}

/// Divides a float tensor in place by `n` (the `mean` reductions).
func divide(_ t: inout Tensor, _ e: CollectiveElement, by n: Int) {
    switch e {
    case .float32: let p = t.mutablePointer(as: Float.self); for i in 0..<t.count { p[i] /= Float(n) }
    case .float64: let p = t.mutablePointer(as: Double.self); for i in 0..<t.count { p[i] /= Double(n) }
    case .int64: break
    }
}

/// An all-reduce in flight (``ProcessGroup/startAllReduce(_:)``). It owns the tensor the engine
/// writes into, so the storage outlives the collective.
package final class PendingAllReduce {
    private let tensor: Tensor
    private let request: any PendingCollective

    init(tensor: Tensor, request: any PendingCollective) {
        self.tensor = tensor
        self.request = request
    }

    /// Lets the engine move data without blocking; whether the sum is complete.
    package func progress() throws -> Bool { try request.progress() }

    /// Blocks until the sum is complete and returns it.
    package func wait() throws -> Tensor {
        try request.wait()
        return tensor
    }
}
