#if MPI
import CMPI
import Foundation

/// The group of all ranks started by `mpirun` (MPI_COMM_WORLD), over Open MPI.
///
/// MPI errors are returned, not fatal (MPI_ERRORS_RETURN), and become ``DistributedError/mpi``.
/// A rank that exits without ``finalize()`` (a crash, a failed precondition, `exit(1)`) makes
/// `mpirun` end the others: nothing waits forever on a dead peer.
struct MPIBackend: CollectiveBackend {
    let rank: Int
    let worldSize: Int
    /// A duplicate of MPI_COMM_WORLD (its handle's bits) for started collectives: their order is
    /// kept apart from the blocking collectives' (a started bucket all-reduce may be in flight
    /// while a SyncBatchNorm backward all-reduces on the world communicator).
    private let startedCommunicator: Int
    var name: String { "MPI" }

    /// Initialises MPI (once per process) and reads the rank and world size of MPI_COMM_WORLD.
    static func start() throws -> MPIBackend {
        var initialized: Int32 = 0
        try check(MPI_Initialized(&initialized), "MPI_Initialized")
        if initialized == 0 {
            var provided: Int32 = 0
            try check(MPI_Init_thread(nil, nil, cmpi_thread_funneled(), &provided), "MPI_Init_thread")
        }
        try check(MPI_Comm_set_errhandler(cmpi_comm_world(), cmpi_errors_return()), "MPI_Comm_set_errhandler")
        var rank: Int32 = 0, size: Int32 = 0
        try check(MPI_Comm_rank(cmpi_comm_world(), &rank), "MPI_Comm_rank")
        try check(MPI_Comm_size(cmpi_comm_world(), &size), "MPI_Comm_size")
        var started: MPI_Comm? = nil
        try check(MPI_Comm_dup(cmpi_comm_world(), &started), "MPI_Comm_dup")  // keeps the error handler
        return MPIBackend(rank: Int(rank), worldSize: Int(size), startedCommunicator: Int(bitPattern: started))
    }

    static func check(_ code: Int32, _ operation: String) throws {
        guard code != cmpi_success() else { return }
        var buffer = [CChar](repeating: 0, count: Int(cmpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &buffer, &length)
        let message = String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw DistributedError.mpi(operation: operation, code: code, message: message)
    }

    private func datatype(_ type: CollectiveElement) -> MPI_Datatype {
        switch type {
        case .float32: cmpi_float()
        case .float64: cmpi_double()
        case .int64: cmpi_int64()
        }
    }

    private func operation(_ op: EngineReduction) -> MPI_Op {
        switch op {
        case .sum: cmpi_sum()
        case .max: cmpi_max()
        case .min: cmpi_min()
        }
    }

    func allReduce(_ data: UnsafeMutableRawPointer, count: Int, type: CollectiveElement, op: EngineReduction) throws {
        try Self.check(MPI_Allreduce(cmpi_in_place(), data, Int32(count), datatype(type), operation(op), cmpi_comm_world()), "MPI_Allreduce")
    }

    func startAllReduce(_ data: UnsafeMutableRawPointer, count: Int, type: CollectiveElement) throws -> any PendingCollective {
        var request: MPI_Request? = cmpi_request_null()
        try Self.check(MPI_Iallreduce(cmpi_in_place(), data, Int32(count), datatype(type), operation(.sum),
                                      OpaquePointer(bitPattern: startedCommunicator), &request), "MPI_Iallreduce")
        return Request(request)
    }

    /// An MPI request: progressed by MPI_Test, completed by MPI_Wait.
    final class Request: PendingCollective {
        private var request: MPI_Request?
        private var done = false
        init(_ request: MPI_Request?) { self.request = request }
        func progress() throws -> Bool {
            guard !done else { return true }
            var flag: Int32 = 0
            try MPIBackend.check(MPI_Test(&request, &flag, cmpi_status_ignore()), "MPI_Test")
            done = flag != 0
            return done
        }
        func wait() throws {
            guard !done else { return }
            try MPIBackend.check(MPI_Wait(&request, cmpi_status_ignore()), "MPI_Wait")
            done = true
        }
    }

    func broadcast(_ data: UnsafeMutableRawPointer, count: Int, type: CollectiveElement, root: Int) throws {
        try Self.check(MPI_Bcast(data, Int32(count), datatype(type), Int32(root), cmpi_comm_world()), "MPI_Bcast")
    }

    func allGather(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, count: Int, type: CollectiveElement) throws {
        try Self.check(MPI_Allgather(send, Int32(count), datatype(type), receive, Int32(count), datatype(type), cmpi_comm_world()), "MPI_Allgather")
    }

    func reduceScatter(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, count: Int,
                       type: CollectiveElement, op: EngineReduction) throws {
        try Self.check(MPI_Reduce_scatter_block(send, receive, Int32(count), datatype(type), operation(op), cmpi_comm_world()),
                       "MPI_Reduce_scatter_block")
    }

    func barrier() throws {
        try Self.check(MPI_Barrier(cmpi_comm_world()), "MPI_Barrier")
    }

    func abort(code: Int32) -> Never {
        MPI_Abort(cmpi_comm_world(), code)
        exit(code)
    }

    func finalize() {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 { MPI_Finalize() }
    }
}
#endif
