import CEmberKernels

/// What a product does to each block of C once the block is final, while the block is still in
/// cache: `C[i, j] = relu?((C[i, j] + bias[j]) * scale[j] + shift[j])`. A `Linear`'s bias is the
/// bias; an eval-mode BatchNorm after it is the scale and shift; ReLU is the flag. Each step is
/// the rounded operation a separate pass would do, so the result is bitwise that of the separate
/// passes; one pass over a layer's output costs a few percent of its product, applied per block it
/// costs a fraction of that.
package struct GEMMEpilogue<T: BinaryFloatingPoint> {
    /// `n` addends, one per column of C, or `nil`.
    package var bias: UnsafePointer<T>?
    /// `n` multipliers and `n` addends applied after the bias, or `nil` (both or neither).
    package var scale: UnsafePointer<T>?, shift: UnsafePointer<T>?
    /// Whether values `<= 0` become `0` last (NaN stays NaN).
    package var relu: Bool

    package init(bias: UnsafePointer<T>? = nil, scale: UnsafePointer<T>? = nil, shift: UnsafePointer<T>? = nil,
                 relu: Bool = false) {
        precondition((scale == nil) == (shift == nil), "GEMMEpilogue: a scale and a shift come together")
        (self.bias, self.scale, self.shift, self.relu) = (bias, scale, shift, relu)
    }

    /// No epilogue.
    package static var none: GEMMEpilogue { GEMMEpilogue() }

    package var isNone: Bool { bias == nil && scale == nil && !relu }

    /// The epilogue of the block of C that starts at column `j0`.
    func columns(from j0: Int) -> GEMMEpilogue {
        GEMMEpilogue(bias: bias.map { $0 + j0 }, scale: scale.map { $0 + j0 }, shift: shift.map { $0 + j0 }, relu: relu)
    }

    /// Applies the epilogue to `m x n` of C (row `i` at `c + i * ldc`) on `path`'s vector width.
    package func apply(c: UnsafeMutablePointer<T>, ldc: Int, m: Int, n: Int, path: GEMMKernelPath = .best) {
        if isNone || m == 0 || n == 0 { return }
        let p = Int32(path.rawValue), r: Int32 = relu ? 1 : 0
        func cast<U>(_ x: UnsafePointer<T>?, _: U.Type) -> UnsafePointer<U>? { UnsafeRawPointer(x)?.assumingMemoryBound(to: U.self) }
        if T.self == Float.self {
            ember_sgemm_epilogue(p, UnsafeMutableRawPointer(c).assumingMemoryBound(to: Float.self), ldc, m, n,
                                 cast(bias, Float.self), cast(scale, Float.self), cast(shift, Float.self), r)
        } else {
            precondition(T.self == Double.self, "GEMMEpilogue: float32 or float64 only")
            ember_dgemm_epilogue(p, UnsafeMutableRawPointer(c).assumingMemoryBound(to: Double.self), ldc, m, n,
                                 cast(bias, Double.self), cast(scale, Double.self), cast(shift, Double.self), r)
        }
    }
}
