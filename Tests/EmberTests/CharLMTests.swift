import Foundation
import Testing

/// The character-level language model example (`ember-charlm`, Examples/CharLM): it trains, its
/// eval-mode sample is reproducible, and bad options fail in one line.
@Suite(.serialized) struct CharLMTests {
    private let quick = ["--steps", "3", "--context", "16", "--width", "16", "--heads", "2", "--layers", "1", "--length", "40"]

    @Test func trainsAndSamplesReproduciblyInEvalMode() throws {
        let dir = try makeScratchFolder("charlm")
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try runEmber(quick, in: dir, executable: "ember-charlm")
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("step     3") && first.stdout.contains("--- sample (eval mode"), "\(first.stdout)")
        let second = try runEmber(quick, in: dir, executable: "ember-charlm")
        let sample = { (run: CLIRun) in run.stdout.components(separatedBy: "--- sample").last ?? "" }
        #expect(sample(first) == sample(second), "same seeds, same text")
        #expect(sample(first).contains("And God said"))
        let other = try runEmber(quick + ["--sample-seed", "7"], in: dir, executable: "ember-charlm")
        #expect(sample(first) != sample(other), "another sampling seed, another text")
    }

    @Test(arguments: [
        ["--temperature", "0"], ["--top-k=-1"], ["--width", "30", "--heads", "4"], ["--prompt", "§"],
        ["--text", "missing.txt"], ["--context", "1"], ["--width", "4096", "--heads", "4", "--layers", "64"],
        ["--batch-size", "60000", "--context", "4096"],
    ])
    func badOptionsFailInOneLine(arguments: [String]) throws {
        let dir = try makeScratchFolder("charlm")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try runEmber(quick + arguments, in: dir, executable: "ember-charlm")
        #expect(run.status != 0 && !run.crashed, "\(arguments): \(run.stderr)")
        #expect(run.stderr.hasPrefix("ember-charlm: error: ") && run.errorLines.count == 1, "\(arguments): \(run.stderr)")
    }
}
