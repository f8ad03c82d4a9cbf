import Dispatch
import Foundation
import Synchronization

/// A bounded, ordered hand-off from one producer thread to one consumer: the producer computes
/// items `0..<count` in order with `produce` and stays at most `capacity` items ahead of the
/// consumer; ``take()`` returns them in order.
///
/// The producer is a dedicated thread, not a task: it blocks while the buffer is full, and
/// blocking a thread of Swift's cooperative pool can starve (or deadlock) other tasks, such as
/// tests running in parallel, that are themselves waiting for it.
///
/// Thread safety: the buffer and the flags sit behind one `Mutex`; two semaphores count the free
/// slots and the ready items (the classic bounded buffer), a third marks the producer's exit.
/// Cancelling (``cancel()``, called when the iterator that owns this is dropped) wakes a producer
/// waiting for a slot, which then exits: stopping early never leaves a thread blocked forever.
package final class PrefetchChannel<Item: Sendable>: Sendable {
    private struct State {
        var ready: [Item] = []
        var head = 0
        var cancelled = false
        var exited = false
    }

    private let state = Mutex(State())
    /// Free buffer slots. Created at 0 and signalled up to `capacity` (libdispatch traps when a
    /// semaphore is destroyed with a value below the one it was created with).
    private let free = DispatchSemaphore(value: 0)
    /// Items ready for the consumer.
    private let filled = DispatchSemaphore(value: 0)
    /// Signalled once when the producer thread returns.
    private let done = DispatchSemaphore(value: 0)

    /// Starts the producer thread for items `0..<count`.
    init(count: Int, capacity: Int, produce: @escaping @Sendable (Int) -> Item) {
        precondition(capacity >= 1, "PrefetchChannel: capacity must be at least 1")
        for _ in 0..<capacity { free.signal() }
        let thread = Thread { [self] in
            self.run(count: count, produce: produce)
        }
        thread.name = "Ember.DataLoader.prefetch"
        thread.start()
    }

    private func run(count: Int, produce: @Sendable (Int) -> Item) {
        for k in 0..<count {
            free.wait()
            if state.withLock({ $0.cancelled }) { break }
            let item = produce(k)
            state.withLock { $0.ready.append(item) }
            filled.signal()
        }
        state.withLock { $0.exited = true }
        done.signal()
    }

    /// The next item in order, waiting for the producer if it is not ready yet. Call at most
    /// `count` times.
    func take() -> Item {
        filled.wait()
        let item = state.withLock { s in
            let item = s.ready[s.head]
            s.head += 1
            if s.head == s.ready.count {  // drop consumed items so the buffer stays small
                s.ready.removeAll(keepingCapacity: true)
                s.head = 0
            }
            return item
        }
        free.signal()
        return item
    }

    /// Asks the producer to stop after the item it is computing (if any) and wakes it if it waits
    /// for a free slot.
    func cancel() {
        state.withLock { $0.cancelled = true }
        free.signal()
    }

    /// The number of items ready and not yet taken.
    package var readyCount: Int { state.withLock { $0.ready.count - $0.head } }

    /// Whether the producer thread has returned.
    package var producerExited: Bool { state.withLock { $0.exited } }

    /// Waits up to `seconds` for the producer thread to return; `true` if it has.
    package func waitForProducerExit(seconds: Double) -> Bool {
        if producerExited { return true }
        let ok = done.wait(timeout: .now() + seconds) == .success
        if ok { done.signal() }  // keep it signalled for later callers
        return ok
    }
}

/// Owns a ``PrefetchChannel`` for one iterator: when the iterator (and every copy of it) is gone,
/// the producer is cancelled.
final class PrefetchHandle<Item: Sendable> {
    let channel: PrefetchChannel<Item>

    init(_ channel: PrefetchChannel<Item>) { self.channel = channel }

    deinit { channel.cancel() }
}
