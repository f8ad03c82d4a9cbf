import Foundation
import EmberStorage

/// A reduction for ``ProcessGroup/allReduce(_:op:)`` and ``ProcessGroup/reduceScatter(_:op:)``.
///
/// PyTorch parity: `torch.distributed.ReduceOp.SUM`, `AVG`, `MAX`, `MIN`.
public enum ReduceOp: String, Sendable, Hashable {
    case sum, mean, max, min
}

/// The element types collectives move: float32, float64, int64.
package enum CollectiveElement: Sendable, Equatable {
    case float32, float64, int64

    package init?(_ dtype: DType) {
        switch dtype {
        case .float32: self = .float32
        case .float64: self = .float64
        case .int64: self = .int64
        default: return nil
        }
    }

    package var size: Int { self == .float32 ? 4 : 8 }
}

/// The reductions an engine performs (`mean` is a sum divided by the world size afterwards).
package enum EngineReduction: Sendable, Equatable {
    case sum, max, min
}

/// An engine that moves bytes between the ranks of one group. Every rank must call the same
/// operations in the same order with the same counts. Counts are elements, per rank.
package protocol CollectiveBackend: Sendable {
    var rank: Int { get }
    var worldSize: Int { get }
    var name: String { get }
    /// In place over `count` elements.
    func allReduce(_ data: UnsafeMutableRawPointer, count: Int, type: CollectiveElement, op: EngineReduction) throws
    /// In place: the root's `count` elements into everyone's.
    func broadcast(_ data: UnsafeMutableRawPointer, count: Int, type: CollectiveElement, root: Int) throws
    /// `count` elements from each rank into `receive` (`worldSize * count`), in rank order.
    func allGather(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, count: Int, type: CollectiveElement) throws
    /// `send` holds `worldSize * count` elements; rank `r` receives the reduction of block `r`.
    func reduceScatter(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, count: Int,
                       type: CollectiveElement, op: EngineReduction) throws
    func barrier() throws
    /// Starts an in-place sum over `count` elements that completes in the returned collective's
    /// ``PendingCollective/wait()``; `data` must stay allocated and untouched until then. Started
    /// collectives complete in the order they were started, on an ordering of their own: other
    /// collectives may run between the start and the wait, in any order relative to it.
    func startAllReduce(_ data: UnsafeMutableRawPointer, count: Int, type: CollectiveElement) throws -> any PendingCollective
    /// Ends every rank of the job with `code` (MPI_Abort); the in-process engine traps.
    func abort(code: Int32) -> Never
    /// Releases the engine (MPI_Finalize); later collectives are errors.
    func finalize()
}

/// A collective in flight (``CollectiveBackend/startAllReduce(_:count:type:)``).
package protocol PendingCollective: AnyObject {
    /// Lets the engine move data without blocking; whether the collective has completed.
    func progress() throws -> Bool
    /// Blocks until the collective has completed.
    func wait() throws
}

/// A collective run entirely in ``wait()``: for engines without non-blocking collectives, whose
/// waits then come in start order on every rank, apart from any collective between them.
final class DeferredCollective: PendingCollective {
    private var body: (() throws -> Void)?
    init(_ body: @escaping () throws -> Void) { self.body = body }
    func progress() throws -> Bool { body == nil }
    func wait() throws {
        guard let run = body else { return }
        body = nil
        try run()
    }
}

extension CollectiveBackend {
    func startAllReduce(_ data: UnsafeMutableRawPointer, count: Int, type: CollectiveElement) throws -> any PendingCollective {
        DeferredCollective { try self.allReduce(data, count: count, type: type, op: .sum) }
    }
}

/// The group of one process: every collective is the identity.
struct SingleProcessBackend: CollectiveBackend {
    var rank: Int { 0 }
    var worldSize: Int { 1 }
    var name: String { "single process" }
    func allReduce(_ data: UnsafeMutableRawPointer, count: Int, type: CollectiveElement, op: EngineReduction) throws {}
    func broadcast(_ data: UnsafeMutableRawPointer, count: Int, type: CollectiveElement, root: Int) throws {}
    func allGather(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, count: Int, type: CollectiveElement) throws {
        receive.copyMemory(from: send, byteCount: count * type.size)
    }
    func reduceScatter(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, count: Int,
                       type: CollectiveElement, op: EngineReduction) throws {
        receive.copyMemory(from: send, byteCount: count * type.size)
    }
    func barrier() throws {}
    func abort(code: Int32) -> Never { exit(code) }
    func finalize() {}
}

/// Reduces `count` elements of `source` into `target` (both raw, of `type`).
func reduce(_ target: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, count: Int, type: CollectiveElement, op: EngineReduction) {
    func run<T: Comparable>(_: T.Type, _ combine: (T, T) -> T) {
        let t = target.assumingMemoryBound(to: T.self), s = source.assumingMemoryBound(to: T.self)
        for i in 0..<count { t[i] = combine(t[i], s[i]) }
    }
    switch (type, op) {
    case (.float32, .sum): run(Float.self, +)
    case (.float64, .sum): run(Double.self, +)
    case (.int64, .sum): run(Int64.self, &+)
    case (.float32, .max): run(Float.self) { Swift.max($0, $1) }
    case (.float64, .max): run(Double.self) { Swift.max($0, $1) }
    case (.int64, .max): run(Int64.self) { Swift.max($0, $1) }
    case (.float32, .min): run(Float.self) { Swift.min($0, $1) }
    case (.float64, .min): run(Double.self) { Swift.min($0, $1) }
    case (.int64, .min): run(Int64.self) { Swift.min($0, $1) }
    }
}
