import Ember
import Foundation
import Testing

/// The fuzz seeds (`Tools/fuzz/corpus/<target>`) replayed through the readers without the
/// fuzzer, so that every `swift test` checks them, also where libFuzzer is missing: each file is
/// read or refused with a typed error, never a crash. Inputs that crashed a fuzz run are kept
/// here too, as bytes, each expecting its typed error.

/// `Tools/fuzz/corpus/<target>`'s files, found relative to this source file.
private func seeds(_ target: String) throws -> [URL] {
    let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Tools/fuzz/corpus/\(target)")
    let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
    return names.map { folder.appendingPathComponent($0) }
}

/// The fuzz harness's small run (`Tools/fuzz/Sources/EmberFuzz/Targets.swift`).
private func smallRun() -> (Sequential, Adam, StepLR, Generator) {
    let generator = Generator(seed: 1)
    let (model, optimizer) = withGenerator(generator) {
        let model = Sequential(Linear(2, 2), BatchNorm1d(2), Dropout(0.5))
        return (model, Adam(model.parameters(), lr: 0.01))
    }
    model.layers[2].pin(.evaluation)
    return (model, optimizer, StepLR(optimizer, stepSize: 2, gamma: 0.5), generator)
}

@Suite struct FuzzRegressionTests {
    @Test func safetensorsSeedsDecode() throws {
        let files = try seeds("safetensors")
        #expect(files.count >= 3)
        for file in files {
            #expect(throws: Never.self, "\(file.lastPathComponent)") { _ = try Safetensors.decode(Data(contentsOf: file)) }
        }
    }

    @Test func checkpointSeedsDecodeAndRestoreIntoTheHarnessModel() throws {
        let files = try seeds("checkpoint")
        #expect(files.count >= 3)
        for file in files {
            let checkpoint = try Checkpoint.decode(Data(contentsOf: file), path: file.lastPathComponent)
            let (model, optimizer, schedule, generator) = smallRun()
            try checkpoint.restore(model: model, optimizer: optimizer, scheduler: schedule, generator: generator)
            #expect(generator.state == checkpoint.generator)
        }
    }

    @Test func csvNPYAndIDXSeedsAreReadOrRefusedWithATypedError() throws {
        var read = 0, refused = 0
        func count(_ body: () throws(DataError) -> Void) {
            do { try body(); read += 1 } catch { refused += 1 }
        }
        for file in try seeds("csv") {
            let data = try Data(contentsOf: file)
            let first = data.first ?? 0
            let label: CSVColumn? = first >> 3 & 3 == 0 ? nil : .index(-1)
            count { () throws(DataError) in
                _ = try CSV.decode(data.dropFirst(), file: file.lastPathComponent, hasHeader: first & 1 != 0,
                                   delimiter: [",", ";", "\t", "|"][Int(first >> 1) & 3], label: label,
                                   labels: first & 0x20 != 0 ? .categories : .integers, allowNonFinite: first & 0x80 != 0)
            }
        }
        for file in try seeds("npy") {
            let data = try Data(contentsOf: file)
            for dtype in [nil, DType.float32, .float64, .int64, .bool] {
                count { () throws(DataError) in _ = try NPY.decode(data, file: file.lastPathComponent, as: dtype) }
            }
        }
        for file in try seeds("idx") {
            let data = try Data(contentsOf: file)
            for dtype in [nil, DType.float32, .float64, .int64, .bool] {
                count { () throws(DataError) in _ = try IDX.decode(data, file: file.lastPathComponent, as: dtype) }
            }
        }
        #expect(read > 0 && refused > 0, "the seeds hold good and refused files: \(read) read, \(refused) refused")
    }
}
