import Ember
import Testing
import _EmberTestSupport


@Suite struct MathTests {
    let fx = try! Fixture("math")

    /// Every unary op of `Tools/fixtures/gen_math.py`, by its fixture name.
    static let unaryOps = [
        "neg", "abs", "exp", "log", "log1p", "sqrt", "rsqrt", "tanh", "sigmoid", "relu", "leaky_relu",
        "leaky_relu_02", "gelu", "gelu_tanh", "silu", "softplus", "softplus_b2_t5", "elu", "elu_05",
        "pow_2", "pow_3", "pow_05", "pow_m1", "pow_m05", "pow_17", "pow_m25", "pow_0",
        "clamp_m1_2", "clamp_min", "clamp_max", "clamp_inverted",
    ]

    /// Ops only defined (or only smooth) for positive inputs: finite differences use such inputs.
    static let positiveDomain: Set<String> = [
        "log", "log1p", "sqrt", "rsqrt", "pow_05", "pow_m1", "pow_m05", "pow_17", "pow_m25",
    ]

    static func apply(_ name: String, _ x: Tensor) -> Tensor {
        switch name {
        case "neg": -x
        case "abs": x.abs()
        case "exp": x.exp()
        case "log": x.log()
        case "log1p": x.log1p()
        case "sqrt": x.sqrt()
        case "rsqrt": x.rsqrt()
        case "tanh": x.tanh()
        case "sigmoid": x.sigmoid()
        case "relu": x.relu()
        case "leaky_relu": x.leakyRelu()
        case "leaky_relu_02": x.leakyRelu(negativeSlope: 0.2)
        case "gelu": x.gelu()
        case "gelu_tanh": x.gelu(approximate: .tanh)
        case "silu": x.silu()
        case "softplus": x.softplus()
        case "softplus_b2_t5": x.softplus(beta: 2, threshold: 5)
        case "elu": x.elu()
        case "elu_05": x.elu(alpha: 0.5)
        case "pow_2": x.pow(2)
        case "pow_3": x.pow(3)
        case "pow_05": x.pow(0.5)
        case "pow_m1": x.pow(-1)
        case "pow_m05": x.pow(-0.5)
        case "pow_17": x.pow(1.7)
        case "pow_m25": x.pow(-2.5)
        case "pow_0": x.pow(0)
        case "clamp_m1_2": x.clamp(min: -1, max: 2)
        case "clamp_min": x.clamp(min: 0.5)
        case "clamp_max": x.clamp(max: -0.5)
        case "clamp_inverted": x.clamp(min: 2, max: 1)
        default: fatalError("unknown unary op \(name)")
        }
    }

    // MARK: Unary ops

    @Test(arguments: unaryOps)
    func unaryForwardMatchesPyTorch(_ name: String) {
        // float32 with NaN, +-inf, 0, kinks and +-1000 (overflow and saturation).
        let u = fx["u32"]
        let out = Self.apply(name, u)
        #expect(out.dtype == .float32)
        expectClose(out, fx["unary_\(name)_f32"], atol: 1e-6, rtol: 1e-5, name)
        // The same through a non-contiguous (transposed) view.
        expectClose(Self.apply(name, u.transposed(0, 1)), fx["unary_\(name)_f32"].transposed(0, 1),
                    atol: 1e-6, rtol: 1e-5, "\(name) transposed")
        // float64.
        let out64 = Self.apply(name, fx["r64"])
        #expect(out64.dtype == .float64)
        expectClose(out64, fx["unary_\(name)_f64"], atol: 1e-13, rtol: 1e-12, "\(name) float64")
    }

    @Test(arguments: unaryOps)
    func unaryGradientAtKinksMatchesPyTorch(_ name: String) {
        // relu'(0) = 0, abs'(0) = 0, clamp at its bounds (0 there), leaky/elu at 0, softplus at
        // its threshold: PyTorch's choices, pinned by its own gradients.
        let k = fx["k64"].requiringGrad()
        let out = Self.apply(name, k)
        expectClose(out, fx["unary_\(name)_kink_out"], atol: 1e-13, rtol: 1e-12, name)
        (out * fx["w_k"]).sum().backward()
        expectClose(k.grad!, fx["unary_\(name)_kink_grad"], atol: 1e-12, rtol: 1e-10, "\(name) gradient")
    }

    @Test(arguments: unaryOps)
    func unaryGradientMatchesFiniteDifferences(_ name: String) {
        let x = Self.positiveDomain.contains(name)
            ? Tensor([0.3, 1.7, 2.4, 0.9, 1.2, 0.45] as [Double], shape: [2, 3])
            : Tensor([-1.3, 0.7, -0.4, 1.6, -2.2, 0.25] as [Double], shape: [2, 3])
        #expect(checkGradients([x]) { Self.apply(name, $0[0]) } == nil, "\(name)")
        // Through a transposed view of the input.
        #expect(checkGradients([x]) { Self.apply(name, $0[0].transposed(0, 1)) } == nil, "\(name) transposed")
    }

    @Test(arguments: ["exp", "tanh", "sigmoid", "gelu", "gelu_tanh", "silu", "softplus", "elu"])
    func float32GradientsMatchPyTorch(_ name: String) {
        let v = fx["v32"].requiringGrad()
        (Self.apply(name, v) * fx["w32"]).sum().backward()
        expectClose(v.grad!, fx["unary_\(name)_g32"], atol: 1e-6, rtol: 1e-5, name)
    }

    /// float32 exp, tanh, sigmoid, silu and gelu (vectorised) on a dense grid against the same
    /// functions in double precision, rounded: a few ulp at most.
    @Test func vectorisedFloat32FunctionsAreAccurate() {
        let n = 40_001
        let grid = (0..<n).map { Float(-110 + 220 * Double($0) / Double(n - 1)) }
        let x = Tensor(grid)
        func reference(_ f: (Double) -> Double) -> Tensor { Tensor(grid.map { Float(f(Double($0))) }) }
        // atol: one denormal ulp (denormal results carry fewer bits).
        expectClose(x.exp(), reference { Double.exp($0) }, atol: 1.5e-45, rtol: 3e-7, "exp")
        expectClose(x.tanh(), reference { Double.tanh($0) }, atol: 0, rtol: 3e-7, "tanh")
        // Below -88.7, e^-x overflows and the result is 0, as PyTorch's; the true values are
        // below 1e-35 there.
        expectClose(x.sigmoid(), reference { 1 / (1 + Double.exp(-$0)) }, atol: 1e-35, rtol: 3e-7, "sigmoid")
        expectClose(x.silu(), reference { $0 / (1 + Double.exp(-$0)) }, atol: 1e-35, rtol: 3e-7, "silu")
        expectClose(x.gelu(approximate: .tanh),
                    reference { 0.5 * $0 * (1 + Double.tanh(0.7978845608028654 * ($0 + 0.044715 * $0 * $0 * $0))) },
                    atol: 1e-7, rtol: 3e-7, "gelu tanh")
        // erf by Abramowitz & Stegun, as PyTorch's vectorised kernel: PyTorch's own float32 GELU
        // is 3.5e-7 from the exact value on this grid.
        expectClose(x.gelu(), reference { 0.5 * $0 * (1 + Double.erf($0 / 2.0.squareRoot())) },
                    atol: 4e-7, rtol: 3e-7, "gelu")
        // log and log1p over 80 orders of magnitude (and denormals), softplus.
        let positive = (0..<n).map { Float(Double.exp(-100 + 190 * Double($0) / Double(n - 1))) }
        let p = Tensor(positive)
        func referenceP(_ f: (Double) -> Double) -> Tensor { Tensor(positive.map { Float(f(Double($0))) }) }
        expectClose(p.log(), referenceP { Double.log($0) }, atol: 0, rtol: 3e-7, "log")
        expectClose(p.log1p(), referenceP { Double.log(onePlus: $0) }, atol: 0, rtol: 3e-7, "log1p")
        let nearMinusOne = Tensor((0..<1000).map { Float(-1 + Double($0 + 1) * 1e-4) })
        expectClose(nearMinusOne.log1p(), Tensor(nearMinusOne.floats.map { Float(Double.log(onePlus: Double($0))) }),
                    atol: 0, rtol: 3e-7, "log1p near -1")
        expectClose(x.softplus(), reference { $0 > 20 ? $0 : Double.log(onePlus: Double.exp($0)) }, atol: 1e-37, rtol: 3e-7,
                    "softplus")
        // Tiny arguments keep full relative precision.
        let tiny = Tensor([1e-30, -3e-8, 1e-4, -0.3] as [Float])
        expectClose(tiny.tanh(), Tensor([1e-30, -3e-8, Float(Double.tanh(1e-4)), Float(Double.tanh(-0.3))]), atol: 0, rtol: 2e-7)
        // Special values.
        let special = Tensor([.nan, .infinity, -.infinity, 0, -0.0] as [Float])
        expectBitwiseEqual(special.exp() .!= special.exp(), Tensor([true, false, false, false, false]))
        #expect(Array(special.exp().floats.dropFirst()) == [.infinity, 0, 1, 1])
        #expect(Array(special.tanh().floats.dropFirst()) == [1, -1, 0, 0])
        #expect(Array(special.sigmoid().floats.dropFirst()) == [1, 0, 0.5, 0.5])
        #expect(special.tanh().floats[0].isNaN && special.sigmoid().floats[0].isNaN && special.gelu().floats[0].isNaN)
        let logSpecial = Tensor([.nan, .infinity, 0, -0.0, -1, 1, .leastNonzeroMagnitude] as [Float]).log().floats
        #expect(logSpecial[0].isNaN && logSpecial[4].isNaN)
        #expect(Array(logSpecial[1...3]) == [.infinity, -.infinity, -.infinity] && logSpecial[5] == 0)
        #expect(logSpecial[6] == Float(Double.log(Double(Float.leastNonzeroMagnitude))))
        let log1pSpecial = Tensor([.nan, .infinity, -1, -2, 0, -0.0, 1e-30] as [Float]).log1p().floats
        #expect(log1pSpecial[0].isNaN && log1pSpecial[3].isNaN)
        #expect(log1pSpecial[1] == .infinity && log1pSpecial[2] == -.infinity && log1pSpecial[6] == 1e-30)
        #expect(log1pSpecial[4] == 0 && log1pSpecial[5] == 0 && log1pSpecial[5].sign == .minus)
    }

    @Test func largeTensorsGiveTheSameValuesOnAnyThreadCount() {
        // Above 32Ki elements maps are split across threads, and so are these softmax rows.
        let n = 701 * 100
        let x = Tensor((0..<n).map { Float(Double.sin(Double($0)) * 8) })
        let x64 = x.to(.float64)
        let ops: [(String, (Tensor) -> Tensor)] = [
            ("exp", { $0.exp() }), ("gelu", { $0.gelu() }), ("pow", { $0.pow(1.7) }), ("log1p", { $0.abs().log1p() }),
            ("softplus", { $0.softplus() }), ("softmax", { $0.reshaped([701, 100, 1]).softmax(axis: 1) }),
            ("logSoftmax", { $0.reshaped([701, 100]).logSoftmax(axis: -1) }),
        ]
        for (name, f) in ops {
            let serial = Threading.withThreads(1) { f(x) }
            let parallel = Threading.withThreads(4) { f(x) }
            expectBitwiseEqual(parallel, serial, name)
            expectBitwiseEqual(Threading.withThreads(3) { f(x64) }, Threading.withThreads(1) { f(x64) }, "\(name) float64")
        }
        // And they agree with the small-tensor path, element by element.
        let head = Tensor(Array(x.floats.prefix(1000)))
        expectBitwiseEqual(Tensor(Array(x.exp().floats.prefix(1000))), head.exp(), "exp head")
        expectBitwiseEqual(Tensor(Array(x.pow(1.7).floats.prefix(1000))), head.pow(1.7), "pow head")
    }

    @Test func largeMagnitudesStayFinite() {
        let x = Tensor([-1e4, -100, 100, 1e4] as [Float])
        // PyTorch's values (its sigmoid flushes e^-100 to 0; the difference is a denormal).
        expectClose(x.sigmoid(), Tensor([0, 0, 1, 1] as [Float]), atol: 1e-40, rtol: 0)
        expectClose(x.softplus(), Tensor([0, 0, 100, 1e4] as [Float]), atol: 1e-40, rtol: 0)
        expectClose(x.silu(), Tensor([-0.0, -0.0, 100, 1e4] as [Float]), atol: 0, rtol: 0)
        #expect(x.tanh().floats == [-1, -1, 1, 1])
        // No NaN on the way back either.
        let g = Tensor([-1e4, -100, 100, 1e4] as [Double]).requiringGrad()
        (g.sigmoid() + g.softplus() + g.silu() + g.tanh() + g.gelu()).sum().backward()
        #expect(g.grad!.doubles.allSatisfy { $0.isFinite })
    }

    @Test func integerInputsPromoteToFloat32AsPyTorch() {
        let i = fx["i64"]
        for (name, out) in [("exp", i.exp()), ("sigmoid", i.sigmoid()), ("sqrt", i.sqrt()), ("pow_05", i.pow(0.5)),
                            ("clamp_frac", i.clamp(min: 0.5))] {
            #expect(out.dtype == .float32, "\(name)")
        }
        expectClose(i.exp(), fx["int_exp"], atol: 1e-6, rtol: 1e-6)
        expectClose(i.sigmoid(), fx["int_sigmoid"], atol: 1e-6, rtol: 1e-6)
        expectClose(i.sqrt(), fx["int_sqrt"], atol: 1e-6, rtol: 1e-6)
        expectClose(i.pow(0.5), fx["int_pow_05"], atol: 1e-6, rtol: 1e-6)
        expectBitwiseEqual(i.clamp(min: 0.5), fx["int_clamp_frac"])
        // Integer results stay int64.
        expectBitwiseEqual(i.abs(), fx["int_abs"])
        expectBitwiseEqual(i.relu(), fx["int_relu"])
        expectBitwiseEqual(-i, fx["int_neg"])
        expectBitwiseEqual(i.pow(3), fx["int_pow_3"])
        expectBitwiseEqual(i.clamp(min: 0, max: 4), fx["int_clamp_0_4"])
        expectBitwiseEqual(Tensor([true, false]).pow(2), Tensor([1, 0]))
    }

    // MARK: Errors

    @Test func negatingABoolTensorFailsAsPyTorch() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = -Tensor([true, false])
        }
        #expect(standardErrorText(r).contains("Negation, the `-` operator, on a bool tensor is not supported."))
    }

    @Test func boolReluAndAbsFailAsPyTorch() async {
        let r1 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor([true, false]).relu()
        }
        #expect(standardErrorText(r1).contains("Boolean inputs not supported for relu"))
        let r2 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor([true, false]).abs()
        }
        #expect(standardErrorText(r2).contains("\"abs_cpu\" not implemented for 'Bool'"))
    }

    @Test func integerActivationsFailAsPyTorch() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor([1, 2]).gelu()
        }
        #expect(standardErrorText(r).contains("\"GeluKernelImpl\" not implemented for 'Long'"))
        let r2 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor([1, 2]).softmax(axis: 0)
        }
        #expect(standardErrorText(r2).contains("\"softmax_lastdim_kernel_impl\" not implemented for 'Long'"))
    }

    @Test func integerToNegativePowerFailsAsPyTorch() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor([1, 2]).pow(-1)
        }
        #expect(standardErrorText(r).contains("Integers to negative integer powers are not allowed."))
    }

    @Test func clampWithoutBoundsFailsAsPyTorch() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor([1.0, 2.0] as [Float]).clamp()
        }
        #expect(standardErrorText(r).contains("At least one of 'min' or 'max' must not be None"))
    }

    @Test func whereWithNonBoolConditionFailsAsPyTorch() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let x = Tensor([1.0, 2.0] as [Float])
            _ = Tensor.where(Tensor([1, 0]), x, x)
        }
        #expect(standardErrorText(r).contains("where expected condition to be a boolean tensor, but got a tensor with dtype Long"))
    }

    // MARK: pow with a tensor exponent

    @Test func tensorPowMatchesPyTorch() {
        let a = fx["pow_a"].requiringGrad(), e = fx["pow_e"].requiringGrad()
        let out = a.pow(e)
        expectClose(out, fx["pow_out"], atol: 1e-13, rtol: 1e-12)
        (out * fx["pow_w"]).sum().backward()
        expectClose(a.grad!, fx["pow_ga"], atol: 1e-12, rtol: 1e-10)
        expectClose(e.grad!, fx["pow_ge"], atol: 1e-12, rtol: 1e-10)

        // 0^2, 0^0, 0^-1, 2^0, (-2)^2, 0^nan, (-2)^3, 4^0.5 and PyTorch's gradients there.
        let x = fx["pow_special_x"].requiringGrad(), p = fx["pow_special_e"].requiringGrad()
        let y = x.pow(p)
        expectClose(y, fx["pow_special_out"], atol: 0, rtol: 1e-15)
        y.sum().backward()
        expectClose(x.grad!, fx["pow_special_gx"], atol: 1e-15, rtol: 1e-12)
        expectClose(p.grad!, fx["pow_special_ge"], atol: 1e-15, rtol: 1e-12)

        expectBitwiseEqual(Tensor([1, -2, 0, 3, -1, 2]).pow(Tensor([2, 3, 1, 2, -3, -1])), fx["pow_int_int"])
        let mixed = Tensor([1.5, -2.0, 0.5] as [Float]).pow(Tensor([2, 3, -1]))
        #expect(mixed.dtype == .float32)
        expectClose(mixed, fx["pow_f32_int"], atol: 0, rtol: 1e-6)
    }

    @Test func tensorPowGradientMatchesFiniteDifferences() {
        let a = Tensor([0.5, 1.3, 2.1, 0.8, 1.7, 0.9] as [Double], shape: [2, 3])
        let e = Tensor([1.5, -0.7, 2.2] as [Double], shape: [3])
        #expect(checkGradients([a, e]) { $0[0].pow($0[1]) } == nil)
        let base = Tensor([1.5, 0.7, 2.2] as [Double], shape: [3])
        #expect(checkGradients([base, a]) { $0[0].pow($0[1]) } == nil)
    }

    // MARK: maximum, minimum

    @Test func maximumAndMinimumMatchPyTorchIncludingTies() {
        for name in ["maximum", "minimum"] {
            let a = fx["ext_a"].requiringGrad(), b = fx["ext_b"].requiringGrad()
            let out = name == "maximum" ? a.maximum(b) : a.minimum(b)
            expectClose(out, fx["\(name)_out"], atol: 0, rtol: 0, name)
            (out * fx["ext_w"]).sum().backward()
            // Ties give each side half; NaN gives both the full gradient.
            expectClose(a.grad!, fx["\(name)_ga"], atol: 1e-15, rtol: 1e-12, "\(name) grad a")
            expectClose(b.grad!, fx["\(name)_gb"], atol: 1e-15, rtol: 1e-12, "\(name) grad b")
        }
        let promoted = Tensor([1, -2, 0]).maximum(Tensor([0.5] as [Float]))
        #expect(promoted.dtype == .float32)
        expectBitwiseEqual(promoted, fx["maximum_int_float"])
        expectClose(fx["ext_a"].maximum(2.0), fx["maximum_scalar_out"], atol: 0, rtol: 0)
        expectBitwiseEqual(Tensor([true, false, false]).maximum(Tensor([false, false, true])), Tensor([true, false, true]))
    }

    @Test func maximumGradientMatchesFiniteDifferences() {
        let a = Tensor([0.5, 1.3, -2.1, 0.8, 1.7, -0.9] as [Double], shape: [2, 3])
        let b = Tensor([1.0, -0.7, 0.2] as [Double], shape: [3])
        #expect(checkGradients([a, b]) { $0[0].maximum($0[1]) } == nil)
        #expect(checkGradients([a, b]) { $0[0].minimum($0[1]) } == nil)
    }

    // MARK: Comparisons, logic, where

    @Test func comparisonsMatchPyTorch() {
        let a = fx["cmp_a"], b = fx["cmp_b"]
        let results: [(String, Tensor, Tensor)] = [
            ("eq", a .== b, a .== 2.0), ("ne", a .!= b, a .!= 2.0), ("lt", a .< b, a .< 2.0),
            ("le", a .<= b, a .<= 2.0), ("gt", a .> b, a .> 2.0), ("ge", a .>= b, a .>= 2.0),
        ]
        for (op, tensorResult, scalarResult) in results {
            #expect(tensorResult.dtype == .bool)
            expectBitwiseEqual(tensorResult, fx["cmp_\(op)"], op)
            expectBitwiseEqual(scalarResult, fx["cmp_\(op)_scalar"], "\(op) scalar")
        }
        // Methods and operators agree; scalars on the left mirror.
        expectBitwiseEqual(a.lt(b), a .< b)
        expectBitwiseEqual(2.0 .> a, a .< 2.0)
        expectBitwiseEqual(2.0 .<= a, a .>= 2.0)
        // Non-contiguous operands.
        expectBitwiseEqual(a.transposed(0, 1) .< b.reshaped([4, 1]), fx["cmp_lt"].transposed(0, 1))
        // int64 against float32 promotes.
        expectBitwiseEqual(fx["cmp_int"] .< Tensor([1.5] as [Float]), fx["cmp_int_lt_float"])
        // Bools order false < true.
        expectBitwiseEqual(Tensor([false, true, true]) .< Tensor([true, true, false]), Tensor([true, false, false]))
    }

    @Test func logicalOpsMatchPyTorch() {
        let a = fx["cmp_a"], b = fx["cmp_b"]
        expectBitwiseEqual(a.logicalNot(), fx["logical_not"])
        expectBitwiseEqual(.!a, fx["logical_not"])
        expectBitwiseEqual(a .& b, fx["logical_and"])
        expectBitwiseEqual(a .| Tensor.zeros([4]), fx["logical_or"])
        expectBitwiseEqual(a .^ b, fx["logical_xor"])
    }

    @Test func whereMatchesPyTorchWithBroadcasting() {
        let c = fx["where_cond"], a = fx["where_a"].requiringGrad(), b = fx["where_b"].requiringGrad()
        let out = Tensor.where(c, a, b)
        expectBitwiseEqual(out, fx["where_out"])
        (out * fx["where_w"]).sum().backward()
        expectClose(a.grad!, fx["where_ga"], atol: 1e-15, rtol: 1e-12)
        expectClose(b.grad!, fx["where_gb"], atol: 1e-15, rtol: 1e-12)
        #expect(checkGradients([fx["where_a"], fx["where_b"]]) { Tensor.where(c, $0[0], $0[1]) } == nil)

        let mixed = Tensor.where(Tensor([true, false, true, false]), Tensor([1, 2, 3, 4]), Tensor([0.5] as [Float]))
        #expect(mixed.dtype == .float32)
        expectBitwiseEqual(mixed, fx["where_int_float"])
        // Scalar branches keep the tensor's float dtype.
        let x = Tensor([1, -2, 3] as [Float])
        let relu = Tensor.where(x .> 0, x, 0)
        #expect(relu.dtype == .float32)
        #expect(relu.floats == [1, 0, 3])
        #expect(Tensor.where(x .> 0, -1, x).floats == [-1, -2, -1])
    }

    @Test func clampGradientMatchesFiniteDifferencesAwayFromBounds() {
        let x = Tensor([-1.3, 0.7, -0.4, 1.6, -2.2, 2.5] as [Double], shape: [2, 3])
        #expect(checkGradients([x]) { $0[0].clamp(min: -1, max: 2) } == nil)
        #expect(checkGradients([x]) { $0[0].clamp(min: 0) } == nil)
        #expect(checkGradients([x]) { $0[0].clamp(max: 0) } == nil)
    }

    @Test func opsOnEmptyTensorsGiveEmptyResults() {
        let e = Tensor.zeros([0, 3])
        for out in [e.exp(), e.relu(), e.gelu(), e.pow(2), e.clamp(min: 0), e.maximum(e), e.softmax(axis: 1)] {
            #expect(out.shape == [0, 3])
        }
        #expect((e .< 1.0).shape == [0, 3])
        #expect(Tensor.where(e .< 1.0, e, 0).shape == [0, 3])
    }
}
