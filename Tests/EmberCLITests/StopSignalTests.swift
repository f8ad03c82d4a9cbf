import Foundation
import Testing
@testable import EmberCLI

#if canImport(Glibc)
import Glibc
#endif

// `ember train`'s signal handling: a stop request, and what a later signal does.

/// The signal's disposition: 0 default, 1 ignored, else a handler (libdispatch may install its
/// own for a signal source, at a moment of its choosing).
private func disposition(_ number: Int32) -> Int {
    var action = sigaction()
    sigaction(number, nil, &action)
    return unsafeBitCast(action.__sigaction_handler.sa_handler, to: Int.self)
}

@Suite(.serialized) struct StopSignalTests {
@Test func aSignalIsAStopRequestAndOneAfterTheRunIsIgnored() {
    var stop: StopSignal? = StopSignal(cleanUp: {})
    #expect(stop?.signalNumber == nil)
    // (A signal sent from a test thread is not seen: libdispatch blocks it on the thread that
    // made the source, the CLI's main thread, so the request is recorded directly.)
    stop?.requestStop(SIGTERM)
    #expect(stop?.signalNumber == SIGTERM)
    // The run is over and the process is on its way out with 143: a later signal must not end it
    // by the default action (the census saw exit -2 instead of 130 when a second Ctrl-C came late),
    // so the signals are not left at the default action.
    stop = nil
    #expect(disposition(SIGTERM) != 0 && disposition(SIGINT) != 0)
    signal(SIGINT, SIG_DFL)
    signal(SIGTERM, SIG_DFL)
}

@Test func withoutASignalTheDefaultActionsComeBack() {
    var stop: StopSignal? = StopSignal(cleanUp: {})
    #expect(disposition(SIGINT) != 0)
    stop = nil
    _ = stop
    #expect(disposition(SIGINT) == 0)
}
}
