import EmberAutograd
import Foundation
import EmberTensor
import EmberStorage

/// Reads NumPy's `.npy` array files (what `numpy.save` writes).
///
/// Layout: the magic string `\x93NUMPY`, a version byte pair (1.0, 2.0 or 3.0), the header length
/// (2 bytes little-endian in version 1, 4 bytes in versions 2 and 3), the header (a Python dict
/// literal `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` padded with spaces and a
/// newline; Latin-1 in versions 1 and 2, UTF-8 in version 3), then the raw elements.
///
/// Supported element types (any byte order, `<`, `>`, `|` or `=`): `f4`, `f8`, `i1`, `i2`, `i4`,
/// `i8`, `u1`, `u2`, `u4`, `u8`, `b1`. They are read into float32 (`f4`), float64 (`f8`), int64
/// (every integer type) or bool (`b1`), or converted to the `dtype` you ask for (so `|u1` images
/// can go straight to float32).
///
/// Every malformed file throws ``DataError/npy(file:offset:expected:found:)`` naming the byte
/// offset and what was expected there: a wrong magic string or version, a header that is not such a
/// dict (with the offset of the offending character), missing or extra keys, an unsupported dtype
/// (structured, float16, complex, strings, objects), a Fortran-ordered array, a shape with negative
/// entries or more than 8 dimensions, or a data section shorter or longer than the shape needs (the
/// shape is checked against the file's size before anything is allocated).
///
/// Values are checked too: reading float elements as int64 (class labels) throws
/// ``DataError/notAnInteger(file:offset:element:index:value:)`` for a value that is not a whole
/// number in int64's range, instead of truncating 0.5 to 0; a NaN or infinite float element
/// throws ``DataError/nonFinite(file:offset:element:index:value:)`` unless the read passes
/// `allowNonFinite: true`.
///
/// PyTorch parity: none in `torch` itself; reads what `numpy.save(path, tensor.numpy())` writes.
public enum NPY {
    /// The header fields of an `.npy` file.
    public struct Header: Sendable, Equatable {
        /// The format version, e.g. `"1.0"`.
        public var version: String
        /// The dtype string as stored, e.g. `"<f4"`.
        public var descr: String
        /// Whether the data is in Fortran (column-major) order; Ember reads only C order.
        public var fortranOrder: Bool
        /// The array's shape.
        public var shape: Shape
        /// The byte offset where the data starts.
        public var dataOffset: Int
        /// Where `descr` and `fortran_order`'s values start, for errors.
        var descrOffset = 0, fortranOffset = 0
    }

    /// Reads the array in the `.npy` file at `path`, converted to `dtype` if given; NaN and
    /// infinite values are an error unless `allowNonFinite` is `true`.
    public static func read(contentsOf path: String, as dtype: DType? = nil, allowNonFinite: Bool = false) throws(DataError) -> HostTensor {
        try decode(FileBytes.read(path), file: path, as: dtype, allowNonFinite: allowNonFinite)
    }

    /// Decodes an `.npy` image held in memory; `file` is only used in errors.
    public static func decode(_ data: Data, file: String = "<memory>", as dtype: DType? = nil,
                              allowNonFinite: Bool = false) throws(DataError) -> HostTensor {
        try FileBytes.withBytes(data) { (raw) throws(DataError) in
            let header = try parseHeader(raw, file: file)
            let type = try elementType(header, file: file)
            guard !header.fortranOrder else {
                throw .npy(file: file, offset: header.fortranOffset, expected: "'fortran_order': False (Ember reads C-order arrays; save np.ascontiguousarray(a))",
                           found: "'fortran_order': True")
            }
            let counted = header.shape.checkedElementCount
            let overflow = counted == nil
            let n = counted ?? 0
            let (bytes, overflow2) = n.multipliedReportingOverflow(by: type.size)
            let available = raw.count - header.dataOffset
            guard !overflow, !overflow2, bytes == available else {
                let need = overflow || overflow2 ? "more than \(Int.max)" : "\(bytes)"
                throw .npy(file: file, offset: header.dataOffset,
                           expected: "\(need) bytes of data for shape \(tuple(header.shape)) of \(type.name)",
                           found: bytes > available || overflow || overflow2
                               ? "\(available) bytes (the file is truncated)" : "\(available) bytes (extra bytes after the array)")
            }
            let target = dtype ?? type.naturalDType
            try type.validate(raw, start: header.dataOffset, shape: header.shape, as: target, allowNonFinite: allowNonFinite, file: file)
            if let bad = type.firstUnrepresentable(raw, start: header.dataOffset, count: n, as: target) {
                throw .npy(file: file, offset: header.dataOffset + bad * type.size,
                           expected: "uint64 values below 2^63 to read as int64", found: "a larger value at element \(bad)")
            }
            return HostTensor(type.decode(raw, start: header.dataOffset, count: n, as: target), shape: header.shape)
        }
    }

    /// Reads only the header of the `.npy` file at `path`.
    public static func header(contentsOf path: String) throws(DataError) -> Header {
        let data = try FileBytes.read(path)
        return try FileBytes.withBytes(data) { (raw) throws(DataError) in try parseHeader(raw, file: path) }
    }

    private static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY

    static func parseHeader(_ raw: UnsafeRawBufferPointer, file: String) throws(DataError) -> Header {
        guard raw.count >= 6, raw.prefix(6).elementsEqual(magic) else {
            throw .npy(file: file, offset: 0, expected: "the magic string \\x93NUMPY (not an .npy file?)",
                       found: raw.isEmpty ? "an empty file" : Render.hex(raw.prefix(6)))
        }
        guard raw.count >= 8 else {
            throw .npy(file: file, offset: raw.count, expected: "a version byte pair", found: "the end of the file (truncated)")
        }
        let major = raw[6], minor = raw[7]
        guard (1...3).contains(major), minor == 0 else {
            throw .npy(file: file, offset: 6, expected: "format version 1.0, 2.0 or 3.0", found: "\(major).\(minor)")
        }
        let lengthBytes = major == 1 ? 2 : 4
        guard raw.count >= 8 + lengthBytes else {
            throw .npy(file: file, offset: raw.count, expected: "a \(lengthBytes)-byte header length",
                       found: "the end of the file (truncated)")
        }
        var length = 0
        for i in 0..<lengthBytes { length |= Int(raw[8 + i]) << (8 * i) }
        let start = 8 + lengthBytes
        guard raw.count - start >= length else {
            throw .npy(file: file, offset: raw.count, expected: "a header of \(length) bytes ending at byte \(start + length)",
                       found: "the end of the file (truncated)")
        }
        let bytes = UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)])
        if major == 3 && String(validating: bytes, as: UTF8.self) == nil {
            throw .npy(file: file, offset: start, expected: "a UTF-8 header (version 3.0)", found: "invalid UTF-8")
        }
        var parser = PyLiteralParser(bytes: bytes, base: start, file: file)
        let entries = try parser.parseHeaderDict()

        var descr: String?, fortran: Bool?, shape: Shape?
        var descrOffset = 0, fortranOffset = 0
        for (key, value, offset) in entries {
            switch (key, value) {
            case ("descr", .string(let s)): (descr, descrOffset) = (s, offset)
            case ("descr", .list):
                throw .npy(file: file, offset: offset,
                           expected: "a simple dtype string such as '<f4' for 'descr'", found: "a structured dtype (a list of fields)")
            case ("fortran_order", .bool(let b)): (fortran, fortranOffset) = (b, offset)
            case ("shape", .tuple(let dims)):
                guard dims.count <= Shape.maxRank else {
                    throw .npy(file: file, offset: offset, expected: "a shape of at most \(Shape.maxRank) dimensions",
                               found: "\(dims.count) dimensions")
                }
                for d in dims {
                    guard case .int(let v) = d, v >= 0 else {
                        throw .npy(file: file, offset: offset, expected: "a shape of non-negative integers", found: value.rendered)
                    }
                }
                shape = Shape(dims.map { if case .int(let v) = $0 { v } else { 0 } })
            case ("descr", _), ("fortran_order", _), ("shape", _):
                let what = key == "descr" ? "a dtype string" : key == "shape" ? "a tuple of integers" : "True or False"
                throw .npy(file: file, offset: offset, expected: "\(what) for '\(key)'", found: value.rendered)
            default:
                throw .npy(file: file, offset: offset, expected: "only the keys 'descr', 'fortran_order' and 'shape'",
                           found: "the key '\(key)'")
            }
        }
        for (name, present) in [("descr", descr != nil), ("fortran_order", fortran != nil), ("shape", shape != nil)] where !present {
            throw .npy(file: file, offset: start, expected: "the key '\(name)' in the header", found: "no such key")
        }
        return Header(version: "\(major).\(minor)", descr: descr!, fortranOrder: fortran!, shape: shape!,
                      dataOffset: start + length, descrOffset: descrOffset, fortranOffset: fortranOffset)
    }

    private static let supported = "f4, f8, i1, i2, i4, i8, u1, u2, u4, u8 or b1 (in any byte order)"

    static func elementType(_ header: Header, file: String) throws(DataError) -> RawElementType {
        var chars = Array(header.descr)
        var bigEndian = false
        if let first = chars.first, "<>|=".contains(first) {
            bigEndian = first == ">"
            chars.removeFirst()
        }
        let code = String(chars)
        let type: RawElementType? = switch code {
        case "f4": RawElementType(kind: .float, size: 4, bigEndian: bigEndian)
        case "f8": RawElementType(kind: .float, size: 8, bigEndian: bigEndian)
        case "i1", "i2", "i4", "i8": RawElementType(kind: .signed, size: Int(code.dropFirst())!, bigEndian: bigEndian)
        case "u1", "u2", "u4", "u8": RawElementType(kind: .unsigned, size: Int(code.dropFirst())!, bigEndian: bigEndian)
        case "b1": RawElementType(kind: .bool, size: 1, bigEndian: bigEndian)
        default: nil
        }
        guard let type else {
            throw .npy(file: file, offset: header.descrOffset, expected: "a dtype Ember reads: \(supported)", found: "'\(header.descr)'")
        }
        return type
    }

    /// A shape as Python prints a tuple: `(3,)`, `(2, 3)`, `()`.
    static func tuple(_ shape: Shape) -> String {
        shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }
}
