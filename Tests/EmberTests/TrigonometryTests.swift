import Ember
import Testing
import _EmberTestSupport

/// Element-wise math of issue #13 (trigonometric, hyperbolic, erf, rounding, sign, remainders,
/// clamp with tensor bounds, NaN tests) against PyTorch (`gen_tensor_ops_math.py`), plus
/// finite-difference checks in float64 and double backward.
@Suite struct TrigonometryTests {
    static func unary(_ name: String, _ x: Tensor) -> Tensor {
        switch name {
        case "sin": x.sin()
        case "cos": x.cos()
        case "tan": x.tan()
        case "asin": x.asin()
        case "acos": x.acos()
        case "atan": x.atan()
        case "sinh": x.sinh()
        case "cosh": x.cosh()
        case "erf": x.erf()
        case "floor": x.floor()
        case "ceil": x.ceil()
        case "round": x.round()
        case "round_d2": x.round(decimals: 2)
        case "round_dm1": x.round(decimals: -1)
        case "trunc": x.trunc()
        case "sign": x.sign()
        case "nan_to_num": x.nanToNum()
        case "nan_to_num_custom": x.nanToNum(nan: 1.5, posinf: 9, neginf: -8)
        case "isnan": x.isnan()
        case "isinf": x.isinf()
        case "isfinite": x.isfinite()
        default: fatalError("no Swift mapping for \(name)")
        }
    }

    @Test(arguments: OpsMath.cases("elementwise"))
    func unaryFloat64MatchesPyTorch(_ name: String) {
        OpsMath.check(name) { Self.unary(name, $0[0]) }
    }

    @Test(arguments: OpsMath.cases("special"))
    func unaryFloat32SpecialValuesMatchPyTorch(_ name: String) {
        // Ties (round half to even), signed zeros, NaN, +-inf, large values, in float32.
        let x = OpsMath.fx["special32"]
        let expected = OpsMath.fx["special/\(name)"]
        let out = Self.unary(name, x)
        #expect(out.dtype == expected.dtype, "\(name)")
        expectClose(out, expected, atol: 1e-6, rtol: 2e-6, name)
        expectClose(Self.unary(name, x.transposed(0, 1)), expected.transposed(0, 1), atol: 1e-6, rtol: 2e-6, "\(name) transposed")
    }

    @Test func roundIsHalfToEvenBitForBit() {
        let x = Tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5] as [Float])
        #expect(x.round().floats == [-2, -2, -0, 0, 2, 2])
        #expect(Tensor([0.125, 0.135] as [Double]).round(decimals: 2).doubles == [0.12, 0.14])
        #expect(Tensor([15.0, 25.0, -35.0] as [Double]).round(decimals: -1).doubles == [20, 20, -40])
    }

    @Test func integerAndBoolInputs() {
        let i = Tensor([-3, 0, 4] as [Int64])
        #expect(i.floor().dtype == .int64 && i.floor().scalars(as: Int64.self) == [-3, 0, 4])
        #expect(i.sign().scalars(as: Int64.self) == [-1, 0, 1])
        #expect(i.sin().dtype == .float32)
        #expect(i.isnan().scalars(as: Bool.self) == [false, false, false])
        #expect(i.isfinite().scalars(as: Bool.self) == [true, true, true])
        #expect(i.nanToNum().scalars(as: Int64.self) == [-3, 0, 4])
        #expect(Tensor([Float.infinity, -.infinity, .nan]).nanToNum().floats
                == [Float.greatestFiniteMagnitude, -Float.greatestFiniteMagnitude, 0])
    }

    @Test func emptyAndZeroDim() {
        let e = Tensor.zeros([0, 3])
        #expect(e.sin().shape == [0, 3] && e.round().shape == [0, 3] && e.isnan().shape == [0, 3])
        let s = Tensor(0.5 as Double)
        #expect(s.asin().shape == [] && abs(s.asin().doubleValue - 0.523_598_775_598_298_9) < 1e-15)
    }

    @Test(arguments: ["sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "erf"])
    func finiteDifferences(_ name: String) {
        let x = Tensor([-0.7, -0.2, 0.1, 0.45, 0.8, 0.3] as [Double], shape: [2, 3])
        #expect(checkGradients([x]) { Self.unary(name, $0[0]) } == nil, "\(name)")
    }

    @Test(arguments: ["sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "erf"])
    func doubleBackwardMatchesPyTorch(_ name: String) {
        OpsMath.checkDouble("dd_\(name)") { Self.unary(name, $0) }
    }

    // MARK: Binary

    static func binary(_ name: String, _ a: [Tensor]) -> Tensor {
        switch name {
        case "remainder", "remainder_f32", "remainder_int": a[0].remainder(a[1])
        case "fmod", "fmod_int": a[0].fmod(a[1])
        case "remainder_scalar": a[0].remainder(-1.5)
        case "fmod_scalar": a[0].fmod(-1.5)
        case "atan2", "atan2_f32": a[0].atan2(a[1])
        case "clamp_both", "clamp_nan": a[0].clamp(min: a[1], max: a[2])
        case "clamp_min": a[0].clamp(min: a[1])
        case "clamp_max": a[0].clamp(min: nil, max: a[1])
        default: fatalError("no Swift mapping for \(name)")
        }
    }

    @Test(arguments: OpsMath.cases("binary"))
    func binaryMatchesPyTorch(_ name: String) {
        let f32 = name.hasSuffix("_f32")
        OpsMath.check(name, atol: f32 ? 1e-6 : 1e-12, rtol: f32 ? 1e-5 : 1e-10) { Self.binary(name, $0) }
    }

    @Test func binaryFiniteDifferences() {
        let a = Tensor([5.3, -5.2, 2.7, -0.4, 7.1, -6.9] as [Double], shape: [2, 3])
        let b = Tensor([2.0, -1.7, 3.1] as [Double])
        #expect(checkGradients([a, b]) { $0[0].remainder($0[1]) } == nil)
        #expect(checkGradients([a, b]) { $0[0].fmod($0[1]) } == nil)
        #expect(checkGradients([a, b]) { $0[0].atan2($0[1]) } == nil)
        let lo = Tensor([-1.0, 0.3, -7.0] as [Double]), hi = Tensor([1.0, 4.0] as [Double], shape: [2, 1])
        let x = Tensor([-2.1, 0.2, 0.9, 0.5, 4.2, -7.5] as [Double], shape: [2, 3])
        #expect(checkGradients([x, lo, hi]) { $0[0].clamp(min: $0[1], max: $0[2]) } == nil)
    }

    @Test func remainderSignConventions() {
        let a = Tensor([7, -7, 7, -7] as [Int64]), b = Tensor([3, 3, -3, -3] as [Int64])
        #expect(a.remainder(b).scalars(as: Int64.self) == [1, 2, -2, -1])
        #expect(a.fmod(b).scalars(as: Int64.self) == [1, -1, 1, -1])
        #expect(Tensor([-0.5] as [Double]).remainder(2).doubles == [1.5])
        #expect(Tensor([1.0] as [Double]).remainder(0).doubles[0].isNaN)
    }

    @Test func clampSecondDerivativeFlowsThroughBounds() {
        // d/dlo of (clamp(x, lo, hi) * lo).sum() twice: the mask is constant, so the
        // second derivative of (lo^2 where x < lo) is 2, elsewhere 0.
        let x = Tensor([-3.0, 0.5] as [Double]), lo = Tensor([-1.0, -1.0] as [Double]).requiringGrad()
        let hi = Tensor([2.0, 2.0] as [Double])
        let y = (x.clamp(min: lo, max: hi) * lo).sum()
        let g = Autograd.grad(y, [lo], createGraph: true)[0]!
        #expect(g.doubles == [-2, 0.5])
        let h = Autograd.grad(g.sum(), [lo])[0]!
        #expect(h.doubles == [2, 0])
    }
}
