import EmberStorage
import RealModule

/// A Swift type that can be stored in a tensor element.
///
/// PyTorch parity: `Float` is `torch.float32`, `Double` is `torch.float64`, `Int64` (and `Int`,
/// stored as int64) is `torch.int64`, `Bool` is `torch.bool`.
public protocol TensorScalar: Sendable, Equatable {
    /// The dtype that stores this type.
    static var dtype: DType { get }
    /// Converts from a double (truncating toward zero for integers, non-zero is `true` for Bool).
    init(fromDouble value: Double)
    /// The value as a double.
    var doubleValue: Double { get }
}

/// An element type with arithmetic: `Float`, `Double` or `Int64`.
public protocol TensorNumeric: TensorScalar, Numeric, Comparable {}

/// A floating-point element type: `Float` or `Double`.
public protocol TensorFloat: TensorNumeric, BinaryFloatingPoint, Real {}

extension Int64: TensorNumeric {}

extension Float: TensorFloat {
    @inlinable public static var dtype: DType { .float32 }
    @inlinable public init(fromDouble value: Double) { self = Float(value) }
    @inlinable public var doubleValue: Double { Double(self) }
}

extension Double: TensorFloat {
    @inlinable public static var dtype: DType { .float64 }
    @inlinable public init(fromDouble value: Double) { self = value }
    @inlinable public var doubleValue: Double { self }
}

extension Int64: TensorScalar {
    @inlinable public static var dtype: DType { .int64 }
    /// Truncates toward zero, saturating: NaN gives 0, values at or beyond +-2^63 (and the
    /// infinities) give `.max` / `.min`. (PyTorch leaves these undefined: INT64_MIN on x86.)
    @inlinable public init(fromDouble value: Double) {
        if value.isNaN {
            self = 0
        } else if value >= 0x1p63 {
            self = .max
        } else if value < -0x1p63 {
            self = .min
        } else {
            self = Int64(value.rounded(.towardZero))
        }
    }
    @inlinable public var doubleValue: Double { Double(self) }
}

extension Bool: TensorScalar {
    @inlinable public static var dtype: DType { .bool }
    @inlinable public init(fromDouble value: Double) { self = value != 0 }
    @inlinable public var doubleValue: Double { self ? 1 : 0 }
}
