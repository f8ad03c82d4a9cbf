/// Why a safetensors file could not be read or written. Each case names the file and what was
/// wrong, so a CLI can print it as one line.
public enum SafetensorsError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened or read.
    case unreadable(path: String, reason: String)
    /// The file is shorter than its header says.
    case truncated(path: String, detail: String)
    /// The JSON header is not valid or does not follow the format.
    case invalidHeader(path: String, detail: String)
    /// A tensor entry is inconsistent (dtype, shape, offsets).
    case invalidTensor(path: String, name: String, detail: String)
    /// The file could not be written.
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): "cannot read safetensors file '\(p)': \(r)"
        case .truncated(let p, let d): "truncated safetensors file '\(p)': \(d)"
        case .invalidHeader(let p, let d): "invalid safetensors header in '\(p)': \(d)"
        case .invalidTensor(let p, let n, let d): "invalid tensor '\(n)' in safetensors file '\(p)': \(d)"
        case .unwritable(let p, let r): "cannot write safetensors file '\(p)': \(r)"
        }
    }
}
