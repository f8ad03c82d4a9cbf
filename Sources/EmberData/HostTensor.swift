import EmberAutograd
import EmberTensor
import EmberStorage

/// An n-dimensional array of host values with a shape and a dtype: the `Sendable` form of a
/// tensor's data, which can cross from a data-loading thread to the training thread.
///
/// `Tensor` is not `Sendable` (it shares storage and may carry an autograd graph), so datasets,
/// samples and collated batches hold `HostTensor`s; the loader turns a collated batch into
/// `Tensor`s on the consuming side (`Tensor(host)`).
///
/// Values are stored in row-major order in a Swift array of the dtype's element type. Copying a
/// `HostTensor` is cheap (the arrays are copy-on-write).
///
/// PyTorch parity: plays the role of the CPU tensors a `Dataset` returns and `default_collate`
/// stacks; it has no operations beyond reshaping, row selection, stacking and dtype conversion.
public struct HostTensor: Sendable, Equatable, CustomStringConvertible {
    /// The values, one case per dtype.
    public enum Scalars: Sendable, Equatable {
        case float32([Float])
        case float64([Double])
        case int64([Int64])
        case bool([Bool])
    }

    /// The values in row-major order.
    public private(set) var scalars: Scalars
    /// The dimensions.
    public private(set) var shape: Shape

    /// A host tensor from `scalars` and a `shape` whose element count matches theirs.
    public init(_ scalars: Scalars, shape: Shape) {
        precondition(shape.allSatisfy { $0 >= 0 }, "HostTensor: negative dimension in shape \(shape)")
        let n = scalars.count
        precondition(n == shape.elementCount,
                     "HostTensor: \(n) values cannot fill shape \(shape) (\(shape.elementCount) elements)")
        self.scalars = scalars
        self.shape = shape
    }

    /// A float32 host tensor; `shape` defaults to one dimension.
    public init(_ values: [Float], shape: Shape? = nil) { self.init(.float32(values), shape: shape ?? [values.count]) }
    /// A float64 host tensor; `shape` defaults to one dimension.
    public init(_ values: [Double], shape: Shape? = nil) { self.init(.float64(values), shape: shape ?? [values.count]) }
    /// An int64 host tensor; `shape` defaults to one dimension.
    public init(_ values: [Int64], shape: Shape? = nil) { self.init(.int64(values), shape: shape ?? [values.count]) }
    /// A bool host tensor; `shape` defaults to one dimension.
    public init(_ values: [Bool], shape: Shape? = nil) { self.init(.bool(values), shape: shape ?? [values.count]) }

    /// A copy of `tensor`'s values (any layout; views are read in row-major order).
    ///
    /// PyTorch parity: `tensor.detach().cpu().contiguous()`.
    public init(_ tensor: Tensor) {
        switch tensor.dtype {
        case .float32: self.init(.float32(tensor.scalars(as: Float.self)), shape: tensor.shape)
        case .float64: self.init(.float64(tensor.scalars(as: Double.self)), shape: tensor.shape)
        case .int64: self.init(.int64(tensor.scalars(as: Int64.self)), shape: tensor.shape)
        case .bool: self.init(.bool(tensor.scalars(as: Bool.self)), shape: tensor.shape)
        }
    }

    /// The element type.
    public var dtype: DType {
        switch scalars {
        case .float32: .float32
        case .float64: .float64
        case .int64: .int64
        case .bool: .bool
        }
    }

    /// The number of dimensions.
    public var rank: Int { shape.count }
    /// The number of elements.
    public var count: Int { shape.elementCount }

    /// The values converted to `Float` (any dtype; `true` is 1).
    public var floats: [Float] {
        switch scalars {
        case .float32(let a): a
        case .float64(let a): a.map { Float($0) }
        case .int64(let a): a.map { Float($0) }
        case .bool(let a): a.map { $0 ? 1 : 0 }
        }
    }

    /// The values converted to `Double` (any dtype; `true` is 1).
    public var doubles: [Double] {
        switch scalars {
        case .float32(let a): a.map { Double($0) }
        case .float64(let a): a
        case .int64(let a): a.map { Double($0) }
        case .bool(let a): a.map { $0 ? 1 : 0 }
        }
    }

    /// The values converted to `Int64` (floats truncate toward zero and saturate, NaN gives 0,
    /// as ``Tensor/to(_:)`` does; `true` is 1).
    public var int64s: [Int64] {
        switch scalars {
        case .float32(let a): a.map { Int64(fromDouble: Double($0)) }
        case .float64(let a): a.map { Int64(fromDouble: $0) }
        case .int64(let a): a
        case .bool(let a): a.map { $0 ? 1 : 0 }
        }
    }

    /// The values as `Bool` (non-zero is `true`).
    public var bools: [Bool] {
        switch scalars {
        case .float32(let a): a.map { $0 != 0 }
        case .float64(let a): a.map { $0 != 0 }
        case .int64(let a): a.map { $0 != 0 }
        case .bool(let a): a
        }
    }

    /// The same values converted to `dtype` (see ``floats``, ``doubles``, ``int64s``, ``bools``
    /// for the rules).
    ///
    /// PyTorch parity: `tensor.to(dtype)`.
    public func converted(to dtype: DType) -> HostTensor {
        if dtype == self.dtype { return self }
        switch dtype {
        case .float32: return HostTensor(.float32(floats), shape: shape)
        case .float64: return HostTensor(.float64(doubles), shape: shape)
        case .int64: return HostTensor(.int64(int64s), shape: shape)
        case .bool: return HostTensor(.bool(bools), shape: shape)
        }
    }

    /// The same values with another shape of the same element count; one dimension may be `-1`
    /// (inferred).
    ///
    /// PyTorch parity: `tensor.reshape(shape)`, with its error text.
    public func reshaped(_ newShape: Shape) -> HostTensor {
        var out = self
        out.shape = HostTensor.inferShape(newShape, count: count)
        return out
    }

    /// Sample `index` along the first dimension: a host tensor of shape `shape.dropFirst()`.
    ///
    /// PyTorch parity: `tensor[index]` (with PyTorch's error text for an index out of range;
    /// negative indices are not accepted).
    public func row(_ index: Int) -> HostTensor {
        precondition(rank >= 1, "HostTensor.row: invalid index of a 0-dim tensor")
        precondition(index >= 0 && index < shape[0],
                     "index \(index) is out of bounds for dimension 0 with size \(shape[0])")
        let width = count / Swift.max(shape[0], 1)
        let range = (index * width)..<((index + 1) * width)
        return HostTensor(scalars.slice(range), shape: Shape(shape.dropFirst()))
    }

    /// The rows at `indices` along the first dimension, in that order (repeats allowed).
    ///
    /// PyTorch parity: `tensor[indices]` / `index_select(0, indices)`.
    public func rows(_ indices: some Collection<Int>) -> HostTensor {
        precondition(rank >= 1, "HostTensor.rows: invalid index of a 0-dim tensor")
        let n = shape[0]
        for i in indices {
            precondition(i >= 0 && i < n, "index \(i) is out of bounds for dimension 0 with size \(n)")
        }
        let width = n == 0 ? 0 : count / n
        var outShape = shape
        outShape[0] = indices.count
        return HostTensor(scalars.gather(indices, width: width), shape: outShape)
    }

    /// `parts` (all of one shape and dtype) stacked along a new first dimension.
    ///
    /// PyTorch parity: `torch.stack(parts)`, with its error text for mismatched shapes.
    public static func stacked(_ parts: [HostTensor]) -> HostTensor {
        precondition(!parts.isEmpty, "stack expects a non-empty TensorList")
        let first = parts[0]
        for (i, p) in parts.enumerated().dropFirst() {
            precondition(p.shape == first.shape,
                         "stack expects each tensor to be equal size, but got \(first.shape) at entry 0 and \(p.shape) at entry \(i)")
            precondition(p.dtype == first.dtype,
                         "stack expects each tensor to have the same dtype, but got \(first.dtype) at entry 0 and \(p.dtype) at entry \(i)")
        }
        var shape = first.shape
        shape.insert(parts.count, at: 0)
        return HostTensor(Scalars.concatenating(parts.map(\.scalars), dtype: first.dtype), shape: shape)
    }

    public var description: String { "HostTensor(shape: \(shape), dtype: \(dtype))" }

    /// `shape` with a `-1` replaced by the size that makes `count` elements.
    static func inferShape(_ shape: Shape, count: Int) -> Shape {
        var out = shape
        let unknown = shape.indices.filter { shape[$0] == -1 }
        precondition(unknown.count <= 1, "only one dimension can be inferred")
        precondition(shape.allSatisfy { $0 >= -1 }, "invalid shape dimension in \(shape)")
        let known = shape.reduce(1) { $1 == -1 ? $0 : $0 * $1 }
        if let u = unknown.first {
            precondition(known != 0 && count % known == 0, "shape '\(shape)' is invalid for input of size \(count)")
            out[u] = count / known
        }
        precondition(out.elementCount == count, "shape '\(shape)' is invalid for input of size \(count)")
        return out
    }
}

extension HostTensor.Scalars {
    /// The number of values.
    var count: Int {
        switch self {
        case .float32(let a): a.count
        case .float64(let a): a.count
        case .int64(let a): a.count
        case .bool(let a): a.count
        }
    }

    /// The values in `range`.
    func slice(_ range: Range<Int>) -> Self {
        switch self {
        case .float32(let a): .float32(Array(a[range]))
        case .float64(let a): .float64(Array(a[range]))
        case .int64(let a): .int64(Array(a[range]))
        case .bool(let a): .bool(Array(a[range]))
        }
    }

    /// The rows of `width` values at `indices`, concatenated.
    func gather(_ indices: some Collection<Int>, width: Int) -> Self {
        func pick<T>(_ a: [T]) -> [T] {
            var out: [T] = []
            out.reserveCapacity(indices.count * width)
            for i in indices { out.append(contentsOf: a[(i * width)..<((i + 1) * width)]) }
            return out
        }
        switch self {
        case .float32(let a): return .float32(pick(a))
        case .float64(let a): return .float64(pick(a))
        case .int64(let a): return .int64(pick(a))
        case .bool(let a): return .bool(pick(a))
        }
    }

    /// `parts` (all of `dtype`) concatenated.
    static func concatenating(_ parts: [Self], dtype: DType) -> Self {
        func join<T>(_ extract: (Self) -> [T]) -> [T] {
            var out: [T] = []
            out.reserveCapacity(parts.reduce(0) { $0 + $1.count })
            for p in parts { out.append(contentsOf: extract(p)) }
            return out
        }
        switch dtype {
        case .float32: return .float32(join { if case .float32(let a) = $0 { a } else { [] } })
        case .float64: return .float64(join { if case .float64(let a) = $0 { a } else { [] } })
        case .int64: return .int64(join { if case .int64(let a) = $0 { a } else { [] } })
        case .bool: return .bool(join { if case .bool(let a) = $0 { a } else { [] } })
        }
    }
}

extension Tensor {
    /// A tensor holding a copy of `host`'s values, shape and dtype.
    ///
    /// PyTorch parity: `torch.as_tensor(array)` (copying).
    public init(_ host: HostTensor) {
        switch host.scalars {
        case .float32(let a): self.init(a, shape: host.shape)
        case .float64(let a): self.init(a, shape: host.shape)
        case .int64(let a): self.init(a, shape: host.shape)
        case .bool(let a): self.init(a, shape: host.shape)
        }
    }
}
