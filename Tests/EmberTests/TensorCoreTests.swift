import Ember
import Testing
import _EmberTestSupport

/// Fixture dtype codes (Tools/fixtures/gen_core.py).
private let dtypeCodes: [Int64: DType] = [0: .float32, 1: .float64, 2: .int64, 3: .bool]

/// Edge cases of the tensor core against PyTorch (`Tools/fixtures/gen_core.py`): creation,
/// conversions, empty tensors, NaN/inf propagation, dtype promotion, copy-on-write.
@Suite struct TensorCoreTests {
    let fx = try! Fixture("core")

    /// Indices `i` for which the fixture has `<prefix>_<i>`.
    func cases(_ prefix: String) -> [Int] {
        fx.keys(withPrefix: prefix + "_").compactMap { Int($0.dropFirst(prefix.count + 1)) }.sorted()
    }

    // MARK: Creation

    /// Values bit for bit, PyTorch's count `ceil((end - start) / step)` (e.g. arange(1, 1.3, 0.1)
    /// has 4 elements), its dtype inference, int64 truncation of a fractional step.
    @Test func arangeMatchesPyTorch() {
        let ids = cases("arange")
        #expect(ids.count == 17)
        for i in ids {
            let args = fx["arange_\(i)_args"].doubles
            let expected = fx["arange_\(i)"]
            let explicit = fx["arange_\(i)_explicit"].item(as: Bool.self)
            let dtype = dtypeCodes[fx["arange_\(i)_dtype"].item(as: Int64.self)]!
            let actual = Tensor.arange(args[0], args[1], step: args[2], dtype: explicit ? dtype : nil)
            expectBitwiseEqual(actual, expected, "arange(\(args[0]), \(args[1]), \(args[2])) explicit=\(explicit)")
        }
        #expect(Tensor.arange(1, 1.3, step: 0.1).count == 4)
    }

    @Test func linspaceMatchesPyTorchExactly() {
        let ids = cases("linspace")
        #expect(ids.count == 14)
        for i in ids {
            let args = fx["linspace_\(i)_args"].doubles
            let expected = fx["linspace_\(i)"]
            let actual = Tensor.linspace(args[0], args[1], steps: Int(args[2]), dtype: expected.dtype)
            expectBitwiseEqual(actual, expected, "linspace(\(args[0]), \(args[1]), \(Int(args[2])), \(expected.dtype))")
        }
    }

    @Test func eyeAndFullMatchPyTorch() {
        for i in cases("eye") {
            let args = fx["eye_\(i)_args"].scalars(as: Int64.self).map(Int.init)
            let expected = fx["eye_\(i)"]
            expectBitwiseEqual(Tensor.eye(args[0], args[1] < 0 ? nil : args[1], dtype: expected.dtype), expected, "eye \(args)")
        }
        for i in cases("full") {
            let expected = fx["full_\(i)"]
            let value = fx["full_\(i)_value"].item(as: Double.self)
            expectBitwiseEqual(Tensor.full(expected.shape, value, dtype: expected.dtype), expected, "full \(expected.shape) \(value)")
        }
    }

    @Test func creationErrorsUsePyTorchsMessages() async {
        var r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.arange(0, 1, step: -0.1)
        }
        #expect(stderrText(r).contains("upper bound and lower bound inconsistent with step sign"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.arange(0, .infinity)
        }
        #expect(stderrText(r).contains("unsupported range: 0.0 -> inf"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.linspace(0, 1, steps: -1)
        }
        #expect(stderrText(r).contains("number of steps must be non-negative"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.full([2], 1e40)
        }
        #expect(stderrText(r).contains("value cannot be converted to type float without overflow"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.full([2], .nan, dtype: .int64)
        }
        #expect(stderrText(r).contains("value cannot be converted to type int64_t without overflow"))
    }

    // MARK: Conversions

    @Test func conversionsMatchPyTorch() {
        // float -> int64 truncates toward zero.
        expectBitwiseEqual(fx["conv_f64"].to(.int64), fx["conv_f64_to_i64"])
        expectBitwiseEqual(fx["conv_f32"].to(.int64), fx["conv_f32_to_i64"])
        // float64 -> float32 rounds to nearest, underflows to subnormals/zero, overflows to inf.
        expectBitwiseEqual(fx["conv_d2f_in"].to(.float32), fx["conv_d2f_out"])
        // int64 -> float rounds to nearest.
        expectBitwiseEqual(fx["conv_i64"].to(.float32), fx["conv_i64_to_f32"])
        expectBitwiseEqual(fx["conv_i64"].to(.float64), fx["conv_i64_to_f64"])
        // Non-zero (including NaN and -1e-30) is true; both zeros are false.
        expectBitwiseEqual(fx["conv_tob_in"].to(.bool), fx["conv_tob_out"])
        expectBitwiseEqual(fx["conv_i64"].to(.bool), fx["conv_i64_to_bool"])
        expectBitwiseEqual(fx["conv_bool"].to(.float32), fx["conv_bool_to_f32"])
        expectBitwiseEqual(fx["conv_bool"].to(.int64), fx["conv_bool_to_i64"])
    }

    /// NaN, infinities and out-of-range values have no int64 value. C++ leaves the conversion
    /// undefined and PyTorch returns whatever the CPU does: INT64_MIN for all of them on x86,
    /// saturation (NaN -> 0) on ARM. Ember saturates on every platform: NaN -> 0, +inf and too
    /// large -> Int64.max, -inf and too small -> Int64.min (a documented difference from x86
    /// PyTorch).
    @Test func nonFiniteToInt64Saturates() {
        let x = Tensor([.nan, .infinity, -.infinity, 1e30, -1e30, -0.0] as [Double])
        #expect(x.to(.int64).scalars(as: Int64.self) == [0, .max, .min, .max, .min, 0])
        let f = Tensor([.nan, .infinity, -.infinity, 3e19] as [Float])
        #expect(f.to(.int64).scalars(as: Int64.self) == [0, .max, .min, .max])
    }

    // MARK: Element access errors

    @Test func itemAndScalarsAcceptTheRightTensors() {
        #expect(Tensor([2.5] as [Float], shape: [1, 1, 1]).item(as: Float.self) == 2.5)
        #expect(Tensor(Int64(7)).item(as: Int64.self) == 7)
        #expect(Tensor([true]).doubleValue == 1)
        #expect(Tensor.zeros([0, 3]).scalars(as: Float.self).isEmpty)
        let t = Tensor((0..<6).map { Float($0) }, shape: [2, 3]).transposed(0, 1)
        #expect(t.scalars(as: Float.self) == [0, 3, 1, 4, 2, 5], "row-major order of the view")
    }

    @Test func itemAndScalarsErrors() async {
        var r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor([1, 2] as [Float]).item(as: Float.self)
        }
        #expect(stderrText(r).contains("a Tensor with 2 elements cannot be converted to Scalar"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([0]).item(as: Float.self)
        }
        #expect(stderrText(r).contains("a Tensor with 0 elements cannot be converted to Scalar"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor([1, 2] as [Int64]).scalars(as: Float.self)
        }
        #expect(stderrText(r).contains("the tensor is torch.int64, not torch.float32"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor([1] as [Double]).item(as: Float.self)
        }
        #expect(stderrText(r).contains("the tensor is torch.float64, not torch.float32"))
    }

    // MARK: Empty tensors and zero-size dimensions

    @Test func emptyTensorsThroughCreation() {
        #expect(Tensor.zeros([0, 3]).shape == [0, 3])
        #expect(Tensor.ones([2, 0], dtype: .int64).shape == [2, 0])
        #expect(Tensor.full([0], 5).count == 0)
        #expect(Tensor.arange(0, 0).shape == [0])
        #expect(Tensor.linspace(0, 1, steps: 0).shape == [0])
        #expect(Tensor.eye(0, 3).shape == [0, 3])
        #expect(Tensor.uniform([3, 0], generator: Generator(seed: 0)).shape == [3, 0])
        #expect(Tensor([Float](), shape: [0, 5]).shape == [0, 5])
    }

    @Test func emptyTensorsThroughArithmeticAndReductions() {
        let e = Tensor.zeros([0, 3])
        #expect((e + Tensor.ones([3])).shape == [0, 3])
        #expect((e * 2.0).shape == [0, 3])
        #expect((Tensor.zeros([0, 1]) + Tensor.ones([1, 4])).shape == [0, 4])
        #expect((Tensor.zeros([2, 0, 1]) / Tensor.ones([3])).shape == [2, 0, 3])
        #expect(e.transposed(0, 1).shape == [3, 0])
        #expect(e.transposed(0, 1).contiguous().shape == [3, 0])
        expectBitwiseEqual(e.sum(), Tensor(Float(0)))
        expectBitwiseEqual(e.sum(axis: 0), Tensor.zeros([3]))
        #expect(e.sum(axis: 1).shape == [0])
        #expect(e.mean().item(as: Float.self).isNaN, "PyTorch: the mean of nothing is nan")
        let g = Tensor.zeros([0, 3], dtype: .float64).requiringGrad()
        (g * 3.0).sum().backward()
        #expect(g.grad?.shape == [0, 3])
    }

    @Test(arguments: [DType.float32, .float64])
    func emptyMatmul(_ dtype: DType) {
        let a = Tensor.zeros([0, 3], dtype: dtype), b = Tensor.ones([3, 4], dtype: dtype)
        #expect(a.matmul(b).shape == [0, 4])
        // k = 0: every output element is an empty sum, exactly 0 (never uninitialised memory).
        for _ in 0..<3 {
            _ = Tensor.full([64, 64], .nan, dtype: dtype)  // leave garbage in freed memory
            expectBitwiseEqual(Tensor.ones([2, 0], dtype: dtype).matmul(Tensor.ones([0, 3], dtype: dtype)), Tensor.zeros([2, 3], dtype: dtype))
        }
        #expect(Tensor.zeros([2, 0, 3], dtype: dtype).matmul(Tensor.ones([3, 4], dtype: dtype)).shape == [2, 0, 4])
        expectBitwiseEqual(Tensor.zeros([0], dtype: dtype).matmul(Tensor.zeros([0], dtype: dtype)), Tensor.zeros([], dtype: dtype))
        expectBitwiseEqual(Tensor.ones([3, 0], dtype: dtype).matmul(Tensor.ones([0], dtype: dtype)), Tensor.zeros([3], dtype: dtype))
        // Gradients through an empty contraction are empty or zero.
        let x = Tensor.ones([2, 0], dtype: .float64).requiringGrad(), y = Tensor.ones([0, 3], dtype: .float64).requiringGrad()
        x.matmul(y).sum().backward()
        #expect(x.grad?.shape == [2, 0] && y.grad?.shape == [0, 3])
    }

    // MARK: NaN and infinity

    @Test(arguments: ["f32", "f64"])
    func nanAndInfPropagateThroughArithmetic(_ name: String) {
        let a = fx["naninf_\(name)_a"], b = fx["naninf_\(name)_b"]
        // atol = rtol = 0: NaN must meet NaN, inf the same inf, finite values exact.
        expectClose(a + b, fx["naninf_\(name)_add"], atol: 0, rtol: 0, "add")
        expectClose(a - b, fx["naninf_\(name)_sub"], atol: 0, rtol: 0, "sub")
        expectClose(a * b, fx["naninf_\(name)_mul"], atol: 0, rtol: 0, "mul")
        expectClose(a / b, fx["naninf_\(name)_div"], atol: 0, rtol: 0, "div")
        // The same through non-contiguous (transposed) operands.
        let at = a.reshaped([3, 4]).transposed(0, 1), bt = b.reshaped([3, 4]).transposed(0, 1)
        #expect(!at.isContiguous)
        expectClose(at * bt, fx["naninf_\(name)_mul"].reshaped([3, 4]).transposed(0, 1), atol: 0, rtol: 0, "mul transposed")
        expectClose(at / bt, fx["naninf_\(name)_div"].reshaped([3, 4]).transposed(0, 1), atol: 0, rtol: 0, "div transposed")
        // Signed zeros: -0 * 1 and 1 / -inf.
        let signs = (a * b).doubles
        let expectedSigns = fx["naninf_\(name)_mul"].doubles
        #expect(zip(signs, expectedSigns).allSatisfy { $0.isNaN || $0.sign == $1.sign })
    }

    @Test func integerTrueDivisionGivesFloat32LikePyTorch() {
        let out = fx["intdiv_a"] / fx["intdiv_b"]
        expectBitwiseEqual(out, fx["intdiv_out"])
        #expect(out.dtype == .float32)
    }

    @Test func nanAndInfPropagateThroughMatmul() {
        expectClose(fx["mm_nan_a"].matmul(fx["mm_nan_b"]), fx["mm_nan_out"], atol: 0, rtol: 0)
        expectClose(fx["mm_nan_a64"].matmul(fx["mm_nan_b64"]), fx["mm_nan_out64"], atol: 0, rtol: 0)
        // Transposed operands (strided GEMM path): (B^T A^T)^T = A B.
        let viaT = fx["mm_nan_b"].transposed(0, 1).matmul(fx["mm_nan_a"].transposed(0, 1)).transposed(0, 1)
        expectClose(viaT, fx["mm_nan_out"], atol: 0, rtol: 0)
    }

    // MARK: dtype promotion

    /// PyTorch's result dtype for + - * / over every pair of {float32, float64, int64, bool} x
    /// {1-d, 0-d} operands, including its 0-d rule (float32[2] + float64[] is float32, but
    /// int64[2] + float64[] is float64) and bool + bool = bool, bool * bool = bool.
    @Test func promotionTableMatchesPyTorch() {
        let table = fx["promotion"].scalars(as: Int64.self)
        let kinds: [(DType, Bool)] = [(.float32, false), (.float64, false), (.int64, false), (.bool, false),
                                      (.float32, true), (.float64, true), (.int64, true), (.bool, true)]
        func make(_ k: (DType, Bool)) -> Tensor { Tensor.ones(k.1 ? [] : [2], dtype: k.0) }
        let ops: [(String, (Tensor, Tensor) -> Tensor)] = [("+", { $0 + $1 }), ("-", { $0 - $1 }), ("*", { $0 * $1 }), ("/", { $0 / $1 })]
        var checked = 0
        for (o, (name, op)) in ops.enumerated() {
            for (i, ka) in kinds.enumerated() {
                for (j, kb) in kinds.enumerated() {
                    let code = table[o * 64 + i * 8 + j]
                    guard code >= 0 else { continue }  // PyTorch refuses: see boolSubtractionIsRefused
                    let result = op(make(ka), make(kb))
                    #expect(result.dtype == dtypeCodes[code]!, "\(ka.0)\(ka.1 ? "[]" : "[2]") \(name) \(kb.0)\(kb.1 ? "[]" : "[2]")")
                    checked += 1
                }
            }
        }
        #expect(checked == 4 * 64 - 28, "PyTorch refuses subtraction with a bool operand: 28 of 64 pairs")
        // Values of bool + bool (or) and bool * bool (and).
        let p = Tensor([true, true, false, false]), q = Tensor([true, false, true, false])
        expectBitwiseEqual(p + q, fx["bool_add"])
        expectBitwiseEqual(p * q, fx["bool_mul"])
        // Python-style scalars: bool + 1 is int64, int64 + 2.5 is float32, float32 + 2 stays float32.
        #expect((p + 1.0).dtype == .int64 && (Tensor([1, 2] as [Int64]) + 2.5).dtype == .float32)
        #expect((Tensor([1] as [Float]) + 2.0).dtype == .float32 && (Tensor([1] as [Double]) * 2.0).dtype == .float64)
    }

    @Test func boolSubtractionAndNegationAreRefused() async {
        var r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor([true]) - Tensor([false])
        }
        #expect(stderrText(r).contains("Subtraction, the `-` operator, with a bool tensor is not supported"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor([1.5] as [Float]) - Tensor([true])
        }
        #expect(stderrText(r).contains("Subtraction, the `-` operator, with a bool tensor is not supported"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = -Tensor([true])
        }
        #expect(stderrText(r).contains("Negation, the `-` operator, on a bool tensor is not supported"))
    }

    // MARK: Copy-on-write

    @Test func mutatingACopyLeavesTheOriginal() {
        let a = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
        var b = a
        b.fillRaw(7)
        #expect(a.floats == [1, 2, 3, 4])
        #expect(b.floats == [7, 7, 7, 7])
        var c = a
        c += 1
        #expect(a.floats == [1, 2, 3, 4] && c.floats == [2, 3, 4, 5])
    }

    @Test func mutatingAViewLeavesTheBase() {
        let a = Tensor((0..<6).map { Float($0) }, shape: [2, 3])
        var t = a.transposed(0, 1)
        t.fillRaw(-1)
        #expect(a.floats == [0, 1, 2, 3, 4, 5])
        #expect(t.shape == [3, 2] && t.floats == [-1, -1, -1, -1, -1, -1])
        var r = a.reshaped([6])
        r.fillRaw { Double($0) * 10 }
        #expect(a.floats == [0, 1, 2, 3, 4, 5] && r.floats == [0, 10, 20, 30, 40, 50])
        let view = a.reshaped([3, 2])
        var w = a
        w.fillRaw(9)
        #expect(view.floats == [0, 1, 2, 3, 4, 5], "a view taken before the write keeps the old values")
    }

    @Test func uniqueContiguousStorageIsWrittenInPlace() {
        var c = Tensor.zeros([4])
        let before = ObjectIdentifier(c.storage)
        c.fillRaw(2)
        #expect(ObjectIdentifier(c.storage) == before, "no copy when the storage is not shared")
        let shared = c
        c.fillRaw(3)
        #expect(ObjectIdentifier(c.storage) != ObjectIdentifier(shared.storage))
        #expect(shared.floats == [2, 2, 2, 2] && c.floats == [3, 3, 3, 3])
    }

    @Test func gradientStateIsNotSharedWithAMutatedCopy() {
        let x = Tensor([1, 2] as [Float]).requiringGrad()
        var y = x.detached()
        y.fillRaw(5)
        #expect(x.floats == [1, 2] && x.requiresGrad && !y.requiresGrad)
    }
}
