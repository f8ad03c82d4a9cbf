// The float32 activations of the fused recurrent kernels.
//
// These are EmberTensor's `expVector`, `sigmoidVector` and `tanhVector` (the functions behind
// `Tensor.sigmoid()` and `Tensor.tanh()`), the same formulas and constants, so the same values:
// Cephes' exp polynomial (within 2 ulp), `1 / (1 + e^-x)`, and tanh within a few ulp. They are
// repeated here as `@_transparent` functions because a function of another module is not inlined
// across the module boundary, and neither is a protocol witness into a generic kernel: a call per
// 8 lanes (arguments passed through memory) cost about a tenth of the LSTM step's gate pass.

/// `e^x` for 8 lanes (EmberTensor's `expVector`).
@_transparent
package func recurrentExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    // Clamp (NaN lanes are restored at the end), round x log2(e) with the 1.5 * 2^23 trick,
    // a degree-6 polynomial for e^r, and 2^n from the exponent bits in two halves.
    var xc = x
    xc.replace(with: 89, where: x .> 89)
    xc.replace(with: -104, where: x .< -104)
    let magic = SIMD8<Float>(repeating: 12_582_912)
    let t = xc * 1.442_695_04 + magic
    let n = t - magic
    let r = xc - n * 0.693_359_375 - n * -2.121_944_4e-4
    var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_950_7e-3
    p = p * r + 8.333_451_907_3e-3
    p = p * r + 4.166_579_589_4e-2
    p = p * r + 1.666_666_545_9e-1
    p = p * r + 5.000_000_120_1e-1
    p = p * (r * r) + r + 1
    let ni = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000
    let half = ni &>> 1
    let s1 = unsafeBitCast((half &+ 127) &<< 23, to: SIMD8<Float>.self)
    let s2 = unsafeBitCast((ni &- half &+ 127) &<< 23, to: SIMD8<Float>.self)
    var result = p * s1 * s2
    result.replace(with: .infinity, where: x .> 88.722_839)
    result.replace(with: 0, where: x .< -103.972_08)
    result.replace(with: x, where: x .!= x)
    return result
}
/// `1 / (1 + e^-x)` for 8 lanes (EmberTensor's `sigmoidVector`).
@_transparent
package func recurrentSigmoid(_ x: SIMD8<Float>) -> SIMD8<Float> { 1 / (1 + recurrentExp(-x)) }
/// `tanh(x)` for 8 lanes (EmberTensor's `tanhVector`): a polynomial below 0.625, else
/// `1 - 2 / (e^(2|x|) + 1)`; NaN stays NaN.
@_transparent
package func recurrentTanh(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let ax = x.replacing(with: -x, where: x .< 0)
    let z = x * x
    var p = SIMD8<Float>(repeating: -5.704_988_727_45e-3)
    p = p * z + 2.063_908_879_54e-2
    p = p * z - 5.373_971_555_31e-2
    p = p * z + 1.333_144_220_36e-1
    p = p * z - 3.333_328_194_22e-1
    let small = p * z * x + x
    var large = 1 - 2 / (recurrentExp(ax + ax) + 1)
    large.replace(with: -large, where: x .< 0)
    var result = small
    result.replace(with: large, where: ax .>= 0.625)
    result.replace(with: x, where: x .!= x)
    return result
}
