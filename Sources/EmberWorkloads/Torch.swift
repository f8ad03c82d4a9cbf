import Foundation

/// Runs `Tools/bench/torch_workloads.py` with Foundation's `Process` and decodes its JSON.
struct TorchRunner {
    /// The script; found next to this source file's package root unless given.
    var script: String
    var python: String = "python3"

    static func defaultScript() -> String {
        // Sources/EmberWorkloads/Torch.swift -> repository root.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let candidate = root.appendingPathComponent("Tools/bench/torch_workloads.py").path
        if FileManager.default.fileExists(atPath: candidate) { return candidate }
        return FileManager.default.currentDirectoryPath + "/Tools/bench/torch_workloads.py"
    }

    /// Whether `import torch` works.
    func isAvailable() -> Bool {
        (try? run(["-c", "import torch"], script: false)) != nil
    }

    struct MemoryRun: Codable {
        var torch: String?
        var peak_rss_bytes: Int
        var seconds: Double
        var final_loss: Double
    }

    /// Starts the script in `--serve` mode with `threads` threads.
    func server(threads: Int, sizes: [Int]) throws -> TorchServer {
        try TorchServer(python: python, script: script, threads: threads, sizes: sizes)
    }

    func memoryRun(samples: Int, epochs: Int) throws -> MemoryRun {
        let data = try run(["--memory-run", "--samples", "\(samples)", "--epochs", "\(epochs)"])
        return try JSONDecoder().decode(MemoryRun.self, from: data)
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs python with `arguments` (after the script unless `script` is false); returns stdout.
    /// Stderr goes to a temporary file (so a chatty child can never block on a full pipe) and is
    /// quoted in the error when the child fails.
    func run(_ arguments: [String], script useScript: Bool = true) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python] + (useScript ? [script] : []) + arguments
        let errURL = FileManager.default.temporaryDirectory
            .appendingPathComponent("ember-workloads-\(ProcessInfo.processInfo.processIdentifier)-stderr.txt")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errURL) }
        let errHandle = try FileHandle(forWritingTo: errURL)
        let out = Pipe()
        process.standardOutput = out
        process.standardError = errHandle
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try? errHandle.close()
        guard process.terminationStatus == 0 else {
            let message = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
            throw Failure(description: "\(python) \(arguments.joined(separator: " ")) exited with status \(process.terminationStatus): \(message.suffix(2000))")
        }
        return data
    }
}

/// A running `torch_workloads.py --serve`: times one PyTorch workload per request, so the harness
/// can alternate Ember and PyTorch samples of each workload (both see the same machine load).
final class TorchServer {
    let process = Process()
    let input = Pipe(), output = Pipe()
    private var buffer = Data()
    /// PyTorch's version, from the server's greeting.
    private(set) var version = ""

    init(python: String, script: String, threads: Int, sizes: [Int]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, script, "--serve", "--threads", "\(threads)",
                             "--sizes", sizes.map(String.init).joined(separator: ",")]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        struct Greeting: Decodable { var torch: String }
        version = try JSONDecoder().decode(Greeting.self, from: try readLine()).torch
    }

    deinit {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    /// Times workload `key` for about `budget` seconds.
    func measure(_ key: String, budget: Double) throws -> Timing {
        let request = #"{"key": "\#(key)", "budget": \#(budget)}"# + "\n"
        input.fileHandleForWriting.write(request.data(using: .utf8)!)
        struct Reply: Decodable {
            var iterations: Int?
            var seconds: [Double]?
            var error: String?
        }
        let reply = try JSONDecoder().decode(Reply.self, from: try readLine())
        guard let iterations = reply.iterations, let seconds = reply.seconds else {
            throw TorchRunner.Failure(description: "PyTorch \(key): \(reply.error ?? "no reply")")
        }
        return Timing(iterations: iterations, seconds: seconds)
    }

    /// The next line the server printed.
    private func readLine() throws -> Data {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[buffer.startIndex..<newline]
                buffer.removeSubrange(buffer.startIndex...newline)
                return Data(line)
            }
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { throw TorchRunner.Failure(description: "the PyTorch script exited (status \(process.isRunning ? "running" : "\(process.terminationStatus)"))") }
            buffer.append(chunk)
        }
    }
}
