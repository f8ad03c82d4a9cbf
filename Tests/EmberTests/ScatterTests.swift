import Ember
import Testing
import _EmberTestSupport

/// scatter, scatterAdd, scatterReduce, indexAdd, maskedSelect, take and nonzero against PyTorch
/// (`Tools/fixtures/gen_tensor_ops_select.py`), with float64 finite-difference checks.
@Suite struct ScatterTests {
    let fx = try! Fixture("tensor_ops_select")

    static func sample(_ shape: Shape, _ phase: Double = 0.3) -> Tensor {
        Tensor((0..<shape.elementCount).map { Double.sin(Double($0) * 1.3 + phase) * 2 }, shape: shape)
    }

    @Test func scatterMatchesPyTorch() {
        let base = fx["sc_base"], src = fx["sc_src"], idx = fx["sc_idx"]
        expectExact(base.scatter(axis: 0, index: idx, src: src), fx["scatter_big_out"], "larger src")
        let x = base.requiringGrad(), y = src[..<2, ..<5].contiguous().detached().requiringGrad()
        let out = x.scatter(axis: 0, index: idx, src: y)
        expectExact(out, fx["scatter_out"])
        (out * fx["scatter_w"]).sum().backward()
        expectClose(x.grad!, fx["scatter_gx"], atol: 1e-12, rtol: 0, "self")
        expectClose(y.grad!, fx["scatter_gsrc"], atol: 1e-12, rtol: 0, "src")
    }

    @Test func scatterValueMatchesPyTorch() {
        let x = fx["sc_base"].requiringGrad()
        let out = x.scatter(axis: -1, index: fx["scatterv_idx"], value: 7.5)
        expectExact(out, fx["scatterv_out"])
        (out * fx["scatter_w"]).sum().backward()
        expectClose(x.grad!, fx["scatterv_gx"], atol: 1e-12, rtol: 0)
    }

    @Test func scatterAddAccumulatesRepeats() {
        let base = fx["sc_base"], src = fx["sc_src"], idx = fx["sc_didx"]
        expectClose(base.scatterAdd(axis: 0, index: idx, src: src), fx["scatteradd_big_out"], atol: 1e-12, rtol: 0)
        let x = base.requiringGrad(), y = src[.all, ..<5].contiguous().detached().requiringGrad()
        let out = x.scatterAdd(axis: 0, index: idx, src: y)
        expectClose(out, fx["scatteradd_out"], atol: 1e-12, rtol: 0)
        (out * fx["scatter_w"]).sum().backward()
        expectClose(x.grad!, fx["scatteradd_gx"], atol: 1e-12, rtol: 0)
        expectClose(y.grad!, fx["scatteradd_gsrc"], atol: 1e-12, rtol: 0)
    }

    @Test(arguments: ScatterReduction.allCases, [true, false])
    func scatterReduceMatchesPyTorch(_ reduce: ScatterReduction, _ includeSelf: Bool) {
        let name = "sr_\(reduce.rawValue)_\(includeSelf ? "incl" : "excl")"
        let x = fx["sr_base"].requiringGrad(), y = fx["sr_src"].requiringGrad()
        let idx = fx["sr_idx"][..<2]
        let out = x.scatterReduce(axis: 1, index: idx, src: y[..<2], reduce: reduce, includeSelf: includeSelf)
        expectClose(out, fx["\(name)_out"], atol: 1e-12, rtol: 0, "\(name) forward")
        (out * fx["\(name)_w"]).sum().backward()
        expectClose(x.grad!, fx["\(name)_gx"], atol: 1e-12, rtol: 1e-12, "\(name) self gradient")
        expectClose(y.grad!, fx["\(name)_gsrc"], atol: 1e-12, rtol: 1e-12, "\(name) src gradient")
    }

    @Test(arguments: ScatterReduction.allCases)
    func scatterReduceOnIntegers(_ reduce: ScatterReduction) {
        let b = fx["sri_base"], s = fx["sri_src"], i = fx["sri_idx"]
        expectBitwiseEqual(b.scatterReduce(axis: 0, index: i, src: s, reduce: reduce), fx["sri_\(reduce.rawValue)"])
        expectBitwiseEqual(b.scatterReduce(axis: 0, index: i, src: s, reduce: reduce, includeSelf: false),
                           fx["sri_\(reduce.rawValue)_excl"])
    }

    @Test func scatterReduceExtremaPropagateNaN() {
        let b = fx["srn_base"], s = fx["srn_src"], i = Tensor([0, 1, 2, 2] as [Int64])
        expectExact(b.scatterReduce(axis: 0, index: i, src: s, reduce: .amax), fx["srn_amax"])
        expectExact(b.scatterReduce(axis: 0, index: i, src: s, reduce: .amin), fx["srn_amin"])
    }

    @Test func scatterFiniteDifferences() {
        let base = Self.sample([3, 4]), src = Self.sample([2, 4], 1.1)
        let idx = Tensor([2, 0, 1, 1, 0, 2, 2, 0] as [Int64], shape: [2, 4])
        #expect(checkGradients([base, src]) { $0[0].scatter(axis: 0, index: idx, src: $0[1]) } == nil)
        #expect(checkGradients([base]) { $0[0].t.scatter(axis: 1, index: idx, value: -1) } == nil)
        #expect(checkGradients([base, src]) { $0[0].scatterAdd(axis: 0, index: idx, src: $0[1]) } == nil)
        let dup = Tensor([2, 2, 1, 1, 2, 2, 1, 0] as [Int64], shape: [2, 4])
        for reduce in ScatterReduction.allCases {
            for include in [true, false] {
                #expect(checkGradients([base, src]) {
                    $0[0].scatterReduce(axis: 0, index: dup, src: $0[1], reduce: reduce, includeSelf: include)
                } == nil, "\(reduce) includeSelf \(include)")
            }
        }
        let ia = Tensor([1, 0, 1] as [Int64])
        #expect(checkGradients([base, Self.sample([3, 3])]) { $0[0].indexAdd(axis: -1, index: ia, source: $0[1], alpha: 2) } == nil)
        let mask = Tensor([true, false, true, true], shape: [4])
        #expect(checkGradients([base]) { $0[0].maskedSelect(mask) } == nil)
        #expect(checkGradients([Self.sample([4])]) { $0[0].maskedSelect(Tensor([true, false, true], shape: [3, 1])) } == nil)
        #expect(checkGradients([base]) { $0[0].take(Tensor([11, 0, 0, 5] as [Int64], shape: [2, 2])) } == nil)
    }

    @Test func scatterDoubleBackward() {
        // out = scatterAdd(x, idx, y * y): d/dy of sum(out * out) is 4 y (x + y^2) at scattered
        // positions; its gradient is exercised with createGraph.
        let x = Self.sample([3]).requiringGrad(), y = Self.sample([2], 0.9).requiringGrad()
        let idx = Tensor([2, 0] as [Int64])
        let out = x.scatterAdd(axis: 0, index: idx, src: y * y)
        let g = Autograd.grad((out * out).sum(), [y], createGraph: true)[0]!
        let yv = y.detached().doubles, xv = x.detached().doubles
        expectClose(g, Tensor([4 * yv[0] * (xv[2] + yv[0] * yv[0]), 4 * yv[1] * (xv[0] + yv[1] * yv[1])]), atol: 1e-12, rtol: 1e-12)
        let gg = Autograd.grad(g.sum(), [y])[0]!
        // d/dy_k of 4 y_k (x_t + y_k^2) = 4 x_t + 12 y_k^2.
        expectClose(gg, Tensor([4 * xv[2] + 12 * yv[0] * yv[0], 4 * xv[0] + 12 * yv[1] * yv[1]]), atol: 1e-12, rtol: 1e-12)
    }

    @Test func scatterEdgeCases() {
        let x = Tensor([1, 2, 3] as [Double])
        let none = Tensor.zeros([0], dtype: .int64)
        #expect(x.scatter(axis: 0, index: none, src: Tensor.zeros([0], dtype: .float64)).doubles == [1, 2, 3])
        #expect(x.scatterAdd(axis: 0, index: none, src: Tensor.zeros([0], dtype: .float64)).doubles == [1, 2, 3])
        #expect(x.scatterReduce(axis: 0, index: none, src: Tensor.zeros([0], dtype: .float64), reduce: .prod).doubles == [1, 2, 3])
        // 0-d tensors act as 1-d of size 1.
        let s = Tensor(4.0)
        #expect(s.scatter(axis: 0, index: Tensor(Int64(0)), src: Tensor(9.0)).doubles == [9])
        #expect(s.scatterReduce(axis: -1, index: Tensor(Int64(0)), src: Tensor(2.0), reduce: .mean).doubles == [3])
        // Transposed (non-contiguous) self, index and src.
        let base = Tensor([1, 2, 3, 4, 5, 6] as [Double], shape: [2, 3]).t  // [[1, 4], [2, 5], [3, 6]]
        let idx = Tensor([1, 0, 0, 1] as [Int64], shape: [2, 2]).t  // [[1, 0], [0, 1]]
        let src = Tensor([10, 20, 30, 40] as [Double], shape: [2, 2]).t  // [[10, 30], [20, 40]]
        #expect(base.scatterAdd(axis: 1, index: idx, src: src).doubles == [31, 14, 22, 45, 3, 6])
        #expect(base.scatter(axis: 0, index: idx, src: src).doubles == [20, 30, 10, 40, 3, 6])
    }

    @Test func indexAddMatchesPyTorch() {
        let x = fx["ia_x"].requiringGrad(), y = fx["ia_src"].requiringGrad()
        let out = x.indexAdd(axis: -1, index: fx["ia_idx"], source: y, alpha: -1.5)
        expectClose(out, fx["ia_out"], atol: 1e-6, rtol: 1e-6)
        (out * fx["ia_w"]).sum().backward()
        expectClose(x.grad!, fx["ia_gx"], atol: 1e-6, rtol: 1e-6)
        expectClose(y.grad!, fx["ia_gsrc"], atol: 1e-6, rtol: 1e-6)
    }

    @Test func maskedSelectMatchesPyTorch() {
        let x = fx["ms_x"].requiringGrad()
        let out = x.maskedSelect(fx["ms_mask"])
        expectExact(out, fx["ms_out"])
        (out * fx["ms_w"]).sum().backward()
        expectClose(x.grad!, fx["ms_grad"], atol: 1e-12, rtol: 0)
        let x2 = fx["ms_x"].requiringGrad()
        let out2 = x2.t.maskedSelect(fx["ms_mask2"].unsqueezed(axis: 1))
        expectExact(out2, fx["msT_out"])
        (out2 * fx["msT_w"]).sum().backward()
        expectClose(x2.grad!, fx["msT_grad"], atol: 1e-12, rtol: 0)
        #expect(Tensor.zeros([0, 3]).maskedSelect(Tensor([true, false, true])).shape == [0])
    }

    @Test func nonzeroMatchesPyTorch() {
        let x = fx["nz_x"]
        expectBitwiseEqual(x.nonzero(), fx["nz_out"])
        expectBitwiseEqual(x.t.nonzero(), fx["nzT_out"])
        let parts = x.nonzero(asTuple: true)
        #expect(parts.count == 2)
        expectBitwiseEqual(parts[0], fx["nz_out"][.all, 0].contiguous())
        expectBitwiseEqual(parts[1], fx["nz_out"][.all, 1].contiguous())
        #expect(Tensor(3.0).nonzero().shape == [1, 0] && Tensor(0.0).nonzero().shape == [0, 0])
        #expect(Tensor(3.0).nonzero(asTuple: true).map(\.shape) == [[1]])
        #expect(x.nonzero(asTuple: false).map(\.shape) == [[3, 2]])
        #expect(Tensor.zeros([2, 0, 3]).nonzero().shape == [0, 3])
    }

    @Test func scatterRejectsOutOfRangeIndex() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([3]).scatter(axis: 0, index: Tensor([3] as [Int64]), src: Tensor.ones([1]))
        }
        #expect(standardErrorText(result).contains("index 3 is out of bounds for dimension 0 with size 3"))
    }

    @Test func scatterRejectsFloatIndex() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([3]).scatter(axis: 0, index: Tensor([1.0]), value: 1)
        }
        #expect(standardErrorText(result).contains("scatter(): Expected dtype int32/int64 for index"))
    }

    @Test func indexAddRejectsWrongSourceSize() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([3]).indexAdd(axis: 0, index: Tensor([1] as [Int64]), source: Tensor.ones([2]))
        }
        #expect(standardErrorText(result).contains("index_add_(): Number of indices (1) should be equal to source.size(dim): (2), for dim: 0"))
    }

    @Test func maskedSelectRejectsNonBoolMask() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([3]).maskedSelect(Tensor([1, 0, 1] as [Int64]))
        }
        #expect(standardErrorText(result).contains("masked_select: expected BoolTensor for mask"))
    }
}
