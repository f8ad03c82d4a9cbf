import Foundation
import Testing
@testable import EmberWorkloads

// The harness's side of Tools/bench/peer_protocol.py: reply lines, greetings, an absent peer.

private func line(_ text: String) -> Data { Data(text.utf8) }

@Test func timingReplyDecodes() throws {
    let reply = try PeerReply(line: line(#"{"key": "sgemm.64", "iterations": 3, "seconds": [0.5, 0.25]}"#), framework: "JAX")
    #expect(reply == .timing(Timing(iterations: 3, seconds: [0.5, 0.25])))
}

@Test func skippedReplyCarriesItsReason() throws {
    let reply = try PeerReply(line: line(#"{"key": "seed.forward_eval_grad", "skipped": "no tape"}"#), framework: "JAX")
    #expect(reply == .skipped("no tape"))
}

@Test func errorReplyThrowsWithFrameworkKeyAndMessage() {
    let error = #expect(throws: PeerFailure.self) {
        try PeerReply(line: line(#"{"key": "cnn.lenet_eval_b64", "error": "KeyError('x')"}"#), framework: "PyTorch")
    }
    #expect(error?.description == "PyTorch cnn.lenet_eval_b64: KeyError('x')")
}

@Test func replyWithoutSamplesThrows() {
    #expect(throws: PeerFailure.self) { try PeerReply(line: line(#"{"key": "k", "iterations": 3}"#), framework: "JAX") }
    #expect(throws: (any Error).self) { try PeerReply(line: line("not json"), framework: "JAX") }
}

@Test func greetingDecodes() throws {
    let greeting = try JSONDecoder().decode(PeerGreeting.self, from: line(#"{"framework": "JAX", "version": "0.10.2"}"#))
    #expect(greeting == PeerGreeting(framework: "JAX", version: "0.10.2"))
}

@Test func memoryReportDecodesWithAndWithoutTheImportPeak() throws {
    let peer = try JSONDecoder().decode(MemoryResult.self, from: line(
        #"{"version": "2.13.0", "peak_rss_bytes": 300, "import_rss_bytes": 200, "seconds": 1.5, "final_loss": 2.3}"#))
    #expect(peer.import_rss_bytes == 200 && peer.version == "2.13.0")
    let ember = try JSONDecoder().decode(MemoryResult.self, from: line(#"{"peak_rss_bytes": 30, "seconds": 1, "final_loss": 2}"#))
    #expect(ember.import_rss_bytes == nil && ember.peak_rss_bytes == 30)
}

@Test func aPeerPythonCannotImportIsUnavailable() {
    let peer = Peer(name: "Nothing", module: "ember_no_such_module_\(UInt32.random(in: 0...UInt32.max))", script: "")
    #expect(!peer.isAvailable())
}

@Test func optionsLeaveOutPeersAndPickTheMemoryModel() {
    let options = Options(["--no-jax", "--memory-run", "--model", "lenet", "--lenet-samples", "640"])
    #expect(options.excludedPeers == ["jax"])
    #expect(options.memoryRun && options.memoryModel == .lenet && options.lenetSamples == 640)
    #expect(Options([]).excludedPeers.isEmpty)
}
