import _EmberTestSupport
import Ember
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `mpirun` on the PATH, if any.
func mpirunPath() -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
        let candidate = "\(dir)/mpirun"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// `ember-distributed-check`, built beside the test bundle.
func distributedCheckExecutable() -> URL? { builtExecutable("EmberDistributedCheck") }

/// An executable of this package built beside the test bundle.
func builtExecutable(_ name: String) -> URL? {
    var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = folder.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        folder = folder.deletingLastPathComponent()
    }
    return nil
}

/// Runs `mpirun -n ranks --oversubscribe ember-distributed-check check`; kills it (and records a
/// hang) after `timeout` seconds. Returns the exit status and the combined output.
/// With `executable`, runs that program with `check` as its first argument instead; with
/// `ranks: nil`, runs it alone, without `mpirun`.
func runUnderMPI(_ check: String, _ arguments: [String] = [], ranks: Int? = 2, timeout: TimeInterval = 90,
                 executable: URL? = nil) throws -> (status: Int32, output: String, seconds: Double) {
    let process = Process()
    let program = (executable ?? distributedCheckExecutable()!).path
    if let ranks {
        process.executableURL = URL(fileURLWithPath: mpirunPath()!)
        process.arguments = ["-n", "\(ranks)", "--oversubscribe", "--bind-to", "none", program, check] + arguments
    } else {
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = [check] + arguments
    }
    var environment = ProcessInfo.processInfo.environment
    // CI containers run as root; Open MPI refuses that without these.
    environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    // Loopback only, no high-speed fabrics to probe.
    environment["OMPI_MCA_btl"] = "self,tcp"
    environment["OMPI_MCA_btl_tcp_if_include"] = "lo"
    environment["OMPI_MCA_oob_tcp_if_include"] = "lo"
    environment["OMPI_MCA_pml"] = "ob1"
    process.environment = environment
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("ember-mpi-\(UUID().uuidString).log")
    _ = FileManager.default.createFile(atPath: output.path, contents: nil)
    let handle = try FileHandle(forWritingTo: output)
    process.standardOutput = handle
    process.standardError = handle
    process.standardInput = FileHandle.nullDevice
    let start = Date()
    try process.run()
    while process.isRunning {
        if Date().timeIntervalSince(start) > timeout {
            process.terminate()
            Issue.record("mpirun \(check) did not finish within \(timeout) s (a hang)")
            break
        }
        usleep(20_000)
    }
    process.waitUntilExit()
    try handle.close()
    let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
    try? FileManager.default.removeItem(at: output)
    return (process.terminationStatus, text, Date().timeIntervalSince(start))
}

/// Whether the multi-process tests can run: the MPI trait, mpirun, and the check executable.
let canRunMPI = ProcessGroup.isMPIAvailable && mpirunPath() != nil && distributedCheckExecutable() != nil

@Suite("Distributed over mpirun -n 2", .serialized, .enabled(if: canRunMPI, "needs the MPI trait (swift test --traits MPI) and mpirun"))
struct DistributedMPITests {
    @Test("collectives move the right values between 2 processes")
    func collectives() throws {
        let run = try runUnderMPI("collectives")
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.components(separatedBy: "collectives sum").count - 1 == 2, "\(run.output)")
    }

    @Test("with verifiesCalls, ranks that broadcast different shapes, or wrap models with different gradient buckets, get a mismatch error")
    func mismatch() throws {
        let run = try runUnderMPI("mismatch")
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.components(separatedBy: "mismatch detected").count - 1 == 2, "\(run.output)")
        #expect(run.output.components(separatedBy: "bucket layout refused").count - 1 == 2, "\(run.output)")
    }

    @Test("2 ranks x 8 samples give the weights and running statistics of one process on 16 (within 1e-5), bucket all-reduces overlapping backward included")
    func mlpEquality() throws {
        let run = try runUnderMPI("mlp")
        print(run.output)
        #expect(run.status == 0, "\(run.output)")
        let lines = run.output.split(separator: "\n").filter {
            ($0.contains(": mlp ") || $0.contains(": mlp+dropout ") || $0.contains(": mlp+overlap ")) && $0.contains("world 2")
        }
        #expect(lines.count == 8, "\(run.output)")
        #expect(lines.allSatisfy { $0.hasSuffix(" ok") }, "\(run.output)")
    }

    @Test("rank 0 alone writes the checkpoint; resuming on 2 ranks is bitwise, on 1 within 1e-5")
    func checkpoint() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ember-mpi-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try runUnderMPI("checkpoint", [path])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("rank 0: checkpoint written by this rank: true; resumed on 2 ranks bitwise: true"), "\(run.output)")
        #expect(run.output.contains("rank 1: checkpoint written by this rank: false; resumed on 2 ranks bitwise: true"), "\(run.output)")
    }

    @Test("eval-mode forwards run no collective")
    func evalCollectives() throws {
        let run = try runUnderMPI("eval")
        #expect(run.status == 0, "\(run.output)")
        let lines = run.output.split(separator: "\n").filter {
            $0.contains(": eval collectives 0, pinned-eval collectives 0, training collectives 1 (noSync), 3 (with buffer broadcasts) ok")
        }
        #expect(lines.count == 2, "\(run.output)")
    }

    @Test("mpirun -n 2 ember train --distributed ends where one process ends (SGD, no dropout); rank 0 alone prints and writes",
          .enabled(if: builtExecutable("ember") != nil, "needs the ember executable built beside the tests"))
    func emberTrainDistributed() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ember-mpi-train-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let ember = builtExecutable("ember")!
        let settings = ["--epochs", "2", "--dropout", "0", "--optimizer", "sgd", "--batch-size", "63"]
        let one = try runUnderMPI("train", settings + ["--output", folder.appendingPathComponent("one").path], ranks: nil, timeout: 300, executable: ember)
        #expect(one.status == 0, "\(one.output)")
        let two = try runUnderMPI("train", settings + ["--distributed", "--output", folder.appendingPathComponent("two").path],
                                  timeout: 300, executable: ember)
        #expect(two.status == 0, "\(two.output)")
        #expect(two.output.contains("data-parallel over 2 ranks (MPI)"), "\(two.output)")
        #expect(two.output.components(separatedBy: "final validation accuracy").count - 1 == 1, "rank 0 alone prints: \(two.output)")
        let a = try Checkpoint.read(from: folder.appendingPathComponent("one/checkpoint.safetensors").path)
        let b = try Checkpoint.read(from: folder.appendingPathComponent("two/checkpoint.safetensors").path)
        #expect(a.epoch == 2 && b.epoch == 2 && a.step == b.step)
        #expect(a.model.keys == b.model.keys, "the same state-dict keys (no module. prefix)")
        var difference = 0.0
        for (key, t) in a.model where t.dtype.isFloatingPoint {
            guard let u = b.model[key] else { continue }
            difference = max(difference, DistributedScenarios.maxDifference(t, u))
        }
        #expect(difference < 1e-4, "max difference \(difference) between one process and 2 ranks")
    }

    @Test("a rank that fails makes the other exit with an error, not hang")
    func failingRank() throws {
        let run = try runUnderMPI("fail", timeout: 60)
        #expect(run.status != 0, "\(run.output)")
        #expect(run.output.contains("rank 1: failing on purpose"), "\(run.output)")
        #expect(!run.output.contains("returned without its peer"), "\(run.output)")
        #expect(run.seconds < 60)
    }
}
