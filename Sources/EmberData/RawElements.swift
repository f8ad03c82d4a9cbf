import EmberAutograd
import EmberTensor
import EmberStorage

/// The element type of a binary array file (`.npy`, IDX) and the conversion of its bytes into a
/// ``HostTensor/Scalars`` of an Ember dtype.
struct RawElementType: Equatable {
    enum Kind { case float, signed, unsigned, bool }

    var kind: Kind
    /// Bytes per element: 1, 2, 4 or 8 (floats: 4 or 8).
    var size: Int
    /// Byte order of multi-byte elements.
    var bigEndian: Bool

    /// The Ember dtype values of this type are read into when no dtype is requested: float32,
    /// float64, int64 for every integer type, bool.
    var naturalDType: DType {
        switch kind {
        case .float: size == 4 ? .float32 : .float64
        case .signed, .unsigned: .int64
        case .bool: .bool
        }
    }

    /// A name for messages, NumPy style: `float32`, `uint8`, `bool`.
    var name: String {
        switch kind {
        case .float: "float\(size * 8)"
        case .signed: "int\(size * 8)"
        case .unsigned: "uint\(size * 8)"
        case .bool: "bool"
        }
    }

    /// The index of the first element (among `count` at `start`) that `dtype` cannot hold, or
    /// `nil`: only uint64 values of 2^63 and above do not fit int64.
    func firstUnrepresentable(_ raw: UnsafeRawBufferPointer, start: Int, count: Int, as dtype: DType) -> Int? {
        guard kind == .unsigned, size == 8, dtype == .int64 else { return nil }
        let r = reader(raw, start)
        return (0..<count).first { r.u64($0) > UInt64(Int64.max) }
    }

    /// Throws for the first of the `shape.elementCount` elements at byte `start` that `dtype`
    /// must not receive: with `dtype` int64, a float element that is not a whole number in
    /// int64's range (0.5, NaN, infinity, 1e19), which a conversion would silently truncate or
    /// saturate; without `allowNonFinite`, a NaN or infinite float element, or one that becomes
    /// infinite in float32. Integer and bool elements always pass (see ``firstUnrepresentable``).
    func validate(_ raw: UnsafeRawBufferPointer, start: Int, shape: Shape, as dtype: DType, allowNonFinite: Bool,
                  file: String) throws(DataError) {
        guard kind == .float else { return }
        let r = reader(raw, start)
        let n = shape.elementCount
        let wide = size == 8
        func value(_ i: Int) -> Double { wide ? r.f64(i) : Double(r.f32(i)) }
        func text(_ i: Int) -> String { wide ? "\(r.f64(i))" : "\(r.f32(i))" }
        func position(_ i: Int) -> (offset: Int, index: [Int]) { (start + i * size, RawElementType.index(of: i, in: shape)) }
        if dtype == .int64 {
            for i in 0..<n {
                let v = value(i)
                guard v.rounded(.towardZero) == v, v >= -0x1p63, v < 0x1p63 else {
                    let (offset, index) = position(i)
                    throw .notAnInteger(file: file, offset: offset, element: i, index: index, value: text(i))
                }
            }
            return
        }
        guard !allowNonFinite else { return }
        let narrows = wide && dtype == .float32
        for i in 0..<n {
            let v = value(i)
            guard v.isFinite, !narrows || Float(v).isFinite else {
                let (offset, index) = position(i)
                throw .nonFinite(file: file, offset: offset, element: i, index: index,
                                 value: v.isFinite ? "\(text(i)) (infinite as float32)" : text(i))
            }
        }
    }

    /// The position per dimension of row-major element `flat` of `shape`.
    static func index(of flat: Int, in shape: Shape) -> [Int] {
        var out = [Int](repeating: 0, count: shape.count)
        var rest = flat
        for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] > 0 {
            out[d] = rest % shape[d]
            rest /= shape[d]
        }
        return out
    }

    /// `count` elements starting at byte `start` of `raw` (which must hold them) converted to
    /// `dtype`: floats round to nearest, floats to int64 truncate toward zero and saturate (NaN
    /// gives 0), anything to bool is "non-zero", bool to numbers is 0 or 1.
    func decode(_ raw: UnsafeRawBufferPointer, start: Int, count n: Int, as dtype: DType) -> HostTensor.Scalars {
        let r = reader(raw, start)
        switch dtype {
        case .float32:
            switch kind {
            case .float: return size == 4 ? .float32(r.floats32(n)) : .float32(build(n) { Float(r.f64($0)) })
            case .signed: return .float32(build(n) { Float(r.i64($0, size)) })
            case .unsigned: return .float32(build(n) { Float(r.u64($0, size)) })
            case .bool: return .float32(build(n) { r.byte($0) != 0 ? 1 : 0 })
            }
        case .float64:
            switch kind {
            case .float: return .float64(size == 4 ? build(n) { Double(r.f32($0)) } : build(n) { r.f64($0) })
            case .signed: return .float64(build(n) { Double(r.i64($0, size)) })
            case .unsigned: return .float64(build(n) { Double(r.u64($0, size)) })
            case .bool: return .float64(build(n) { r.byte($0) != 0 ? 1 : 0 })
            }
        case .int64:
            switch kind {
            case .float:
                return .int64(size == 4 ? build(n) { Int64(fromDouble: Double(r.f32($0))) } : build(n) { Int64(fromDouble: r.f64($0)) })
            case .signed: return .int64(build(n) { r.i64($0, size) })
            case .unsigned: return .int64(build(n) { Int64(truncatingIfNeeded: r.u64($0, size)) })
            case .bool: return .int64(build(n) { r.byte($0) != 0 ? 1 : 0 })
            }
        case .bool:
            switch kind {
            case .float: return .bool(size == 4 ? build(n) { r.f32($0) != 0 } : build(n) { r.f64($0) != 0 })
            case .signed, .unsigned: return .bool(build(n) { r.u64($0, size) != 0 })
            case .bool: return .bool(build(n) { r.byte($0) != 0 })
            }
        }
    }

    private func reader(_ raw: UnsafeRawBufferPointer, _ start: Int) -> Reader {
        Reader(base: raw.baseAddress.map { $0 + start }, size: size, bigEndian: bigEndian)
    }

    /// Unaligned loads of element `i`.
    private struct Reader {
        let base: UnsafeRawPointer?
        let size: Int
        let bigEndian: Bool

        @inline(__always) func byte(_ i: Int) -> UInt8 { base!.load(fromByteOffset: i, as: UInt8.self) }
        @inline(__always) func bits16(_ i: Int) -> UInt16 {
            let v = base!.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
            return bigEndian ? UInt16(bigEndian: v) : UInt16(littleEndian: v)
        }
        @inline(__always) func bits32(_ i: Int) -> UInt32 {
            let v = base!.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)
            return bigEndian ? UInt32(bigEndian: v) : UInt32(littleEndian: v)
        }
        @inline(__always) func bits64(_ i: Int) -> UInt64 {
            let v = base!.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)
            return bigEndian ? UInt64(bigEndian: v) : UInt64(littleEndian: v)
        }
        @inline(__always) func f32(_ i: Int) -> Float { Float(bitPattern: bits32(i)) }
        @inline(__always) func f64(_ i: Int) -> Double { Double(bitPattern: bits64(i)) }
        /// Element `i` of a `size`-byte unsigned type, zero-extended.
        @inline(__always) func u64(_ i: Int, _ size: Int) -> UInt64 {
            switch size {
            case 1: UInt64(byte(i))
            case 2: UInt64(bits16(i))
            case 4: UInt64(bits32(i))
            default: bits64(i)
            }
        }
        @inline(__always) func u64(_ i: Int) -> UInt64 { u64(i, size) }
        /// Element `i` of a `size`-byte signed type, sign-extended.
        @inline(__always) func i64(_ i: Int, _ size: Int) -> Int64 {
            switch size {
            case 1: Int64(Int8(bitPattern: byte(i)))
            case 2: Int64(Int16(bitPattern: bits16(i)))
            case 4: Int64(Int32(bitPattern: bits32(i)))
            default: Int64(bitPattern: bits64(i))
            }
        }
        /// `n` float32 elements (a straight copy when the byte order is the machine's).
        func floats32(_ n: Int) -> [Float] {
            if n > 0, !bigEndian, UInt32(1).littleEndian == 1, let base {
                return [Float](unsafeUninitializedCapacity: n) { buffer, count in
                    UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: base, byteCount: 4 * n)
                    count = n
                }
            }
            return build(n) { f32($0) }
        }
    }
}

/// An array of `n` elements `element(0), element(1), ...`.
@inline(__always)
private func build<T>(_ n: Int, _ element: (Int) -> T) -> [T] {
    [T](unsafeUninitializedCapacity: n) { buffer, count in
        for i in 0..<n { buffer.initializeElement(at: i, to: element(i)) }
        count = n
    }
}

extension Shape {
    /// The element count, or `nil` when the product of the non-zero dimensions overflows `Int`
    /// (a file's header claiming an impossible shape): with it in range, every stride and partial
    /// product of the shape is too, also when a zero dimension makes the count 0.
    var checkedElementCount: Int? {
        var product = 1
        var empty = false
        for d in self {
            if d == 0 { empty = true; continue }
            let (p, overflow) = product.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            product = p
        }
        return empty ? 0 : product
    }
}
