import Dispatch
import Foundation
import Synchronization

/// The helper threads behind `Threading.parallelFor`.
///
/// A caller wraps its chunks in a `ParallelJob`, posts it to every helper's mailbox, runs chunks
/// itself, and returns once all chunks are done. Chunks are claimed with an atomic counter, so a
/// helper that arrives late (or never) costs nothing: the caller can finish every chunk alone.
/// That also makes nested and concurrent `parallelFor` calls safe without a lock.
///
/// Why not `DispatchQueue.concurrentPerform`: waking a parked Dispatch thread takes tens of
/// microseconds, as long as a mid-sized matrix product, so a 2-thread split of one ran slower than
/// one thread. Helpers here spin for `spinNanoseconds` after each job (as OpenMP runtimes do)
/// before parking on a semaphore.
final class WorkerPool: Sendable {
    /// One helper per processor beyond the caller's, started on first use.
    static let shared = WorkerPool(helpers: max(0, ProcessInfo.processInfo.activeProcessorCount - 1))

    /// How long an idle helper polls its mailbox before it parks.
    static let spinNanoseconds: UInt64 = 100_000

    let helpers: [Helper]

    init(helpers count: Int) {
        helpers = (0..<count).map { _ in Helper() }
        for helper in helpers {
            let thread = Thread { helper.serve() }
            thread.name = "ember-worker"
            thread.start()
        }
    }

    /// Runs `body` for every chunk in `0..<chunks` on this thread and the helpers.
    func run(chunks: Int, _ body: (Int) -> Void) {
        if helpers.isEmpty {
            for chunk in 0..<chunks { body(chunk) }
            return
        }
        withoutActuallyEscaping(body) { body in
            withUnsafePointer(to: body) { bodyPointer in
                let job = ParallelJob(chunks: chunks, body: UnsafeRawPointer(bodyPointer))
                for helper in helpers.prefix(chunks - 1) { helper.post(job) }
                job.runChunks()
                // Helpers only touch `body` for chunks they claimed, and each claimed chunk is
                // counted done after its call returns, so `body` is not used past this wait.
                job.waitUntilDone()
            }
        }
    }
}

/// One helper thread's mailbox and parking semaphore.
final class Helper: Sendable {
    /// A retained `ParallelJob` as an opaque pointer, or 0 when empty.
    let mailbox = Atomic<UInt>(0)
    /// Set by the helper before it parks; a poster that clears it owes one `wake.signal()`.
    let parked = Atomic<Bool>(false)
    let wake = DispatchSemaphore(value: 0)

    /// Hands `job` to this helper, replacing (and releasing) any job it has not picked up yet.
    func post(_ job: ParallelJob) {
        let bits = UInt(bitPattern: Unmanaged.passRetained(job).toOpaque())
        let old = mailbox.exchange(bits, ordering: .acquiringAndReleasing)
        if old != 0 { ParallelJob.take(old).release() }
        if parked.exchange(false, ordering: .sequentiallyConsistent) { wake.signal() }
    }

    /// The helper thread's loop: take a job, run its unclaimed chunks, repeat.
    func serve() -> Never {
        while true {
            let job = ParallelJob.take(nextJob()).takeRetainedValue()
            job.runChunks()
        }
    }

    /// Waits for a posted job (spinning, then parked) and empties the mailbox.
    private func nextJob() -> UInt {
        var spinUntil = DispatchTime.now().uptimeNanoseconds + WorkerPool.spinNanoseconds
        while true {
            if mailbox.load(ordering: .relaxed) != 0 {
                let bits = mailbox.exchange(0, ordering: .acquiring)
                if bits != 0 { return bits }
            }
            if DispatchTime.now().uptimeNanoseconds < spinUntil { continue }
            parked.store(true, ordering: .sequentiallyConsistent)
            let bits = mailbox.exchange(0, ordering: .acquiring)
            if bits != 0 {
                // A poster that already saw us parked has signalled (or will): take that signal.
                if !parked.exchange(false, ordering: .sequentiallyConsistent) { wake.wait() }
                return bits
            }
            wake.wait()
            spinUntil = DispatchTime.now().uptimeNanoseconds + WorkerPool.spinNanoseconds
        }
    }
}

/// One `parallelFor` call: its chunk count, its body, and the claim and completion counters.
///
/// Not `Sendable`: it crosses to helper threads only as an opaque pointer through a mailbox, and
/// the only state they touch is atomic or immutable.
final class ParallelJob {
    let chunks: Int
    /// The caller's `(Int) -> Void`, valid until every chunk is done.
    let body: UnsafeRawPointer
    let claimed = Atomic<Int>(0)
    let done = Atomic<Int>(0)

    init(chunks: Int, body: UnsafeRawPointer) {
        self.chunks = chunks
        self.body = body
    }

    static func take(_ bits: UInt) -> Unmanaged<ParallelJob> {
        Unmanaged.fromOpaque(UnsafeRawPointer(bitPattern: bits)!)
    }

    /// Claims and runs chunks until none are left.
    func runChunks() {
        while true {
            let chunk = claimed.wrappingAdd(1, ordering: .relaxed).oldValue
            if chunk >= chunks { return }
            call(chunk)
            done.wrappingAdd(1, ordering: .releasing)
        }
    }

    @inline(never)
    private func call(_ chunk: Int) {
        body.assumingMemoryBound(to: ((Int) -> Void).self).pointee(chunk)
    }

    /// Spins (yielding now and then) until every chunk has finished.
    func waitUntilDone() {
        var spins = 0
        while done.load(ordering: .acquiring) < chunks {
            spins += 1
            if spins & 1023 == 0 { sched_yield() }
        }
    }
}
