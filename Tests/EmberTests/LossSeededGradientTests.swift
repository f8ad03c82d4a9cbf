import Ember
import Testing
import _EmberTestSupport

/// A recorded mean or sum of an element-wise loss without weights writes the input's gradient for
/// the seed 1 while the forward reads each element; the backward hands it out instead of making a
/// pass over input and target. The promise: the same bits as the gradient the backward computes
/// (a second backward with the graph retained computes it again), for float32 and float64, mean
/// and sum, every element-wise loss; another seed still scales it; and the loss's value is the
/// same with and without recording.
@Suite("Element-wise losses: the input gradient written by the forward")
struct LossSeededGradientTests {
    static let losses: [(String, @Sendable (Tensor, Tensor, Reduction) -> Tensor)] = [
        ("mse", { mseLoss($0, target: $1, reduction: $2) }),
        ("l1", { l1Loss($0, target: $1, reduction: $2) }),
        ("smooth l1", { smoothL1Loss($0, target: $1, reduction: $2) }),
        ("huber", { huberLoss($0, target: $1, reduction: $2) }),
    ]

    @Test("the seeded gradient is the computed one, bit for bit", arguments: [DType.float32, .float64])
    func seededIsComputed(dtype: DType) {
        for (name, loss) in Self.losses {
            for reduction in [Reduction.mean, .sum] {
                // 1027 elements: whole groups of eight and a tail.
                let x = (Tensor.normal([13, 79], generator: Generator(seed: 5)) * 2).to(dtype).requiringGrad()
                let t = Tensor.normal([13, 79], generator: Generator(seed: 6)).to(dtype)
                let value = loss(x, t, reduction)
                // Without recording the forward writes no gradient: the same value, bit for bit.
                expectBitwiseEqual(withNoGrad { loss(x, t, reduction) }, value.detached(), "\(name) \(reduction) \(dtype): value without recording")
                let first = Autograd.grad(value, [x], retainGraph: true)[0]!
                let again = Autograd.grad(value, [x], retainGraph: true)[0]!
                expectBitwiseEqual(first, again, "\(name) \(reduction) \(dtype)")
                let doubled = Autograd.grad(value, [x], gradOutput: Tensor(2.0).to(dtype))[0]!
                // Scaling by 2 commutes with rounding: (2 f) d and 2 (f d) are the same bits.
                expectBitwiseEqual(doubled, first * 2, "\(name) \(reduction) \(dtype): seed 2")
            }
        }
    }
}
