import Ember
import Testing
import _EmberTestSupport

/// triu/tril, diagonal/diag, roll, flip, repeat/tile/repeatInterleave, bmm/baddbmm/outer against
/// PyTorch (`gen_tensor_ops_math.py`), with finite differences and error messages.
@Suite struct StructureOpsTests {
    static func op(_ name: String, _ a: [Tensor]) -> Tensor {
        let x = a[0]
        switch name {
        case "triu": return x.triu()
        case "triu_1", "triu_int": return x.triu(diagonal: 1)
        case "triu_m1": return x.triu(diagonal: -1)
        case "tril": return x.tril()
        case "tril_2": return x.tril(diagonal: 2)
        case "tril_m2": return x.tril(diagonal: -2)
        case "diagonal": return x.diagonal()
        case "diagonal_o1_02": return x.diagonal(offset: 1, axis1: 0, axis2: 2)
        case "diagonal_om1_m1m2": return x.diagonal(offset: -1, axis1: -1, axis2: -2)
        case "diagonal_o9": return x.diagonal(offset: 9)
        case "diag_1d", "diag_2d": return x.diag()
        case "diag_1d_m1": return x.diag(diagonal: -1)
        case "diag_1d_2": return x.diag(diagonal: 2)
        case "diag_2d_1": return x.diag(diagonal: 1)
        case "diag_2d_m2": return x.diag(diagonal: -2)
        case "roll_flat": return x.roll(5)
        case "roll_1": return x.roll(1, axis: 1)
        case "roll_multi": return x.roll(shifts: [-1, 7], axes: [0, -1])
        case "flip_0": return x.flip(axes: [0])
        case "flip_02": return x.flip(axes: [0, -1])
        case "repeat": return x.repeated([2, 1, 3])
        case "repeat_same": return x.repeated([2, 3])
        case "tile": return x.tile([2])
        case "tile_more": return x.tile([2, 1, 2])
        case "repeat_interleave": return x.repeatInterleave(2)
        case "repeat_interleave_1": return x.repeatInterleave(3, axis: 1)
        case "repeat_interleave_t": return x.repeatInterleave(Tensor([1, 0, 2] as [Int64]), axis: -1)
        case "bmm": return x.bmm(a[1])
        case "baddbmm": return x.baddbmm(a[1], a[2], beta: 0.5, alpha: 2)
        case "baddbmm_default": return x.baddbmm(a[1], a[2])
        case "baddbmm_beta0": return x.baddbmm(a[1], a[2], beta: 0)
        case "outer", "outer_f32": return Tensor.outer(x, a[1])
        default: fatalError("no Swift mapping for \(name)")
        }
    }

    @Test(arguments: OpsMath.cases("structure") + OpsMath.cases("product"))
    func matchesPyTorch(_ name: String) {
        let f32 = name.hasSuffix("_f32")
        OpsMath.check(name, atol: f32 ? 1e-6 : 1e-12, rtol: f32 ? 1e-5 : 1e-10) { Self.op(name, $0) }
    }

    /// The float64 cases (beta == 0 ignores its NaN input, whose finite differences are NaN).
    static let differentiable = (OpsMath.cases("structure") + OpsMath.cases("product")).filter {
        OpsMath.inputs($0)[0].dtype == .float64 && $0 != "baddbmm_beta0"
    }

    @Test(arguments: differentiable)
    func finiteDifferences(_ name: String) {
        let ins = OpsMath.inputs(name)
        #expect(checkGradients(ins) { Self.op(name, $0) } == nil, "\(name)")
    }

    @Test func diagonalIsAView() {
        let x = Tensor((0..<12).map { Double($0) }, shape: [3, 4])
        let d = x.diagonal(offset: 1)
        #expect(d.doubles == [1, 6, 11])
        #expect(d.strides == [5])
        #expect(x.diagonal(offset: -5).shape == [0])
        #expect(x.t.diagonal().doubles == [0, 5, 10])
    }

    @Test func bmmBaddbmmOuterAndRepeatEdges() {
        let a = Tensor.ones([2, 3, 4]), b = Tensor.ones([2, 4, 5])
        #expect(a.bmm(b).shape == [2, 3, 5])
        // baddbmm with beta == 0 ignores NaN in the input and gives it a zero gradient.
        let input = Tensor.full([3, 5], .nan).requiringGrad()
        let y = input.baddbmm(a, b, beta: 0)
        #expect(!y.doubles.contains { $0.isNaN })
        y.sum().backward()
        #expect(input.grad?.doubles.allSatisfy { $0 == 0 } == true)
        #expect(Tensor.outer(Tensor([1, 2] as [Int64]), Tensor([3, 4, 5] as [Int64])).scalars(as: Int64.self) == [3, 4, 5, 6, 8, 10])
        #expect(Tensor.zeros([2, 0]).repeated([2, 3]).shape == [4, 0])
        #expect(Tensor(1.5 as Double).repeated([3]).doubles == [1.5, 1.5, 1.5])
        #expect(Tensor([1, 2] as [Int64]).repeatInterleave(0).shape == [0])
        #expect(Tensor([true, false]).flip(axes: [0]).scalars(as: Bool.self) == [false, true])
        #expect(Tensor([1, 2, 3] as [Int64]).roll(-1).scalars(as: Int64.self) == [2, 3, 1])
        #expect(Tensor.zeros([0]).roll(3).shape == [0])
    }

    @Test func emptyInputs() {
        #expect(Tensor.zeros([0]).diag().shape == [0, 0])
        #expect(Tensor.zeros([0]).diag(diagonal: 2).doubles == [0, 0, 0, 0])
        #expect(Tensor.zeros([2, 0, 3]).triu().shape == [2, 0, 3])
        #expect(Tensor.zeros([0, 3]).flip(axes: [0, 1]).shape == [0, 3])
        #expect(Tensor.zeros([3, 0]).diagonal().shape == [0])
        #expect(Tensor.zeros([0, 2, 3]).bmm(Tensor.zeros([0, 3, 4])).shape == [0, 2, 4])
        #expect(Tensor.zeros([2, 0]).repeatInterleave(2, axis: 1).shape == [2, 0])
        #expect(Tensor.zeros([2, 0]).tile([2, 2]).shape == [4, 0])
        let e = einsum("ij,jk->ik", Tensor.ones([2, 0]), Tensor.ones([0, 3]))
        #expect(e.shape == [2, 3] && e.doubles.allSatisfy { $0 == 0 })
    }

    @Test func bmmErrorsUsePyTorchsWording() async {
        var r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.ones([2, 3]).bmm(Tensor.ones([2, 3, 4]))
        }
        #expect(standardErrorText(r).contains("batch1 must be a 3D tensor"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.ones([2, 3, 4]).bmm(Tensor.ones([3, 4, 5]))
        }
        #expect(standardErrorText(r).contains("Expected size for first two dimensions of batch2 tensor to be: [2, 4] but got: [3, 4]."))
    }

    @Test func structureErrorsUsePyTorchsWording() async {
        var r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.ones([2, 2, 2]).diag()
        }
        #expect(standardErrorText(r).contains("diag(): Supports 1D or 2D tensors. Got 3D"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.ones([2, 3]).roll(shifts: [1, 2], axes: [0])
        }
        #expect(standardErrorText(r).contains("shifts and dimensions must align. shifts: 2, dims:1"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.ones([2, 3]).flip(axes: [0, -2])
        }
        #expect(standardErrorText(r).contains("dim 0 appears multiple times in the list of dims"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.ones([3]).triu()
        }
        #expect(standardErrorText(r).contains("triu: input tensor must have at least 2 dimensions"))
    }
}
