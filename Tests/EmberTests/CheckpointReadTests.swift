import Ember
import Foundation
import Testing
import _EmberTestSupport

/// Checkpoint files and mode records from outside are checked before anything changes.
@Suite struct CheckpointReadTests {
    func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("ember-ckpt-\(UUID().uuidString).safetensors").path
    }

    func readError(_ tensors: [(String, Tensor)], _ metadata: [String: String]) throws -> String? {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Safetensors.write(tensors, metadata: metadata, to: path)
        do {
            _ = try Checkpoint.read(from: path)
            return nil
        } catch {
            return error.description
        }
    }

    let valid = ["ember.checkpoint": Checkpoint.formatVersion, "ember.epoch": "1", "ember.step": "2"]

    @Test func aWellFormedFileReads() throws {
        #expect(try readError([("model.w", Tensor.zeros([2]))], valid) == nil)
    }

    @Test func anUnknownFormatVersionIsRefused() throws {
        var meta = valid
        meta["ember.checkpoint"] = "999"
        #expect(try readError([("model.w", Tensor.zeros([2]))], meta)?.contains("unsupported checkpoint version 999") == true)
    }

    @Test func aTensorOutsideModelAndOptimizerIsRefused() throws {
        #expect(try readError([("model.w", Tensor.zeros([2])), ("stray", Tensor.zeros([1]))], valid)?
            .contains("unexpected tensor 'stray'") == true)
    }

    @Test func modeRecordsForUnknownModulesAreRefusedAndChangeNothing() {
        let m = TwoProbes()
        var records = m.modeRecords()
        records.append(ModeRecord(path: "ghost", mode: .evaluation, pinnedMode: .evaluation))
        records[1].mode = .evaluation
        #expect {
            try m.restoreModes(records)
        } throws: { error in
            let e = error as? ModeRestoreError
            return e?.unknownPaths == ["ghost"] && e?.missingPaths == []
        }
        #expect(m.modules().allSatisfy { $0.isTraining && $0.pinnedMode == nil })
        records.removeLast()
        try? m.restoreModes(records)
        #expect(!m.a.isTraining)
    }
}
