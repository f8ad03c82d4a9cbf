/// The element type of a tensor.
///
/// PyTorch parity: `torch.float32` (the default for compute), `torch.float64`, `torch.int64`
/// (indices, labels) and `torch.bool` (masks). Ember does not promote silently across dtypes where
/// PyTorch would refuse; see `Tensor`'s arithmetic for the promotion rules it does follow.
public enum DType: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case float32
    case float64
    case int64
    case bool

    /// Bytes per element.
    @inlinable public var itemSize: Int {
        switch self {
        case .float32: 4
        case .float64: 8
        case .int64: 8
        case .bool: 1
        }
    }

    /// Whether the dtype is a floating-point type (and so can require gradients).
    @inlinable public var isFloatingPoint: Bool { self == .float32 || self == .float64 }

    /// Compares cases directly. Without this, `==` resolves to `RawRepresentable`'s and compares
    /// the raw strings, which showed up as a string comparison in every op's profile.
    @inlinable public static func == (a: DType, b: DType) -> Bool {
        unsafeBitCast(a, to: UInt8.self) == unsafeBitCast(b, to: UInt8.self)
    }

    @inlinable public func hash(into hasher: inout Hasher) {
        hasher.combine(unsafeBitCast(self, to: UInt8.self))
    }

    /// PyTorch's spelling, used in printing: `torch.float32`.
    public var description: String { "torch.\(rawValue)" }
}
