import EmberAutograd
import EmberFunctional
import EmberTensor

/// Pads the last dimensions of its input with a fixed mode; the shared implementation of the
/// padding modules. `padding` lists (before, after) pairs from the last dimension, as
/// ``pad(_:_:mode:value:)`` takes them.
///
/// PyTorch parity: `torch.nn.ZeroPad{1,2,3}d`, `ConstantPad{1,2,3}d`, `ReflectionPad{1,2,3}d`,
/// `ReplicationPad{1,2,3}d`, `CircularPad{1,2,3}d`: one integer pads every side alike.
open class PadBase: Module {
    public let padding: [Int]
    public let padMode: PadMode
    public let value: Double
    let typeLabel: String

    init(_ name: String, dims: Int, _ padding: [Int], mode: PadMode, value: Double) {
        precondition(padding.count == 1 || padding.count == 2 * dims,
                     "\(name): padding must be one integer or \(2 * dims) integers, got \(padding)")
        self.padding = padding.count == 1 ? Array(repeating: padding[0], count: 2 * dims) : padding
        self.padMode = mode
        self.value = value
        typeLabel = name
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        pad(input, padding, mode: padMode, value: value, context: { self.errorContext })
    }

    open override var extraDescription: String {
        let p = "(\(padding.map(String.init).joined(separator: ", ")))"
        return padMode == .constant && !typeLabel.hasPrefix("Zero") ? "padding=\(p), value=\(formatPython(value))" : p
    }
}

/// PyTorch parity: `torch.nn.ZeroPad1d(padding)`.
public final class ZeroPad1d: PadBase { public init(_ padding: [Int]) { super.init("ZeroPad1d", dims: 1, padding, mode: .constant, value: 0) } }
/// PyTorch parity: `torch.nn.ZeroPad2d(padding)`: `[left, right, top, bottom]` or one integer.
public final class ZeroPad2d: PadBase { public init(_ padding: [Int]) { super.init("ZeroPad2d", dims: 2, padding, mode: .constant, value: 0) } }
/// PyTorch parity: `torch.nn.ZeroPad3d(padding)`.
public final class ZeroPad3d: PadBase { public init(_ padding: [Int]) { super.init("ZeroPad3d", dims: 3, padding, mode: .constant, value: 0) } }
/// PyTorch parity: `torch.nn.ConstantPad1d(padding, value)`.
public final class ConstantPad1d: PadBase {
    public init(_ padding: [Int], _ value: Double) { super.init("ConstantPad1d", dims: 1, padding, mode: .constant, value: value) }
}
/// PyTorch parity: `torch.nn.ConstantPad2d(padding, value)`.
public final class ConstantPad2d: PadBase {
    public init(_ padding: [Int], _ value: Double) { super.init("ConstantPad2d", dims: 2, padding, mode: .constant, value: value) }
}
/// PyTorch parity: `torch.nn.ConstantPad3d(padding, value)`.
public final class ConstantPad3d: PadBase {
    public init(_ padding: [Int], _ value: Double) { super.init("ConstantPad3d", dims: 3, padding, mode: .constant, value: value) }
}
/// PyTorch parity: `torch.nn.ReflectionPad1d(padding)`.
public final class ReflectionPad1d: PadBase { public init(_ padding: [Int]) { super.init("ReflectionPad1d", dims: 1, padding, mode: .reflect, value: 0) } }
/// PyTorch parity: `torch.nn.ReflectionPad2d(padding)`.
public final class ReflectionPad2d: PadBase { public init(_ padding: [Int]) { super.init("ReflectionPad2d", dims: 2, padding, mode: .reflect, value: 0) } }
/// PyTorch parity: `torch.nn.ReflectionPad3d(padding)`.
public final class ReflectionPad3d: PadBase { public init(_ padding: [Int]) { super.init("ReflectionPad3d", dims: 3, padding, mode: .reflect, value: 0) } }
/// PyTorch parity: `torch.nn.ReplicationPad1d(padding)`.
public final class ReplicationPad1d: PadBase { public init(_ padding: [Int]) { super.init("ReplicationPad1d", dims: 1, padding, mode: .replicate, value: 0) } }
/// PyTorch parity: `torch.nn.ReplicationPad2d(padding)`.
public final class ReplicationPad2d: PadBase { public init(_ padding: [Int]) { super.init("ReplicationPad2d", dims: 2, padding, mode: .replicate, value: 0) } }
/// PyTorch parity: `torch.nn.ReplicationPad3d(padding)`.
public final class ReplicationPad3d: PadBase { public init(_ padding: [Int]) { super.init("ReplicationPad3d", dims: 3, padding, mode: .replicate, value: 0) } }
/// PyTorch parity: `torch.nn.CircularPad1d(padding)`.
public final class CircularPad1d: PadBase { public init(_ padding: [Int]) { super.init("CircularPad1d", dims: 1, padding, mode: .circular, value: 0) } }
/// PyTorch parity: `torch.nn.CircularPad2d(padding)`.
public final class CircularPad2d: PadBase { public init(_ padding: [Int]) { super.init("CircularPad2d", dims: 2, padding, mode: .circular, value: 0) } }
/// PyTorch parity: `torch.nn.CircularPad3d(padding)`.
public final class CircularPad3d: PadBase { public init(_ padding: [Int]) { super.init("CircularPad3d", dims: 3, padding, mode: .circular, value: 0) } }
