import EmberAutograd
import Foundation
import EmberNN
import EmberTensor
import EmberStorage

/// Reads and writes the safetensors format.
///
/// Layout: an 8-byte little-endian header length `N`; `N` bytes of UTF-8 JSON (an object mapping
/// each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}`, with offsets relative
/// to the first byte after the header, plus an optional `"__metadata__"` map of strings); then the
/// data section, raw little-endian bytes that the tensors must cover exactly, without gaps or
/// overlaps.
///
/// Reading checks all of that and throws a ``SafetensorsError`` naming the file, the tensor and
/// the problem; it never crashes on a malformed file. Ember reads F32, F64, F16, BF16, I64, I32,
/// U8 and BOOL: F16 and BF16 are widened to float32, I32 and U8 to int64 (``Contents/storedDTypes``
/// keeps the file's dtype). It writes float32, float64, int64 and bool as F32, F64, I64, BOOL.
///
/// PyTorch parity: files written by `safetensors.torch.save_file(model.state_dict(), path)` load
/// here, and files written here load with `safetensors.torch.load_file` (both checked by tests and
/// `Tools/fixtures/check_ember_written.py`).
public enum Safetensors {
    /// The dtypes Ember reads and their sizes in bytes, by their safetensors names.
    static let readable: [String: Int] = ["F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1]

    /// The format's header size limit (the reference implementation's).
    public static let maxHeaderLength: UInt64 = 100_000_000

    /// Tensors and metadata read from a file.
    public struct Contents {
        /// Tensors by name.
        public var tensors: [String: Tensor]
        /// Names in the order their data appears in the file.
        public var names: [String]
        /// The `__metadata__` map (empty when absent).
        public var metadata: [String: String]
        /// Each tensor's dtype as stored in the file (`"F16"`, `"I32"`, ...), which may be narrower
        /// than the Ember dtype it was read into.
        public var storedDTypes: [String: String]

        /// Each tensor's name, stored dtype and shape, in file order: what a file holds, for
        /// listing (`ember inspect`).
        public var listing: [(name: String, storedDType: String, shape: Shape)] {
            names.map { ($0, storedDTypes[$0] ?? "?", tensors[$0]?.shape ?? []) }
        }
    }

    /// Reads every tensor in the file at `path`.
    ///
    /// The file is copied into memory, never memory-mapped: a mapped file truncated by another
    /// process while it is decoded would kill this one with SIGBUS. A file replaced by rename
    /// (``AtomicFile``) is read either whole old or whole new.
    public static func read(contentsOf path: String) throws(SafetensorsError) -> Contents {
        try decode(fileContents(path), path: path)
    }

    /// A copy in memory of the file at `path` (never a memory map; see ``read(contentsOf:)``).
    static func fileContents(_ path: String) throws(SafetensorsError) -> Data {
        do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .unreadable(path: path, reason: error.localizedDescription)
        }
    }

    /// Decodes a safetensors image held in memory; `path` is only used in errors.
    public static func decode(_ data: Data, path: String = "<memory>") throws(SafetensorsError) -> Contents {
        let result: Result<Contents, SafetensorsError> = data.withUnsafeBytes { raw in
            Result { () throws(SafetensorsError) in try decode(raw, path: path) }
        }
        return try result.get()
    }

    /// One validated header entry.
    private struct Entry {
        var name: String
        var dtype: String
        var shape: Shape
        var begin: Int
        var end: Int
    }

    private static func decode(_ raw: UnsafeRawBufferPointer, path: String) throws(SafetensorsError) -> Contents {
        guard raw.count >= 8 else {
            throw .truncated(path: path, detail: "\(raw.count) bytes, need at least 8 for the header length")
        }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(raw[i]) << (8 * UInt64(i)) }
        guard headerLength <= maxHeaderLength else { throw .headerTooLarge(path: path, length: headerLength) }
        let n = Int(headerLength)
        guard raw.count - 8 >= n else {
            throw .truncated(path: path, detail: "the header is \(n) bytes but only \(raw.count - 8) follow the length field")
        }
        let headerBytes = Array(raw[8..<(8 + n)])
        guard String(validating: headerBytes, as: UTF8.self) != nil else {
            throw .invalidHeader(path: path, detail: "the header is not valid UTF-8")
        }
        let json: HeaderJSON
        do { json = try HeaderJSON.parse(headerBytes) } catch {
            throw .invalidHeader(path: path, detail: "not valid JSON: \(error.message)")
        }
        guard case .object(let members) = json else {
            throw .invalidHeader(path: path, detail: "the header must be a JSON object, not \(json.kind)")
        }
        let bodyCount = raw.count - 8 - n

        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        var storedDTypes: [String: String] = [:]
        for (name, value) in members {
            if name == "__metadata__" {
                metadata = try parseMetadata(value, path: path)
                continue
            }
            let entry = try parseEntry(name, value, path: path)
            if entry.end > bodyCount {
                throw .truncated(path: path, detail: "tensor '\(name)' ends at byte \(entry.end) of the data section, which has only \(bodyCount) bytes")
            }
            entries.append(entry)
            storedDTypes[name] = entry.dtype
        }

        // The tensors must tile the data section: sorted by offsets, each starts where the
        // previous one ended, and the last ends at the end of the file.
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var cursor = 0
        var previous: String? = nil
        for e in entries {
            if e.begin < cursor {
                throw .overlap(path: path, name: e.name, other: previous ?? "")
            }
            if e.begin > cursor { throw .uncoveredBytes(path: path, range: cursor..<e.begin) }
            if e.end > e.begin { previous = e.name }
            cursor = e.end
        }
        if cursor != bodyCount { throw .uncoveredBytes(path: path, range: cursor..<bodyCount) }

        let body = raw.baseAddress.map { $0 + 8 + n }
        var tensors: [String: Tensor] = [:]
        for e in entries {
            tensors[e.name] = makeTensor(dtype: e.dtype, shape: e.shape, bytes: body.map { $0 + e.begin })
        }
        return Contents(tensors: tensors, names: entries.map(\.name), metadata: metadata, storedDTypes: storedDTypes)
    }

    private static func parseMetadata(_ value: HeaderJSON, path: String) throws(SafetensorsError) -> [String: String] {
        switch value {
        case .null: return [:]
        case .object(let pairs):
            var out: [String: String] = [:]
            for (k, v) in pairs {
                guard case .string(let s) = v else {
                    throw .invalidHeader(path: path, detail: "__metadata__ must map strings to strings, but '\(k)' is \(v.kind)")
                }
                out[k] = s
            }
            return out
        default:
            throw .invalidHeader(path: path, detail: "__metadata__ must be an object of strings, not \(value.kind)")
        }
    }

    private static func parseEntry(_ name: String, _ value: HeaderJSON, path: String) throws(SafetensorsError) -> Entry {
        func bad(_ detail: String) -> SafetensorsError { .invalidTensor(path: path, name: name, detail: detail) }
        guard case .object(let fields) = value else { throw bad("the entry must be an object, not \(value.kind)") }
        func field(_ key: String) throws(SafetensorsError) -> HeaderJSON {
            guard let v = fields.first(where: { $0.key == key })?.value else { throw bad("missing \"\(key)\"") }
            return v
        }
        guard case .string(let dtype) = try field("dtype") else { throw bad("\"dtype\" must be a string") }
        guard case .array(let dims) = try field("shape") else { throw bad("\"shape\" must be an array of integers") }
        guard case .array(let offsets) = try field("data_offsets"), offsets.count == 2 else {
            throw bad("\"data_offsets\" must be an array of two integers")
        }
        var shape = Shape()
        var elements = 1
        // The product of the non-zero dimensions must fit too: a zero dimension makes the tensor
        // empty, but its strides are products of the other dimensions.
        var nonZero = 1
        guard dims.count <= Shape.maxRank else { throw bad("rank \(dims.count) exceeds Ember's maximum of \(Shape.maxRank)") }
        for d in dims {
            guard let v = d.int, v >= 0 else { throw bad("shape entries must be non-negative integers, found \(d.kind)") }
            let (p, overflow) = nonZero.multipliedReportingOverflow(by: Swift.max(v, 1))
            guard !overflow else { throw bad("the element count of shape \(dims.compactMap(\.int)) overflows") }
            nonZero = p
            elements = v == 0 ? 0 : elements * v
            shape.append(v)
        }
        guard let begin = offsets[0].int, let end = offsets[1].int, begin >= 0, end >= 0 else {
            throw bad("data_offsets must be non-negative integers, found [\(offsets[0].kind), \(offsets[1].kind)]")
        }
        guard begin <= end else { throw bad("data_offsets [\(begin), \(end)] end before they begin") }
        guard let size = readable[dtype] else { throw .unsupportedDType(path: path, name: name, dtype: dtype) }
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: size)
        guard !overflow else { throw bad("the byte size of shape \(shape) with dtype \(dtype) overflows") }
        guard bytes == end - begin else {
            throw .sizeMismatch(path: path, name: name, expectedBytes: bytes, actualBytes: end - begin)
        }
        return Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    /// Builds a tensor from `shape`'s worth of little-endian `dtype` elements at `bytes` (which may
    /// be unaligned; `nil` only for an empty data section, when the tensor has no elements).
    private static func makeTensor(dtype: String, shape: Shape, bytes: UnsafeRawPointer?) -> Tensor {
        let n = shape.elementCount
        func load<T>(_: T.Type, _ i: Int) -> T { bytes!.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self) }
        func build<T: TensorScalar>(_: T.Type, _ element: (Int) -> T) -> Tensor {
            let t = Tensor(uninitializedShape: shape, dtype: T.dtype)
            let p = t.mutablePointer(as: T.self)
            for i in 0..<n { p[i] = element(i) }
            return t
        }
        func copy(_ dt: DType) -> Tensor {
            let t = Tensor(uninitializedShape: shape, dtype: dt)
            if n > 0 { t.rawPointer.copyMemory(from: bytes!, byteCount: n * dt.itemSize) }
            return t
        }
        switch dtype {
        #if _endian(little)
        case "F32": return copy(.float32)
        case "F64": return copy(.float64)
        case "I64": return copy(.int64)
        #else
        case "F32": return build(Float.self) { Float(bitPattern: UInt32(littleEndian: load(UInt32.self, $0))) }
        case "F64": return build(Double.self) { Double(bitPattern: UInt64(littleEndian: load(UInt64.self, $0))) }
        case "I64": return build(Int64.self) { Int64(littleEndian: load(Int64.self, $0)) }
        #endif
        case "I32": return build(Int64.self) { Int64(Int32(littleEndian: load(Int32.self, $0))) }
        case "U8": return build(Int64.self) { Int64(load(UInt8.self, $0)) }
        case "BOOL": return build(Bool.self) { load(UInt8.self, $0) != 0 }  // any non-zero byte is true
        case "F16": return build(Float.self) { halfToFloat(UInt16(littleEndian: load(UInt16.self, $0))) }
        case "BF16": return build(Float.self) { Float(bitPattern: UInt32(UInt16(littleEndian: load(UInt16.self, $0))) << 16) }
        default: preconditionFailure("Safetensors: dtype \(dtype) passed validation but has no reader")
        }
    }

    /// IEEE 754 binary16 to binary32 (portable: no reliance on `Float16`, which x86 macOS lacks).
    package static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exp = Int((h >> 10) & 0x1F)
        let mant = UInt32(h & 0x3FF)
        if exp == 0 {
            let v = Float(mant) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -v : v
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
        return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
    }

    // MARK: writing

    /// Writes `tensors` (data in the order given) and `metadata` to `path`, atomically: the bytes
    /// go to a temporary file in the same folder that is then renamed over `path`, so a crash never
    /// leaves a half-written file.
    ///
    /// Tensor names must be unique and must not be `__metadata__` (a programmer error).
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], to path: String) throws(SafetensorsError) {
        let data = encode(tensors, metadata: metadata)
        do { try AtomicFile.write(data, to: path) } catch {
            switch error { case .unwritable(_, let reason): throw .unwritable(path: path, reason: reason) }
        }
    }

    /// Writes a name-to-tensor map, in name order (a `state_dict`-like dictionary).
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String) throws(SafetensorsError) {
        try write(tensors.sorted { $0.key < $1.key }, metadata: metadata, to: path)
    }

    /// Encodes tensors as a safetensors image: the header is compact JSON with `__metadata__`
    /// first (keys sorted) and the tensors in the order given, padded with spaces so that the data
    /// starts at a multiple of 8 bytes, as the reference writer does.
    public static func encode(_ tensors: [(String, Tensor)], metadata: [String: String] = [:]) -> Data {
        var seen = Set<String>()
        var parts: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key < $1.key }.map { HeaderJSON.quoted($0.key) + ":" + HeaderJSON.quoted($0.value) }
            parts.append("\"__metadata__\":{" + pairs.joined(separator: ",") + "}")
        }
        var contiguous: [Tensor] = []
        var offset = 0
        for (name, t) in tensors {
            precondition(name != "__metadata__", "Safetensors.encode: '__metadata__' is reserved and cannot name a tensor")
            precondition(seen.insert(name).inserted, "Safetensors.encode: duplicate tensor name '\(name)'")
            let c = t.contiguousRaw
            let bytes = c.count * c.dtype.itemSize
            let dt: String
            switch c.dtype { case .float32: dt = "F32"; case .float64: dt = "F64"; case .int64: dt = "I64"; case .bool: dt = "BOOL" }
            let shape = c.shape.map(String.init).joined(separator: ",")
            parts.append(HeaderJSON.quoted(name) + ":{\"dtype\":\"\(dt)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
            contiguous.append(c)
        }
        var header = Array(("{" + parts.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var out = Data(capacity: 8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for c in contiguous where c.count > 0 {
            #if _endian(little)
            out.append(UnsafeRawPointer(c.rawPointer).assumingMemoryBound(to: UInt8.self), count: c.count * c.dtype.itemSize)
            #else
            #error("Safetensors.encode: big-endian hosts need byte swapping")
            #endif
        }
        return out
    }
}
