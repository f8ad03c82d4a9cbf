import EmberAutograd
import Foundation

/// Reads and writes the safetensors format: an 8-byte little-endian header length, a JSON header
/// mapping each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative
/// to the byte after the header) plus an optional `"__metadata__"` string map, then the raw
/// little-endian data.
///
/// PyTorch parity: files written by `safetensors.torch.save_file(model.state_dict(), path)` load
/// here, and files written here load with `safetensors.torch.load_file`.
public enum Safetensors {
    /// The dtypes Ember reads, by their safetensors names. F16 and BF16 are widened to float32;
    /// I32 to int64; U8 to int64.
    static let readable: Set<String> = ["F32", "F64", "F16", "BF16", "I64", "I32", "U8", "BOOL"]

    /// Tensors and metadata read from a file.
    public struct Contents {
        /// Tensors by name, in file (offset) order in `names`.
        public var tensors: [String: Tensor]
        /// Names in the order their data appears in the file.
        public var names: [String]
        /// The `__metadata__` map (empty when absent).
        public var metadata: [String: String]
    }

    /// Reads every tensor in the file at `path`.
    public static func read(contentsOf path: String) throws(SafetensorsError) -> Contents {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .unreadable(path: path, reason: error.localizedDescription)
        }
        return try decode(data, path: path)
    }

    /// Decodes a safetensors image held in memory; `path` is only used in errors.
    public static func decode(_ data: Data, path: String = "<memory>") throws(SafetensorsError) -> Contents {
        guard data.count >= 8 else { throw .truncated(path: path, detail: "\(data.count) bytes, need at least 8 for the header length") }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(data[data.startIndex + i]) << (8 * UInt64(i)) }
        guard headerLength <= 100_000_000 else {
            throw .invalidHeader(path: path, detail: "header length \(headerLength) exceeds the 100 MB limit")
        }
        guard UInt64(data.count - 8) >= headerLength else {
            throw .truncated(path: path, detail: "header length \(headerLength) but only \(data.count - 8) bytes follow")
        }
        let headerData = data.subdata(in: (data.startIndex + 8)..<(data.startIndex + 8 + Int(headerLength)))
        let header: Header
        do { header = try JSONDecoder().decode(Header.self, from: headerData) } catch let error as HeaderError {
            switch error {
            case .entry(let name, let detail): throw .invalidTensor(path: path, name: name, detail: detail)
            case .metadata(let detail): throw .invalidHeader(path: path, detail: detail)
            }
        } catch {
            throw .invalidHeader(path: path, detail: "not a JSON object of tensor entries")
        }
        let bodyStart = data.startIndex + 8 + Int(headerLength)
        let bodyCount = data.count - 8 - Int(headerLength)

        var entries: [(name: String, dtype: String, shape: [Int], begin: Int, end: Int)] = []
        for (name, info) in header.entries {
            let (dtype, shape) = (info.dtype, info.shape)
            guard readable.contains(dtype) else { throw .invalidTensor(path: path, name: name, detail: "unsupported dtype \(dtype)") }
            guard shape.allSatisfy({ $0 >= 0 }) else {
                throw .invalidTensor(path: path, name: name, detail: "shape \(shape) has a negative dimension")
            }
            guard shape.count <= Shape.maxRank else {
                throw .invalidTensor(path: path, name: name, detail: "rank \(shape.count) exceeds Ember's maximum of \(Shape.maxRank)")
            }
            guard info.dataOffsets.count == 2 else {
                throw .invalidTensor(path: path, name: name, detail: "data_offsets is not a pair of integers")
            }
            let (begin, end) = (info.dataOffsets[0], info.dataOffsets[1])
            guard begin >= 0, end >= begin, end <= bodyCount else {
                throw .invalidTensor(path: path, name: name, detail: "data_offsets [\(begin), \(end)] outside the \(bodyCount)-byte data section")
            }
            var count = 1
            for d in shape {
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard !o else { throw .invalidTensor(path: path, name: name, detail: "shape \(shape) overflows") }
                count = p
            }
            guard count * byteSize(dtype) == end - begin else {
                throw .invalidTensor(path: path, name: name,
                                     detail: "shape \(shape) of \(dtype) needs \(count * byteSize(dtype)) bytes but data_offsets span \(end - begin)")
            }
            entries.append((name, dtype, shape, begin, end))
        }
        let metadata = header.metadata
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var cursor = 0
        for e in entries {
            guard e.begin == cursor else {
                throw .invalidTensor(path: path, name: e.name,
                                     detail: e.begin < cursor ? "data overlaps the previous tensor" : "gap in the data section before this tensor")
            }
            cursor = e.end
        }
        guard cursor == bodyCount else {
            throw .invalidHeader(path: path, detail: "data section has \(bodyCount - cursor) bytes not covered by any tensor")
        }

        var tensors: [String: Tensor] = [:]
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let body = raw.baseAddress! + (bodyStart - data.startIndex)
            for e in entries {
                tensors[e.name] = makeTensor(dtype: e.dtype, shape: Shape(e.shape), bytes: body + e.begin)
            }
        }
        return Contents(tensors: tensors, names: entries.map(\.name), metadata: metadata)
    }

    /// Writes `tensors` (in the order given) to `path`, atomically: the data goes to a temporary
    /// file in the same folder that is then renamed over `path`, so a crash never leaves a
    /// half-written file.
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], to path: String) throws(SafetensorsError) {
        let data = encode(tensors, metadata: metadata)
        let url = URL(fileURLWithPath: path)
        do { try data.write(to: url, options: .atomic) } catch {
            throw .unwritable(path: path, reason: error.localizedDescription)
        }
    }

    /// Encodes tensors as a safetensors image.
    public static func encode(_ tensors: [(String, Tensor)], metadata: [String: String] = [:]) -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var body = Data()
        for (name, t) in tensors {
            precondition(name != "__metadata__", "Safetensors.encode: '__metadata__' is reserved")
            precondition(header[name] == nil, "Safetensors.encode: duplicate tensor name '\(name)'")
            let c = t.detached().contiguous()
            let begin = body.count
            body.append(Data(bytes: c.rawPointer, count: c.count * c.dtype.itemSize))
            let dt: String
            switch c.dtype { case .float32: dt = "F32"; case .float64: dt = "F64"; case .int64: dt = "I64"; case .bool: dt = "BOOL" }
            header[name] = ["dtype": dt, "shape": c.shape.array, "data_offsets": [begin, body.count]] as [String: Any]
        }
        var json = (try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) ?? Data("{}".utf8)
        while (8 + json.count) % 8 != 0 { json.append(0x20) }  // pad with spaces to 8-byte alignment
        var out = Data()
        var n = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(body)
        return out
    }

    /// One tensor's header entry.
    struct TensorInfo: Decodable {
        var dtype: String
        var shape: [Int]
        var dataOffsets: [Int]
        enum CodingKeys: String, CodingKey { case dtype, shape, dataOffsets = "data_offsets" }
    }

    enum HeaderError: Error {
        case entry(String, String)
        case metadata(String)
    }

    /// The JSON header: tensor entries by name plus the optional `__metadata__` string map.
    struct Header: Decodable {
        var entries: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: Key.self)
            for key in c.allKeys {
                if key.stringValue == "__metadata__" {
                    do { metadata = try c.decode([String: String].self, forKey: key) } catch {
                        throw HeaderError.metadata("__metadata__ must map strings to strings")
                    }
                } else {
                    do { entries[key.stringValue] = try c.decode(TensorInfo.self, forKey: key) } catch {
                        throw HeaderError.entry(key.stringValue, "entry must have a string dtype, an integer list shape and integer data_offsets")
                    }
                }
            }
        }
    }

    private static func byteSize(_ dtype: String) -> Int {
        switch dtype {
        case "F64", "I64": 8
        case "F32", "I32": 4
        case "F16", "BF16": 2
        default: 1
        }
    }

    private static func makeTensor(dtype: String, shape: Shape, bytes: UnsafeRawPointer) -> Tensor {
        let n = shape.elementCount
        func load<T>(_: T.Type, _ i: Int) -> T { bytes.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self) }
        switch dtype {
        case "F32": return Tensor((0..<n).map { Float(bitPattern: UInt32(littleEndian: load(UInt32.self, $0))) }, shape: shape)
        case "F64": return Tensor((0..<n).map { Double(bitPattern: UInt64(littleEndian: load(UInt64.self, $0))) }, shape: shape)
        case "I64": return Tensor((0..<n).map { Int64(littleEndian: load(Int64.self, $0)) }, shape: shape)
        case "I32": return Tensor((0..<n).map { Int64(Int32(littleEndian: load(Int32.self, $0))) }, shape: shape)
        case "U8": return Tensor((0..<n).map { Int64(load(UInt8.self, $0)) }, shape: shape)
        case "BOOL": return Tensor((0..<n).map { load(UInt8.self, $0) != 0 }, shape: shape)
        case "F16":
            return Tensor((0..<n).map { halfToFloat(UInt16(littleEndian: load(UInt16.self, $0))) }, shape: shape)
        case "BF16":
            return Tensor((0..<n).map { Float(bitPattern: UInt32(UInt16(littleEndian: load(UInt16.self, $0))) << 16) }, shape: shape)
        default: fatalError("unreachable: dtype \(dtype) was validated")
        }
    }

    /// IEEE 754 binary16 to binary32 (portable: no reliance on `Float16`, which x86 macOS lacks).
    static func halfToFloat(_ h: UInt16) -> Float {
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
}
