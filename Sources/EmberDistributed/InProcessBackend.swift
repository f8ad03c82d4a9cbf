import Dispatch
import Foundation
import Synchronization

/// The ranks of an in-process group: threads of one process that meet at each collective.
///
/// Each collective is a rendezvous: a rank deposits its call (kind, counts, type, operation,
/// root) and its bytes; the last to arrive checks that all calls agree, computes every rank's
/// result and wakes the others. A rank reads its result before it can enter the next collective,
/// and the next collective cannot complete before every rank has entered it, so one result slot
/// per rank suffices. Reductions run in rank order, so every rank gets bit-identical results.
final class Rendezvous: Sendable {
    struct Call: Equatable {
        var kind: String
        var count: Int
        var type: CollectiveElement?
        var op: EngineReduction?
        var root: Int?
    }

    struct State {
        var calls: [Call?]
        var inputs: [[UInt8]]
        var outputs: [[UInt8]]
        var failures: [DistributedError?]
        var arrived = 0
    }

    let worldSize: Int
    let timeout: Double
    private let state: Mutex<State>
    private let wake: [DispatchSemaphore]

    init(worldSize: Int, timeout: Double) {
        self.worldSize = worldSize
        self.timeout = timeout
        state = Mutex(State(calls: Array(repeating: nil, count: worldSize), inputs: Array(repeating: [], count: worldSize),
                            outputs: Array(repeating: [], count: worldSize), failures: Array(repeating: nil, count: worldSize)))
        wake = (0..<worldSize).map { _ in DispatchSemaphore(value: 0) }
    }

    /// Runs one collective for `rank`: `compute` gets every rank's input and returns every rank's
    /// output; it runs once, on the last rank to arrive.
    func meet(rank: Int, call: Call, input: [UInt8], compute: ([[UInt8]]) -> [[UInt8]]) throws -> [UInt8] {
        let last = state.withLock { s -> Bool in
            s.calls[rank] = call
            s.inputs[rank] = input
            s.arrived += 1
            guard s.arrived == worldSize else { return false }
            let calls = s.calls.map { $0! }
            if let bad = calls.firstIndex(where: { $0 != calls[0] }) {
                let error = DistributedError.mismatch(operation: call.kind, detail: "rank 0 called \(describe(calls[0])), rank \(bad) called \(describe(calls[bad]))")
                s.failures = Array(repeating: error, count: worldSize)
                s.outputs = Array(repeating: [], count: worldSize)
            } else {
                s.outputs = compute(s.inputs)
                s.failures = Array(repeating: nil, count: worldSize)
            }
            s.calls = Array(repeating: nil, count: worldSize)
            s.inputs = Array(repeating: [], count: worldSize)
            s.arrived = 0
            return true
        }
        if last {
            for r in 0..<worldSize where r != rank { wake[r].signal() }
        } else if wake[rank].wait(timeout: .now() + timeout) == .timedOut {
            // Withdraw, unless the collective completed meanwhile (then take the signal).
            let withdrawn = state.withLock { s -> Bool in
                guard s.calls[rank] != nil else { return false }
                s.calls[rank] = nil
                s.inputs[rank] = []
                s.arrived -= 1
                return true
            }
            if withdrawn { throw DistributedError.timeout(operation: call.kind, seconds: timeout) }
            wake[rank].wait()
        }
        return try state.withLock { s in
            if let failure = s.failures[rank] { throw failure }
            return s.outputs[rank]
        }
    }

    private func describe(_ c: Call) -> String {
        var parts = ["\(c.kind)(count: \(c.count)"]
        if let t = c.type { parts.append("type: \(t)") }
        if let op = c.op { parts.append("op: \(op)") }
        if let root = c.root { parts.append("root: \(root)") }
        return parts.joined(separator: ", ") + ")"
    }
}

/// One rank of an in-process group (see ``ProcessGroup/inProcess(worldSize:timeout:)``).
struct InProcessBackend: CollectiveBackend {
    let rank: Int
    let rendezvous: Rendezvous
    var worldSize: Int { rendezvous.worldSize }
    var name: String { "in-process" }

    private func bytes(_ p: UnsafeRawPointer, _ count: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: p, count: count))
    }

    private func write(_ bytes: [UInt8], to p: UnsafeMutableRawPointer) {
        bytes.withUnsafeBytes { if let base = $0.baseAddress { p.copyMemory(from: base, byteCount: $0.count) } }
    }

    private func reduced(_ inputs: [[UInt8]], type: CollectiveElement, op: EngineReduction, range: Range<Int>) -> [UInt8] {
        var acc = Array(inputs[0][range])
        for r in 1..<inputs.count {
            acc.withUnsafeMutableBytes { a in
                inputs[r].withUnsafeBytes { b in
                    if let dst = a.baseAddress, let src = b.baseAddress {
                        reduce(dst, src + range.lowerBound, count: range.count / type.size, type: type, op: op)
                    }
                }
            }
        }
        return acc
    }

    func allReduce(_ data: UnsafeMutableRawPointer, count: Int, type: CollectiveElement, op: EngineReduction) throws {
        let n = count * type.size, w = worldSize
        let out = try rendezvous.meet(rank: rank, call: .init(kind: "allReduce", count: count, type: type, op: op),
                                      input: bytes(data, n)) { inputs in
            let r = reduced(inputs, type: type, op: op, range: 0..<n)
            return Array(repeating: r, count: w)
        }
        write(out, to: data)
    }

    func broadcast(_ data: UnsafeMutableRawPointer, count: Int, type: CollectiveElement, root: Int) throws {
        let w = worldSize
        let out = try rendezvous.meet(rank: rank, call: .init(kind: "broadcast", count: count, type: type, root: root),
                                      input: bytes(data, count * type.size)) { inputs in
            Array(repeating: inputs[root], count: w)
        }
        write(out, to: data)
    }

    func allGather(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, count: Int, type: CollectiveElement) throws {
        let w = worldSize
        let out = try rendezvous.meet(rank: rank, call: .init(kind: "allGather", count: count, type: type),
                                      input: bytes(send, count * type.size)) { inputs in
            Array(repeating: inputs.flatMap { $0 }, count: w)
        }
        write(out, to: receive)
    }

    func reduceScatter(_ send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, count: Int,
                       type: CollectiveElement, op: EngineReduction) throws {
        let n = count * type.size, w = worldSize
        let out = try rendezvous.meet(rank: rank, call: .init(kind: "reduceScatter", count: count, type: type, op: op),
                                      input: bytes(send, n * w)) { inputs in
            (0..<w).map { r in reduced(inputs, type: type, op: op, range: (r * n)..<((r + 1) * n)) }
        }
        write(out, to: receive)
    }

    func barrier() throws {
        _ = try rendezvous.meet(rank: rank, call: .init(kind: "barrier", count: 0), input: []) { inputs in
            Array(repeating: [], count: inputs.count)
        }
    }

    func abort(code: Int32) -> Never {
        fatalError("in-process group: rank \(rank) aborted with code \(code)")
    }

    func finalize() {}
}
