/// Why a safetensors file could not be read or written. Each case names the file (and the tensor
/// where there is one) and what was wrong, so a CLI can print it as one line.
///
/// Reading never crashes on a malformed file: every check of the format has a case here.
public enum SafetensorsError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened or read.
    case unreadable(path: String, reason: String)
    /// The file ends too early: before the 8-byte header length, before the end of the header it
    /// announces, or before the end of a tensor's data (a partial download or copy).
    case truncated(path: String, detail: String)
    /// The header length exceeds the format's limit of 100,000,000 bytes.
    case headerTooLarge(path: String, length: UInt64)
    /// The header is not UTF-8 JSON, not a JSON object, repeats a key, nests too deeply, or has a
    /// `__metadata__` that is not a map of strings to strings.
    case invalidHeader(path: String, detail: String)
    /// A tensor's entry is malformed: `dtype`, `shape` or `data_offsets` missing or of the wrong
    /// JSON type, a negative or overflowing dimension, a rank above Ember's maximum, or
    /// `data_offsets` that are not an increasing pair of non-negative integers.
    case invalidTensor(path: String, name: String, detail: String)
    /// A tensor's dtype is not one Ember reads (F32, F64, F16, BF16, I64, I32, U8, BOOL).
    case unsupportedDType(path: String, name: String, dtype: String)
    /// A tensor's `data_offsets` span a different number of bytes than its shape and dtype need.
    case sizeMismatch(path: String, name: String, expectedBytes: Int, actualBytes: Int)
    /// A tensor's bytes overlap those of another tensor.
    case overlap(path: String, name: String, other: String)
    /// Bytes of the data section (offsets relative to its start) belong to no tensor: a gap
    /// between tensors or trailing bytes. The format requires the tensors to cover it exactly.
    case uncoveredBytes(path: String, range: Range<Int>)
    /// The file could not be written.
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): "cannot read safetensors file '\(p)': \(r)"
        case .truncated(let p, let d): "truncated safetensors file '\(p)': \(d)"
        case .headerTooLarge(let p, let n):
            "invalid safetensors file '\(p)': header length \(n) exceeds the 100000000-byte limit (not a safetensors file?)"
        case .invalidHeader(let p, let d): "invalid safetensors header in '\(p)': \(d)"
        case .invalidTensor(let p, let n, let d): "invalid tensor '\(n)' in safetensors file '\(p)': \(d)"
        case .unsupportedDType(let p, let n, let d):
            "tensor '\(n)' in safetensors file '\(p)' has dtype \(d), which Ember cannot read (supported: F32, F64, F16, BF16, I64, I32, U8, BOOL)"
        case .sizeMismatch(let p, let n, let e, let a):
            "invalid tensor '\(n)' in safetensors file '\(p)': its shape and dtype need \(e) bytes but data_offsets span \(a)"
        case .overlap(let p, let n, let o): "invalid safetensors file '\(p)': the data of tensor '\(n)' overlaps that of '\(o)'"
        case .uncoveredBytes(let p, let r):
            "invalid safetensors file '\(p)': bytes \(r.lowerBound)..<\(r.upperBound) of the data section belong to no tensor"
        case .unwritable(let p, let r): "cannot write safetensors file '\(p)': \(r)"
        }
    }
}
