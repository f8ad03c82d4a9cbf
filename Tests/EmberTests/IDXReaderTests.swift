import Ember
import Foundation
import Testing
import _EmberTestSupport

private func idxError(_ data: Data) -> DataError? {
    dataError { () throws(DataError) in try IDX.decode(data, file: "bad.idx") }
}

@Suite struct IDXReaderTests {
    /// (file, the dtype Ember reads it into).
    static let files: [(String, DType)] = [
        ("images.idx", .int64), ("labels.idx", .int64), ("i1.idx", .int64), ("i2.idx", .int64),
        ("i4.idx", .int64), ("f4.idx", .float32), ("f8.idx", .float64),
    ]

    @Test(arguments: files)
    func readsEveryIDXType(name: String, dtype: DType) throws {
        let e = DataFixtures.entry(name)
        let a = try IDX.read(contentsOf: DataFixtures.path(name), allowNonFinite: true)  // f8.idx holds inf
        #expect(a.shape == Shape(e.shape!), "\(name)")
        #expect(a.dtype == dtype, "\(name)")
        expectHostValues(a, equal: e.values!, name)
    }

    @Test func readsAnMNISTStylePairIntoADataset() throws {
        let images = try IDX.read(contentsOf: DataFixtures.path("images.idx"), as: .float32)
        let labels = try IDX.read(contentsOf: DataFixtures.path("labels.idx"))
        #expect(images.dtype == .float32 && images.shape == [4, 3, 2])
        expectHostValues(images, equal: DataFixtures.entry("images.idx").values!, "ubyte as float32")
        let data = TensorDataset(inputs: images.reshaped([4, 1, 3, 2]), labels: labels)
        let batch = try #require(Array(DataLoader(data, batchSize: 4)).first)
        #expect(batch.inputs.shape == [4, 1, 3, 2])
        #expect(batch.labels.scalars(as: Int64.self) == [3, 0, 9, 3])
    }

    @Test func everyTruncationThrowsAndNamesTheFile() throws {
        for name in ["images.idx", "i2.idx", "f8.idx"] {
            let full = try DataFixtures.bytes(name)
            for length in 0..<full.count {
                guard let e = idxError(full.prefix(length)) else {
                    Issue.record("\(name) cut to \(length) bytes was accepted")
                    continue
                }
                guard case .idx(let file, _, _, _) = e else { Issue.record("\(e)"); continue }
                #expect(file == "bad.idx")
            }
        }
    }

    @Test func truncatedAndOverlongDataSayWhatWasExpected() throws {
        let full = try DataFixtures.bytes("images.idx")  // header 4 + 3 * 4 bytes, then 24 pixels
        #expect(idxError(full.prefix(30)) == .idx(file: "bad.idx", offset: 16, expected: "24 bytes of uint8 data for shape [4, 3, 2]",
                                                  found: "14 bytes (the file is truncated)"))
        #expect(idxError(full + [1, 2]) == .idx(file: "bad.idx", offset: 16, expected: "24 bytes of uint8 data for shape [4, 3, 2]",
                                                found: "26 bytes (extra bytes after the array)"))
        #expect(idxError(full.prefix(9)) == .idx(file: "bad.idx", offset: 9, expected: "3 big-endian 32-bit dimensions ending at byte 16",
                                                 found: "the end of the file (truncated)"))
        #expect(idxError(Data()) == .idx(file: "bad.idx", offset: 0, expected: "a 4-byte magic number (0x00 0x00, a type code, the rank)",
                                         found: "an empty file"))
    }

    @Test func garbageHeadersAreRefused() throws {
        let full = try DataFixtures.bytes("labels.idx")
        var bad = full
        bad[2] = 0x07
        #expect(idxError(bad) == .idx(file: "bad.idx", offset: 2, expected: "an IDX type code (0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E)", found: "0x07"))
        #expect(idxError(bad)?.description == "bad.idx: byte 2: expected an IDX type code (0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E), found 0x07")
        bad = full
        bad[3] = 9
        #expect(idxError(bad) == .idx(file: "bad.idx", offset: 3, expected: "at most 8 dimensions", found: "9"))
        let png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(idxError(png) == .idx(file: "bad.idx", offset: 0, expected: "the magic number to start with two zero bytes (not an IDX file?)",
                                      found: "0x89 0x50 0x4E 0x47"))
        // A wrong element type for the data: labels re-labelled as float64 need 8x the bytes.
        bad = full
        bad[2] = 0x0E
        guard case .idx(_, 8, let expected, let found)? = idxError(bad) else { Issue.record("no error"); return }
        #expect(expected == "32 bytes of float64 data for shape [4]" && found == "4 bytes (the file is truncated)")
    }

    @Test func hugeDimensionsDoNotOverflow() {
        let header: [UInt8] = [0, 0, 0x0E, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        guard case .idx(_, 16, let expected, let found)? = idxError(Data(header + [1, 2, 3])) else { Issue.record("no error"); return }
        #expect(expected.hasPrefix("more than") && found == "3 bytes (the file is truncated)")
    }

    @Test func randomGarbageNeverCrashes() throws {
        let full = try DataFixtures.bytes("i2.idx")
        var g = Generator(seed: 5)
        for _ in 0..<500 {
            var bytes = full
            let n = Int.random(in: 1...4, using: &g)
            for _ in 0..<n { bytes[Int.random(in: 0..<bytes.count, using: &g)] = UInt8.random(in: 0...255, using: &g) }
            let cut = Int.random(in: 0...bytes.count, using: &g)
            _ = idxError(bytes.prefix(cut))
        }
    }
}
