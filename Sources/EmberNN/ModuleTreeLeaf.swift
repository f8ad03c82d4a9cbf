import EmberAutograd
import EmberFunctional
import EmberTensor
import EmberStorage

/// A type that module discovery never looks inside.
///
/// Deciding this before building a `Mirror` keeps traversal cheap: reflecting over a 100k-element
/// `[Float]` would cost half a second. Conform your own types when they hold no modules and are
/// large. `Parameter` and `Buffer` are found by discovery themselves, so they are not leaves here.
public protocol ModuleTreeLeaf {}

extension Tensor: ModuleTreeLeaf {}
extension Shape: ModuleTreeLeaf {}
extension DType: ModuleTreeLeaf {}
extension Mode: ModuleTreeLeaf {}
extension DiagnosticKind: ModuleTreeLeaf {}
extension String: ModuleTreeLeaf {}
extension Substring: ModuleTreeLeaf {}
extension Bool: ModuleTreeLeaf {}
extension Int: ModuleTreeLeaf {}
extension Int8: ModuleTreeLeaf {}
extension Int16: ModuleTreeLeaf {}
extension Int32: ModuleTreeLeaf {}
extension Int64: ModuleTreeLeaf {}
extension UInt: ModuleTreeLeaf {}
extension UInt8: ModuleTreeLeaf {}
extension UInt16: ModuleTreeLeaf {}
extension UInt32: ModuleTreeLeaf {}
extension UInt64: ModuleTreeLeaf {}
extension Float: ModuleTreeLeaf {}
extension Double: ModuleTreeLeaf {}
extension Character: ModuleTreeLeaf {}
extension Array: ModuleTreeLeaf where Element: ModuleTreeLeaf {}
extension ContiguousArray: ModuleTreeLeaf where Element: ModuleTreeLeaf {}
extension Set: ModuleTreeLeaf where Element: ModuleTreeLeaf {}
extension Optional: ModuleTreeLeaf where Wrapped: ModuleTreeLeaf {}
extension Dictionary: ModuleTreeLeaf where Key: ModuleTreeLeaf, Value: ModuleTreeLeaf {}
extension RecurrentWorkspace: ModuleTreeLeaf {}
