import EmberStorage

// Vectorised float32 transcendental functions (8 lanes) and a map that applies them to any
// float32 tensor. PyTorch computes these with SLEEF vector functions; libm's scalar versions are
// several times slower. Every element goes through the same vector code (the tail of a run is padded, a
// strided run is gathered), so a value never depends on its position or the tensor's layout.
//
// On x86-64 with AVX2, `exp`, `sigmoid`, `tanh`, `silu` and `gelu` of contiguous tensors run the
// same functions in C (`ActivationKernels`, `activation_x86.c`): the same operations, bitwise the
// same values, eight lanes per AVX2 operation (Swift's SIMD compiles to SSE there).
//
// Accuracy: exp within 2 ulp (Cephes' polynomial), tanh within a few ulp, erf within 1.5e-7
// absolute (Abramowitz & Stegun 7.1.26, the formula PyTorch's own vectorised erf uses).

@usableFromInline package typealias Float8 = SIMD8<Float>

/// `e^x` for 8 lanes: `x = n ln2 + r`, a degree-6 polynomial for `e^r`, and `2^n` built from the
/// exponent bits in two halves so gradual underflow to denormals is exact. Overflow gives `inf`,
/// underflow 0, NaN stays NaN.
@inlinable @inline(__always)
package func expVector(_ x: Float8) -> Float8 {
    // Clamp with selects (pointwiseMin/Max do not inline); NaN lanes are restored at the end.
    var xc = x
    xc.replace(with: 89, where: x .> 89)
    xc.replace(with: -104, where: x .< -104)
    // Round x * log2(e) to the nearest integer with the 1.5 * 2^23 trick (exact for |v| < 2^22).
    let magic = Float8(repeating: 12_582_912)
    let t = xc * 1.442_695_04 + magic
    let n = t - magic
    let r = xc - n * 0.693_359_375 - n * -2.121_944_4e-4
    var p = Float8(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_950_7e-3
    p = p * r + 8.333_451_907_3e-3
    p = p * r + 4.166_579_589_4e-2
    p = p * r + 1.666_666_545_9e-1
    p = p * r + 5.000_000_120_1e-1
    p = p * (r * r) + r + 1
    let ni = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000
    let half = ni &>> 1
    let s1 = unsafeBitCast((half &+ 127) &<< 23, to: Float8.self)
    let s2 = unsafeBitCast((ni &- half &+ 127) &<< 23, to: Float8.self)
    var result = p * s1 * s2
    result.replace(with: .infinity, where: x .> 88.722_839)
    result.replace(with: 0, where: x .< -103.972_08)
    result.replace(with: x, where: x .!= x)
    return result
}

/// `tanh(x)` for 8 lanes: Cephes' odd polynomial for `|x| < 0.625`, else `1 - 2 / (e^(2|x|) + 1)`
/// with the sign restored. NaN stays NaN; `+-inf` give `+-1`.
@inlinable @inline(__always)
package func tanhVector(_ x: Float8) -> Float8 {
    let ax = x.replacing(with: -x, where: x .< 0)
    let z = x * x
    var p = Float8(repeating: -5.704_988_727_45e-3)
    p = p * z + 2.063_908_879_54e-2
    p = p * z - 5.373_971_555_31e-2
    p = p * z + 1.333_144_220_36e-1
    p = p * z - 3.333_328_194_22e-1
    let small = p * z * x + x
    var large = 1 - 2 / (expVector(ax + ax) + 1)
    large.replace(with: -large, where: x .< 0)
    var result = small
    result.replace(with: large, where: ax .>= 0.625)
    result.replace(with: x, where: x .!= x)
    return result
}

/// `erf(x)` for 8 lanes by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7), as
/// PyTorch's vectorised CPU kernels compute it.
@inline(__always)
package func erfVector(_ x: Float8) -> Float8 {
    let ax = x.replacing(with: -x, where: x .< 0)
    let t = 1 / (ax * 0.327_591_1 + 1)
    var p = Float8(repeating: 1.061_405_429)
    p = p * t - 1.453_152_027
    p = p * t + 1.421_413_741
    p = p * t - 0.284_496_736
    p = p * t + 0.254_829_592
    var y = 1 - p * t * expVector(-(x * x))
    y.replace(with: -y, where: x .< 0)
    y.replace(with: x, where: x .!= x)
    return y
}

/// `log(x)` for 8 lanes: Cephes' `logf` (at most 0.72 ulp over every binade, tested; PyTorch's
/// vectorised log is SLEEF's, within 1 ulp). Denormals are scaled by 2^23 first; `x = m 2^e` with `m` in
/// [sqrt(1/2), sqrt(2)) and a degree-8 polynomial in `m - 1`. `activation_x86.c` mirrors it
/// operation by operation.
@inline(__always)
package func logVector(_ x: Float8) -> Float8 {
    let denormal = (x .< Float(bitPattern: 0x0080_0000)) .& (x .> 0)
    let xs = x.replacing(with: x * Float(bitPattern: 0x4B00_0000), where: denormal)
    let bits = unsafeBitCast(xs, to: SIMD8<Int32>.self)
    var e = ((bits &>> 23) & 0xFF) &- 126
    e.replace(with: e &- 23, where: denormal)
    var m = unsafeBitCast((bits & 0x007F_FFFF) | 0x3F00_0000, to: Float8.self)
    let small = m .< Float(bitPattern: 0x3F35_04F3)
    e.replace(with: e &- 1, where: small)
    m = (m + m - 1).replacing(with: m - 1, where: .!small)
    let z = m * m
    var p = Float8(repeating: Float(bitPattern: 0x3D90_21BB)) * m - Float(bitPattern: 0x3DEB_D1B8)
    p = p * m + Float(bitPattern: 0x3DEF_251A)
    p = p * m - Float(bitPattern: 0x3DFE_5D4F)
    p = p * m + Float(bitPattern: 0x3E11_E9BF)
    p = p * m - Float(bitPattern: 0x3E2A_AE50)
    p = p * m + Float(bitPattern: 0x3E4C_CEAC)
    p = p * m - Float(bitPattern: 0x3E7F_FFFC)
    p = p * m + Float(bitPattern: 0x3EAA_AAAA)
    p = p * m * z
    let ef = Float8(e)
    p = p - ef * Float(bitPattern: 0x395E_8083)
    p = p - z * 0.5
    var r = (m + p) + ef * Float(bitPattern: 0x3F31_8000)
    r.replace(with: x, where: x .== .infinity)
    r.replace(with: -.infinity, where: x .== 0)
    r.replace(with: .nan, where: x .< 0)
    r.replace(with: x, where: x .!= x)
    return r
}

/// `1 / (1 + e^-x)` for 8 lanes (0 once `e^-x` overflows, as PyTorch).
@inlinable @inline(__always)
package func sigmoidVector(_ x: Float8) -> Float8 { 1 / (1 + expVector(-x)) }

/// An 8-lane float32 function as a type, so kernels specialise on it and call it statically
/// (a closure captured by a parallel loop body would be called indirectly).
package protocol Float8Function {
    func callAsFunction(_ x: Float8) -> Float8
    /// Applies the function to a contiguous run with a native (AVX2) row kernel that gives bitwise
    /// the same values, and returns true; or returns false (none, or not on this CPU).
    func applyNative(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) -> Bool
}

extension Float8Function {
    @inline(__always)
    package func applyNative(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) -> Bool { false }
}

package struct ExpFunction: Float8Function {
    package init() {}
    @inline(__always) package func callAsFunction(_ x: Float8) -> Float8 { expVector(x) }
    @inline(__always)
    package func applyNative(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) -> Bool {
        ActivationKernels.apply(.exp, src, into: dst, count: count)
    }
}

package struct TanhFunction: Float8Function {
    package init() {}
    @inline(__always) package func callAsFunction(_ x: Float8) -> Float8 { tanhVector(x) }
    @inline(__always)
    package func applyNative(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) -> Bool {
        ActivationKernels.apply(.tanh, src, into: dst, count: count)
    }
}

/// `max(x, 0)` keeping NaN, eight lanes at a time (bitwise ``Kernels/relu(_:)``'s scalar rule).
package struct ReluFunction: Float8Function {
    package init() {}
    @inline(__always) package func callAsFunction(_ x: Float8) -> Float8 { x.replacing(with: 0, where: x .<= 0) }
}

package struct SigmoidFunction: Float8Function {
    package init() {}
    @inline(__always) package func callAsFunction(_ x: Float8) -> Float8 { sigmoidVector(x) }
    @inline(__always)
    package func applyNative(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) -> Bool {
        ActivationKernels.apply(.sigmoid, src, into: dst, count: count)
    }
}

package struct LogFunction: Float8Function {
    package init() {}
    @inline(__always) package func callAsFunction(_ x: Float8) -> Float8 { logVector(x) }
    @inline(__always)
    package func applyNative(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) -> Bool {
        ActivationKernels.apply(.log, src, into: dst, count: count)
    }
}

/// `x / (1 + e^-x)`.
package struct SiLUFunction: Float8Function {
    package init() {}
    @inline(__always) package func callAsFunction(_ x: Float8) -> Float8 { x / (1 + expVector(-x)) }
    @inline(__always)
    package func applyNative(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) -> Bool {
        ActivationKernels.apply(.silu, src, into: dst, count: count)
    }
}

/// `x * 0.5 * (1 + erf(x / sqrt 2))`.
package struct GELUFunction: Float8Function {
    package init() {}
    @inline(__always) package func callAsFunction(_ x: Float8) -> Float8 {
        x * 0.5 * (1 + erfVector(x * Float(0.707_106_781_186_547_5)))
    }
    @inline(__always)
    package func applyNative(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) -> Bool {
        ActivationKernels.apply(.gelu, src, into: dst, count: count)
    }
}

/// `0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))`.
package struct GELUTanhFunction: Float8Function {
    package init() {}
    @inline(__always) package func callAsFunction(_ x: Float8) -> Float8 {
        let inner = (x + x * x * x * Float(0.044715)) * Float(0.797_884_560_802_865_4)
        return x * 0.5 * (1 + tanhVector(inner))
    }
    @inline(__always)
    package func applyNative(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) -> Bool {
        ActivationKernels.apply(.geluTanh, src, into: dst, count: count)
    }
}

extension Kernels {
    /// Applies the 8-lane function `f` to every element of a float32 tensor (any layout) into a
    /// new contiguous float32 tensor; large contiguous inputs are split across threads.
    @inline(__always)
    package static func mapFloat8<F: Float8Function>(_ x: Tensor, _ f: F) -> Tensor {
        precondition(x.dtype == .float32, "mapFloat8: internal dtype error \(x.dtype)")
        let out = Tensor(uninitializedShape: x.shape, dtype: .float32)
        let src = x.pointer(as: Float.self), dst = out.mutablePointer(as: Float.self)
        if x.isContiguous {
            forEachChunk(count: x.count) { start, count in
                // exp, sigmoid, tanh: the AVX2 row kernels (bitwise these functions).
                if f.applyNative(src + start, into: dst + start, count: count) { return }
                applyFloat8(src + start, stride: 1, count: count, into: dst + start) { f($0) }
            }
        } else {
            forEachRun(shape: x.shape, x.strides) { o0, _, _, linear, n, st0, _, _ in
                applyFloat8(src + o0, stride: st0, count: n, into: dst + linear) { f($0) }
            }
        }
        return out
    }

    /// Calls `body(start, count)` for disjoint chunks covering `0..<count`: in parallel (up to
    /// `Threading.maxThreads`) when there are at least 32Ki elements, else once. Chunk starts are
    /// multiples of 8, so 8-lane kernels see the same lanes whatever the split.
    @inline(__always)
    package static func forEachChunk(count: Int, minimumPerThread: Int = 16_384, _ body: (_ start: Int, _ count: Int) -> Void) {
        let threads = count >= 2 * minimumPerThread ? Swift.min(Threading.maxThreads, count / minimumPerThread) : 1
        if threads <= 1 {
            body(0, count)
            return
        }
        let chunk = ((count + threads - 1) / threads + 7) & ~7
        // Each chunk reads and writes only its own range of elements.
        Threading.parallelFor(chunks: threads) { c in
            let start = c * chunk
            let end = Swift.min(count, start + chunk)
            if start < end { body(start, end - start) }
        }
    }

    /// Float8 version of `f` over one run: `dst[i * dstStride] = f(src[i * stride])` for
    /// `i < count`.
    @inline(__always)
    package static func applyFloat8(
        _ src: UnsafePointer<Float>, stride: Int, count: Int, into dst: UnsafeMutablePointer<Float>,
        dstStride: Int = 1, _ f: (Float8) -> Float8
    ) {
        var i = 0
        if stride == 1 && dstStride == 1 {
            let rs = UnsafeRawPointer(src), rd = UnsafeMutableRawPointer(dst)
            while i + 8 <= count {
                let v = rs.loadUnaligned(fromByteOffset: i * 4, as: Float8.self)
                rd.storeBytes(of: f(v), toByteOffset: i * 4, as: Float8.self)
                i += 8
            }
        } else {
            while i + 8 <= count {
                var v = Float8()
                for l in 0..<8 { v[l] = src[(i + l) * stride] }
                let r = f(v)
                for l in 0..<8 { dst[(i + l) * dstStride] = r[l] }
                i += 8
            }
        }
        if i < count {
            var v = Float8()
            for l in 0..<(count - i) { v[l] = src[(i + l) * stride] }
            let r = f(v)
            for l in 0..<(count - i) { dst[(i + l) * dstStride] = r[l] }
        }
    }

    /// `sum_i f(src[i * stride])` for a float32 run, 8 lanes at a time, accumulated in double
    /// precision; padding lanes of the tail are excluded.
    @inline(__always)
    package static func sumFloat8(_ src: UnsafePointer<Float>, stride: Int, count: Int, _ f: (Float8) -> Float8) -> Double {
        var acc = SIMD8<Double>()
        var i = 0
        if stride == 1 {
            let rs = UnsafeRawPointer(src)
            while i + 8 <= count {
                acc += SIMD8<Double>(f(rs.loadUnaligned(fromByteOffset: i * 4, as: Float8.self)))
                i += 8
            }
        } else {
            while i + 8 <= count {
                var v = Float8()
                for l in 0..<8 { v[l] = src[(i + l) * stride] }
                acc += SIMD8<Double>(f(v))
                i += 8
            }
        }
        var total = acc.sum()
        if i < count {
            var v = Float8()
            for l in 0..<(count - i) { v[l] = src[(i + l) * stride] }
            let r = f(v)
            for l in 0..<(count - i) { total += Double(r[l]) }
        }
        return total
    }

    /// `dst[i] = f(a[i], b[i])` for contiguous float32 runs, 8 lanes at a time (tail padded).
    @inline(__always)
    package static func applyFloat8(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int, into dst: UnsafeMutablePointer<Float>,
        _ f: (Float8, Float8) -> Float8
    ) {
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b), rd = UnsafeMutableRawPointer(dst)
        var i = 0
        while i + 8 <= count {
            let va = ra.loadUnaligned(fromByteOffset: i * 4, as: Float8.self)
            let vb = rb.loadUnaligned(fromByteOffset: i * 4, as: Float8.self)
            rd.storeBytes(of: f(va, vb), toByteOffset: i * 4, as: Float8.self)
            i += 8
        }
        if i < count {
            var va = Float8(), vb = Float8()
            for l in 0..<(count - i) { va[l] = a[i + l]; vb[l] = b[i + l] }
            let r = f(va, vb)
            for l in 0..<(count - i) { dst[i + l] = r[l] }
        }
    }

    /// `f(a, b)` element-wise for two float32 tensors of one shape: vectorised when both are
    /// contiguous, else the scalar `zip` with `scalar` (which must compute the same function).
    @inline(__always)
    package static func zipFloat8(
        _ a: Tensor, _ b: Tensor, op: String, vector: (Float8, Float8) -> Float8, scalar: (Float, Float) -> Float
    ) -> Tensor {
        if a.shape == b.shape && a.isContiguous && b.isContiguous && a.dtype == .float32 && b.dtype == .float32 {
            let out = Tensor(uninitializedShape: a.shape, dtype: .float32)
            let pa = a.pointer(as: Float.self), pb = b.pointer(as: Float.self), po = out.mutablePointer(as: Float.self)
            forEachChunk(count: a.count) { start, count in
                applyFloat8(pa + start, pb + start, count: count, into: po + start, vector)
            }
            return out
        }
        return zip(a, b, Float.self, Float.self, Float.self, op: op, scalar)
    }
}

/// Scalar entry point to the vector `exp`, for the rare element that is not in a run.
@inline(__always) package func expLane(_ x: Float) -> Float { expVector(Float8(repeating: x))[0] }
