import Ember
import Testing
import _EmberTestSupport

/// `einsum` against PyTorch (`gen_tensor_ops_math.py`): permutations, traces, diagonals, sums,
/// batch dimensions, outer products, implicit output, ellipsis, broadcasting, three operands,
/// float32 and int64; gradients of every operand, finite differences and error texts.
@Suite struct EinsumTests {
    static func equation(_ name: String) -> String {
        String(OpsMath.fx["\(name)/equation"].scalars(as: Int64.self).map { Character(Unicode.Scalar(UInt8($0))) })
    }

    @Test(arguments: OpsMath.cases("einsum"))
    func matchesPyTorch(_ name: String) {
        let eq = Self.equation(name)
        let f32 = name.hasSuffix("_f32")
        OpsMath.check(name, atol: f32 ? 1e-5 : 1e-12, rtol: f32 ? 1e-5 : 1e-10) { Tensor.einsum(eq, $0) }
    }

    @Test(arguments: OpsMath.cases("einsum").filter { OpsMath.inputs($0)[0].dtype == .float64 })
    func finiteDifferences(_ name: String) {
        let ins = OpsMath.inputs(name)
        let eq = Self.equation(name)
        #expect(checkGradients(ins) { Tensor.einsum(eq, $0) } == nil, "\(name): \(eq)")
    }

    @Test func freeFunctionAndVariadicForms() {
        let a = Tensor([1, 2, 3, 4] as [Double], shape: [2, 2]), b = Tensor([5, 6] as [Double])
        #expect(einsum("ij,j->i", a, b).doubles == [17, 39])
        #expect(Tensor.einsum("ii", a).doubleValue == 5)
        #expect(einsum(" i j -> j i ", a).doubles == [1, 3, 2, 4])
        // Double backward through the matmul it uses.
        let x = a.requiringGrad()
        let g = Autograd.grad(einsum("ij,jk->", x, x).pow(2), [x], createGraph: true)[0]!
        let h = Autograd.grad(g.sum(), [x])[0]!
        #expect(h.shape == [2, 2] && h.doubles.allSatisfy { $0.isFinite && $0 != 0 })
    }

    @Test func badEquationsUsePyTorchsWording() async {
        var r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = einsum("ij->i", Tensor.ones([2, 3, 4]))
        }
        #expect(standardErrorText(r).contains("einsum(): the number of subscripts in the equation (2) does not match the number of dimensions (3) for operand 0 and no ellipsis was given"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = einsum("ij->k", Tensor.ones([2, 3]))
        }
        #expect(standardErrorText(r).contains("einsum(): output subscript k does not appear in the equation for any input operand"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = einsum("ij,jk->ik", Tensor.ones([2, 3]))
        }
        #expect(standardErrorText(r).contains("einsum(): fewer operands were provided than specified in the equation"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = einsum("i1->i", Tensor.ones([2, 3]))
        }
        #expect(standardErrorText(r).contains("einsum(): invalid subscript given at index 1 in the equation string, subscripts must be in [a-zA-Z]"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = einsum("ii->i", Tensor.ones([2, 3]))
        }
        #expect(standardErrorText(r).contains("einsum(): subscript i is repeated for operand 0 but the sizes don't match, 2 != 3"))
    }
}
