import Ember
import Testing
import _EmberTestSupport


@Suite struct ReductionTests {
    let fx = try! Fixture("reductions")

    static let ops = ["sum", "mean", "prod", "amax", "amin", "var", "var0", "std", "logsumexp"]
    /// Axis sets of `gen_reductions.py`: name, then `_k` (keepDim) or `_d` (dropped).
    static let axisCases = [
        "all_d", "0_d", "0_k", "1_d", "1_k", "2_d", "2_k", "0_2_d", "0_2_k", "1_2_d", "1_2_k", "0_1_d", "0_1_k",
        "0_1_2_d", "0_1_2_k",
    ]

    static func parse(_ axisCase: String) -> (axes: [Int], keepDim: Bool) {
        let name = axisCase.dropLast(2)
        let axes = name == "all" ? [] : name.split(separator: "_").map { Int($0)! }
        return (axes, axisCase.hasSuffix("_k"))
    }

    static func reduce(_ op: String, _ x: Tensor, _ axes: [Int], _ keepDim: Bool) -> Tensor {
        switch op {
        case "sum": x.sum(axes: axes, keepDim: keepDim)
        case "mean": x.mean(axes: axes, keepDim: keepDim)
        case "prod": x.prod(axes: axes, keepDim: keepDim)
        case "amax": x.amax(axes: axes, keepDim: keepDim)
        case "amin": x.amin(axes: axes, keepDim: keepDim)
        case "var": x.variance(axes: axes, keepDim: keepDim)
        case "var0": x.variance(axes: axes, correction: 0, keepDim: keepDim)
        case "std": x.std(axes: axes, keepDim: keepDim)
        case "logsumexp": x.logsumexp(axes: axes, keepDim: keepDim)
        default: fatalError("unknown reduction \(op)")
        }
    }

    // MARK: Every reduction over every axis set

    @Test(arguments: ops, axisCases)
    func reductionMatchesPyTorch(_ op: String, _ axisCase: String) {
        let (axes, keepDim) = Self.parse(axisCase)
        let out = Self.reduce(op, fx["x32"], axes, keepDim)
        #expect(out.dtype == .float32)
        expectClose(out, fx["\(op)_\(axisCase)"], atol: 1e-6, rtol: 1e-5, "\(op) \(axisCase)")
        guard op != "var0" else { return }
        let x = fx["x64"].requiringGrad()
        let y = Self.reduce(op, x, axes, keepDim)
        (y * fx["w_\(axisCase)"]).sum().backward()
        expectClose(x.grad!, fx["\(op)_\(axisCase)_g"], atol: 1e-12, rtol: 1e-10, "\(op) \(axisCase) gradient")
    }

    @Test(arguments: ops)
    func reductionGradientMatchesFiniteDifferences(_ op: String) {
        let x = fx["x64"]
        for axes in [[], [1], [0, 2], [-1]] {
            #expect(checkGradients([x]) { Self.reduce(op, $0[0], axes, false) } == nil, "\(op) \(axes)")
        }
        #expect(checkGradients([x]) { Self.reduce(op, $0[0].permuted([2, 0, 1]), [1], true) } == nil, "\(op) permuted")
    }

    @Test func negativeAxesMatchPositiveOnes() {
        let x = fx["x32"]
        for op in Self.ops {
            expectClose(Self.reduce(op, x, [-1], false), fx["\(op)_2_d"], atol: 1e-6, rtol: 1e-5, op)
            expectClose(Self.reduce(op, x, [-3, -1], true), fx["\(op)_0_2_k"], atol: 1e-6, rtol: 1e-5, op)
        }
        // Axis order and single-axis spellings do not matter.
        expectBitwiseEqual(x.sum(axes: [2, 0]), x.sum(axes: [0, 2]))
        expectBitwiseEqual(x.sum(axis: 1, keepDim: true), x.sum(axes: [1], keepDim: true))
        expectBitwiseEqual(x.mean(axis: -2), x.mean(axes: [1]))
    }

    @Test func nonContiguousInputsMatchPyTorch() {
        let p = fx["x32"].permuted([2, 0, 1])
        #expect(!p.isContiguous)
        for (name, axes) in [("all", [Int]()), ("0", [0]), ("2", [2]), ("0_2", [0, 2]), ("1_2", [1, 2])] {
            for op in ["sum", "mean", "amax", "var", "logsumexp", "prod"] {
                expectClose(Self.reduce(op, p, axes, false), fx["perm_\(op)_\(name)"], atol: 1e-6, rtol: 1e-5,
                            "\(op) over \(name) of a permuted view")
            }
        }
        // An expanded (stride-0) view: x32[:, :1, :].expand(2, 3, 4).
        let x = fx["x32"]
        let e = Tensor(storage: x.storage, shape: [2, 3, 4], strides: [12, 0, 1], offset: 0, dtype: .float32)
        for (name, axes) in [("1", [1]), ("0_1", [0, 1]), ("all", [])] {
            for op in ["sum", "mean", "amax", "var"] {
                expectClose(Self.reduce(op, e, axes, false), fx["exp_\(op)_\(name)"], atol: 1e-6, rtol: 1e-5,
                            "\(op) over \(name) of an expanded view")
            }
        }
    }

    // MARK: max, min, argmax, argmin

    @Test(arguments: [0, 1, 2, -1])
    func maxAndMinAlongAnAxisMatchPyTorch(_ axis: Int) {
        let key = axis >= 0 ? "\(axis)" : "m1"
        for op in ["max", "min"] {
            let x = fx["ties"].requiringGrad()
            let (values, indices) = op == "max" ? x.max(axis: axis) : x.min(axis: axis)
            expectBitwiseEqual(values.detached(), fx["\(op)dim_\(key)_v"], "\(op) values")
            // First occurrence among ties, as PyTorch.
            expectBitwiseEqual(indices, fx["\(op)dim_\(key)_i"], "\(op) indices")
            (values * fx["\(op)dim_\(key)_w"]).sum().backward()
            // The gradient goes to the selected index only.
            expectBitwiseEqual(x.grad!, fx["\(op)dim_\(key)_g"], "\(op) gradient")
            let (vk, ik) = op == "max" ? fx["ties"].max(axis: axis, keepDim: true) : fx["ties"].min(axis: axis, keepDim: true)
            expectBitwiseEqual(vk, fx["\(op)dim_\(key)_vk"], "\(op) keepDim values")
            expectBitwiseEqual(ik, fx["\(op)dim_\(key)_ik"], "\(op) keepDim indices")
        }
        expectBitwiseEqual(fx["ties"].argmax(axis: axis), fx["argmax_\(key)"])
        expectBitwiseEqual(fx["ties"].argmin(axis: axis), fx["argmin_\(key)"])
    }

    @Test func fullMaxAndMinShareTheGradientAmongTies() {
        expectBitwiseEqual(fx["ties"].argmax(), fx["argmax_all"])
        expectBitwiseEqual(fx["ties"].argmin(), fx["argmin_all"])
        expectBitwiseEqual(fx["ties"].argmax(keepDim: true), fx["argmax_all_k"])
        for op in ["max", "min", "amax", "amin"] {
            let x = fx["ties"].requiringGrad()
            let out: Tensor
            switch op {
            case "max": out = x.max()
            case "min": out = x.min()
            case "amax": out = x.amax()
            default: out = x.amin()
            }
            #expect(out.shape == [])
            expectBitwiseEqual(out.detached(), fx["full_\(op)"], op)
            out.backward()
            expectClose(x.grad!, fx["full_\(op)_g"], atol: 1e-15, rtol: 1e-15, "\(op) gradient")
        }
    }

    @Test func nanPropagatesThroughReductionsAsPyTorch() {
        let x = fx["nanx"].requiringGrad()
        let m = x.max()
        expectClose(m, fx["nan_max"], atol: 0, rtol: 0)
        m.backward()
        // The gradient is shared among the NaNs.
        expectClose(x.grad!, fx["nan_max_g"], atol: 0, rtol: 0)
        let (v, i) = fx["nanx"].max(axis: 1)
        expectClose(v, fx["nan_maxdim_v"], atol: 0, rtol: 0)
        expectBitwiseEqual(i, fx["nan_maxdim_i"])
        let (vn, iN) = fx["nanx"].min(axis: 1)
        expectClose(vn, fx["nan_mindim_v"], atol: 0, rtol: 0)
        expectBitwiseEqual(iN, fx["nan_mindim_i"])
        expectBitwiseEqual(fx["nanx"].argmax(), fx["nan_argmax"])
        expectBitwiseEqual(fx["nanx"].argmin(axis: 1), fx["nan_argmin_1"])
        expectClose(fx["nanx"].amax(axes: [1]), fx["nan_amax_1"], atol: 0, rtol: 0)
        expectClose(fx["nanx"].sum(axis: 1), fx["nan_sum_1"], atol: 0, rtol: 0)
        expectClose(fx["nanx"].logsumexp(axis: 1), fx["nan_lse_1"], atol: 1e-15, rtol: 1e-15)
    }

    @Test func maxOfIntAndBoolTensors() {
        let i = Tensor([3, -2, 7, 7, 0, 1], shape: [2, 3])
        let (v, idx) = i.max(axis: 1)
        #expect(v.dtype == .int64)
        #expect(v.scalars(as: Int64.self) == [7, 7])
        #expect(idx.scalars(as: Int64.self) == [2, 0])
        #expect(i.min().item(as: Int64.self) == -2)
        #expect(i.argmin().item(as: Int64.self) == 1)
        let b = Tensor([false, true, false, false], shape: [2, 2])
        #expect(b.max().item(as: Bool.self) == true)
        #expect(b.amax(axes: [1]).scalars(as: Bool.self) == [true, false])
        #expect(b.amin(axes: [0]).scalars(as: Bool.self) == [false, false])
        let (bv, bi) = b.max(axis: 1)
        #expect(bv.scalars(as: Bool.self) == [true, false])
        #expect(bi.scalars(as: Int64.self) == [1, 0])
    }

    // MARK: prod, var, std, logsumexp

    @Test func prodGradientIsExactWithZeros() {
        let x = fx["prodz_x"].requiringGrad()
        let out = x.prod(axis: 1)
        expectBitwiseEqual(out.detached(), fx["prodz_out"])
        (out * Tensor([1.0, 2, 3] as [Double])).sum().backward()
        // One zero: only that element gets a gradient; two zeros: none.
        expectBitwiseEqual(x.grad!, fx["prodz_g"])
        let y = fx["prodz_x"].requiringGrad()
        let all = y.prod()
        expectBitwiseEqual(all.detached(), fx["prodz_all"])
        all.backward()
        expectBitwiseEqual(y.grad!, fx["prodz_all_g"])
        #expect(checkGradients([fx["prodz_x"]]) { $0[0].prod(axis: 1) } == nil)
        // Integers and bools multiply to int64.
        #expect(Tensor([2, 3, -4]).prod().item(as: Int64.self) == -24)
        #expect(Tensor([true, true]).prod().dtype == .int64)
    }

    @Test(arguments: [0.0, 1, 2, 3, 5])
    func varianceCorrectionsMatchPyTorch(_ correction: Double) {
        let c = Int(correction)
        let x = fx["varx"]
        // N - correction <= 0 gives inf, or NaN when the values are equal.
        expectClose(x.variance(axis: 1, correction: correction), fx["var_c\(c)_1"], atol: 1e-15, rtol: 1e-14)
        expectClose(x.std(axis: 1, correction: correction), fx["std_c\(c)_1"], atol: 1e-15, rtol: 1e-14)
        expectClose(x.variance(correction: correction), fx["var_c\(c)_all"], atol: 1e-15, rtol: 1e-14)
        for kind in ["var", "std"] {
            let a = x.requiringGrad()
            (kind == "var" ? a.variance(axis: 1, correction: correction) : a.std(axis: 1, correction: correction))
                .sum().backward()
            expectClose(a.grad!, fx["\(kind)_c\(c)_1_g"], atol: 1e-14, rtol: 1e-12, "\(kind) gradient over axis 1")
            let b = x.requiringGrad()
            (kind == "var" ? b.variance(correction: correction) : b.std(correction: correction)).backward()
            expectClose(b.grad!, fx["\(kind)_c\(c)_all_g"], atol: 1e-14, rtol: 1e-12, "\(kind) gradient over all")
        }
    }

    @Test func varianceIsAccurateForLargeOffsetsAndHasTheUnbiasedFlag() {
        // float32 values near 1e8: a one-pass sum of squares would lose every digit.
        expectClose(fx["var_big_x"].variance(), fx["var_big"], atol: 0, rtol: 1e-6)
        let x = fx["x32"]
        expectBitwiseEqual(x.variance(axes: [1], unbiased: false), x.variance(axes: [1], correction: 0))
        expectBitwiseEqual(x.std(axes: [1], unbiased: true), x.std(axes: [1]))
    }

    @Test func logsumexpIsStableAsPyTorch() {
        // Rows: huge values; only -inf (gives -inf, NaN gradient); +inf; -1000s with a -inf.
        let x = fx["lse_x"].requiringGrad()
        let out = x.logsumexp(axis: 1)
        expectClose(out, fx["lse_out"], atol: 1e-13, rtol: 1e-13)
        out.sum().backward()
        expectClose(x.grad!, fx["lse_g"], atol: 1e-15, rtol: 1e-13)
        expectClose(fx["lse_x"].to(.float32).logsumexp(axis: 1), fx["lse_x32_out"], atol: 1e-6, rtol: 1e-6)
        let i = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]).logsumexp(axis: 1)
        #expect(i.dtype == .float32)
        expectClose(i, fx["lse_int"], atol: 1e-6, rtol: 1e-6)
    }

    // MARK: softmax, logSoftmax

    @Test(arguments: [0, 1, 2])
    func softmaxAndLogSoftmaxMatchPyTorch(_ axis: Int) {
        for name in ["softmax", "log_softmax"] {
            func f(_ t: Tensor, _ a: Int) -> Tensor { name == "softmax" ? t.softmax(axis: a) : t.logSoftmax(axis: a) }
            let x = fx["sm_x"].requiringGrad()
            let out = f(x, axis)
            expectClose(out, fx["\(name)_\(axis)"], atol: 1e-14, rtol: 1e-12, name)
            (out * fx["\(name)_\(axis)_w"]).sum().backward()
            expectClose(x.grad!, fx["\(name)_\(axis)_g"], atol: 1e-13, rtol: 1e-11, "\(name) gradient")
            expectClose(f(fx["sm_x"].to(.float32), axis), fx["\(name)_\(axis)_f32"], atol: 1e-6, rtol: 1e-5, "\(name) float32")
            // Negative axis, and a non-contiguous input (the same values through a permuted view).
            expectClose(f(fx["sm_x"], axis - 3), fx["\(name)_\(axis)"], atol: 1e-14, rtol: 1e-12, "\(name) negative axis")
            let p = fx["sm_x"].permuted([2, 1, 0])
            let pAxis = [2, 1, 0][axis]
            expectClose(f(p, pAxis), fx["\(name)_\(axis)"].permuted([2, 1, 0]), atol: 1e-14, rtol: 1e-12, "\(name) permuted")
            #expect(checkGradients([fx["sm_x"]]) { f($0[0], axis) } == nil, "\(name) finite differences")
            #expect(checkGradients([fx["sm_x"]]) { f($0[0].permuted([2, 1, 0]), pAxis) } == nil, "\(name) permuted fd")
        }
    }

    @Test func softmaxHandlesExtremeRowsAsPyTorch() {
        // Rows: huge values; some -inf; only -inf (NaN); +inf (NaN); NaN.
        expectClose(fx["smx_x"].softmax(axis: 1), fx["smx_softmax"], atol: 1e-7, rtol: 1e-6)
        expectClose(fx["smx_x"].logSoftmax(axis: -1), fx["smx_log_softmax"], atol: 1e-6, rtol: 1e-6)
    }

    @Test func longFloat32RowsMatchPyTorch() {
        // 37 elements: 8-lane chunks plus a tail; a NaN late in row 1, repeated extremes in row 2.
        let x = fx["long_x"]
        expectClose(x.amax(axes: [1]), fx["long_amax"], atol: 0, rtol: 0)
        expectClose(x.amin(axes: [1]), fx["long_amin"], atol: 0, rtol: 0)
        let (v, i) = x.max(axis: 1)
        expectClose(v, fx["long_max_v"], atol: 0, rtol: 0)
        expectBitwiseEqual(i, fx["long_max_i"])
        let (vn, iN) = x.min(axis: 1)
        expectClose(vn, fx["long_min_v"], atol: 0, rtol: 0)
        expectBitwiseEqual(iN, fx["long_min_i"])
        expectBitwiseEqual(x.argmin(axis: 1), fx["long_argmin"])
        expectBitwiseEqual(x.argmax(), fx["long_argmax_all"])
        expectClose(x.logsumexp(axis: 1), fx["long_lse"], atol: 1e-6, rtol: 1e-6)
        let c = fx["long_clean"]
        expectClose(c.softmax(axis: 1), fx["long_softmax"], atol: 1e-7, rtol: 1e-5)
        expectClose(c.logSoftmax(axis: 1), fx["long_log_softmax"], atol: 1e-6, rtol: 1e-6)
        // The same rows through a transposed (strided) view.
        expectClose(c.t.softmax(axis: 0), fx["long_softmax"].t, atol: 1e-7, rtol: 1e-5)
        expectClose(c.t.logSoftmax(axis: 0), fx["long_log_softmax"].t, atol: 1e-6, rtol: 1e-6)
        // More inner elements than one tile of the column-wise kernel.
        expectClose(fx["wide_x"].softmax(axis: 0), fx["wide_softmax0"], atol: 1e-7, rtol: 1e-5)
        expectClose(fx["wide_x"].logSoftmax(axis: 0), fx["wide_log_softmax0"], atol: 1e-6, rtol: 1e-6)
    }

    @Test(arguments: ["long", "wide"])
    func float32SoftmaxGradientsMatchPyTorch(_ key: String) {
        let axis = key == "long" ? 1 : 0
        let input = key == "long" ? fx["long_clean"] : fx["wide_x"]
        for name in ["softmax", "log_softmax"] {
            let x = input.requiringGrad()
            let out = name == "softmax" ? x.softmax(axis: axis) : x.logSoftmax(axis: axis)
            (out * fx["\(key)_\(name)_w"]).sum().backward()
            expectClose(x.grad!, fx["\(key)_\(name)_g"], atol: 1e-6, rtol: 1e-5, "\(key) \(name)")
        }
    }

    // MARK: Integers, empty tensors, rank 0, accuracy

    @Test func integerAndBoolSumsAreInt64() {
        let i = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        #expect(i.sum().item(as: Int64.self) == 21)
        #expect(i.sum(axis: 0).scalars(as: Int64.self) == [5, 7, 9])
        #expect(i.permuted([1, 0]).sum(axis: 1).scalars(as: Int64.self) == [5, 7, 9])
        let b = Tensor([true, false, true, true], shape: [2, 2])
        #expect(b.sum().dtype == .int64)
        #expect(b.sum(axis: 1).scalars(as: Int64.self) == [1, 2])
    }

    @Test func emptyReductionsFollowPyTorch() {
        let e = Tensor.zeros([0, 3])
        #expect(e.sum().item(as: Float.self) == 0)
        #expect(e.mean().item(as: Float.self).isNaN)
        #expect(e.prod().item(as: Float.self) == 1)
        #expect(e.variance().item(as: Float.self).isNaN)
        #expect(e.logsumexp(axes: [0, 1]).item(as: Float.self) == -.infinity)
        #expect(e.sum(axis: 0).floats == [0, 0, 0])
        #expect(e.mean(axis: 0).floats.allSatisfy { $0.isNaN })
        #expect(e.prod(axis: 0).floats == [1, 1, 1])
        #expect(e.sum(axis: 1).shape == [0])
        #expect(e.sum(axis: 1, keepDim: true).shape == [0, 1])
        let (v, i) = e.max(axis: 1)
        #expect(v.shape == [0] && i.shape == [0])
        #expect(e.softmax(axis: 0).shape == [0, 3])
        // Gradients of empty reductions are empty or zero, never a crash.
        let x = Tensor.zeros([0, 3], dtype: .float64).requiringGrad()
        x.sum().backward()
        #expect(x.grad!.shape == [0, 3])
    }

    @Test func rankZeroTensorsReduceNothing() {
        let s = Tensor(3.5 as Double)
        #expect(s.sum(axis: 0).item(as: Double.self) == 3.5)
        #expect(s.sum(axis: -1, keepDim: true).shape == [])
        #expect(s.mean().item(as: Double.self) == 3.5)
        let (v, i) = s.max(axis: 0)
        #expect(v.item(as: Double.self) == 3.5 && i.item(as: Int64.self) == 0)
        #expect(s.softmax(axis: 0).item(as: Double.self) == 1)
        #expect(s.argmax().item(as: Int64.self) == 0)
        let x = s.requiringGrad()
        let (vx, _) = x.max(axis: 0)
        (vx * 2).backward()
        #expect(x.grad!.item(as: Double.self) == 2)
    }

    @Test func floatSumsAreAccurateAlongAndAcrossRows() {
        // 0.1f summed 100000 times: naive float32 accumulation is off by ~1e-3 relative.
        let n = 100_000
        let expected = Double(Float(0.1)) * Double(n)
        let rows = Tensor.full([n, 8], 0.1)  // reducing axis 0 adds whole rows
        expectClose(rows.sum(axis: 0), Tensor.full([8], expected, dtype: .float64), atol: 0, rtol: 1e-6)
        let cols = Tensor.full([8, n], 0.1)  // reducing axis 1 sums contiguous runs pairwise
        expectClose(cols.sum(axis: 1), Tensor.full([8], expected, dtype: .float64), atol: 0, rtol: 1e-6)
        expectClose(cols.permuted([1, 0]).sum(axis: 0), Tensor.full([8], expected, dtype: .float64), atol: 0, rtol: 1e-6)
        expectClose(rows.mean(axis: 0), Tensor.full([8], Double(Float(0.1)), dtype: .float64), atol: 0, rtol: 1e-6)
        expectClose(rows.variance(axis: 0), Tensor.zeros([8], dtype: .float64), atol: 1e-12, rtol: 0)
    }

    @Test func rawReduceHandsTheFoldContiguousGroups() {
        // Kernels.reduce's fold reads its group through a plain pointer, whatever the layout.
        let x = fx["x32"].permuted([2, 0, 1])
        let first = Kernels.reduce(x, axes: [0, 2], keepDim: false, op: "first", Float.self, Float.self) { p, n in
            n == 12 ? p[0] + 1000 * p[7] : -1
        }
        let c = x.contiguous()
        var expected: [Float] = []
        for j in 0..<2 {
            expected.append(Float(c.element(at: [0, j, 0]) + 1000 * c.element(at: [2, j, 1])))
        }
        #expect(first.floats == expected)
    }

    // MARK: Errors

    @Test func badAxesFailAsPyTorch() async {
        let r1 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([2, 3]).sum(axis: 2)
        }
        #expect(standardErrorText(r1).contains("out of range (expected to be in range of [-2, 1], but got 2)"))
        let r2 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([2, 3]).sum(axes: [1, -1])
        }
        #expect(standardErrorText(r2).contains("dim 1 appears multiple times in the list of dims"))
        let r3 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([2, 3]).softmax(axis: -3)
        }
        #expect(standardErrorText(r3).contains("out of range (expected to be in range of [-2, 1], but got -3)"))
    }

    @Test func maxOfEmptyFailsAsPyTorch() async {
        let r1 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([0]).max()
        }
        #expect(standardErrorText(r1).contains("max(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction dim with the 'dim' argument."))
        let r2 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([0, 3]).max(axis: 0)
        }
        #expect(standardErrorText(r2).contains("max(): Expected reduction dim 0 to have non-zero size."))
        let r3 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([0]).argmin()
        }
        #expect(standardErrorText(r3).contains("argmin(): Expected reduction dim to be specified for input.numel() == 0."))
    }

    @Test func integerMeanAndVarianceFailAsPyTorch() async {
        let r1 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor([1, 2, 3]).mean()
        }
        #expect(standardErrorText(r1).contains("mean(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. Got: Long"))
        let r2 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor([1, 2, 3]).variance()
        }
        #expect(standardErrorText(r2).contains("std and var only support floating point and complex dtypes"))
    }
}
