import EmberAutograd
import Foundation
import EmberTensor
import EmberStorage

/// Reads IDX files, the format of the MNIST data set (`train-images-idx3-ubyte`, ...) and of
/// Ember's embedded digits.
///
/// Layout: two zero bytes, a type code (`0x08` unsigned byte, `0x09` signed byte, `0x0B` 16-bit
/// integer, `0x0C` 32-bit integer, `0x0D` float32, `0x0E` float64), the number of dimensions,
/// each dimension as a big-endian 32-bit unsigned integer, then the elements, big-endian, in
/// row-major order.
///
/// Elements are read into int64 (integer types), float32 or float64, or converted to the `dtype`
/// you ask for: `IDX.read(contentsOf: "train-images-idx3-ubyte", as: .float32)` gives MNIST's
/// `[60000, 28, 28]` pixels as float32 values 0...255 without an int64 copy in between.
///
/// Every malformed file throws ``DataError/idx(file:offset:expected:found:)`` naming the byte
/// offset and what was expected there: non-zero magic bytes, an unknown type code, more than 8
/// dimensions, a file shorter than its header or than its dimensions need, or trailing bytes (the
/// dimensions are checked against the file's size before anything is allocated).
///
/// Values are checked too: reading float elements as int64 (class labels) throws
/// ``DataError/notAnInteger(file:offset:element:index:value:)`` for a value that is not a whole
/// number in int64's range; a NaN or infinite float element throws
/// ``DataError/nonFinite(file:offset:element:index:value:)`` unless the read passes
/// `allowNonFinite: true`.
///
/// PyTorch parity: reads the files `torchvision.datasets.MNIST` reads (its `read_sn3_pascalvincent_tensor`),
/// with the same type codes.
public enum IDX {
    /// Reads the array in the IDX file at `path`, converted to `dtype` if given; NaN and infinite
    /// values are an error unless `allowNonFinite` is `true`.
    public static func read(contentsOf path: String, as dtype: DType? = nil, allowNonFinite: Bool = false) throws(DataError) -> HostTensor {
        try decode(FileBytes.read(path), file: path, as: dtype, allowNonFinite: allowNonFinite)
    }

    /// Decodes an IDX image held in memory; `file` is only used in errors.
    public static func decode(_ data: Data, file: String = "<memory>", as dtype: DType? = nil,
                              allowNonFinite: Bool = false) throws(DataError) -> HostTensor {
        try FileBytes.withBytes(data) { (raw) throws(DataError) in
            guard raw.count >= 4 else {
                throw .idx(file: file, offset: 0, expected: "a 4-byte magic number (0x00 0x00, a type code, the rank)",
                           found: raw.isEmpty ? "an empty file" : "\(raw.count) bytes (the file is truncated)")
            }
            guard raw[0] == 0, raw[1] == 0 else {
                throw .idx(file: file, offset: raw[0] == 0 ? 1 : 0,
                           expected: "the magic number to start with two zero bytes (not an IDX file?)", found: Render.hex(raw.prefix(4)))
            }
            let type: RawElementType
            switch raw[2] {
            case 0x08: type = RawElementType(kind: .unsigned, size: 1, bigEndian: true)
            case 0x09: type = RawElementType(kind: .signed, size: 1, bigEndian: true)
            case 0x0B: type = RawElementType(kind: .signed, size: 2, bigEndian: true)
            case 0x0C: type = RawElementType(kind: .signed, size: 4, bigEndian: true)
            case 0x0D: type = RawElementType(kind: .float, size: 4, bigEndian: true)
            case 0x0E: type = RawElementType(kind: .float, size: 8, bigEndian: true)
            default:
                throw .idx(file: file, offset: 2, expected: "an IDX type code (0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E)",
                           found: Render.hex([raw[2]]))
            }
            let rank = Int(raw[3])
            guard rank <= Shape.maxRank else {
                throw .idx(file: file, offset: 3, expected: "at most \(Shape.maxRank) dimensions", found: "\(rank)")
            }
            let start = 4 + 4 * rank
            guard raw.count >= start else {
                throw .idx(file: file, offset: raw.count,
                           expected: "\(rank) big-endian 32-bit dimensions ending at byte \(start)", found: "the end of the file (truncated)")
            }
            var shape = Shape()
            for i in 0..<rank {
                var d = 0
                for j in 0..<4 { d = d << 8 | Int(raw[4 + 4 * i + j]) }
                shape.append(d)
            }
            let overflow = shape.checkedElementCount == nil
            let elements = shape.checkedElementCount ?? 0
            let (bytes, o2) = elements.multipliedReportingOverflow(by: type.size)
            let available = raw.count - start
            guard !overflow, !o2, bytes == available else {
                let short = overflow || o2 || bytes > available
                throw .idx(file: file, offset: start,
                           expected: "\(short && (overflow || o2) ? "more than \(Int.max)" : "\(bytes)") bytes of \(type.name) data for shape \(shape)",
                           found: short ? "\(available) bytes (the file is truncated)" : "\(available) bytes (extra bytes after the array)")
            }
            let target = dtype ?? type.naturalDType
            try type.validate(raw, start: start, shape: shape, as: target, allowNonFinite: allowNonFinite, file: file)
            return HostTensor(type.decode(raw, start: start, count: elements, as: target), shape: shape)
        }
    }
}
