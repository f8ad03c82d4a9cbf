import Ember
import Testing
import _EmberTestSupport

/// Equal shape and dtype and exactly equal values (NaN matches NaN).
func expectExact(_ actual: Tensor, _ expected: Tensor, _ comment: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.dtype == expected.dtype, "\(comment): dtype \(actual.dtype) vs \(expected.dtype)", sourceLocation: sourceLocation)
    expectClose(actual, expected, atol: 0, rtol: 0, comment, sourceLocation: sourceLocation)
}

/// sort, argsort, topk, kthvalue and unique against PyTorch (`Tools/fixtures/gen_tensor_ops_select.py`),
/// with gradients checked against PyTorch and float64 finite differences.
@Suite struct SortingTests {
    let fx = try! Fixture("tensor_ops_select")

    /// A float64 sample with distinct values (finite differences need no ties).
    static func sample(_ shape: Shape) -> Tensor {
        Tensor((0..<shape.elementCount).map { Double.sin(Double($0) * 1.7 + 0.3) * 3 }, shape: shape)
    }

    @Test(arguments: [("asc", -1, false), ("desc", -1, true), ("asc0", 0, false), ("desc0", -2, true)])
    func sortIsStableWithTiesAndNaN(_ name: String, _ axis: Int, _ descending: Bool) {
        let x = fx["sort_x"]
        let (v, i) = x.sort(axis: axis, descending: descending)
        expectExact(v, fx["sort_\(name)_values"], "values \(name)")
        expectBitwiseEqual(i, fx["sort_\(name)_indices"], "indices \(name)")
        expectBitwiseEqual(x.argsort(axis: axis, descending: descending), fx["argsort_\(name)"], "argsort \(name)")
    }

    @Test(arguments: [("d1", 1, false, false), ("d2desc", -1, true, false), ("dT", 0, true, true)])
    func sortGradientsFlowThroughIndices(_ name: String, _ axis: Int, _ descending: Bool, _ transposed: Bool) {
        let x = fx["sortd_x"].requiringGrad()
        let input = transposed ? x.transposed(0, 2) : x
        let (v, i) = input.sort(axis: axis, descending: descending)
        expectExact(v, fx["sort_\(name)_values"], name)
        expectBitwiseEqual(i, fx["sort_\(name)_indices"], name)
        (v * fx["sort_\(name)_w"]).sum().backward()
        expectClose(x.grad!, fx["sort_\(name)_grad"], atol: 1e-12, rtol: 0, name)
    }

    @Test func sortsIntegersAndBools() {
        let (v, i) = fx["sort_int_x"].sort(descending: true)
        expectBitwiseEqual(v, fx["sort_int_values"])
        expectBitwiseEqual(i, fx["sort_int_indices"])
        let (bv, bi) = fx["sort_bool_x"].sort()
        expectBitwiseEqual(bv, fx["sort_bool_values"])
        expectBitwiseEqual(bi, fx["sort_bool_indices"])
    }

    @Test func sortEdgeCases() {
        let s = Tensor(3.0)
        let (v, i) = s.sort()
        #expect(v.shape == [] && v.doubleValue == 3 && i.shape == [] && i.dtype == .int64 && i.item(as: Int64.self) == 0)
        let e = Tensor.zeros([2, 0])
        #expect(e.sort().values.shape == [2, 0] && e.sort(axis: 0).indices.shape == [2, 0])
        // Float32 stays float32; equal -0.0 and 0.0 keep their order.
        let z = Tensor([0.0, -0.0, 0.0] as [Float])
        #expect(z.sort().indices.scalars(as: Int64.self) == [0, 1, 2])
        #expect(z.sort(descending: true).indices.scalars(as: Int64.self) == [0, 1, 2])
        #expect(z.sort().values.dtype == .float32)
    }

    @Test func sortFiniteDifferences() {
        let a = Self.sample([3, 4])
        #expect(checkGradients([a]) { $0[0].sort(axis: 0).values } == nil)
        #expect(checkGradients([a]) { $0[0].t.sort(axis: -1, descending: true).values } == nil)
        #expect(checkGradients([a]) { $0[0].topk(2, axis: 0, largest: false).values } == nil)
        #expect(checkGradients([a]) { $0[0].kthvalue(3, axis: 1, keepDim: true).values } == nil)
        #expect(checkGradients([a]) { $0[0].kthvalue(2, axis: 0).values } == nil)
    }

    @Test func sortSupportsDoubleBackward() {
        let x = Self.sample([5]).requiringGrad()
        let v = x.sort().values
        // d/dx sum(sorted^3) = 3 x^2; its gradient with respect to x is 6 x.
        let g = Autograd.grad((v * v * v).sum(), [x], createGraph: true)[0]!
        let gg = Autograd.grad(g.sum(), [x])[0]!
        expectClose(g, x.detached() * x.detached() * 3, atol: 1e-12, rtol: 1e-12)
        expectClose(gg, x.detached() * 6, atol: 1e-12, rtol: 1e-12)
    }

    @Test(arguments: [("l3", 3, -1, true), ("s2", 2, 0, false), ("l0", 0, 1, true), ("all", 6, 1, false)])
    func topkMatchesPyTorch(_ name: String, _ k: Int, _ axis: Int, _ largest: Bool) {
        let x = fx["topk_x"].requiringGrad()
        let (v, i) = x.topk(k, axis: axis, largest: largest)
        expectExact(v, fx["topk_\(name)_values"], name)
        expectBitwiseEqual(i, fx["topk_\(name)_indices"], name)
        (v * fx["topk_\(name)_w"]).sum().backward()
        expectClose(x.grad!, fx["topk_\(name)_grad"], atol: 1e-12, rtol: 0, name)
    }

    @Test func topkAndKthvalueTreatNaNAsLargest() {
        let x = fx["topk_nan_x"]
        let (v, i) = x.topk(2)
        expectExact(v, fx["topk_nan_values"])
        expectBitwiseEqual(i, fx["topk_nan_indices"])
        let (sv, si) = x.topk(2, largest: false)
        expectExact(sv, fx["topk_nan_small_values"])
        expectBitwiseEqual(si, fx["topk_nan_small_indices"])
        let (kv, ki) = x.kthvalue(3)
        expectExact(kv, fx["kth_nan_values"])
        expectBitwiseEqual(ki, fx["kth_nan_indices"])
    }

    @Test(arguments: [("k2", 2, -1, false), ("k1keep", 1, 0, true), ("k4", 4, 0, false)])
    func kthvalueMatchesPyTorch(_ name: String, _ k: Int, _ axis: Int, _ keepDim: Bool) {
        let x = fx["topk_x"].requiringGrad()
        let (v, i) = x.kthvalue(k, axis: axis, keepDim: keepDim)
        expectExact(v, fx["kth_\(name)_values"], name)
        expectBitwiseEqual(i, fx["kth_\(name)_indices"], name)
        (v * fx["kth_\(name)_w"]).sum().backward()
        expectClose(x.grad!, fx["kth_\(name)_grad"], atol: 1e-12, rtol: 0, name)
    }

    @Test func topkOfTiesPicksTheFirstOnes() {
        let x = Tensor([1, 3, 3, 0, 3] as [Double])
        #expect(x.topk(2).indices.scalars(as: Int64.self) == [1, 2])
        #expect(x.kthvalue(3).indices.item(as: Int64.self) == 1)  // sorted: 0, 1, 3 (first of the tied 3s)
        let s = Tensor(2.0)
        #expect(s.topk(1).values.doubleValue == 2 && s.kthvalue(1).indices.shape == [])
    }

    @Test func topkRejectsKOutOfRange() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([3]).topk(4)
        }
        #expect(standardErrorText(result).contains("selected index k out of range"))
        let negative = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([3]).topk(-1)
        }
        #expect(standardErrorText(negative).contains("selected index k out of range"))
    }

    @Test func kthvalueRejectsKOutOfRange() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([3]).kthvalue(0)
        }
        #expect(standardErrorText(result).contains("kthvalue(): selected number k out of range for dimension 0"))
    }

    @Test func sortRejectsBadAxis() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([3]).sort(axis: 1)
        }
        #expect(standardErrorText(result).contains("Dimension out of range (expected to be in range of [-1, 0], but got 1)"))
    }

    // MARK: unique

    @Test func uniqueFlattenedMatchesPyTorch() {
        let r = fx["unique_x"].unique(returnInverse: true, returnCounts: true)
        expectBitwiseEqual(r.values, fx["unique_values"])
        expectBitwiseEqual(r.inverse!, fx["unique_inverse"])
        expectBitwiseEqual(r.counts!, fx["unique_counts"])
        let f = fx["uniquef_x"].unique(returnInverse: true, returnCounts: true)
        expectExact(f.values, fx["uniquef_values"])
        expectBitwiseEqual(f.inverse!, fx["uniquef_inverse"])
        expectBitwiseEqual(f.counts!, fx["uniquef_counts"])
        let plain = fx["unique_x"].unique()
        #expect(plain.inverse == nil && plain.counts == nil)
    }

    @Test(arguments: [(0, "0"), (1, "1"), (-1, "m1")])
    func uniqueAlongAxisMatchesPyTorch(_ axis: Int, _ name: String) {
        let r = fx["unique_x"].unique(returnInverse: true, returnCounts: true, axis: axis)
        expectBitwiseEqual(r.values, fx["unique_dim\(name)_values"])
        expectBitwiseEqual(r.inverse!, fx["unique_dim\(name)_inverse"])
        expectBitwiseEqual(r.counts!, fx["unique_dim\(name)_counts"])
    }

    @Test func uniqueEdgeCases() {
        let s = Tensor(3.0).unique(returnInverse: true)
        #expect(s.values.shape == [1] && s.inverse!.shape == [])
        let e = Tensor.zeros([0]).unique(returnCounts: true)
        #expect(e.values.shape == [0] && e.counts!.shape == [0])
        #expect(Tensor([true, false, true]).unique().values.scalars(as: Bool.self) == [false, true])
        // Transposed input: unique slices along an axis of a non-contiguous view.
        let m = Tensor([1, 2, 1, 2, 0, 0] as [Int64], shape: [2, 3]).t  // rows [1, 2], [2, 0], [1, 0]
        let r = m.unique(returnInverse: true, axis: 0)
        #expect(r.values.scalars(as: Int64.self) == [1, 0, 1, 2, 2, 0])
        #expect(r.inverse!.scalars(as: Int64.self) == [1, 2, 0])
        #expect(!fx["sortd_x"].requiringGrad().unique().values.requiresGrad)
    }
}
