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

    struct Timings: Decodable {
        var torch: String
        var threads: Int
        var results: [String: Timing]
    }

    struct MemoryRun: Codable {
        var torch: String?
        var peak_rss_bytes: Int
        var seconds: Double
        var final_loss: Double
    }

    func timings(threads: Int, budget: Double, groups: [String], sizes: [Int]) throws -> Timings {
        let data = try run(["--threads", "\(threads)", "--budget", "\(budget)", "--only", groups.joined(separator: ","),
                            "--sizes", sizes.map(String.init).joined(separator: ",")])
        return try JSONDecoder().decode(Timings.self, from: data)
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
