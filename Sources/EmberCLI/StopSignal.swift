import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SIGINT and SIGTERM turned into a request that the training loop reads after every step: the
/// run then checkpoints where it is and exits with 128 + the signal (130, 143). A second signal
/// ends the process at once with that status, after `cleanUp` (which removes the temporary file
/// of a checkpoint write it interrupts); the checkpoint on disk is then the last one written,
/// since every write is atomic.
final class StopSignal {
    /// The first signal received, 0 before any.
    private let received: Flag
    private let sources: [DispatchSourceSignal]

    private final class Flag: Sendable {
        let value = Atomic<Int32>(0)
    }

    init(cleanUp: @escaping @Sendable () -> Void) {
        let flag = Flag()
        received = flag
        sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if !Self.record(number, in: flag) {
                    FileHandle.standardError.write(Data("\nember: second \(Self.name(number)): stopping now, without a new checkpoint\n".utf8))
                    cleanUp()
                    _exit(128 + number)
                }
                FileHandle.standardError.write(Data("\nember: \(Self.name(number)) received: finishing the current step, then writing a checkpoint (press Ctrl-C again to stop at once)\n".utf8))
            }
            source.resume()
            return source
        }
    }

    /// Once a stop was requested the process is on its way out with 128 + the signal: a later
    /// signal is then ignored rather than left to the default action, which would end the process
    /// by the signal instead of with that status.
    deinit {
        for source in sources { source.cancel() }
        if signalNumber == nil {
            signal(SIGINT, SIG_DFL)
            signal(SIGTERM, SIG_DFL)
        }
    }

    /// Records `number` as the stop request; false when one was already recorded.
    private static func record(_ number: Int32, in flag: Flag) -> Bool {
        flag.value.compareExchange(expected: 0, desired: number, ordering: .sequentiallyConsistent).exchanged
    }

    /// What the first delivery of `number` does, without the signal (tests).
    func requestStop(_ number: Int32) { _ = Self.record(number, in: received) }

    /// The signal that asked for a stop, or `nil`.
    var signalNumber: Int32? {
        let n = received.value.load(ordering: .sequentiallyConsistent)
        return n == 0 ? nil : n
    }

    static func name(_ number: Int32) -> String { number == SIGINT ? "SIGINT" : number == SIGTERM ? "SIGTERM" : "signal \(number)" }
}
