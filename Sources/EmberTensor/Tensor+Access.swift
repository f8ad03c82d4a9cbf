import EmberStorage

extension Tensor {
    /// All elements in row-major order, as `T` (which must match the dtype).
    ///
    /// PyTorch parity: `t.flatten().tolist()`.
    public func scalars<T: TensorScalar>(as type: T.Type = T.self) -> [T] {
        precondition(T.dtype == dtype, "scalars(as:): the tensor is \(dtype), not \(T.dtype); convert with to(_:) first")
        let c = contiguousRaw
        let p = c.pointer(as: T.self)
        return Array(UnsafeBufferPointer(start: p, count: c.count))
    }

    /// All elements converted to `Double`, in row-major order (any dtype).
    public var doubles: [Double] {
        switch dtype {
        case .float32: scalars(as: Float.self).map { Double($0) }
        case .float64: scalars(as: Double.self)
        case .int64: scalars(as: Int64.self).map { Double($0) }
        case .bool: scalars(as: Bool.self).map { $0 ? 1 : 0 }
        }
    }

    /// All elements as `Float` (any dtype), in row-major order.
    public var floats: [Float] { dtype == .float32 ? scalars(as: Float.self) : doubles.map { Float($0) } }

    /// The value of a one-element tensor.
    ///
    /// PyTorch parity: `t.item()`, with the same error for more than one element.
    public func item<T: TensorScalar>(as type: T.Type = T.self) -> T {
        precondition(count == 1, "item: a Tensor with \(count) elements cannot be converted to Scalar")
        return scalars(as: T.self)[0]
    }

    /// The value of a one-element tensor as `Double` (any dtype).
    public var doubleValue: Double {
        precondition(count == 1, "doubleValue: a Tensor with \(count) elements cannot be converted to Scalar")
        return doubles[0]
    }

    /// Element at a full index (negative indices count from the end), as `Double`.
    public func element(at index: [Int]) -> Double {
        precondition(index.count == rank, "element(at:): index \(index) has \(index.count) entries but the tensor has rank \(rank)")
        var off = offset
        for (d, i) in index.enumerated() {
            let n = shape[d]
            precondition(i >= -n && i < n, "element(at:): index \(i) is out of bounds for dimension \(d) with size \(n)")
            off += (i < 0 ? i + n : i) * strides[d]
        }
        let p = storage.baseAddress
        switch dtype {
        case .float32: return Double(p.load(fromByteOffset: off * 4, as: Float.self))
        case .float64: return p.load(fromByteOffset: off * 8, as: Double.self)
        case .int64: return Double(p.load(fromByteOffset: off * 8, as: Int64.self))
        case .bool: return p.load(fromByteOffset: off, as: Bool.self) ? 1 : 0
        }
    }

    /// Converts every element to `dtype` (without gradient tracking; see the autograd `to(_:)`).
    package func convertedRaw(to target: DType) -> Tensor {
        if target == dtype { return contiguousRaw }
        switch (dtype, target) {
        case (.float32, .float64): return Kernels.map(self, Float.self, Double.self) { Double($0) }
        case (.float64, .float32): return Kernels.map(self, Double.self, Float.self) { Float($0) }
        case (.float32, .int64): return Kernels.map(self, Float.self, Int64.self) { Int64(fromDouble: Double($0)) }
        case (.float64, .int64): return Kernels.map(self, Double.self, Int64.self) { Int64(fromDouble: $0) }
        case (.int64, .float32): return Kernels.map(self, Int64.self, Float.self) { Float($0) }
        case (.int64, .float64): return Kernels.map(self, Int64.self, Double.self) { Double($0) }
        case (.bool, .float32): return Kernels.map(self, Bool.self, Float.self) { $0 ? 1 : 0 }
        case (.bool, .float64): return Kernels.map(self, Bool.self, Double.self) { $0 ? 1 : 0 }
        case (.bool, .int64): return Kernels.map(self, Bool.self, Int64.self) { $0 ? 1 : 0 }
        case (.float32, .bool): return Kernels.map(self, Float.self, Bool.self) { $0 != 0 }
        case (.float64, .bool): return Kernels.map(self, Double.self, Bool.self) { $0 != 0 }
        case (.int64, .bool): return Kernels.map(self, Int64.self, Bool.self) { $0 != 0 }
        default: fatalError("unreachable dtype conversion \(dtype) -> \(target)")
        }
    }
}
