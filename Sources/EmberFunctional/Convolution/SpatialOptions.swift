/// A size per spatial dimension (kernel size, stride, padding, dilation), written as one integer
/// for every dimension or as one per dimension: `3`, `[3, 5]`.
///
/// PyTorch parity: the `int or tuple` arguments of `torch.nn.Conv2d`, `MaxPool2d` and friends.
public struct SpatialSize: ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral, Equatable, Sendable,
    CustomStringConvertible
{
    /// One value (for every dimension) or one per dimension.
    public var values: [Int]

    public init(_ values: [Int]) { self.values = values }
    public init(_ value: Int) { values = [value] }
    public init(integerLiteral value: Int) { values = [value] }
    public init(arrayLiteral elements: Int...) { values = elements }

    /// The values for `dims` spatial dimensions; stops with a message naming `op` and `argument`
    /// when the count is neither 1 nor `dims`.
    package func expanded(to dims: Int, _ argument: String, op: @autoclosure () -> String) -> [Int] {
        if values.count == 1 { return Array(repeating: values[0], count: dims) }
        precondition(values.count == dims,
                     "\(op()): expected \(argument) to be a single integer value or a list of \(dims) values to match the convolution dimensions, but got \(argument)=\(values)")
        return values
    }

    public var description: String { values.count == 1 ? "\(values[0])" : "(\(values.map(String.init).joined(separator: ", ")))" }
}

/// A convolution's padding: explicit sizes, or `.same` (output as large as the input; stride 1
/// only) or `.valid` (no padding).
///
/// PyTorch parity: `padding` of `torch.nn.functional.conv2d` and `torch.nn.Conv2d` (`int`, tuple,
/// `"same"`, `"valid"`). For `.same` with an even dilated kernel the extra element goes after the
/// input, as in PyTorch.
public enum ConvPadding: ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral, Equatable, Sendable,
    CustomStringConvertible
{
    case explicit([Int])
    case same
    case valid

    public init(integerLiteral value: Int) { self = .explicit([value]) }
    public init(arrayLiteral elements: Int...) { self = .explicit(elements) }

    public var description: String {
        switch self {
        case .explicit(let v): SpatialSize(v).description
        case .same: "same"
        case .valid: "valid"
        }
    }
}

/// How a convolution module pads its input.
///
/// PyTorch parity: `padding_mode` of `torch.nn.Conv{1,2,3}d` (`'zeros'`, `'reflect'`,
/// `'replicate'`, `'circular'`).
public enum PaddingMode: String, Sendable, CaseIterable {
    case zeros, reflect, replicate, circular
}

/// How ``pad(_:_:mode:value:)`` fills the new elements.
///
/// PyTorch parity: `mode` of `torch.nn.functional.pad`.
public enum PadMode: String, Sendable, CaseIterable {
    case constant, reflect, replicate, circular
}
