import Foundation
import Testing

/// The `ember` executable beside the test binary (`swift build` and `swift test` build both into
/// the same folder).
func emberExecutable() -> URL? {
    let folder = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for candidate in [folder, folder.deletingLastPathComponent(), folder.deletingLastPathComponent().deletingLastPathComponent()] {
        let url = candidate.appendingPathComponent("ember")
        if FileManager.default.isExecutableFile(atPath: url.path) { return url }
    }
    return nil
}

/// Runs `ember` with `arguments`; returns its exit status and standard error.
func runEmber(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
    let executable = try #require(emberExecutable(), "the ember executable is not built next to the tests; run swift build first")
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.currentDirectoryURL = FileManager.default.temporaryDirectory
    let errors = Pipe()
    process.standardError = errors
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    let data = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// The CLI turns every user-facing error into one line on standard error and a non-zero exit
/// status, never a crash.
@Suite struct CLIExitCodeTests {
    @Test func outOfRangeEpochsExitWithStatusOneAndOneLine() throws {
        let (status, stderr) = try runEmber(["train", "--epochs", "0"])
        #expect(status == 1)
        #expect(stderr == "ember: error: --epochs must be between 1 and 100000, got 0\n")
    }

    @Test func missingDataFileExitsWithStatusOne() throws {
        let (status, stderr) = try runEmber(["train", "--data", "/nonexistent/ember-test.csv"])
        #expect(status == 1)
        #expect(stderr == "ember: error: data file '/nonexistent/ember-test.csv' does not exist\n")
    }

    @Test func invalidOptionIsAUsageError() throws {
        let (status, stderr) = try runEmber(["example", "--steps", "0"])
        #expect(status == 64, "ArgumentParser's validation errors exit with EX_USAGE")
        #expect(stderr.contains("--steps must be between 1 and 10000, got 0"))
    }
}
