/// A list of up to ``Shape/maxRank`` dimension sizes (or strides), stored inline.
///
/// Tensors keep their shape and strides in this type rather than `[Int]` so that creating a tensor
/// costs one heap allocation (its storage), not three. Indexing, iteration and array literals work
/// as for an array.
///
/// PyTorch parity: `torch.Size`. Ember limits rank to 8 (PyTorch allows more); a higher rank stops
/// with a message naming the operation.
public struct Shape: Sendable, Hashable, RandomAccessCollection, MutableCollection,
    ExpressibleByArrayLiteral, CustomStringConvertible
{
    /// The largest rank a tensor may have.
    public static let maxRank = 8

    @usableFromInline var dims: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)
    @usableFromInline var rank: Int = 0

    public typealias Element = Int
    public typealias Index = Int

    /// An empty shape (rank 0: a scalar).
    @inlinable public init() {}

    /// A shape with `rank` entries, all `value`.
    @inlinable public init(repeating value: Int, count rank: Int) {
        precondition(rank >= 0 && rank <= Shape.maxRank, "Shape: rank \(rank) exceeds the maximum of \(Shape.maxRank)")
        self.rank = rank
        for i in 0..<rank { self[i] = value }
    }

    @inlinable public init<S: Sequence>(_ values: S) where S.Element == Int {
        for v in values { append(v) }
    }

    @inlinable public init(arrayLiteral elements: Int...) { self.init(elements) }

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { rank }
    @inlinable public var count: Int { rank }

    @inlinable public subscript(i: Int) -> Int {
        get {
            precondition(i >= 0 && i < rank, "Shape: index \(i) out of range for rank \(rank)")
            return withUnsafeBytes(of: dims) { $0.load(fromByteOffset: i &* 8, as: Int.self) }
        }
        set {
            precondition(i >= 0 && i < rank, "Shape: index \(i) out of range for rank \(rank)")
            withUnsafeMutableBytes(of: &dims) { $0.storeBytes(of: newValue, toByteOffset: i &* 8, as: Int.self) }
        }
    }

    /// Appends a dimension.
    @inlinable public mutating func append(_ value: Int) {
        precondition(rank < Shape.maxRank, "Shape: rank would exceed the maximum of \(Shape.maxRank)")
        rank += 1
        self[rank - 1] = value
    }

    /// Inserts a dimension at `index`.
    @inlinable public mutating func insert(_ value: Int, at index: Int) {
        precondition(index >= 0 && index <= rank, "Shape: insert index \(index) out of range for rank \(rank)")
        append(0)
        var i = rank - 1
        while i > index { self[i] = self[i - 1]; i -= 1 }
        self[index] = value
    }

    /// Removes and returns the dimension at `index`.
    @inlinable @discardableResult public mutating func remove(at index: Int) -> Int {
        let v = self[index]
        for i in index..<(rank - 1) { self[i] = self[i + 1] }
        rank -= 1
        return v
    }

    /// The number of elements a tensor of this shape holds (1 for rank 0).
    @inlinable public var elementCount: Int {
        var n = 1
        for i in 0..<rank { n &*= self[i] }
        return n
    }

    /// Row-major (C-contiguous) strides for this shape, in elements.
    @inlinable public var contiguousStrides: Shape {
        if rank <= 1 {
            var s = Shape()
            s.rank = rank
            s.dims.0 = 1
            return s
        }
        var s = Shape(repeating: 0, count: rank)
        var acc = 1
        var i = rank - 1
        while i >= 0 {
            s[i] = acc
            acc &*= Swift.max(self[i], 1)
            i -= 1
        }
        return s
    }

    /// Whether `strides` lay out this shape row-major without gaps (size-1 dimensions may have any
    /// stride; an empty shape is contiguous).
    @inlinable public func isContiguous(strides: Shape) -> Bool {
        withUnsafeBytes(of: dims) { d in
            withUnsafeBytes(of: strides.dims) { st in
                var expected = 1
                var empty = false
                var i = rank - 1
                while i >= 0 {
                    let n = d.load(fromByteOffset: i &* 8, as: Int.self)
                    if n == 0 { empty = true }
                    if n != 1 && st.load(fromByteOffset: i &* 8, as: Int.self) != expected { if !empty { expected = -1 } }
                    expected &*= n
                    i -= 1
                }
                return empty || expected >= 0
            }
        }
    }

    @inlinable public static func == (a: Shape, b: Shape) -> Bool {
        guard a.rank == b.rank else { return false }
        return withUnsafeBytes(of: a.dims) { x in
            withUnsafeBytes(of: b.dims) { y in
                for i in 0..<a.rank where x.load(fromByteOffset: i &* 8, as: Int.self) != y.load(fromByteOffset: i &* 8, as: Int.self) {
                    return false
                }
                return true
            }
        }
    }

    @inlinable public func hash(into hasher: inout Hasher) {
        hasher.combine(rank)
        for i in 0..<rank { hasher.combine(self[i]) }
    }

    /// The shape as an array.
    public var array: [Int] { Array(self) }

    /// `[2, 3]`, as an array prints.
    public var description: String { "[" + map(String.init).joined(separator: ", ") + "]" }
}
