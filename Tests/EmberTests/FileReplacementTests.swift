import Ember
import Foundation
import Synchronization
import Testing
@testable import EmberData
@testable import EmberIO

/// Issue #10: a file truncated or replaced by another process while Ember reads it never crashes
/// the reader. The readers copy the file into memory (a memory map of a file truncated underneath
/// kills the process with SIGBUS on access) and an atomic replacement (`AtomicFile`) is read
/// either whole old or whole new.

private func temporaryPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("ember-replace-\(UUID().uuidString)-\(name)").path
}

/// A background loop, stopped and waited for by ``stop()``.
private final class Loop: Sendable {
    private let stopping = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)

    init(_ body: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            while !stopping.load(ordering: .acquiring) { body() }
            finished.store(true, ordering: .releasing)
        }
        thread.start()
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        while !finished.load(ordering: .acquiring) { usleep(1000) }
    }
}

/// The sum of every byte of `data`, which touches every page.
private func byteSum(_ data: Data) -> Int {
    data.withUnsafeBytes { raw in raw.reduce(0) { $0 &+ Int($1) } }
}

@Suite(.serialized) struct FileReplacementTests {
    @Test func dataReadersHoldACopyThatOutlivesATruncation() throws {
        let path = temporaryPath("big.npy")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(repeating: 7, count: 1 << 20).write(to: URL(fileURLWithPath: path))
        let data = try FileBytes.read(path)
        #expect(truncate(path, 0) == 0)
        #expect(byteSum(data) == 7 << 20)  // a mapped file would raise SIGBUS here
    }

    @Test func safetensorsReaderHoldsACopyThatOutlivesATruncation() throws {
        let path = temporaryPath("big.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Safetensors.write(["w": Tensor.ones([512, 512])], to: path)
        let data = try Safetensors.fileContents(path)
        #expect(truncate(path, 0) == 0)
        #expect(byteSum(data) > 0)
        #expect(try Safetensors.decode(data).tensors["w"]?.shape == [512, 512])
    }

    /// A writer replaces the file atomically, over and over, while the readers read it: every read
    /// sees one of the two versions, complete.
    @Test func aFileReplacedAtomicallyWhileReadIsReadWholeOldOrWholeNew() throws {
        let npyPath = temporaryPath("x.npy"), stPath = temporaryPath("x.safetensors")
        defer {
            try? FileManager.default.removeItem(atPath: npyPath)
            try? FileManager.default.removeItem(atPath: stPath)
        }
        func npy(_ v: Float, _ n: Int) -> Data {
            var header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (\(n),), }".utf8)
            while (10 + header.count + 1) % 64 != 0 { header.append(0x20) }
            header.append(0x0A)
            var d = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)])
            d.append(contentsOf: header)
            for _ in 0..<n { withUnsafeBytes(of: v.bitPattern.littleEndian) { d.append(contentsOf: $0) } }
            return d
        }
        let versions = [(npy(1, 40_000), Safetensors.encode([("w", Tensor.ones([200, 200]))])),
                        (npy(2, 90_000), Safetensors.encode([("w", Tensor.zeros([300, 100])), ("b", Tensor.ones([3]))]))]
        try AtomicFile.write(versions[0].0, to: npyPath)
        try AtomicFile.write(versions[0].1, to: stPath)
        let round = Atomic<Int>(0)
        let writer = Loop {
            let i = round.add(1, ordering: .relaxed).newValue
            try? AtomicFile.write(versions[i % 2].0, to: npyPath)
            try? AtomicFile.write(versions[i % 2].1, to: stPath)
        }
        defer { writer.stop() }
        var seen = Set<Int>()
        for _ in 0..<150 {
            let x = try NPY.read(contentsOf: npyPath)
            #expect((x.count == 40_000 && x.floats.allSatisfy { $0 == 1 }) || (x.count == 90_000 && x.floats.allSatisfy { $0 == 2 }))
            seen.insert(x.count)
            let c = try Safetensors.read(contentsOf: stPath)
            #expect(c.names == ["w"] || c.names == ["w", "b"])
        }
        #expect(!seen.isEmpty)
    }

    /// A writer that truncates and rewrites the file in place (not atomically) while it is read:
    /// each read gives the file or a typed error, never a crash.
    @Test func aFileRewrittenInPlaceWhileReadGivesTheFileOrATypedError() throws {
        let path = temporaryPath("inplace.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let bytes = Safetensors.encode([("w", Tensor.ones([256, 256]))])
        try bytes.write(to: URL(fileURLWithPath: path))
        let writer = Loop {
            guard let h = FileHandle(forWritingAtPath: path) else { return }
            try? h.truncate(atOffset: 0)
            var offset = 0
            while offset < bytes.count {
                let end = Swift.min(offset + 4096, bytes.count)
                try? h.write(contentsOf: bytes[offset..<end])
                offset = end
            }
            try? h.close()
        }
        defer { writer.stop() }
        var whole = 0, refused = 0
        for _ in 0..<200 {
            do {
                let c = try Safetensors.read(contentsOf: path)
                #expect(c.tensors["w"]?.shape == [256, 256])
                whole += 1
            } catch {
                refused += 1
            }
        }
        #expect(whole + refused == 200)
    }
}
