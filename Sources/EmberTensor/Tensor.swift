import EmberStorage

/// An n-dimensional array of numbers with value semantics and optional gradient tracking.
///
/// A tensor is a view (shape, strides, offset) onto a shared ``TensorStorage``. Copies are cheap;
/// mutating a tensor whose storage is shared copies it first (copy-on-write), so two tensors never
/// alias observably. Views such as `transposed` or slices share storage until one side is mutated.
///
/// PyTorch parity: `torch.Tensor`, except that views do not alias: writing into a slice of `x`
/// never changes `x` (PyTorch would). Ember has no in-place view writes by design.
public struct Tensor {
    /// Backing memory, shared between views.
    package var storage: TensorStorage
    /// Dimension sizes.
    public internal(set) var shape: Shape
    /// Element strides per dimension (0 for broadcast dimensions).
    public internal(set) var strides: Shape
    /// Element offset of the first element in `storage`.
    package var offset: Int
    /// The element type.
    public let dtype: DType
    /// Gradient-tracking state; `nil` when this tensor needs no gradient (the common, fast case).
    ///
    /// The default value matters for speed: assigning `nil` in an initializer instead made Swift 6.3
    /// build the value twice (an extra retain, release and copy per new tensor).
    package var autograd: AutogradMeta? = nil

    /// Wraps existing storage. No checks beyond bounds of the described view.
    package init(storage: TensorStorage, shape: Shape, strides: Shape, offset: Int, dtype: DType) {
        self.storage = storage
        self.shape = shape
        self.strides = strides
        self.offset = offset
        self.dtype = dtype
    }

    /// A new contiguous tensor of `shape` with uninitialised contents. Package use only: callers
    /// must write every element.
    package init(uninitializedShape shape: Shape, dtype: DType) {
        self.init(storage: .allocate(byteCount: shape.elementCount * dtype.itemSize), shape: shape,
                  strides: shape.contiguousStrides, offset: 0, dtype: dtype)
    }

    /// A new contiguous tensor of `shape` filled with zeros.
    package init(zeroedShape shape: Shape, dtype: DType) {
        self.init(storage: .allocate(byteCount: shape.elementCount * dtype.itemSize, zeroed: true), shape: shape,
                  strides: shape.contiguousStrides, offset: 0, dtype: dtype)
    }

    /// Number of dimensions.
    @inlinable public var rank: Int { shape.count }

    /// Number of elements.
    @inlinable public var count: Int { shape.elementCount }

    /// Size of dimension `axis` (negative counts from the end).
    public func size(_ axis: Int) -> Int { shape[normalizeAxis(axis, rank: rank, op: "size")] }

    /// Whether elements are laid out row-major without gaps from `offset`. A tensor with no
    /// elements is contiguous (PyTorch's rule), whatever its strides.
    @inlinable public var isContiguous: Bool { shape.isContiguous(strides: strides) }

    /// Whether both tensors view the same elements of the same storage the same way (so they hold
    /// the same values now), as for `attention(x, x, x)`.
    package func isSameView(as other: Tensor) -> Bool {
        storage === other.storage && offset == other.offset && dtype == other.dtype
            && shape == other.shape && strides == other.strides
    }

    /// Byte address of the first element. Valid while `storage` is alive.
    package var rawPointer: UnsafeMutableRawPointer {
        storage.baseAddress + offset * dtype.itemSize
    }

    /// Read-only typed pointer to the first element; checks the dtype.
    package func pointer<T: TensorScalar>(as: T.Type) -> UnsafePointer<T> {
        precondition(T.dtype == dtype, "Tensor: expected dtype \(T.dtype) but the tensor is \(dtype)")
        return UnsafePointer(rawPointer.assumingMemoryBound(to: T.self))
    }

    /// Mutable typed pointer to the first element; checks the dtype. Caller must own the storage.
    package func mutablePointer<T: TensorScalar>(as: T.Type) -> UnsafeMutablePointer<T> {
        precondition(T.dtype == dtype, "Tensor: expected dtype \(T.dtype) but the tensor is \(dtype)")
        return rawPointer.assumingMemoryBound(to: T.self)
    }

    /// Makes the storage unique and contiguous, so it may be written in place (copy-on-write).
    package mutating func makeUniqueContiguous() {
        if !isContiguous || !isKnownUniquelyReferenced(&storage)
            || storage.byteCount != count * dtype.itemSize
        {
            let autograd = self.autograd
            self = contiguousCopy()
            self.autograd = autograd
        }
    }

    /// A contiguous copy (always a new storage), without gradient tracking.
    package func contiguousCopy() -> Tensor {
        var out = Tensor(uninitializedShape: shape, dtype: dtype)
        copyElements(from: self, into: &out)
        return out
    }

    /// `self` if it is contiguous, else a contiguous copy. Never carries gradient state.
    package var contiguousRaw: Tensor {
        if isContiguous {
            var t = self
            t.autograd = nil
            return t
        }
        return contiguousCopy()
    }
}

/// Maps a possibly negative axis into `0..<rank`, stopping with a message naming `op` otherwise.
@inlinable
package func normalizeAxis(_ axis: Int, rank: Int, op: String) -> Int {
    let r = Swift.max(rank, 1)
    precondition(axis >= -r && axis < r,
                 "\(op): Dimension out of range (expected to be in range of [\(-r), \(r - 1)], but got \(axis))")
    return axis < 0 ? axis + r : axis
}
