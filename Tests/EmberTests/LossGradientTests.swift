import Ember
import Foundation
import Testing
import _EmberTestSupport

/// Every loss's backward against float64 central differences, for the input and (where the
/// target is differentiable) the target, under every reduction.
@Suite struct LossGradientTests {
    /// Deterministic float64 values `sin`-spread over `[lo, hi]`.
    func values(_ shape: Shape, _ seed: Double, lo: Double = -2, hi: Double = 2) -> Tensor {
        let n = shape.elementCount
        let v: [Double] = (0..<n).map { (i: Int) -> Double in
            let u: Double = 0.5 + 0.5 * sin(seed + 1.7 * Double(i))
            return lo + (hi - lo) * u
        }
        return Tensor(v, shape: shape)
    }

    func probabilities(_ shape: Shape, axis: Int, _ seed: Double) -> Tensor {
        withNoGrad { values(shape, seed).softmax(axis: axis) }
    }

    static let reductions: [Reduction] = [.none, .mean, .sum]

    @Test(arguments: reductions)
    func crossEntropyClassIndices(_ reduction: Reduction) {
        let t2 = Tensor([2, 0, -100, 1, 2] as [Int])
        let w = Tensor([0.5, 2, 1.25] as [Double])
        for ls in [0.0, 0.3] {
            // fused path ([N, C], no weights), with an ignored target
            #expect(checkGradients([values([5, 3], 0.1), t2]) {
                crossEntropy($0[0], target: $0[1], reduction: reduction, labelSmoothing: ls)
            } == nil, "fused, ls \(ls)")
            // general path: weights, K-dimensional, unbatched
            #expect(checkGradients([values([5, 3], 0.2), t2]) {
                crossEntropy($0[0], target: $0[1], weight: w, reduction: reduction, labelSmoothing: ls)
            } == nil, "weighted, ls \(ls)")
            let tk = Tensor([0, 2, 1, 1, 0, 2] as [Int], shape: [2, 3])
            #expect(checkGradients([values([2, 3, 3], 0.3), tk]) {
                crossEntropy($0[0], target: $0[1], weight: w, ignoreIndex: 1, reduction: reduction, labelSmoothing: ls)
            } == nil, "K-dimensional, ls \(ls)")
            #expect(checkGradients([values([3], 0.4), Tensor(Int64(2))]) {
                crossEntropy($0[0], target: $0[1], reduction: reduction, labelSmoothing: ls)
            } == nil, "unbatched, ls \(ls)")
        }
    }

    @Test(arguments: reductions)
    func crossEntropyProbabilities(_ reduction: Reduction) {
        let w = Tensor([0.5, 2, 1.25] as [Double])
        for ls in [0.0, 0.3] {
            #expect(checkGradients([values([4, 3], 0.5), probabilities([4, 3], axis: 1, 0.6)]) {
                crossEntropy($0[0], target: $0[1], weight: w, reduction: reduction, labelSmoothing: ls)
            } == nil, "ls \(ls)")
            #expect(checkGradients([values([2, 3, 2], 0.7), probabilities([2, 3, 2], axis: 1, 0.8)]) {
                crossEntropy($0[0], target: $0[1], reduction: reduction, labelSmoothing: ls)
            } == nil, "K-dimensional, ls \(ls)")
        }
    }

    @Test(arguments: reductions)
    func nll(_ reduction: Reduction) {
        let w = Tensor([0.5, 2, 1.25] as [Double])
        #expect(checkGradients([values([4, 3], 0.9), Tensor([2, 0, 1, 1] as [Int])]) {
            nllLoss($0[0], target: $0[1], weight: w, ignoreIndex: 1, reduction: reduction)
        } == nil)
        #expect(checkGradients([values([2, 3, 2], 1.0), Tensor([0, 2, 1, 0] as [Int], shape: [2, 2])]) {
            nllLoss($0[0], target: $0[1], reduction: reduction)
        } == nil)
    }

    @Test(arguments: reductions)
    func regressionLosses(_ reduction: Reduction) {
        // differences stay away from 0 and from the beta/delta kinks
        let x = Tensor([0.3, -1.2, 2.5, 0.05, -0.6, 1.7] as [Double], shape: [2, 3])
        let y = Tensor([-0.4, 0.9, 2.2, 1.6, -0.61, -1.1] as [Double], shape: [2, 3])
        #expect(checkGradients([x, y]) { mseLoss($0[0], target: $0[1], reduction: reduction) } == nil, "mse")
        #expect(checkGradients([x, y]) { l1Loss($0[0], target: $0[1], reduction: reduction) } == nil, "l1")
        for beta in [1.0, 0.5, 0.0] {
            #expect(checkGradients([x, y]) { smoothL1Loss($0[0], target: $0[1], reduction: reduction, beta: beta) } == nil,
                    "smoothL1 beta \(beta)")
        }
        for delta in [1.0, 0.5, 3.0] {
            #expect(checkGradients([x, y]) { huberLoss($0[0], target: $0[1], reduction: reduction, delta: delta) } == nil,
                    "huber delta \(delta)")
        }
    }

    @Test(arguments: reductions)
    func binaryCrossEntropies(_ reduction: Reduction) {
        let p = values([2, 3], 1.1, lo: 0.05, hi: 0.95), y = values([2, 3], 1.2, lo: 0.05, hi: 0.95)
        let w = Tensor([0.5, 2, 1.25] as [Double])
        #expect(checkGradients([p, y]) { binaryCrossEntropy($0[0], target: $0[1], weight: w, reduction: reduction) } == nil)
        let z = values([2, 3], 1.3, lo: -4, hi: 4)
        #expect(checkGradients([z, y]) {
            binaryCrossEntropyWithLogits($0[0], target: $0[1], weight: w, reduction: reduction)
        } == nil, "without posWeight")
        #expect(checkGradients([z, y]) {
            binaryCrossEntropyWithLogits($0[0], target: $0[1], weight: w, reduction: reduction, posWeight: Tensor([3, 0.5, 1] as [Double]))
        } == nil, "with posWeight")
    }

    @Test(arguments: [Reduction.none, .mean, .sum, .batchMean])
    func klDivergence(_ reduction: Reduction) {
        let x = withNoGrad { values([3, 4], 1.4).logSoftmax(axis: 1) }
        #expect(checkGradients([x, probabilities([3, 4], axis: 1, 1.5)]) {
            klDiv($0[0], target: $0[1], reduction: reduction)
        } == nil)
        let logQ = withNoGrad { values([3, 4], 1.6).logSoftmax(axis: 1) }
        #expect(checkGradients([x, logQ]) { klDiv($0[0], target: $0[1], reduction: reduction, logTarget: true) } == nil)
    }

    /// The checker must catch a wrong gradient: detaching the target drops its gradient, which
    /// the finite differences still see.
    @Test func checkerCatchesAMissingGradient() {
        let x = values([2, 3], 1.7), y = values([2, 3], 1.8)
        #expect(checkGradients([x, y]) { mseLoss($0[0], target: $0[1].detached()) } != nil)
    }
}
