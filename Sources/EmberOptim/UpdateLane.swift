// The fused updates are written once per optimizer over a "lane": one element (`Float`,
// `Double`) or eight at a time (`FloatLanes`, `DoubleLanes`). Each lane applies the same IEEE operations
// to every element (no fused multiply-add, correctly rounded square roots), so wide and narrow
// lanes give bitwise the same results and the split into lanes never changes a parameter's
// trajectory. Explicit SIMD matters here: the auto-vectorizer keeps loops with square roots and
// divisions scalar on baseline x86-64.

import EmberAutograd
import EmberTensor
import EmberStorage

/// Values the fused updates compute on: one element or a vector of elements.
protocol UpdateLane {
    associatedtype Scalar: TensorFloat
    init(repeating value: Scalar)
    static func + (a: Self, b: Self) -> Self
    static func - (a: Self, b: Self) -> Self
    static func * (a: Self, b: Self) -> Self
    static func / (a: Self, b: Self) -> Self
    static prefix func - (a: Self) -> Self
    func squareRoot() -> Self
    /// The lane starting at element `i`.
    static func load(_ p: UnsafePointer<Scalar>, _ i: Int) -> Self
    /// Writes the lane to elements starting at `i`.
    func store(_ p: UnsafeMutablePointer<Scalar>, _ i: Int)
    /// PyTorch's `maximum`: the larger value, NaN where either is NaN.
    static func nanPropagatingMax(_ a: Self, _ b: Self) -> Self
}

extension UpdateLane {
    @inline(__always)
    static func load(_ p: UnsafeMutablePointer<Scalar>, _ i: Int) -> Self { load(UnsafePointer(p), i) }

    /// PyTorch's `lerp(self, end, weight)`: `self + weight * (end - self)` for `|weight| < 0.5`,
    /// else `end - (end - self) * (1 - weight)` (the form PyTorch uses for accuracy).
    @inline(__always)
    func lerp(to end: Self, weight: Scalar) -> Self {
        let difference = end - self
        if abs(weight) < Scalar(fromDouble: 0.5) { return self + Self(repeating: weight) * difference }
        let complement: Scalar = 1 - weight
        return end - difference * Self(repeating: complement)
    }
}

extension Float: UpdateLane {
    @inline(__always) init(repeating value: Float) { self = value }
    @inline(__always) static func load(_ p: UnsafePointer<Float>, _ i: Int) -> Float { p[i] }
    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>, _ i: Int) { p[i] = self }
    @inline(__always) static func nanPropagatingMax(_ a: Float, _ b: Float) -> Float {
        a.isNaN || b.isNaN ? .nan : (a > b ? a : b)
    }
}

extension Double: UpdateLane {
    @inline(__always) init(repeating value: Double) { self = value }
    @inline(__always) static func load(_ p: UnsafePointer<Double>, _ i: Int) -> Double { p[i] }
    @inline(__always) func store(_ p: UnsafeMutablePointer<Double>, _ i: Int) { p[i] = self }
    @inline(__always) static func nanPropagatingMax(_ a: Double, _ b: Double) -> Double {
        a.isNaN || b.isNaN ? .nan : (a > b ? a : b)
    }
}

// Eight elements at a time. Concrete wrappers rather than a generic `SIMD8` conformance: the
// generic SIMD operations (comparisons, masks) are not specialized into vector instructions.

/// Eight `Float` elements.
struct FloatLanes: UpdateLane {
    var v: SIMD8<Float>
    @inline(__always) init(_ v: SIMD8<Float>) { self.v = v }
    @inline(__always) init(repeating value: Float) { v = SIMD8(repeating: value) }
    @inline(__always) static func + (a: Self, b: Self) -> Self { Self(a.v + b.v) }
    @inline(__always) static func - (a: Self, b: Self) -> Self { Self(a.v - b.v) }
    @inline(__always) static func * (a: Self, b: Self) -> Self { Self(a.v * b.v) }
    @inline(__always) static func / (a: Self, b: Self) -> Self { Self(a.v / b.v) }
    @inline(__always) static prefix func - (a: Self) -> Self { Self(-a.v) }
    @inline(__always) func squareRoot() -> Self { Self(v.squareRoot()) }
    @inline(__always) static func load(_ p: UnsafePointer<Float>, _ i: Int) -> Self {
        Self(UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self))
    }
    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>, _ i: Int) {
        UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: SIMD8<Float>.self)
    }
    @inline(__always) static func nanPropagatingMax(_ a: Self, _ b: Self) -> Self {
        Self(a.v.replacing(with: b.v, where: b.v .> a.v).replacing(with: .nan, where: (a.v .!= a.v) .| (b.v .!= b.v)))
    }
}

/// Eight `Double` elements.
struct DoubleLanes: UpdateLane {
    var v: SIMD8<Double>
    @inline(__always) init(_ v: SIMD8<Double>) { self.v = v }
    @inline(__always) init(repeating value: Double) { v = SIMD8(repeating: value) }
    @inline(__always) static func + (a: Self, b: Self) -> Self { Self(a.v + b.v) }
    @inline(__always) static func - (a: Self, b: Self) -> Self { Self(a.v - b.v) }
    @inline(__always) static func * (a: Self, b: Self) -> Self { Self(a.v * b.v) }
    @inline(__always) static func / (a: Self, b: Self) -> Self { Self(a.v / b.v) }
    @inline(__always) static prefix func - (a: Self) -> Self { Self(-a.v) }
    @inline(__always) func squareRoot() -> Self { Self(v.squareRoot()) }
    @inline(__always) static func load(_ p: UnsafePointer<Double>, _ i: Int) -> Self {
        Self(UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Double>.self))
    }
    @inline(__always) func store(_ p: UnsafeMutablePointer<Double>, _ i: Int) {
        UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: SIMD8<Double>.self)
    }
    @inline(__always) static func nanPropagatingMax(_ a: Self, _ b: Self) -> Self {
        Self(a.v.replacing(with: b.v, where: b.v .> a.v).replacing(with: .nan, where: (a.v .!= a.v) .| (b.v .!= b.v)))
    }
}

/// An element type the fused updates run on (`Float`, `Double`), with its eight-element lane.
protocol LaneScalar: TensorFloat, UpdateLane where Scalar == Self {
    associatedtype Wide: UpdateLane where Wide.Scalar == Self
}

extension Float: LaneScalar { typealias Wide = FloatLanes }
extension Double: LaneScalar { typealias Wide = DoubleLanes }

/// Calls `wide(i)` for each full lane of 8 elements in `range`, then `narrow(i)` for each element
/// left.
@inline(__always)
func forEachLane(_ range: Range<Int>, wide: (Int) -> Void, narrow: (Int) -> Void) {
    var i = range.lowerBound
    while i + 8 <= range.upperBound {
        wide(i)
        i += 8
    }
    while i < range.upperBound {
        narrow(i)
        i += 1
    }
}
