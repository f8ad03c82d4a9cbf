import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The `ember` executable that `swift build` / `swift test` built beside the test bundle, or the
/// one `EMBER_CLI` names (to run these tests against another build); `name` picks another product
/// built beside it (`ember-charlm`).
func emberExecutable(named name: String = "ember") throws -> URL {
    if name == "ember", let path = ProcessInfo.processInfo.environment["EMBER_CLI"] { return URL(fileURLWithPath: path) }
    var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = folder.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        folder = folder.deletingLastPathComponent()
    }
    struct Missing: Error, CustomStringConvertible {
        var name: String
        var description: String { "the \(name) executable was not found beside the test bundle; run `swift build` first" }
    }
    throw Missing(name: name)
}

/// What one `ember` run did.
struct CLIRun {
    var status: Int32
    var stdout: String
    var stderr: String

    /// stderr's non-empty lines.
    var errorLines: [String] { stderr.split(separator: "\n").map(String.init) }
    /// Whether the process trapped: a Swift runtime error, or a signal it does not handle.
    var crashed: Bool {
        stderr.contains("Fatal error") || stderr.contains("Backtrace") || (status > 128 && status != 130 && status != 143)
    }
}

/// Runs `ember` with `arguments` in `directory`; when `marker` is given, sends `signal` once
/// stdout contains that text. A run still going after `timeout` seconds is killed and recorded
/// as a failure (a hang).
func runEmber(_ arguments: [String], in directory: URL, interruptAfter marker: String? = nil, signal: Int32 = SIGINT,
              timeout: TimeInterval = 300, executable: String = "ember") throws -> CLIRun {
    let process = Process()
    process.executableURL = try emberExecutable(named: executable)
    process.arguments = arguments
    process.currentDirectoryURL = directory
    let outPipe = Pipe(), errPipe = Pipe()
    process.standardOutput = outPipe
    process.standardError = errPipe
    process.standardInput = FileHandle.nullDevice
    let output = OutputCollector()
    outPipe.fileHandleForReading.readabilityHandler = { output.append($0.availableData, error: false) }
    errPipe.fileHandleForReading.readabilityHandler = { output.append($0.availableData, error: true) }
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    var signalled = false
    while process.isRunning {
        if let marker, !signalled, output.stdoutText.contains(marker) {
            kill(process.processIdentifier, signal)
            signalled = true
        }
        if Date() > deadline {
            process.terminate()
            Issue.record("ember \(arguments.joined(separator: " ")) did not finish within \(timeout) s")
            break
        }
        usleep(2_000)
    }
    process.waitUntilExit()
    outPipe.fileHandleForReading.readabilityHandler = nil
    errPipe.fileHandleForReading.readabilityHandler = nil
    output.append(outPipe.fileHandleForReading.readDataToEndOfFile(), error: false)
    output.append(errPipe.fileHandleForReading.readDataToEndOfFile(), error: true)
    return CLIRun(status: process.terminationStatus, stdout: output.stdoutText, stderr: output.stderrText)
}

/// Collects a child's output from the pipes' handler threads.
private final class OutputCollector: Sendable {
    private let buffers = Mutex((out: Data(), err: Data()))

    func append(_ data: Data, error: Bool) {
        buffers.withLock { if error { $0.err.append(data) } else { $0.out.append(data) } }
    }
    var stdoutText: String { buffers.withLock { String(decoding: $0.out, as: UTF8.self) } }
    var stderrText: String { buffers.withLock { String(decoding: $0.err, as: UTF8.self) } }
}

/// A fresh temporary folder; the caller removes it.
func makeScratchFolder(_ name: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("ember-cli-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
