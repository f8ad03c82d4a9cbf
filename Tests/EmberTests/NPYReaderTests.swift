import Ember
import Foundation
import Testing
import _EmberTestSupport

/// An `.npy` image with the given header dict text (padded as NumPy pads it) and data bytes.
private func npyImage(_ dict: String, body: [UInt8] = [], version: UInt8 = 1, headerLength: Int? = nil) -> Data {
    var header = Array(dict.utf8)
    let prefix = version == 1 ? 10 : 12
    while (prefix + header.count + 1) % 64 != 0 { header.append(0x20) }
    header.append(0x0A)
    var d = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, version, 0])
    let n = headerLength ?? header.count
    if version == 1 {
        d.append(contentsOf: [UInt8(n & 0xFF), UInt8(n >> 8)])
    } else {
        d.append(contentsOf: [UInt8(n & 0xFF), UInt8((n >> 8) & 0xFF), UInt8((n >> 16) & 0xFF), UInt8(n >> 24)])
    }
    d.append(contentsOf: header)
    d.append(contentsOf: body)
    return d
}

private func npyError(_ data: Data, as dtype: DType? = nil, allowNonFinite: Bool = false) -> DataError? {
    dataError { () throws(DataError) in try NPY.decode(data, file: "bad.npy", as: dtype, allowNonFinite: allowNonFinite) }
}

@Suite struct NPYReaderTests {
    static let readable = [
        "f4.npy", "f8.npy", "i8.npy", "i4.npy", "i2.npy", "i1.npy", "u1.npy", "u2.npy", "u4.npy", "u8.npy",
        "b1.npy", "f8_big.npy", "i4_big.npy", "scalar.npy", "empty.npy", "v2.npy", "v3.npy", "u8_huge.npy",
    ]

    @Test(arguments: readable)
    func readsWhatNumPyWrote(name: String) throws {
        let e = DataFixtures.entry(name)
        let natural: DType = switch e.dtype! {
        case "float32": .float32
        case "float64": .float64
        case "bool": .bool
        default: .int64
        }
        if name == "u8_huge.npy" {
            // 2^64 - 1 does not fit Ember's int64; as float64 it reads fine.
            let a = try NPY.read(contentsOf: DataFixtures.path(name), as: .float64)
            #expect(a.doubles == [1, 18446744073709551615.0])
            return
        }
        let a = try NPY.read(contentsOf: DataFixtures.path(name), allowNonFinite: true)  // f4.npy holds inf and nan
        #expect(a.shape == Shape(e.shape!), "\(name)")
        #expect(a.dtype == natural, "\(name)")
        expectHostValues(a, equal: e.values!, name)
        let header = try NPY.header(contentsOf: DataFixtures.path(name))
        #expect(header.descr == e.descr && header.version == e.version && header.fortranOrder == false)
    }

    @Test func convertsToTheRequestedDType() throws {
        let u1 = try NPY.read(contentsOf: DataFixtures.path("u1.npy"), as: .float32)
        #expect(u1.dtype == .float32)
        expectHostValues(u1, equal: DataFixtures.entry("u1.npy").values!.map { String(Float(Int($0)!)) }, "u1 as float32")
        let f4 = try NPY.read(contentsOf: DataFixtures.path("f8_big.npy"), as: .float32, allowNonFinite: true)
        #expect(f4.floats == [1, -2.5, .infinity])
        // Floats to int64 must be whole numbers (labels): 1.5 is refused, never truncated to 1.
        let asInt = dataError { () throws(DataError) in try NPY.read(contentsOf: DataFixtures.path("f4.npy"), as: .int64) }
        #expect(asInt == .notAnInteger(file: DataFixtures.path("f4.npy"), offset: 128, element: 0, index: [0, 0], value: "1.5"))
        let asBool = try NPY.read(contentsOf: DataFixtures.path("i4.npy"), as: .bool)
        #expect(asBool.bools == [true, true, false, true, true])
    }

    @Test func refusesFortranOrder() throws {
        let e = dataError { () throws(DataError) in try NPY.read(contentsOf: DataFixtures.path("fortran.npy")) }
        guard case .npy(_, let offset, let expected, let found)? = e else { Issue.record("no error: \(String(describing: e))"); return }
        #expect(expected.contains("'fortran_order': False") && found == "'fortran_order': True")
        #expect(offset > 10 && offset < 128, "points at the value in the header")
        #expect(e!.description.contains("fortran.npy: byte \(offset):"))
    }

    @Test(arguments: [("f2.npy", "'<f2'"), ("structured.npy", "a structured dtype (a list of fields)")])
    func refusesUnsupportedDTypes(name: String, found: String) throws {
        let e = dataError { () throws(DataError) in try NPY.read(contentsOf: DataFixtures.path(name)) }
        guard case .npy(_, _, let expected, let f)? = e else { Issue.record("no error for \(name)"); return }
        #expect(f == found)
        #expect(expected.contains("dtype"))
    }

    @Test func refusesUint64ValuesBeyondInt64() throws {
        let e = dataError { () throws(DataError) in try NPY.read(contentsOf: DataFixtures.path("u8_huge.npy")) }
        guard case .npy(_, let offset, let expected, let found)? = e else { Issue.record("no error"); return }
        #expect(offset == 128 + 8 && expected.contains("below 2^63") && found.contains("element 1"))
    }

    @Test func everyTruncationOfEveryFixtureThrows() throws {
        for name in ["f4.npy", "i8.npy", "b1.npy", "v2.npy", "v3.npy", "scalar.npy"] {
            let full = try DataFixtures.bytes(name)
            for length in 0..<full.count {
                guard let e = npyError(full.prefix(length)) else {
                    Issue.record("\(name) cut to \(length) of \(full.count) bytes was accepted")
                    continue
                }
                guard case .npy(let file, _, _, _) = e else { Issue.record("\(e)"); continue }
                #expect(file == "bad.npy")
            }
            #expect(npyError(full, allowNonFinite: true) == nil)
        }
    }

    @Test func truncatedDataSaysHowManyBytesWereExpected() throws {
        let full = try DataFixtures.bytes("f8.npy")
        let e = npyError(full.prefix(full.count - 3))
        #expect(e == .npy(file: "bad.npy", offset: 128, expected: "40 bytes of data for shape (5,) of float64",
                          found: "37 bytes (the file is truncated)"))
        #expect(e?.description == "bad.npy: byte 128: expected 40 bytes of data for shape (5,) of float64, found 37 bytes (the file is truncated)")
        let extra = npyError(full + [0])
        #expect(extra == .npy(file: "bad.npy", offset: 128, expected: "40 bytes of data for shape (5,) of float64",
                              found: "41 bytes (extra bytes after the array)"))
    }

    @Test func garbageIsNotAnNPYFile() {
        #expect(npyError(Data()) == .npy(file: "bad.npy", offset: 0, expected: "the magic string \\x93NUMPY (not an .npy file?)", found: "an empty file"))
        #expect(npyError(Data("PK\u{3}\u{4}zipzip".utf8)) == .npy(file: "bad.npy", offset: 0, expected: "the magic string \\x93NUMPY (not an .npy file?)",
                                                            found: "0x50 0x4B 0x03 0x04 0x7A 0x69"))
        var v = npyImage("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", body: [0, 0, 0, 0])
        v[6] = 4
        #expect(npyError(v) == .npy(file: "bad.npy", offset: 6, expected: "format version 1.0, 2.0 or 3.0", found: "4.0"))
    }

    @Test func malformedHeadersPointAtTheOffendingByte() {
        // (header dict text, expected, found); the offset is checked against the text's position.
        let cases: [(String, String, String, String)] = [
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, }", "}", "a Python literal (a string, an integer, True, False, None, a tuple or a list)", "'}'"),
            ("{'descr': '<f4' 'fortran_order': False, 'shape': (2,), }", "'fortran_order'", "',' or '}' after the value of 'descr'", "'''"),
            ("['descr', '<f4']", "[", "'{' starting the header dictionary", "'['"),
            ("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", "Maybe", "a Python literal (a string, an integer, True, False, None, a tuple or a list)", "'M'"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk", "junk", "only spaces and a newline after the header dictionary", "'j'"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", "(-2,)", "a shape of non-negative integers", "(-2,)"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", "99999999999999999999", "an integer that fits in 64 bits", "'9'"),
            ("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", "0, 'shape'", "True or False for 'fortran_order'", "0"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", "[2]", "a tuple of integers for 'shape'", "[2]"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", "1}", "only the keys 'descr', 'fortran_order' and 'shape'", "the key 'extra'"),
            ("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", "'descr': '<f4', 'f", "each key once", "a second 'descr'"),
            ("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", "'<c8'", "a dtype Ember reads: f4, f8, i1, i2, i4, i8, u1, u2, u4, u8 or b1 (in any byte order)", "'<c8'"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", "(1,1", "a shape of at most 8 dimensions", "9 dimensions"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'descr", "'descr", "a string closed by ' before the end of the header", "'''"),
        ]
        for (dict, marker, expected, found) in cases {
            let image = npyImage(dict, body: [UInt8](repeating: 0, count: 8))
            let offset = 10 + dict.utf8.distance(from: dict.utf8.startIndex, to: dict.range(of: marker, options: .backwards)!.lowerBound)
            #expect(npyError(image) == .npy(file: "bad.npy", offset: offset, expected: expected, found: found), "\(dict)")
        }
        // A missing key.
        let missing = npyImage("{'descr': '<f4', 'shape': (2,), }", body: [UInt8](repeating: 0, count: 8))
        #expect(npyError(missing) == .npy(file: "bad.npy", offset: 10, expected: "the key 'fortran_order' in the header", found: "no such key"))
    }

    @Test func headerLengthBeyondTheFileIsTruncation() {
        let image = npyImage("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", body: [0, 0, 0, 0], headerLength: 5000)
        #expect(npyError(image) == .npy(file: "bad.npy", offset: image.count, expected: "a header of 5000 bytes ending at byte 5010",
                                        found: "the end of the file (truncated)"))
    }

    @Test func version3HeadersMustBeUTF8() {
        var image = npyImage("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", body: [0, 0, 0, 0], version: 3)
        image[20] = 0xFF
        #expect(npyError(image) == .npy(file: "bad.npy", offset: 12, expected: "a UTF-8 header (version 3.0)", found: "invalid UTF-8"))
    }

    @Test func hugeShapesDoNotOverflow() {
        let image = npyImage("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", body: [0])
        let e = npyError(image)
        guard case .npy(_, _, let expected, let found)? = e else { Issue.record("no error"); return }
        #expect(expected.contains("more than") && found.contains("truncated"))
    }

    @Test func randomGarbageNeverCrashes() throws {
        // Flip bytes of a valid file at random (seeded): every result is a value or a DataError.
        let full = try DataFixtures.bytes("f4.npy")
        var g = Generator(seed: 17)
        var errors = 0
        for _ in 0..<500 {
            var bytes = full
            for _ in 0..<3 { bytes[Int.random(in: 0..<130, using: &g)] = UInt8.random(in: 0...255, using: &g) }
            if npyError(bytes) != nil { errors += 1 }
        }
        #expect(errors > 100, "most corruptions of the header are caught (\(errors) of 500)")
    }

    @Test func unreadableFilesNameTheFile() {
        let e = dataError { () throws(DataError) in try NPY.read(contentsOf: "/nonexistent/dir/x.npy") }
        guard case .unreadable(let file, let reason)? = e else { Issue.record("\(String(describing: e))"); return }
        #expect(file == "/nonexistent/dir/x.npy")
        #expect(reason.contains("No such file"), "\(reason)")
    }
}
