import Ember
import Foundation
import Testing
import _EmberTestSupport

/// Slicing views (select, narrow, sliced, subscripts) and index-based selection (gather,
/// indexSelect, maskedFill), against PyTorch fixtures (`Tools/fixtures/gen_views.py`).
@Suite struct IndexingTests {
    let fx = try! Fixture("views")
    var x: Tensor { fx["x"] }  // [2, 3, 4] float32
    var m: Tensor { fx["m"] }  // [4, 6]

    /// A float64 tensor with distinct, irregular values.
    static func sample(_ shape: Shape) -> Tensor {
        Tensor((0..<shape.elementCount).map { sin(Double($0) * 1.3 + 0.2) }, shape: shape)
    }

    // MARK: select / narrow / sliced

    @Test func selectAndNarrowMatchPyTorch() {
        let x = x, m = m
        expectView(x.select(axis: 1, index: -1), fx, "select_neg", of: x)
        expectView(x.transposed(0, 2).select(axis: 0, index: 1), fx, "select_t", of: x)
        expectView(x.narrow(axis: 2, start: 1, length: 2), fx, "narrow", of: x)
        expectView(x.narrow(axis: 1, start: -2, length: 2), fx, "narrow_neg", of: x)
        expectView(x.narrow(axis: 1, start: 3, length: 0), fx, "narrow_empty", of: x)
        expectView(m.t.narrow(axis: 0, start: 1, length: 3), fx, "narrow_t", of: m)
        let stepped = x.transposed(1, 2).sliced(axis: 1, start: 1).sliced(axis: 2, step: 2)
        expectView(stepped, fx, "sliced_step", of: x)
    }

    // MARK: subscripts

    @Test func subscriptsMatchPyTorch() {
        let x = x, s = fx["s"]
        expectView(x[0], fx, "s_first", of: x)
        expectView(x[-1], fx, "s_last", of: x)
        expectView(x[1..., 2], fx, "s_from_int", of: x)
        expectView(x[.all, 0..<2], fx, "s_all_range", of: x)
        expectView(x[.ellipsis, 1], fx, "s_ellipsis", of: x)
        expectView(x[.newAxis, .all, .newAxis, 1], fx, "s_newaxis", of: x)
        expectView(x[0, .ellipsis, -1], fx, "s_int_ell_int", of: x)
        expectView(x[.all, (-2)..., .slice(1, nil, step: 2)], fx, "s_neg_ranges", of: x)
        expectView(x[.all, 5..<10], fx, "s_clamped_empty", of: x)
        expectView(x[(-100)..<(-1)], fx, "s_clamped", of: x)
        expectView(x[.all, .slice(step: 2), ..<3], fx, "s_step_upto", of: x)
        expectView(x[.all, 0...2, 1...3], fx, "s_closed", of: x)
        expectView(x[.all, ...1, (-3)...(-1)], fx, "s_through", of: x)
        expectView(x[1, 1, 1], fx, "s_scalar", of: x)
        expectView(x[.all, .slice(1, -1), .slice(0, -1, step: 2)], fx, "s_slice_neg_end", of: x)
        expectView(x.transposed(0, 2)[1..<3, .all, 0], fx, "s_transposed", of: x)
        expectView(s[.newAxis], fx, "s_0d_newaxis", of: s)
        expectBitwiseEqual(s[.ellipsis], s)
        expectBitwiseEqual(x[], x)
    }

    @Test func slicingGradientsScatterIntoZeros() {
        let a = Self.sample([2, 3, 4])
        #expect(checkGradients([a]) { $0[0].select(axis: 1, index: -1) } == nil)
        #expect(checkGradients([a]) { $0[0].transposed(0, 2).select(axis: 0, index: 2) } == nil)
        #expect(checkGradients([a]) { $0[0].narrow(axis: 2, start: -3, length: 2) } == nil)
        #expect(checkGradients([a]) { $0[0].narrow(axis: 1, start: 3, length: 0) } == nil)
        #expect(checkGradients([a]) { $0[0].sliced(axis: 2, start: 1, step: 2) } == nil)
        #expect(checkGradients([a]) { $0[0][1..., 2] } == nil)
        #expect(checkGradients([a]) { $0[0][.newAxis, .ellipsis, .slice(0, -1, step: 2)] } == nil)
        #expect(checkGradients([a]) { $0[0].transposed(0, 1)[(-2)..., 1, .newAxis] } == nil)
        #expect(checkGradients([a]) { $0[0][1, 2, 3] } == nil)
        // Overlapping slices: gradients of both add up.
        #expect(checkGradients([a]) { $0[0][0...1] * $0[0][1...2] } == nil)

        let b = Self.sample([2, 3]).requiringGrad()
        b[1, .all].sum().backward()
        expectBitwiseEqual(b.grad!, Tensor([0, 0, 0, 1, 1, 1] as [Double], shape: [2, 3]))
    }

    // MARK: gather

    @Test(arguments: [("gather1", 1, false), ("gather0", 0, false), ("gather_t", 0, true), ("gather_neg", -1, false)])
    func gatherMatchesPyTorchWithAccumulatedGradients(_ name: String, _ axis: Int, _ transposed: Bool) {
        let gx = fx["gx"].requiringGrad()
        var index = name == "gather0" || name == "gather_t" ? fx["gather_i0"] : fx["gather_i1"]
        if transposed { index = index.t }  // a non-contiguous index
        if name == "gather_neg" { index = index[..<2, ..<3] }
        let input = transposed ? gx.t : gx
        let out = input.gather(axis: axis, index: index)
        expectBitwiseEqual(out, fx[name], name)
        (out * fx[name + "_w"]).sum().backward()
        expectClose(gx.grad!, fx[name + "_grad"], atol: 1e-12, rtol: 1e-12, name)
    }

    @Test func gatherOtherDTypesAndShapes() {
        let i1 = fx["gather_i1"]
        let ints = Tensor.arange(0, 12).view([3, 4])
        expectBitwiseEqual(ints.gather(axis: 1, index: i1), fx["gather_int"])
        expectBitwiseEqual(Tensor(5 as Float).gather(axis: 0, index: Tensor([0, 0])), fx["gather_0d"])
        #expect(Tensor.zeros([3]).gather(axis: 0, index: Tensor(Int64(2))).shape == [])
        let empty = Tensor.zeros([2, 3]).gather(axis: 1, index: Tensor([Int64](), shape: [2, 0]))
        #expect(empty.shape == [2, 0])
        // PyTorch skips the shape checks for an empty index.
        #expect(Tensor.zeros([2, 3]).gather(axis: 0, index: Tensor([Int64](), shape: [0, 5])).shape == [0, 5])
        #expect(Tensor.zeros([2, 3]).gather(axis: 0, index: Tensor([Int64]())).shape == [0])
        let mask = Tensor([true, false, true, true], shape: [2, 2])
        #expect(mask.gather(axis: 1, index: Tensor([1, 1, 0, 0], shape: [2, 2])).scalars(as: Bool.self) == [false, false, true, true])
    }

    @Test func gatherGradientsMatchFiniteDifferences() {
        let a = Self.sample([3, 4])
        let idx = Tensor([0, 3, 3, 1, 2, 2, 2, 2, 1, 0, 3, 3], shape: [3, 4])
        #expect(checkGradients([a]) { $0[0].gather(axis: 1, index: idx) } == nil)
        #expect(checkGradients([a]) { $0[0].gather(axis: 0, index: Tensor([2, 2, 0, 1, 2, 2, 2, 2], shape: [2, 4])) } == nil)
        #expect(checkGradients([a]) { $0[0].t.gather(axis: 1, index: Tensor([2, 2, 0, 1], shape: [4, 1])) } == nil)
        #expect(checkGradients([Tensor(0.5 as Double)]) { $0[0].gather(axis: 0, index: Tensor([0, 0])) } == nil)
        #expect(checkGradients([a]) { $0[0].gather(axis: 0, index: Tensor([Int64](), shape: [0, 4])).sum() + $0[0] } == nil)
    }

    @Test func scatterAddAccumulatesDuplicates() {
        let base = Tensor([1, 1, 1, 1, 1, 1] as [Double], shape: [2, 3])
        let index = Tensor([0, 0, 2, 1, 1, 1], shape: [2, 3])
        let src = Tensor([1, 2, 3, 4, 5, 6, 7, 8, 9] as [Double], shape: [3, 3])  // larger than index
        let out = Kernels.scatterAdd(base, axis: 1, index: index, source: src)
        expectBitwiseEqual(out, Tensor([4, 1, 4, 1, 16, 1] as [Double], shape: [2, 3]))
        expectBitwiseEqual(base, Tensor([1, 1, 1, 1, 1, 1] as [Double], shape: [2, 3]))  // not modified
    }

    // MARK: indexSelect

    @Test(arguments: ["isel1", "isel0", "isel_t"])
    func indexSelectMatchesPyTorchWithAccumulatedGradients(_ name: String) {
        let gx = fx["gx"].requiringGrad()
        let idx = fx["isel_i"]
        let out: Tensor
        switch name {
        case "isel1": out = gx.indexSelect(axis: 1, index: idx)
        case "isel0": out = gx.indexSelect(axis: 0, index: idx[..<3])
        default: out = gx.t.indexSelect(axis: 0, index: Tensor([3, 3, 1]))
        }
        expectBitwiseEqual(out, fx[name], name)
        (out * fx[name + "_w"]).sum().backward()
        expectClose(gx.grad!, fx[name + "_grad"], atol: 1e-12, rtol: 1e-12, name)
    }

    @Test func indexSelectOtherDTypesAndShapes() {
        let x = x
        let ints = Tensor.arange(0, 24).view([2, 3, 4]).transposed(0, 2)
        expectBitwiseEqual(ints.indexSelect(axis: 0, index: Tensor([3, 3, 0])), fx["isel_int"])
        expectBitwiseEqual(x.indexSelect(axis: 2, index: Tensor(Int64(1))), fx["isel_scalar_index"])
        expectBitwiseEqual(x.indexSelect(axis: 1, index: Tensor([Int64]())), fx["isel_empty"])
        expectBitwiseEqual(Tensor(3 as Float).indexSelect(axis: 0, index: Tensor([0])), Tensor(3 as Float))
    }

    @Test func indexSelectGradientsMatchFiniteDifferences() {
        let a = Self.sample([3, 4])
        #expect(checkGradients([a]) { $0[0].indexSelect(axis: 1, index: Tensor([2, 0, 2, 2])) } == nil)
        #expect(checkGradients([a]) { $0[0].t.indexSelect(axis: 1, index: Tensor([1, 1])) } == nil)
        #expect(checkGradients([a]) { $0[0].indexSelect(axis: 0, index: Tensor([Int64]())) * 2 + $0[0].sum() } == nil)
    }

    // MARK: maskedFill

    @Test func maskedFillMatchesPyTorch() {
        let x = x, m = m, mask = fx["mask"]
        expectBitwiseEqual(x.maskedFill(mask, -.infinity), fx["mf_inf"])
        expectBitwiseEqual(x.maskedFill(mask[0, 0], 2.5), fx["mf_bcast_mask"])
        expectBitwiseEqual(m[0, ..<4].maskedFill(mask, -1), fx["mf_bcast_self"])
        expectBitwiseEqual(x.transposed(0, 2).maskedFill(mask.transposed(0, 2), 0.25), fx["mf_t"])
        expectBitwiseEqual(Tensor.arange(0, 24).view([2, 3, 4]).maskedFill(mask, 2.7), fx["mf_int"])
        expectBitwiseEqual(mask.maskedFill(mask[1], 1), fx["mf_bool"])
    }

    @Test func maskedFillGradientZeroesMaskedPositions() {
        let a = Self.sample([2, 3])
        let mask = Tensor([true, false, false, true, true, false], shape: [2, 3])
        #expect(checkGradients([a]) { $0[0].maskedFill(mask, 0.5) } == nil)
        #expect(checkGradients([a]) { $0[0].t.maskedFill(mask.t, -3) } == nil)
        // `self` broadcast up to the mask's shape: its gradient sums over the new dimension.
        #expect(checkGradients([Self.sample([3])]) { $0[0].maskedFill(mask, 1) } == nil)
        let v = Self.sample([2, 3]).requiringGrad()
        v.maskedFill(mask, -.infinity).sum().backward()
        expectBitwiseEqual(v.grad!, Tensor([0, 1, 1, 0, 0, 1] as [Double], shape: [2, 3]))
    }

    // MARK: copy-on-write

    @Test func slicesShareStorageButNeverAlias() {
        let x = x
        var row = x[1]
        #expect(row.storage === x.storage)
        row.fillRaw(7)
        #expect(row.storage !== x.storage && row.doubles.allSatisfy { $0 == 7 })
        expectBitwiseEqual(x, fx["x"])
        let gathered = x.gather(axis: 2, index: Tensor([0, 1], shape: [1, 1, 2]))
        #expect(gathered.storage !== x.storage)  // gather copies
    }

    // MARK: errors

    @Test(arguments: indexingPreconditionCases.keys.sorted())
    func stopsWithPyTorchMessage(_ key: String) async throws {
        try await expectPreconditionFailure(key)
    }
}

let indexingPreconditionCases: [String: PreconditionCase] = [
    "select.outOfRange": .init(message: "select(): index 3 out of range for tensor of size [2, 3, 4] at dimension 1",
                               body: { _ = Tensor.zeros([2, 3, 4]).select(axis: 1, index: 3) }),
    "select.negativeOutOfRange": .init(message: "select(): index -4 out of range for tensor of size [2, 3, 4] at dimension 1",
                                       body: { _ = Tensor.zeros([2, 3, 4]).select(axis: 1, index: -4) }),
    "select.0d": .init(message: "select() cannot be applied to a 0-dim tensor.",
                       body: { _ = Tensor(1 as Float).select(axis: 0, index: 0) }),
    "select.axis": .init(message: "select: Dimension out of range (expected to be in range of [-3, 2], but got 3)",
                         body: { _ = Tensor.zeros([2, 3, 4]).select(axis: 3, index: 0) }),
    "narrow.exceeds": .init(message: "narrow: start (2) + length (2) exceeds dimension size (3).",
                            body: { _ = Tensor.zeros([2, 3, 4]).narrow(axis: 1, start: 2, length: 2) }),
    "narrow.negativeLength": .init(message: "narrow: narrow(): length must be non-negative.",
                                   body: { _ = Tensor.zeros([2, 3, 4]).narrow(axis: 1, start: 0, length: -1) }),
    "narrow.start": .init(message: "narrow: start out of range (expected to be in range of [-3, 3], but got 4)",
                          body: { _ = Tensor.zeros([2, 3, 4]).narrow(axis: 1, start: 4, length: 0) }),
    "narrow.negativeStart": .init(message: "narrow: start out of range (expected to be in range of [-3, 3], but got -4)",
                                  body: { _ = Tensor.zeros([2, 3, 4]).narrow(axis: 1, start: -4, length: 0) }),
    "narrow.0d": .init(message: "narrow() cannot be applied to a 0-dim tensor.",
                       body: { _ = Tensor(1 as Float).narrow(axis: 0, start: 0, length: 1) }),
    "slice.step": .init(message: "slice: step must be greater than zero",
                        body: { _ = Tensor.zeros([5]).sliced(axis: 0, step: -1) }),
    "index.outOfBounds": .init(message: "index: index 2 is out of bounds for dimension 0 with size 2",
                               body: { _ = Tensor.zeros([2, 3, 4])[2] }),
    "index.outOfBoundsLater": .init(message: "index: index 5 is out of bounds for dimension 1 with size 3",
                                    body: { _ = Tensor.zeros([2, 3, 4])[.all, 5] }),
    "index.outOfBoundsAfterEllipsis": .init(message: "index: index -5 is out of bounds for dimension 2 with size 4",
                                            body: { _ = Tensor.zeros([2, 3, 4])[.ellipsis, -5] }),
    "index.tooMany": .init(message: "index: too many indices for tensor of dimension 3",
                           body: { _ = Tensor.zeros([2, 3, 4])[0, 0, 0, 0] }),
    "index.stepZero": .init(message: "index: slice step cannot be zero",
                            body: { _ = Tensor.zeros([5])[.slice(step: 0)] }),
    "index.negativeStep": .init(message: "index: step must be greater than zero",
                                body: { _ = Tensor.zeros([5])[.slice(nil, nil, step: -1)] }),
    "index.twoEllipses": .init(message: "index: an index can only have a single ellipsis ('...')",
                               body: { _ = Tensor.zeros([2, 3])[.ellipsis, 0, .ellipsis] }),
    "index.0d": .init(message: "index: invalid index of a 0-dim tensor.",
                      body: { _ = Tensor(1 as Float)[0] }),
    "gather.dtype": .init(message: "gather: gather(): Expected dtype int32/int64 for index",
                          body: { _ = Tensor.zeros([3]).gather(axis: 0, index: Tensor([0 as Float])) }),
    "gather.rank": .init(message: "gather: Index tensor must have the same number of dimensions as input tensor",
                         body: { _ = Tensor.zeros([2, 3, 4]).gather(axis: 0, index: Tensor([0, 0], shape: [1, 2])) }),
    "gather.outOfBounds": .init(message: "gather: index 5 is out of bounds for dimension 0 with size 3",
                                body: { _ = Tensor.zeros([3]).gather(axis: 0, index: Tensor([5])) }),
    "gather.negative": .init(message: "gather: index -1 is out of bounds for dimension 0 with size 3",
                             body: { _ = Tensor.zeros([3]).gather(axis: 0, index: Tensor([-1])) }),
    "gather.outOfBounds2d": .init(message: "gather: index 3 is out of bounds for dimension 1 with size 3",
                                  body: { _ = Tensor.zeros([2, 3]).gather(axis: 1, index: Tensor([0, 3], shape: [1, 2])) }),
    "gather.size": .init(
        message: "gather: Size does not match at dimension 0 expected index [3, 2] to be no larger than self [2, 3] apart from dimension 1",
        body: { _ = Tensor.zeros([2, 3]).gather(axis: 1, index: Tensor([0, 0, 0, 0, 0, 0], shape: [3, 2])) }),
    "gather.axis": .init(message: "gather: Dimension out of range (expected to be in range of [-2, 1], but got 2)",
                         body: { _ = Tensor.zeros([2, 3]).gather(axis: 2, index: Tensor([0], shape: [1, 1])) }),
    "indexSelect.outOfRange": .init(message: "indexSelect: index out of range in self (index 5",
                                    body: { _ = Tensor.zeros([3, 2]).indexSelect(axis: 0, index: Tensor([0, 5])) }),
    "indexSelect.negative": .init(message: "indexSelect: index out of range in self (index -1",
                                  body: { _ = Tensor.zeros([3, 2]).indexSelect(axis: 0, index: Tensor([-1])) }),
    "indexSelect.matrix": .init(message: "indexSelect: index_select(): Index is supposed to be a vector",
                                body: { _ = Tensor.zeros([3, 2]).indexSelect(axis: 0, index: Tensor([0], shape: [1, 1])) }),
    "indexSelect.dtype": .init(message: "indexSelect: index_select(): Expected dtype int32 or int64 for index",
                               body: { _ = Tensor.zeros([3, 2]).indexSelect(axis: 0, index: Tensor([0 as Float])) }),
    "indexSelect.axis": .init(message: "indexSelect: Dimension out of range (expected to be in range of [-1, 0], but got 1)",
                              body: { _ = Tensor(3 as Float).indexSelect(axis: 1, index: Tensor([0])) }),
    "indexSelect.0dOutOfRange": .init(message: "indexSelect: index out of range in self",
                                      body: { _ = Tensor(3 as Float).indexSelect(axis: 0, index: Tensor([1])) }),
    "maskedFill.dtype": .init(message: "maskedFill: masked_fill_ only supports boolean masks, but got mask with dtype torch.float32",
                              body: { _ = Tensor.zeros([2, 3]).maskedFill(Tensor.zeros([2, 3]), 1) }),
    "maskedFill.broadcast": .init(
        message: "maskedFill: The size of tensor a (5) must match the size of tensor b (4) at non-singleton dimension 2",
        body: { _ = Tensor.zeros([2, 3, 4]).maskedFill(Tensor.zeros([5], dtype: .bool), 1) }),
    "maskedFill.intOverflow": .init(message: "maskedFill: value cannot be converted to type int64_t without overflow",
                                    body: { _ = Tensor.arange(0, 3).maskedFill(Tensor([true, false, true]), .infinity) }),
    "maskedFill.intNaN": .init(message: "maskedFill: value cannot be converted to type int64_t without overflow",
                               body: { _ = Tensor.arange(0, 3).maskedFill(Tensor([true, false, true]), .nan) }),
]
