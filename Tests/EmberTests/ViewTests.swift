import Ember
import Foundation
import Testing
import _EmberTestSupport

/// Shape and layout ops: reshape/view, flatten/unflatten, squeeze/unsqueeze, expand/broadcast,
/// permute/transpose, contiguous. Forward values and view strides come from PyTorch
/// (`Tools/fixtures/gen_views.py`); gradients are checked against finite differences.
@Suite struct ViewTests {
    let fx = try! Fixture("views")
    var x: Tensor { fx["x"] }  // [2, 3, 4] float32
    var m: Tensor { fx["m"] }  // [4, 6]
    var c: Tensor { fx["c"] }  // [3, 1]
    var y: Tensor { fx["y"] }  // [1, 3, 1, 2]
    var s: Tensor { fx["s"] }  // 0-d

    // MARK: view / reshape

    @Test func viewMatchesPyTorchValuesAndStrides() {
        let x = x, m = m, c = c, s = s
        expectView(x.view([4, -1]), fx, "view_contig", of: x)
        expectView(m.t.view([3, 2, 4]), fx, "view_t", of: m)
        expectView(m[.all, 1..<5].view([4, 2, 2]), fx, "view_sliced", of: m)
        expectView(c.expanded(to: [3, 4]).view([3, 2, 2]), fx, "view_expanded", of: c)
        expectView(m.t.view([1, 6, 1, 4, 1]), fx, "view_ones", of: m)
        expectView(x.permuted([2, 0, 1]).view([4, 6]), fx, "view_permuted", of: x)
        expectView(s.view([1, 1]), fx, "view_0d", of: s)
        expectView(s.view([1, 1]).t.view([]), fx, "view_to_0d", of: s)
        let e = Tensor.zeros([4, 0, 6])
        expectView(e.transposed(0, 2).view([0, 3]), fx, "view_empty", of: e)
        expectView(e.transposed(0, 2).view([6, 0, 4]), fx, "view_empty_same", of: e)
    }

    @Test func reshapeIsAViewWhenViewWouldSucceedElseACopy() {
        let m = m, c = c
        expectView(m.t.reshaped([3, 2, 4]), fx, "reshape_view", of: m)
        expectView(c.expanded(to: [3, 4]).reshaped([3, 2, 2]), fx, "reshape_expanded_view", of: c)
        let copy = m.t.reshaped([24])
        expectBitwiseEqual(copy, fx["reshape_copy"])
        #expect(copy.storage !== m.storage && copy.isContiguous)
        let copy2 = c.expanded(to: [3, 4]).reshaped([12])
        expectBitwiseEqual(copy2, fx["reshape_expanded_copy"])
        #expect(copy2.storage !== c.storage)
    }

    @Test func viewStridesAgreeWithReshapeOnEveryFactorisation() {
        // Every way to view a transposed [4, 6] as [a, b, c] either fails in both view and
        // viewStrides or gives a view reading the same values as a copy would.
        let base = Tensor((0..<24).map { Double($0) }, shape: [4, 6]).t
        for a in [1, 2, 3, 6] {
            for b in [1, 2, 4] where 6 % a == 0 && 24 % (a * b) == 0 {
                let target: Shape = [a, b, 24 / (a * b)]
                let copied = base.contiguous().view(target)
                if let st = base.viewStrides(for: target) {
                    let v = Tensor(storage: base.storage, shape: target, strides: st, offset: base.offset, dtype: base.dtype)
                    expectBitwiseEqual(v, copied, "view \(target)")
                }
                expectBitwiseEqual(base.reshaped(target), copied, "reshape \(target)")
            }
        }
    }

    /// 80 random layouts (expanded, permuted, strided) and target shapes: `view` must succeed
    /// exactly where PyTorch's does, with PyTorch's strides, and read the same values as a copy.
    @Test func viewSucceedsExactlyWherePyTorchDoes() throws {
        let rows = fx["view_cases"].scalars(as: Int64.self).map { Int($0) }
        let width = 26
        try #require(rows.count == 80 * width)
        var viewable = 0
        for r in 0..<(rows.count / width) {
            let row = Array(rows[(r * width)..<((r + 1) * width)])
            let rank = row[0]
            let shape = Shape(row[1..<(1 + rank)]), expand = Shape(row[5..<(5 + rank)])
            let perm = Array(row[9..<(9 + rank)]), step = row[13]
            let target = Shape(row[15..<(15 + row[14])])
            let ok = row[20] == 1, strides = Shape(row[21..<(21 + row[14])])
            let base = Tensor((0..<shape.elementCount).map { Double($0) }, shape: shape)
            let v = base.expanded(to: expand).permuted(perm).sliced(axis: 0, step: step)
            let computed = v.viewStrides(for: target)
            #expect((computed != nil) == ok, "case \(r): \(v.shape) strides \(v.strides) as \(target)")
            if ok, let computed {
                viewable += 1
                #expect(computed == strides, "case \(r): \(v.shape) strides \(v.strides) as \(target)")
                expectBitwiseEqual(v.view(target), v.contiguous().view(target), "case \(r)")
            }
        }
        #expect(viewable > 20 && viewable < 80)  // both outcomes are exercised
    }

    // MARK: flatten / unflatten

    @Test func flattenAndUnflattenMatchPyTorch() {
        let x = x, s = s
        expectView(x.flattened(), fx, "flatten_all", of: x)
        let copy = x.transposed(0, 2).flattened(startAxis: 1)
        expectBitwiseEqual(copy, fx["flatten_copy"])
        #expect(copy.storage !== x.storage)
        expectView(x[.all, .all, 1..<3].flattened(startAxis: 0, endAxis: 1), fx, "flatten_sliced", of: x)
        expectView(s.flattened(), fx, "flatten_0d", of: s)
        expectView(x.flattened(startAxis: 1, endAxis: 1), fx, "flatten_same", of: x)
        expectView(x.unflattened(axis: 2, sizes: [2, -1]), fx, "unflatten", of: x)
        expectView(x.transposed(1, 2).unflattened(axis: 1, sizes: [2, 2]), fx, "unflatten_t", of: x)
        expectView(x.unflattened(axis: -1, sizes: [1, 4, 1]), fx, "unflatten_neg", of: x)
    }

    // MARK: squeeze / unsqueeze

    @Test func squeezeAndUnsqueezeMatchPyTorch() {
        let x = x, y = y, s = s
        expectView(y.squeezed(), fx, "squeeze_all", of: y)
        expectView(y.squeezed(axis: 0), fx, "squeeze_0", of: y)
        expectView(y.squeezed(axis: 1), fx, "squeeze_noop", of: y)
        expectView(y.squeezed(axes: [0, -2, 1]), fx, "squeeze_multi", of: y)
        expectView(x.transposed(0, 2).unsqueezed(axis: 1), fx, "unsqueeze_1", of: x)
        expectView(x.transposed(0, 2).unsqueezed(axis: -1), fx, "unsqueeze_end", of: x)
        expectView(s.unsqueezed(axis: 0), fx, "unsqueeze_0d", of: s)
        #expect(s.squeezed(axis: -1).shape == [] && s.squeezed().shape == [])
        #expect(y.squeezed(axes: []).shape == y.shape)
    }

    // MARK: expand / broadcast / permute

    @Test func expandAndBroadcastMatchPyTorch() {
        let c = c, s = s, m = m
        expectView(c.expanded(to: [2, 3, -1]), fx, "expand_lead", of: c)
        expectView(s.expanded(to: [2, 3]), fx, "expand_0d", of: s)
        expectView(c.expanded(to: [3, 0]), fx, "expand_zero", of: c)
        expectView(m.t[.all, ..<1].expanded(to: [6, 5]), fx, "expand_t", of: m)
        expectView(c.broadcast(to: [2, 3, 5]), fx, "broadcast_to", of: c)
        let other = Tensor.zeros([2, 3, 5])
        expectBitwiseEqual(c.expanded(as: other), fx["broadcast_to"])
        #expect(s.expanded(to: []).shape == [])
    }

    @Test func permuteAndTransposeMatchPyTorch() {
        let x = x, m = m, s = s
        expectView(x.permuted([2, 0, 1]), fx, "permute", of: x)
        expectView(x.permuted([-1, -3, -2]), fx, "permute_neg", of: x)
        expectView(x.transposed(0, -1), fx, "transpose", of: x)
        expectView(m.t, fx, "t", of: m)
        #expect(s.transposed(0, -1).shape == [] && s.t.shape == [])
        expectBitwiseEqual(x.transposed(1, 1), x)
    }

    @Test func contiguousCopiesOnlyWhenNeeded() {
        let m = m
        #expect(m.contiguous().storage === m.storage)
        let c = m.t.contiguous()
        #expect(c.isContiguous && c.storage !== m.storage)
        expectBitwiseEqual(c, fx["t"])
    }

    // MARK: gradients

    @Test func reshapingGradientsMatchFiniteDifferences() {
        let a = Tensor((0..<24).map { sin(Double($0)) }, shape: [2, 3, 4])
        #expect(checkGradients([a]) { $0[0].reshaped([4, -1]) } == nil)
        #expect(checkGradients([a]) { $0[0].transposed(0, 2).reshaped([24]) } == nil)  // copy path
        #expect(checkGradients([a]) { $0[0].view([6, 4]) } == nil)
        #expect(checkGradients([a]) { $0[0].permuted([2, 0, 1]).view([4, 6]) } == nil)  // strided view
        #expect(checkGradients([a]) { $0[0].flattened() } == nil)
        #expect(checkGradients([a]) { $0[0].transposed(0, 2).flattened(startAxis: 1) } == nil)
        #expect(checkGradients([a]) { $0[0].unflattened(axis: 2, sizes: [2, -1]) } == nil)
        #expect(checkGradients([a]) { $0[0].transposed(1, 2).unflattened(axis: 1, sizes: [2, 2]) } == nil)
    }

    @Test func squeezeExpandPermuteGradientsMatchFiniteDifferences() {
        let a = Tensor((0..<6).map { cos(Double($0)) }, shape: [1, 3, 1, 2])
        let b = Tensor([0.5, -1.0, 2.0] as [Double], shape: [3, 1])
        let z = Tensor(0.75 as Double)
        #expect(checkGradients([a]) { $0[0].squeezed() } == nil)
        #expect(checkGradients([a]) { $0[0].squeezed(axes: [0, 2]) } == nil)
        #expect(checkGradients([a]) { $0[0].squeezed(axis: -2).unsqueezed(axis: -1) } == nil)
        #expect(checkGradients([b]) { $0[0].expanded(to: [2, 3, 4]) } == nil)
        #expect(checkGradients([b]) { $0[0].expanded(to: [2, -1, 5]).transposed(0, 2) } == nil)
        #expect(checkGradients([b]) { $0[0].t.expanded(to: [4, 3]) } == nil)
        #expect(checkGradients([b]) { $0[0].broadcast(to: [3, 3]) } == nil)
        #expect(checkGradients([b]) { $0[0].expanded(as: Tensor.zeros([2, 3, 2])) } == nil)
        #expect(checkGradients([z]) { $0[0].expanded(to: [2, 2]) } == nil)
        #expect(checkGradients([a]) { $0[0].permuted([3, 1, 0, 2]) } == nil)
        #expect(checkGradients([a]) { $0[0].transposed(1, 3).contiguous() } == nil)
        #expect(checkGradients([b]) { $0[0].t } == nil)
    }

    @Test func expandToZeroGivesZeroGradient() {
        let b = Tensor([1.0, 2.0, 3.0] as [Double], shape: [3, 1]).requiringGrad()
        let e = b.expanded(to: [3, 0])
        #expect(e.shape == [3, 0])
        e.sum().backward()
        expectBitwiseEqual(b.grad!, Tensor.zeros([3, 1], dtype: .float64))
    }

    @Test func viewOpsRecordTheirNames() {
        let a = Tensor.zeros([2, 3]).requiringGrad()
        #expect(a.view([3, 2]).gradFnName == "view")
        #expect(a.reshaped([6]).gradFnName == "reshape")
        #expect(a.expanded(to: [4, 2, 3]).gradFnName == "expand")
        #expect(a.unsqueezed(axis: 0).gradFnName == "unsqueeze")
        #expect(withNoGrad { a.view([3, 2]).gradFnName } == nil)
    }

    // MARK: copy-on-write

    @Test func viewsShareStorageButNeverAlias() {
        let x = x
        var v = x.view([4, 6])
        #expect(v.storage === x.storage)
        v.fillRaw(9)  // writing into the view copies it first
        #expect(v.storage !== x.storage)
        #expect(v.doubles.allSatisfy { $0 == 9 })
        expectBitwiseEqual(x, fx["x"])

        var original = fx["m"]
        let t = original.t
        original.fillRaw(0)  // writing into the source leaves its views alone
        expectBitwiseEqual(t, fx["t"])
        #expect(original.doubles.allSatisfy { $0 == 0 })
    }

    // MARK: errors

    @Test(arguments: viewPreconditionCases.keys.sorted())
    func stopsWithPyTorchMessage(_ key: String) async throws {
        try await expectPreconditionFailure(key)
    }

    @Test func preconditionCaseKeysAreUnique() {
        #expect(allPreconditionCases.count
            == viewPreconditionCases.count + indexingPreconditionCases.count + joinPreconditionCases.count)
    }
}

let viewPreconditionCases: [String: PreconditionCase] = [
    "view.incompatible": .init(
        message: "view: view size is not compatible with input tensor's size and stride (at least one dimension spans across two contiguous subspaces). Use .reshape(...) instead.",
        body: { _ = Tensor.zeros([4, 6]).t.view([24]) }),
    "view.expandedIncompatible": .init(
        message: "view size is not compatible with input tensor's size and stride",
        body: { _ = Tensor.zeros([3, 1]).expanded(to: [3, 4]).view([12]) }),
    "view.slicedIncompatible": .init(
        message: "view size is not compatible with input tensor's size and stride",
        body: { _ = Tensor.zeros([4, 6])[.all, 1..<5].view([16]) }),
    "view.twoInferred": .init(message: "view: only one dimension can be inferred",
                              body: { _ = Tensor.zeros([2, 3, 4]).view([-1, -1]) }),
    "view.invalidSize": .init(message: "view: shape '[5, 5]' is invalid for input of size 24",
                              body: { _ = Tensor.zeros([2, 3, 4]).view([5, 5]) }),
    "view.negative": .init(message: "view: invalid shape dimension -2 at index 0 of shape [-2, 12]",
                           body: { _ = Tensor.zeros([2, 3, 4]).view([-2, 12]) }),
    "view.ambiguous": .init(
        message: "view: cannot reshape tensor of 0 elements into shape [-1, 0] because the unspecified dimension size -1 can be any value and is ambiguous",
        body: { _ = Tensor.zeros([0, 3]).view([-1, 0]) }),
    "view.0dInvalid": .init(message: "view: shape '[2]' is invalid for input of size 1",
                            body: { _ = Tensor(1 as Float).view([2]) }),
    "reshape.invalid": .init(message: "reshape: shape '[-1, 4]' is invalid for input of size 6",
                             body: { _ = Tensor.zeros([6]).reshaped([-1, 4]) }),
    "flatten.order": .init(message: "flatten: flatten() has invalid args: start_dim cannot come after end_dim",
                           body: { _ = Tensor.zeros([2, 3, 4]).flattened(startAxis: 2, endAxis: 1) }),
    "flatten.axis": .init(message: "flatten: Dimension out of range (expected to be in range of [-3, 2], but got 3)",
                          body: { _ = Tensor.zeros([2, 3, 4]).flattened(startAxis: 0, endAxis: 3) }),
    "flatten.0dAxis": .init(message: "flatten: Dimension out of range (expected to be in range of [-1, 0], but got 1)",
                            body: { _ = Tensor(1 as Float).flattened(startAxis: 0, endAxis: 1) }),
    "unflatten.product": .init(
        message: "unflatten: Provided sizes [2, 2] don't multiply up to the size of dim 1 (3) in the input tensor",
        body: { _ = Tensor.zeros([2, 3, 4]).unflattened(axis: 1, sizes: [2, 2]) }),
    "unflatten.productInferred": .init(
        message: "unflatten: Provided sizes [4, -1] don't multiply up to the size of dim 1 (6) in the input tensor",
        body: { _ = Tensor.zeros([2, 6]).unflattened(axis: 1, sizes: [4, -1]) }),
    "unflatten.empty": .init(message: "unflatten: sizes must be non-empty",
                             body: { _ = Tensor.zeros([2, 3]).unflattened(axis: 1, sizes: []) }),
    "unflatten.twoInferred": .init(message: "unflatten: only one dimension can be inferred",
                                   body: { _ = Tensor.zeros([2, 3, 4]).unflattened(axis: 1, sizes: [-1, -1]) }),
    "unflatten.0d": .init(message: "unflatten: Dimension specified as 0 but tensor has no dimensions",
                          body: { _ = Tensor(1 as Float).unflattened(axis: 0, sizes: [1]) }),
    "unflatten.axis": .init(message: "unflatten: Dimension out of range (expected to be in range of [-2, 1], but got 2)",
                            body: { _ = Tensor.zeros([2, 3]).unflattened(axis: 2, sizes: [1]) }),
    "squeeze.axis": .init(message: "squeeze: Dimension out of range (expected to be in range of [-3, 2], but got 3)",
                          body: { _ = Tensor.zeros([2, 3, 4]).squeezed(axis: 3) }),
    "squeeze.0dAxis": .init(message: "squeeze: Dimension out of range (expected to be in range of [-1, 0], but got 1)",
                            body: { _ = Tensor(1 as Float).squeezed(axis: 1) }),
    "squeeze.duplicate": .init(message: "squeeze: dim 0 appears multiple times in the list of dims",
                               body: { _ = Tensor.zeros([1, 2]).squeezed(axes: [0, -2]) }),
    "unsqueeze.axis": .init(message: "unsqueeze: Dimension out of range (expected to be in range of [-4, 3], but got 4)",
                            body: { _ = Tensor.zeros([2, 3, 4]).unsqueezed(axis: 4) }),
    "unsqueeze.negativeAxis": .init(message: "unsqueeze: Dimension out of range (expected to be in range of [-4, 3], but got -5)",
                                    body: { _ = Tensor.zeros([2, 3, 4]).unsqueezed(axis: -5) }),
    "expand.mismatch": .init(
        message: "expand: The expanded size of the tensor (5) must match the existing size (3) at non-singleton dimension 1.  Target sizes: [2, 5, 4].  Tensor sizes: [2, 3, 4]",
        body: { _ = Tensor.zeros([2, 3, 4]).expanded(to: [2, 5, 4]) }),
    "expand.fewerSizes": .init(
        message: "expand: expand(torch.FloatTensor{[2, 3, 4]}, size=[3, 4]): the number of sizes provided (2) must be greater or equal to the number of dimensions in the tensor (3)",
        body: { _ = Tensor.zeros([2, 3, 4]).expanded(to: [3, 4]) }),
    "expand.leadingInferred": .init(
        message: "expand: The expanded size of the tensor (-1) isn't allowed in a leading, non-existing dimension 0",
        body: { _ = Tensor.zeros([2, 3, 4]).expanded(to: [-1, 2, 3, 4]) }),
    "expand.toZero": .init(
        message: "expand: The expanded size of the tensor (0) must match the existing size (2) at non-singleton dimension 0.  Target sizes: [0].  Tensor sizes: [2]",
        body: { _ = Tensor.zeros([2]).expanded(to: [0]) }),
    "expand.negative": .init(message: "expand: The expanded size of the tensor (-2) must be non-negative",
                             body: { _ = Tensor.zeros([1]).expanded(to: [-2]) }),
    "broadcast.mismatch": .init(
        message: "broadcast: The expanded size of the tensor (5) must match the existing size (3) at non-singleton dimension 1.  Target sizes: [2, 5, 4].  Tensor sizes: [2, 3, 4]",
        body: { _ = Tensor.zeros([2, 3, 4]).broadcast(to: [2, 5, 4]) }),
    "expandAs.mismatch": .init(message: "expandAs: The expanded size of the tensor (2) must match the existing size (3)",
                               body: { _ = Tensor.zeros([3]).expanded(as: Tensor.zeros([2])) }),
    "permute.count": .init(
        message: "permute: permute(): number of dimensions in the tensor input does not match the length of the desired ordering of dimensions i.e. input.dim() = 3 is not equal to len(dims) = 2",
        body: { _ = Tensor.zeros([2, 3, 4]).permuted([0, 1]) }),
    "permute.duplicate": .init(message: "permute(): duplicate dims are not allowed.",
                               body: { _ = Tensor.zeros([2, 3, 4]).permuted([0, 1, -2]) }),
    "permute.axis": .init(message: "permute: Dimension out of range (expected to be in range of [-2, 1], but got 2)",
                          body: { _ = Tensor.zeros([2, 3]).permuted([0, 2]) }),
    "transpose.axis": .init(message: "transpose: Dimension out of range (expected to be in range of [-3, 2], but got 3)",
                            body: { _ = Tensor.zeros([2, 3, 4]).transposed(0, 3) }),
    "t.rank": .init(message: "t() expects a tensor with <= 2 dimensions, but self is 3D",
                    body: { _ = Tensor.zeros([2, 3, 4]).t }),
]
