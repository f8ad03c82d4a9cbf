import Ember
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `ember` run as a user runs it, with ordinary and hostile input: it never traps, fails with one
/// line on stderr and a non-zero status, and never replaces good work with worse.
@Suite(.serialized) struct CLIRobustnessTests {
    private func expectOneLineFailure(_ run: CLIRun, mentioning text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(run.status == 1, "status \(run.status); stderr: \(run.stderr)", sourceLocation: sourceLocation)
        #expect(!run.crashed, "crashed: \(run.stderr)", sourceLocation: sourceLocation)
        #expect(run.errorLines.count == 1, "expected one line on stderr, got: \(run.stderr)", sourceLocation: sourceLocation)
        #expect(run.stderr.hasPrefix("ember: error: "), "stderr: \(run.stderr)", sourceLocation: sourceLocation)
        #expect(run.stderr.contains(text), "stderr does not mention '\(text)': \(run.stderr)", sourceLocation: sourceLocation)
    }

    private func checkpointBytes(_ folder: URL) throws -> Data {
        try Data(contentsOf: folder.appendingPathComponent("checkpoint.safetensors"))
    }

    /// 1,438 training and 359 validation samples: batch 2 and 358 leave a final validation batch of
    /// one sample, which the forgotten-eval copy (training mode) used to feed to BatchNorm.
    @Test(arguments: [2, 358])
    func batchSizesThatLeaveOneSampleTrainToTheEnd(batchSize: Int) throws {
        let dir = try makeScratchFolder("batch")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try runEmber(["train", "--epochs", "1", "--batch-size", String(batchSize), "--output", "out"], in: dir)
        #expect(run.status == 0 && !run.crashed, "\(run.stderr)")
        #expect(run.stdout.contains("final validation accuracy"))
        #expect(run.stdout.contains("(eval forgotten: ") && !run.stdout.contains("(eval forgotten: n/a)"))
    }

    @Test func batchSizeOneWithBatchNormIsRefusedUpFront() throws {
        let dir = try makeScratchFolder("batch1")
        defer { try? FileManager.default.removeItem(at: dir) }
        expectOneLineFailure(try runEmber(["train", "--batch-size", "1"], in: dir), mentioning: "BatchNorm1d")
    }

    /// A diverging run keeps the good checkpoint already in the folder: first it refuses to
    /// replace a different run's checkpoint, then (with --overwrite) it stops at the NaN loss
    /// before any checkpoint of its own.
    @Test func aDivergingRunNeverReplacesAGoodCheckpoint() throws {
        let dir = try makeScratchFolder("diverge")
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try runEmber(["train", "--epochs", "1", "--output", "out"], in: dir).status == 0)
        let good = try checkpointBytes(dir.appendingPathComponent("out"))
        let bad = ["train", "--epochs", "1", "--optimizer", "sgd", "--learning-rate", "100", "--output", "out"]
        expectOneLineFailure(try runEmber(bad, in: dir), mentioning: "--overwrite")
        let diverged = try runEmber(bad + ["--overwrite"], in: dir)
        expectOneLineFailure(diverged, mentioning: "diverged at epoch 1")
        #expect(diverged.stderr.contains("nan"))
        #expect(try checkpointBytes(dir.appendingPathComponent("out")) == good)
    }

    /// SIGINT / SIGTERM mid-run: a checkpoint, exit 130 / 143, and `--resume` ends byte for byte
    /// where an uninterrupted run ends.
    @Test(arguments: [SIGINT, SIGTERM])
    func interruptedAndResumedRunEqualsAnUninterruptedOne(signal: Int32) throws {
        let dir = try makeScratchFolder("resume")
        defer { try? FileManager.default.removeItem(at: dir) }
        let settings = ["--epochs", "6", "--batch-size", "32"]
        #expect(try runEmber(["train"] + settings + ["--output", "straight"], in: dir).status == 0)
        let stopped = try runEmber(["train"] + settings + ["--output", "stopped"], in: dir, interruptAfter: "epoch   1/6", signal: signal)
        #expect(stopped.status == 128 + signal, "status \(stopped.status): \(stopped.stderr)")
        #expect(stopped.stdout.contains("continue with: ember train --resume stopped"))
        let partial = try Checkpoint.read(from: dir.appendingPathComponent("stopped/checkpoint.safetensors").path)
        #expect(partial.epoch < 6)
        let resumed = try runEmber(["train", "--resume", "stopped"], in: dir)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try checkpointBytes(dir.appendingPathComponent("straight")) == checkpointBytes(dir.appendingPathComponent("stopped")))
        let again = try runEmber(["train", "--resume", "stopped"], in: dir)
        #expect(again.status == 0 && again.stdout.contains("nothing to resume"))
    }

    @Test func resumeTakesItsSettingsFromTheCheckpoint() throws {
        let dir = try makeScratchFolder("resume-options")
        defer { try? FileManager.default.removeItem(at: dir) }
        expectOneLineFailure(try runEmber(["train", "--resume", "nowhere"], in: dir), mentioning: "no checkpoint.safetensors")
        #expect(try runEmber(["train", "--epochs", "1", "--output", "out"], in: dir).status == 0)
        expectOneLineFailure(try runEmber(["train", "--resume", "out", "--epochs", "3"], in: dir), mentioning: "leave out --epochs")
    }

    /// Temporary files of a killed writer (its process is gone) are removed when a run starts;
    /// a run leaves none of its own.
    @Test func leftoverTemporaryFilesAreRemoved() throws {
        let dir = try makeScratchFolder("leftovers")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        var dead: Int32 = 4_000_000
        while kill(dead, 0) == 0 { dead -= 1 }
        let leftover = out.appendingPathComponent(".checkpoint.safetensors\(AtomicFile.temporaryMarker)\(dead)-x1")
        try Data([1, 2, 3]).write(to: leftover)
        let run = try runEmber(["train", "--epochs", "1", "--output", "out"], in: dir)
        #expect(run.status == 0)
        #expect(run.stdout.contains("removed 1 temporary file"))
        let names = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        #expect(names == ["checkpoint.safetensors", "report.html"])
    }

    /// Settings read back from a checkpoint are range-checked: a tampered file is an error line.
    @Test(arguments: [("hidden", "-1", "--hidden"), ("validationFraction", "2", "--validation-fraction"),
                      ("classes", "0", "class count"), ("inputs", "100000000000", "of memory to train"),
                      ("dropout", "1.5", "--dropout"), ("epochs", "0", "--epochs"), ("model", "\"vit\"", "run settings are not valid")])
    func tamperedCheckpointSettingsAreErrors(field: String, value: String, mentions: String) throws {
        let dir = try makeScratchFolder("tampered")
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try runEmber(["train", "--epochs", "1", "--output", "out"], in: dir).status == 0)
        let path = dir.appendingPathComponent("out/checkpoint.safetensors").path
        var checkpoint = try Checkpoint.read(from: path)
        var settings = try JSONSerialization.jsonObject(with: Data(checkpoint.metadata["settings"]!.utf8)) as! [String: Any]
        settings[field] = try JSONSerialization.jsonObject(with: Data(value.utf8), options: .fragmentsAllowed)
        checkpoint.metadata["settings"] = String(decoding: try JSONSerialization.data(withJSONObject: settings), as: UTF8.self)
        try checkpoint.write(to: path)
        for command in [["evaluate", "--checkpoint", "out/checkpoint.safetensors"], ["summary", "--checkpoint", "out/checkpoint.safetensors"],
                        ["train", "--resume", "out"]] {
            expectOneLineFailure(try runEmber(command, in: dir), mentioning: mentions)
        }
    }

    /// A checkpoint whose settings name another valid model than its weights fit (an MLP's weights
    /// under `"model": "cnn"`): evaluating or summarising it is one error line naming the keys.
    @Test func checkpointWhoseWeightsDoNotFitItsModelIsAnError() throws {
        let dir = try makeScratchFolder("mismatch")
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try runEmber(["train", "--epochs", "1", "--output", "out"], in: dir).status == 0)
        let path = dir.appendingPathComponent("out/checkpoint.safetensors").path
        var checkpoint = try Checkpoint.read(from: path)
        var settings = try JSONSerialization.jsonObject(with: Data(checkpoint.metadata["settings"]!.utf8)) as! [String: Any]
        settings["model"] = "cnn"
        checkpoint.metadata["settings"] = String(decoding: try JSONSerialization.data(withJSONObject: settings), as: UTF8.self)
        try checkpoint.write(to: path)
        for command in [["evaluate", "--checkpoint", "out/checkpoint.safetensors"], ["summary", "--checkpoint", "out/checkpoint.safetensors"]] {
            expectOneLineFailure(try runEmber(command, in: dir), mentioning: "Missing key(s) in state_dict: \"conv1.weight\"")
        }
    }

    /// A checkpoint whose settings lack a training field (written by an earlier version, or
    /// edited) evaluates but cannot be resumed: an error line, not a trap.
    @Test(arguments: ["batchSize", "learningRate", "optimizer", "schedule", "epochs"])
    func resumingSettingsWithoutATrainingFieldIsAnError(field: String) throws {
        let dir = try makeScratchFolder("no-field")
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try runEmber(["train", "--epochs", "1", "--output", "out"], in: dir).status == 0)
        let path = dir.appendingPathComponent("out/checkpoint.safetensors").path
        var checkpoint = try Checkpoint.read(from: path)
        var settings = try JSONSerialization.jsonObject(with: Data(checkpoint.metadata["settings"]!.utf8)) as! [String: Any]
        settings.removeValue(forKey: field)
        checkpoint.metadata["settings"] = String(decoding: try JSONSerialization.data(withJSONObject: settings), as: UTF8.self)
        try checkpoint.write(to: path)
        expectOneLineFailure(try runEmber(["train", "--resume", "out"], in: dir), mentioning: "cannot be resumed")
        #expect(try runEmber(["evaluate", "--checkpoint", "out/checkpoint.safetensors"], in: dir).status == 0)
    }

    /// `ember evaluate` uses the validation samples stored in the checkpoint, not a re-drawn split:
    /// with the stored seed changed (which would re-draw another split) it still reports the run's
    /// final validation accuracy; a stored split that does not fit the data is an error line.
    @Test func evaluateUsesTheStoredValidationSplit() throws {
        let dir = try makeScratchFolder("split")
        defer { try? FileManager.default.removeItem(at: dir) }
        let trained = try runEmber(["train", "--epochs", "1", "--output", "out"], in: dir)
        #expect(trained.status == 0)
        let final = trained.stdout.split(separator: "\n").first { $0.hasPrefix("final validation accuracy") }.map(String.init) ?? ""
        let accuracy = final.split(separator: " ").dropFirst(3).first.map(String.init) ?? "missing"
        let path = dir.appendingPathComponent("out/checkpoint.safetensors").path
        var checkpoint = try Checkpoint.read(from: path)
        let original = checkpoint
        var settings = try JSONSerialization.jsonObject(with: Data(checkpoint.metadata["settings"]!.utf8)) as! [String: Any]
        settings["seed"] = 12345
        checkpoint.metadata["settings"] = String(decoding: try JSONSerialization.data(withJSONObject: settings), as: UTF8.self)
        try checkpoint.write(to: path)
        let evaluated = try runEmber(["evaluate", "--checkpoint", "out/checkpoint.safetensors"], in: dir)
        #expect(evaluated.status == 0)
        #expect(evaluated.stdout.contains("validation accuracy \(accuracy) (359 samples)"), "\(final) / \(evaluated.stdout.prefix(200))")

        for (split, message) in [("{\"samples\":1797,\"validation\":[0,0]}", "invalid"), ("{\"samples\":1797,\"validation\":[1797]}", "invalid"),
                                 ("{\"samples\":10,\"validation\":[1]}", "now has 1797"), ("[1,2]", "not readable")] {
            var tampered = original
            tampered.metadata["split"] = split
            try tampered.write(to: path)
            expectOneLineFailure(try runEmber(["evaluate", "--checkpoint", "out/checkpoint.safetensors"], in: dir), mentioning: message)
        }
    }

    @Test func aHugeModelIsRefusedWithTheMemoryItNeeds() throws {
        let dir = try makeScratchFolder("huge")
        defer { try? FileManager.default.removeItem(at: dir) }
        expectOneLineFailure(try runEmber(["train", "--hidden", "100000000"], in: dir), mentioning: "GB")
        expectOneLineFailure(try runEmber(["train", "--model", "lstm", "--hidden", "3000000000"], in: dir), mentioning: "GB")
    }

    /// The class count comes from --classes or the labels, within bounds, with the offending sample.
    @Test func classCountsAreCheckedAgainstTheLabels() throws {
        let dir = try makeScratchFolder("classes")
        defer { try? FileManager.default.removeItem(at: dir) }
        var csv = "a,b,label\n"
        for i in 0..<40 { csv += "\(i % 7),\(i % 3),\(i == 17 ? 9999 : i % 4)\n" }
        try csv.write(to: dir.appendingPathComponent("data.csv"), atomically: true, encoding: .utf8)
        expectOneLineFailure(try runEmber(["train", "--data", "data.csv", "--epochs", "1"], in: dir), mentioning: "--classes 10000")
        expectOneLineFailure(try runEmber(["train", "--data", "data.csv", "--epochs", "1", "--classes", "5"], in: dir),
                             mentioning: "label 9999 of sample 17")
        expectOneLineFailure(try runEmber(["train", "--data", "data.csv", "--classes", "0"], in: dir), mentioning: "--classes")
        let ok = try runEmber(["train", "--data", "data.csv", "--epochs", "1", "--classes", "10000", "--batch-size", "8", "--output", "o"], in: dir)
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(!ok.stdout.contains("confusion matrix"))
    }

    /// A little-endian .npy file of float32 values (version 1.0).
    private func npy(_ values: [Float], shape: [Int]) -> Data {
        let dims = shape.count == 1 ? "\(shape[0])," : shape.map(String.init).joined(separator: ", ")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count % 256), UInt8(header.utf8.count / 256)])
        data.append(Data(header.utf8))
        values.withUnsafeBytes { data.append(contentsOf: $0) }
        return data
    }

    /// Labels must be class indices: a float label file with 0.5 (or NaN) is refused with its
    /// position; NaN features are refused unless --allow-non-finite.
    @Test func nonIntegerLabelsAndNonFiniteFeaturesAreRefusedWithTheirPosition() throws {
        let dir = try makeScratchFolder("values")
        defer { try? FileManager.default.removeItem(at: dir) }
        let n = 40
        try npy((0..<(n * 4)).map { Float($0 % 5) }, shape: [n, 4]).write(to: dir.appendingPathComponent("x.npy"))
        try npy([0.5] + [Float](repeating: 1, count: n - 1), shape: [n]).write(to: dir.appendingPathComponent("y-half.npy"))
        try npy([1, 2, .nan] + [Float](repeating: 1, count: n - 3), shape: [n]).write(to: dir.appendingPathComponent("y-nan.npy"))
        try npy((0..<n).map { Float($0 % 3) }, shape: [n]).write(to: dir.appendingPathComponent("y.npy"))
        try npy([.nan] + (1..<(n * 4)).map { Float($0 % 5) }, shape: [n, 4]).write(to: dir.appendingPathComponent("x-nan.npy"))
        expectOneLineFailure(try runEmber(["train", "--data", "x.npy", "--labels", "y-half.npy"], in: dir), mentioning: "0.5")
        expectOneLineFailure(try runEmber(["train", "--data", "x.npy", "--labels", "y-nan.npy"], in: dir), mentioning: "element 2")
        expectOneLineFailure(try runEmber(["train", "--data", "x-nan.npy", "--labels", "y.npy"], in: dir), mentioning: "x-nan.npy")
        let allowed = try runEmber(["train", "--data", "x-nan.npy", "--labels", "y.npy", "--allow-non-finite", "--epochs", "1",
                                    "--batch-size", "8"], in: dir)
        #expect(!allowed.crashed && (allowed.status == 0 || allowed.stderr.contains("diverged")), "\(allowed.status) \(allowed.stderr)")
    }

    @Test(arguments: [["train", "--epochs", "0"], ["train", "--learning-rate", "nan"], ["train", "--dropout", "1"],
                      ["train", "--validation-fraction", "2"], ["train", "--checkpoint-every", "0"], ["train", "--hidden", "0"],
                      ["train", "--data", "missing.csv"], ["train", "--labels", "x.npy"], ["evaluate", "--checkpoint", "missing"],
                      ["summary", "--checkpoint", "missing"]])
    func badOptionsAreOneLine(arguments: [String]) throws {
        let dir = try makeScratchFolder("options")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try runEmber(arguments, in: dir)
        #expect(run.status == 1 && !run.crashed && run.errorLines.count == 1, "\(arguments): \(run.status) \(run.stderr)")
        #expect(run.stderr.hasPrefix("ember: error: "))
    }
}
