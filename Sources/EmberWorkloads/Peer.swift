import Foundation

/// A framework timed beside Ember: a Python script that speaks `Tools/bench/peer_protocol.py`
/// (`torch_workloads.py`, `jax_workloads.py`), started with Foundation's `Process`.
struct Peer {
    /// The name shown in tables and keyed in `RunResults` ("PyTorch", "JAX").
    var name: String
    /// The Python module whose import decides whether the peer can run ("torch", "jax").
    var module: String
    /// The script's path.
    var script: String
    var python = "python3"

    static let pytorch = Peer(name: "PyTorch", module: "torch", script: benchScript("torch_workloads.py"))
    static let jax = Peer(name: "JAX", module: "jax", script: benchScript("jax_workloads.py"))

    /// `Tools/bench/<file>`, found from this source file's package root, else from the current
    /// directory.
    static func benchScript(_ file: String) -> String {
        // Sources/EmberWorkloads/Peer.swift -> repository root.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let candidate = root.appendingPathComponent("Tools/bench/" + file).path
        if FileManager.default.fileExists(atPath: candidate) { return candidate }
        return FileManager.default.currentDirectoryPath + "/Tools/bench/" + file
    }

    /// Whether `python3 -c 'import <module>'` works.
    func isAvailable() -> Bool {
        (try? runProcess(env, [python, "-c", "import \(module)"])) != nil
    }

    /// Starts the script in `--serve` mode with `threads` threads.
    func server(threads: Int, sizes: [Int]) throws -> PeerServer {
        try PeerServer(peer: self, arguments: [python, script, "--serve", "--threads", "\(threads)",
                                               "--sizes", sizes.map(String.init).joined(separator: ",")])
    }

    /// Trains `model` in a fresh Python process and returns its report.
    func memoryRun(model: MemoryModel, samples: Int, epochs: Int) throws -> MemoryResult {
        let data = try runProcess(env, [python, script, "--memory-run", "--model", model.rawValue,
                                        "--samples", "\(samples)", "--epochs", "\(epochs)"])
        return try JSONDecoder().decode(MemoryResult.self, from: data)
    }

    private var env: URL { URL(fileURLWithPath: "/usr/bin/env") }
}

/// A child process, a peer or a server that failed; the description says how.
struct PeerFailure: Error, CustomStringConvertible {
    var description: String
}

/// Runs `executable` with `arguments` and returns its stdout. Stderr goes to a temporary file (so
/// a chatty child can never block on a full pipe) and is quoted in the error when the child fails.
func runProcess(_ executable: URL, _ arguments: [String]) throws -> Data {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
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
        throw PeerFailure(description: "\(arguments.joined(separator: " ")) exited with status \(process.terminationStatus): \(message.suffix(2000))")
    }
    return data
}

/// What a peer answered to one timing request.
enum PeerReply: Equatable {
    case timing(Timing)
    /// The framework cannot run this workload; the reason is printed once.
    case skipped(String)

    /// Decodes one reply line of the protocol (`peer_protocol.py`); an `error` reply, or one with
    /// neither samples nor a reason, throws.
    init(line: Data, framework: String) throws {
        struct Wire: Decodable {
            var key: String?
            var iterations: Int?
            var seconds: [Double]?
            var skipped: String?
            var error: String?
        }
        let wire = try JSONDecoder().decode(Wire.self, from: line)
        if let reason = wire.skipped {
            self = .skipped(reason)
        } else if let iterations = wire.iterations, let seconds = wire.seconds, wire.error == nil {
            self = .timing(Timing(iterations: iterations, seconds: seconds))
        } else {
            throw PeerFailure(description: "\(framework) \(wire.key ?? "?"): \(wire.error ?? "no samples in the reply")")
        }
    }
}

/// The greeting a server prints first: its framework and version.
struct PeerGreeting: Decodable, Equatable {
    var framework: String
    var version: String
}

/// A running peer script in `--serve` mode: times one workload per request, so the harness can
/// alternate Ember's and the peers' samples of each workload (all see the same machine load).
/// Stderr is inherited, so a server's warnings show in the run's log.
final class PeerServer {
    let peer: Peer
    private let process = Process()
    private let input = Pipe(), output = Pipe()
    private var buffer = Data()
    /// The framework's version, from the greeting.
    private(set) var version = ""

    init(peer: Peer, arguments: [String]) throws {
        self.peer = peer
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        version = try JSONDecoder().decode(PeerGreeting.self, from: try readLine()).version
    }

    deinit {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    /// Times workload `key` for about `budget` seconds.
    func measure(_ key: String, budget: Double) throws -> PeerReply {
        let request = #"{"key": "\#(key)", "budget": \#(budget)}"# + "\n"
        input.fileHandleForWriting.write(request.data(using: .utf8)!)
        return try PeerReply(line: try readLine(), framework: peer.name)
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
            if chunk.isEmpty {
                throw PeerFailure(description: "the \(peer.name) script exited (status \(process.isRunning ? "running" : "\(process.terminationStatus)"))")
            }
            buffer.append(chunk)
        }
    }
}
