import Ember
import Testing
import _EmberTestSupport

/// Advanced indexing (index tensors, bool masks) and subscript assignment against PyTorch
/// (`Tools/fixtures/gen_tensor_ops_select.py`): values, gradients, copy-on-write and errors.
@Suite struct IndexAssignmentTests {
    let fx = try! Fixture("tensor_ops_select")

    var i0: Tensor { fx["ix_i0"] }  // [2, -1, 0]
    var i1: Tensor { fx["ix_i1"] }  // [[0, 4], [3, 3]]
    var mask: Tensor { fx["ix_mask"] }  // x > 0, [4, 3, 5]
    var m2: Tensor { fx["ix_m2"] }  // [4, 3]

    /// The read cases of the fixture, by name.
    func read(_ name: String, _ x: Tensor) -> Tensor {
        switch name {
        case "g_i0": x[i0]
        case "g_mask": x[mask]
        case "g_m2": x[m2]
        case "g_all_i1": x[.all, .all, i1]
        case "g_i0_int_i0": x[i0, 1, Tensor([4, 0, 1] as [Int64])]
        case "g_sep": x[i0, .all, Tensor([4, 0, 1] as [Int64])]
        case "g_int_sep": x[0, .all, i1]
        case "g_range_idx": x[1..<3, Tensor([2, 0] as [Int64])]
        case "g_dup": x[Tensor([1, 1, 1] as [Int64])]
        case "g_none_mask": x[.newAxis, m2]
        case "g_ell_idx": x[.ellipsis, Tensor([-1] as [Int64])]
        default: fatalError("unknown case \(name)")
        }
    }

    static let readCases = ["g_i0", "g_mask", "g_m2", "g_all_i1", "g_i0_int_i0", "g_sep", "g_int_sep", "g_range_idx",
                            "g_dup", "g_none_mask", "g_ell_idx"]

    @Test(arguments: readCases)
    func advancedIndexingMatchesPyTorch(_ name: String) {
        let x = fx["ix_x"].requiringGrad()
        let out = read(name, x)
        expectExact(out, fx["\(name)_out"], name)
        (out * fx["\(name)_w"]).sum().backward()
        expectClose(x.grad!, fx["\(name)_grad"], atol: 1e-12, rtol: 0, name)
    }

    @Test func advancedIndexingFiniteDifferences() {
        let a = ScatterTests.sample([4, 3, 5])
        #expect(checkGradients([a]) { self.read("g_sep", $0[0]) } == nil)
        #expect(checkGradients([a]) { self.read("g_dup", $0[0]) } == nil)
        #expect(checkGradients([a]) { $0[0].transposed(0, 2)[Tensor([1, 0, 1] as [Int64]), 2] } == nil)
    }

    /// The write cases of the fixture, by name.
    func write(_ name: String, _ y: inout Tensor, _ v: Tensor) {
        switch name {
        case "s_mask_scalar": y[mask] = v
        case "s_m2_row": y[m2] = v
        case "s_range_idx": y[0..<2, .all, Tensor([1, 3] as [Int64])] = v
        case "s_int": y[1] = v
        case "s_idx_bcast": y[i0, 2] = v
        case "s_sep": y[i0, .all, Tensor([4, 0, 1] as [Int64])] = v
        case "s_basic_slice": y[.all, 1..., .slice(0, 5, step: 2)] = v
        case "s_lead1": y[0] = v
        case "s_dup": y[Tensor([1, 1] as [Int64])] = v
        default: fatalError("unknown case \(name)")
        }
    }

    static let writeCases = ["s_mask_scalar", "s_m2_row", "s_range_idx", "s_int", "s_idx_bcast", "s_sep",
                             "s_basic_slice", "s_lead1", "s_dup"]

    @Test(arguments: writeCases)
    func assignmentMatchesPyTorch(_ name: String) {
        let x = fx["ix_x"].requiringGrad(), v = fx["\(name)_value"].requiringGrad()
        var y = x * 1.0
        write(name, &y, v)
        expectExact(y, fx["\(name)_out"], name)
        (y * fx["\(name)_w"]).sum().backward()
        expectClose(x.grad!, fx["\(name)_gx"], atol: 1e-12, rtol: 0, "\(name) tensor gradient")
        expectClose(v.grad!, fx["\(name)_gv"], atol: 1e-12, rtol: 0, "\(name) value gradient")
    }

    @Test func assignmentWithoutGradientsMatchesPyTorch() {
        for name in Self.writeCases where name != "s_dup" {
            var y = fx["ix_x"]
            write(name, &y, fx["\(name)_value"])
            expectExact(y, fx["\(name)_out"], name)
            #expect(!y.requiresGrad)
        }
        var f = fx["s32_x"]
        f[Tensor([0, 2] as [Int64]), 1..<3] = Tensor(rows: [[1.5, 2.5]])  // float64 value into float32
        expectExact(f, fx["s32_out"])
        var ints = fx["sint_x"]
        ints[Tensor((0..<12).map { $0 % 3 == 0 }, shape: [3, 4])] = Tensor(-1.0)  // ii % 3 == 0
        expectBitwiseEqual(ints, fx["sint_out"])
    }

    @Test func assignmentFiniteDifferences() {
        let a = ScatterTests.sample([4, 3, 5]), v = ScatterTests.sample([3, 1], 0.7)
        #expect(checkGradients([a, v]) { t in
            var y = t[0] * 1.0
            y[self.i0, .all, Tensor([4, 0, 1] as [Int64])] = t[1]
            return y
        } == nil)
        #expect(checkGradients([a, ScatterTests.sample([5], 0.1)]) { t in
            var y = t[0].transposed(0, 1) * 2.0
            y[self.m2.t] = t[1]
            return y
        } == nil)
    }

    @Test func assignmentIsCopyOnWrite() {
        var x = Tensor([1, 2, 3, 4, 5, 6] as [Double], shape: [2, 3])
        let copy = x
        let view = x[1]
        let transposed = x.t
        x[0] = Tensor(9.0)
        x[Tensor([false, true]), Tensor([2] as [Int64])] = Tensor(-1.0)
        #expect(x.doubles == [9, 9, 9, 4, 5, -1])
        #expect(copy.doubles == [1, 2, 3, 4, 5, 6])
        #expect(view.doubles == [4, 5, 6])
        #expect(transposed.doubles == [1, 4, 2, 5, 3, 6])
        // Writing into a view changes the view only, never its source.
        var row = copy[1]
        row[0] = Tensor(0.0)
        #expect(row.doubles == [0, 5, 6] && copy.doubles == [1, 2, 3, 4, 5, 6])
        // A uniquely owned tensor is written in place (no new storage).
        var owned = Tensor.zeros([3, 3], dtype: .float64)
        owned[1, 1] = Tensor(5.0)
        #expect(owned.doubles == [0, 0, 0, 0, 5, 0, 0, 0, 0])
    }

    @Test func assignmentFromItselfReadsTheOldValues() {
        var x = Tensor([1, 2, 3, 4, 5, 6] as [Double], shape: [3, 2])
        x[1...] = x[..<2]  // basic path: overlapping source and destination
        #expect(x.doubles == [1, 2, 1, 2, 3, 4])
        var y = Tensor([1, 2, 3, 4] as [Double])
        y[Tensor([1, 2, 3] as [Int64])] = y[Tensor([0, 1, 2] as [Int64])]  // advanced path
        #expect(y.doubles == [1, 1, 2, 3])
        var z = Tensor([1, 2, 3] as [Double])
        z[.all] = z.t  // whole-tensor view of itself
        #expect(z.doubles == [1, 2, 3])
        var i = Tensor([1, 2, 3] as [Int64])
        i[1] = Tensor(7.9)  // float value into int64 truncates, as PyTorch
        #expect(i.scalars(as: Int64.self) == [1, 7, 3])
    }

    @Test func assignmentSupportsDoubleBackward() {
        // y = x with y[1] = v * v; L = sum(y^3): dL/dv = 3 (v^2)^2 * 2v = 6 v^5, d/dv of that = 30 v^4.
        let x = Tensor([0.5, 1.5, -1.0] as [Double]).requiringGrad()
        let v = Tensor(1.3).requiringGrad()
        var y = x * 1.0
        y[1] = v * v
        let g = Autograd.grad((y * y * y).sum(), [v], createGraph: true)[0]!
        expectClose(g, Tensor(6 * Double.pow(1.3, 5)), atol: 1e-12, rtol: 1e-12)
        let gg = Autograd.grad(g, [v])[0]!
        expectClose(gg, Tensor(30 * Double.pow(1.3, 4)), atol: 1e-10, rtol: 1e-12)
        // The overwritten element of x gets no gradient at any order.
        var y2 = x * 1.0
        y2[Tensor([true, false, true])] = Tensor(2.0)
        let gx = Autograd.grad((y2 * y2 * x).sum(), [x], createGraph: true)[0]!
        let xv = x.detached().doubles
        expectClose(gx, Tensor([4, 3 * xv[1] * xv[1], 4] as [Double]), atol: 1e-12, rtol: 1e-12)
    }

    @Test func assignmentUnderNoGradKeepsALeafALeaf() {
        var w = Tensor([1, 2, 3] as [Double]).requiringGrad()
        withNoGrad { w[Tensor([true, false, true])] = Tensor(0.0) }
        #expect(w.doubles == [0, 2, 0] && w.isLeaf && w.requiresGrad)
    }

    @Test func assigningAGradientValueIntoAPlainTensorRecords() {
        let v = Tensor([2.0]).requiringGrad()
        var y = Tensor.zeros([3], dtype: .float64)
        y[1] = v
        #expect(y.requiresGrad && !y.isLeaf)
        (y * Tensor([1, 10, 100] as [Double])).sum().backward()
        #expect(v.grad!.doubles == [10])
    }

    @Test func assignmentIntoALeafThatRequiresGradStops() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var x = Tensor([1, 2, 3] as [Double]).requiringGrad()
            x[0] = Tensor(5.0)
        }
        #expect(standardErrorText(result).contains("a leaf Variable that requires grad is being used in an in-place operation."))
    }

    @Test func maskShapeMismatchStops() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var x = Tensor.zeros([3, 4])
            x[Tensor([true, false])] = Tensor(1.0)
        }
        #expect(standardErrorText(result).contains("The shape of the mask [2] at index 0 does not match the shape of the indexed tensor [3, 4] at index 0"))
    }

    @Test func indexOutOfRangeStops() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([3, 4])[Tensor([5] as [Int64])]
        }
        #expect(standardErrorText(result).contains("index 5 is out of bounds for dimension 0 with size 3"))
    }

    @Test func indexTensorsThatDoNotBroadcastStop() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([3, 4])[Tensor([0, 1] as [Int64]), Tensor([0, 1, 2] as [Int64])]
        }
        #expect(standardErrorText(result).contains("shape mismatch: indexing tensors could not be broadcast together with shapes [2], [3]"))
    }

    @Test func valueThatDoesNotBroadcastStops() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var x = Tensor.zeros([3, 4])
            x[Tensor([0, 1] as [Int64])] = Tensor.ones([3])
        }
        #expect(standardErrorText(result).contains("shape mismatch: value tensor of shape [3] cannot be broadcast to indexing result of shape [2, 4]"))
    }

    @Test func floatIndexTensorStops() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([3])[Tensor([0.0])]
        }
        #expect(standardErrorText(result).contains("tensors used as indices must be long, int, byte or bool tensors"))
    }

    @Test func zeroDimensionalMasks() {
        let x = Tensor([1, 2, 3, 4] as [Double], shape: [2, 2])
        #expect(x[Tensor(true)].shape == [1, 2, 2])
        #expect(x[Tensor(false)].shape == [0, 2, 2])
        var y = x
        y[Tensor(true)] = Tensor(0.0)
        #expect(y.doubles == [0, 0, 0, 0])
        let empty = Tensor.zeros([0, 3])
        #expect(empty[Tensor([] as [Int64])].shape == [0, 3])
    }
}
