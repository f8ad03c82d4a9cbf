/// Header of a ``TensorStorage`` block.
public struct StorageHeader {
    /// Usable size in bytes.
    public var byteCount: Int

    @inlinable public init(byteCount: Int) { self.byteCount = byteCount }
}

/// A flat, untyped block of memory that backs one or more tensors (views share it).
///
/// One heap allocation holds both the object header and the elements (tail allocation), so a new
/// tensor costs a single `malloc`. Contents start uninitialised unless created with `zeroed`.
/// Copy-on-write is decided by the owner (`Tensor`) with `isKnownUniquelyReferenced`.
public final class TensorStorage: ManagedBuffer<StorageHeader, UInt64> {
    /// Allocates `byteCount` bytes (8-byte aligned), optionally zero-filled.
    @inlinable public static func allocate(byteCount: Int, zeroed: Bool = false) -> TensorStorage {
        precondition(byteCount >= 0, "TensorStorage: negative byte count \(byteCount)")
        let words = (byteCount + 7) / 8
        if byteCount >= MallocTuning.largeBlockBytes { MallocTuning.ensureApplied() }
        let buffer = TensorStorage.create(minimumCapacity: Swift.max(words, 1)) { _ in
            StorageHeader(byteCount: byteCount)
        }
        let storage = unsafeDowncast(buffer, to: TensorStorage.self)
        if zeroed && words > 0 {
            storage.withUnsafeMutablePointerToElements { $0.initialize(repeating: 0, count: words) }
        }
        return storage
    }

    /// Usable size in bytes.
    @inlinable public var byteCount: Int { header.byteCount }

    /// The start of the elements. Stable for the object's lifetime (a class instance never moves).
    @inlinable public var baseAddress: UnsafeMutableRawPointer {
        withUnsafeMutablePointerToElements { UnsafeMutableRawPointer($0) }
    }
}
