import Ember
import Testing

@Test func matmulBackwardSmoke() {
    let x = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2]).requiringGrad()
    let w = Tensor([0.5, -1, 2, 0.25] as [Float], shape: [2, 2]).requiringGrad()
    let y = x.matmul(w).sum()
    y.backward()
    // d/dx sum(x w) = ones(2,2) w^T: row sums of w -> [-0.5, 2.25]
    #expect(x.grad!.floats == [-0.5, 2.25, -0.5, 2.25])
    // d/dw = x^T ones: column sums of x -> [4, 4; 6, 6]
    #expect(w.grad!.floats == [4, 4, 6, 6])
}
