import Ember
import Foundation
import Testing

/// Issue #10: values from data files are checked at load. Float elements read as int64 class
/// labels must be whole numbers in int64's range (never truncated: 0.5 -> 0, NaN -> 0), and NaN or
/// infinite features are an error unless the read passes `allowNonFinite: true`.

/// A temporary file holding `bytes`, removed by the caller.
private func temporaryFile(_ name: String, _ bytes: Data) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("ember-values-\(UUID().uuidString)-\(name)").path
    try bytes.write(to: URL(fileURLWithPath: path))
    return path
}

/// A version-1.0 `.npy` image of little-endian `descr` elements (`<f4` or `<f8`) with `shape`.
private func npy(_ values: [Double], descr: String, shape: [Int]) -> Data {
    let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var header = Array("{'descr': '\(descr)', 'fortran_order': False, 'shape': \(dims), }".utf8)
    while (10 + header.count + 1) % 64 != 0 { header.append(0x20) }
    header.append(0x0A)
    var d = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)])
    d.append(contentsOf: header)
    for v in values {
        if descr == "<f4" {
            withUnsafeBytes(of: Float(v).bitPattern.littleEndian) { d.append(contentsOf: $0) }
        } else {
            withUnsafeBytes(of: v.bitPattern.littleEndian) { d.append(contentsOf: $0) }
        }
    }
    return d
}

/// An IDX image of big-endian float32 (`0x0D`) or float64 (`0x0E`) elements with `shape`.
private func idx(_ values: [Double], code: UInt8, shape: [Int]) -> Data {
    var d = Data([0, 0, code, UInt8(shape.count)])
    for s in shape { withUnsafeBytes(of: UInt32(s).bigEndian) { d.append(contentsOf: $0) } }
    for v in values {
        if code == 0x0D {
            withUnsafeBytes(of: Float(v).bitPattern.bigEndian) { d.append(contentsOf: $0) }
        } else {
            withUnsafeBytes(of: v.bitPattern.bigEndian) { d.append(contentsOf: $0) }
        }
    }
    return d
}

private func error<R>(_ body: () throws(DataError) -> R) -> DataError? {
    do { _ = try body(); return nil } catch { return error }
}

@Suite struct DataValueCheckTests {
    // MARK: labels must be integers

    @Test func npyFloatLabelsThatAreNotWholeNumbersAreRefusedWithTheirPosition() throws {
        let path = try temporaryFile("labels.npy", npy([0, 1, 0.5, 2], descr: "<f4", shape: [2, 2]))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let e = error { () throws(DataError) in try NPY.read(contentsOf: path, as: .int64) }
        // The header is padded to 128 bytes; element 2 is 8 bytes into the data.
        #expect(e == .notAnInteger(file: path, offset: 136, element: 2, index: [1, 0], value: "0.5"))
        #expect(e?.description == "\(path): byte 136: element 2 (index [1, 0]): expected an integer in int64's range (reading as int64), found 0.5")
    }

    @Test(arguments: [(Double.nan, "nan"), (.infinity, "inf"), (-.infinity, "-inf"), (1e19, "1e+19"), (-0x1p63 * 2, "-1.8446744073709552e+19"), (2.25, "2.25")])
    func npyFloat64LabelsOutsideInt64OrFractionalAreRefused(value: Double, text: String) {
        let e = error { () throws(DataError) in try NPY.decode(npy([3, value], descr: "<f8", shape: [2]), file: "y.npy", as: .int64) }
        #expect(e == .notAnInteger(file: "y.npy", offset: 136, element: 1, index: [1], value: text))
    }

    @Test func wholeFloatLabelsConvertExactlyIncludingInt64sExtremes() throws {
        let y = try NPY.decode(npy([0, 1, -3, -0x1p63, 0x1p62], descr: "<f8", shape: [5]), as: .int64)
        #expect(y.int64s == [0, 1, -3, .min, 1 << 62])
        let z = try IDX.decode(idx([7, 0], code: 0x0D, shape: [2]), as: .int64)
        #expect(z.int64s == [7, 0])
    }

    @Test func idxFloatLabelsThatAreNotWholeNumbersAreRefused() throws {
        let path = try temporaryFile("labels.idx", idx([1, 2, 3, 4, 5, -0.25], code: 0x0D, shape: [3, 2]))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let e = error { () throws(DataError) in try IDX.read(contentsOf: path, as: .int64) }
        // 4 magic bytes + 2 dimensions of 4 bytes, then element 5 at 4 bytes each.
        #expect(e == .notAnInteger(file: path, offset: 12 + 20, element: 5, index: [2, 1], value: "-0.25"))
        let nan = error { () throws(DataError) in try IDX.decode(idx([.nan], code: 0x0E, shape: [1]), file: "l.idx", as: .int64) }
        #expect(nan == .notAnInteger(file: "l.idx", offset: 8, element: 0, index: [0], value: "nan"))
    }

    @Test func csvLabelsMustBeIntegersNotTruncatedFloats() {
        let e = error { () throws(DataError) in
            try CSV.decode(Data("x,y\n1,0\n2,0.5\n".utf8), file: "t.csv", label: "y")
        }
        #expect(e == .csv(file: "t.csv", line: 3, column: 2, expected: "an integer class label in column \"y\"", found: "\"0.5\""))
    }

    // MARK: non-finite features

    @Test func npyNonFiniteFeaturesAreRefusedUnlessAllowed() throws {
        let path = try temporaryFile("x.npy", npy([1, 2, 3, .nan, 5, 6], descr: "<f4", shape: [3, 2]))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let e = error { () throws(DataError) in try NPY.read(contentsOf: path, as: .float32) }
        #expect(e == .nonFinite(file: path, offset: 140, element: 3, index: [1, 1], value: "nan"))
        #expect(e?.description.hasSuffix("found nan (pass allowNonFinite: true to accept NaN and infinity)") == true)
        let natural = error { () throws(DataError) in try NPY.read(contentsOf: path) }
        #expect(natural == e)
        let allowed = try NPY.read(contentsOf: path, as: .float32, allowNonFinite: true)
        #expect(allowed.floats[3].isNaN && allowed.floats[5] == 6)
    }

    @Test func npyFloat64TooLargeForFloat32IsNonFiniteThere() throws {
        let data = npy([1, 1e300], descr: "<f8", shape: [2])
        let e = error { () throws(DataError) in try NPY.decode(data, file: "x.npy", as: .float32) }
        #expect(e == .nonFinite(file: "x.npy", offset: 136, element: 1, index: [1], value: "1e+300 (infinite as float32)"))
        #expect(try NPY.decode(data, as: .float64).doubles == [1, 1e300])
        #expect(try NPY.decode(data, as: .float32, allowNonFinite: true).floats == [1, .infinity])
    }

    @Test func idxNonFiniteFeaturesAreRefusedUnlessAllowed() throws {
        let data = idx([0, -.infinity], code: 0x0E, shape: [1, 1, 2])
        let e = error { () throws(DataError) in try IDX.decode(data, file: "x.idx") }
        #expect(e == .nonFinite(file: "x.idx", offset: 16 + 8, element: 1, index: [0, 0, 1], value: "-inf"))
        let asBool = error { () throws(DataError) in try IDX.decode(data, file: "x.idx", as: .bool) }
        #expect(asBool == e)
        #expect(try IDX.decode(data, allowNonFinite: true).doubles == [0, -.infinity])
    }

    @Test func csvNonFiniteFeaturesAreRefusedWithRowAndColumnUnlessAllowed() throws {
        let path = try temporaryFile("t.csv", Data("a,b,y\n1,2,0\n3, inf ,1\n".utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let e = error { () throws(DataError) in try CSV.read(contentsOf: path, label: "y") }
        #expect(e == .csv(file: path, line: 3, column: 2,
                          expected: "a finite float32 number in column \"b\" (pass allowNonFinite: true to accept NaN and infinity)",
                          found: "\" inf \""))
        let t = try CSV.read(contentsOf: path, label: "y", allowNonFinite: true)
        #expect(t.features.floats == [1, 2, 3, .infinity])
        // 1e39 overflows float32 (not float64); NaN is refused in either dtype.
        let big = Data("a\n1e39\n".utf8)
        #expect(error { () throws(DataError) in try CSV.decode(big, file: "b.csv") } != nil)
        #expect(try CSV.decode(big, dtype: .float64).features.doubles == [1e39])
        let nan = error { () throws(DataError) in try CSV.decode(Data("a\nNaN\n".utf8), file: "n.csv", dtype: .float64) }
        #expect(nan == .csv(file: "n.csv", line: 2, column: 1,
                            expected: "a finite float64 number in column \"a\" (pass allowNonFinite: true to accept NaN and infinity)",
                            found: "\"NaN\""))
    }

    // MARK: sizes from headers

    @Test func aShapeWhoseNonZeroDimensionsOverflowIsRefusedEvenWithAZeroDimension() {
        // (0, 2^62, 2^62) has no elements, but its strides would overflow.
        var header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4611686018427387904, 4611686018427387904), }".utf8)
        while (10 + header.count + 1) % 64 != 0 { header.append(0x20) }
        header.append(0x0A)
        var d = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)])
        d.append(contentsOf: header)
        guard case .npy(_, let offset, _, _)? = error({ () throws(DataError) in try NPY.decode(d, file: "s.npy") }) else {
            Issue.record("expected an npy error")
            return
        }
        #expect(offset == d.count)
        // IDX: 0 x 0xFFFFFFFF x ... 8 dimensions.
        var i = Data([0, 0, 0x08, 8])
        i.append(contentsOf: [0, 0, 0, 0])
        for _ in 0..<7 { i.append(contentsOf: [0xFF, 0xFF, 0xFF, 0xFF]) }
        guard case .idx(_, let o, _, _)? = error({ () throws(DataError) in try IDX.decode(i, file: "s.idx") }) else {
            Issue.record("expected an idx error")
            return
        }
        #expect(o == 36)
    }
}
