/// Marks a stored container whose modules are named as if the holder held them directly:
/// `@Flattened var layers: [Module]` names its elements `0`, `1`, ... instead of `layers.0`.
///
/// ``Sequential`` uses it so its state-dict keys are PyTorch's (`0.weight`, `2.bias`).
@propertyWrapper
public struct Flattened<Value> {
    public var wrappedValue: Value
    public init(wrappedValue: Value) { self.wrappedValue = wrappedValue }
}

/// Type-erased access to a ``Flattened`` container's contents for discovery.
protocol FlattenedNames {
    var flattenedContents: Any { get }
}

extension Flattened: FlattenedNames {
    var flattenedContents: Any { wrappedValue }
}
