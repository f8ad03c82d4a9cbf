import Ember
import Foundation
import Testing
import _EmberTestSupport

/// Losses on views, empty tensors, NaN, mixed dtypes and every supported target layout.
@Suite struct LossLayoutTests {
    let fx = try! Fixture("losses")

    /// Each loss on transposed / expanded operands equals the loss on contiguous copies.
    @Test func nonContiguousOperands() {
        let x = fx["reg/x"], y = fx["reg/y"]  // [4, 5]
        let xt = x.t.contiguous().t, yt = y.t.contiguous().t
        #expect(!xt.isContiguous && !yt.isContiguous)
        for reduction in [Reduction.none, .sum] {
            expectBitwiseEqual(mseLoss(xt, target: yt, reduction: reduction), mseLoss(x, target: y, reduction: reduction))
            expectBitwiseEqual(huberLoss(xt, target: yt, reduction: reduction, delta: 0.5),
                               huberLoss(x, target: y, reduction: reduction, delta: 0.5))
        }
        let p = fx["bce/p"], q = fx["bce/y"]
        expectBitwiseEqual(binaryCrossEntropy(p.t.contiguous().t, target: q.t.contiguous().t, reduction: .none),
                           binaryCrossEntropy(p, target: q, reduction: .none))
        let row = Tensor([0.25, 0.5, 0.75] as [Float]).expanded(to: [2, 3])
        expectBitwiseEqual(binaryCrossEntropyWithLogits(row, target: row, reduction: .none),
                           binaryCrossEntropyWithLogits(row.contiguous(), target: row.contiguous(), reduction: .none))
        // K-dimensional cross entropy on a permuted view
        let k = fx["cls/3d/x"]  // [3, 4, 2]
        let kp = k.permuted([0, 2, 1]).contiguous().permuted([0, 2, 1])
        #expect(!kp.isContiguous)
        let t = fx["cls/3d/t_none"]
        expectBitwiseEqual(crossEntropy(kp, target: t, weight: fx["cls/3d/w"], reduction: .none),
                           crossEntropy(k, target: t, weight: fx["cls/3d/w"], reduction: .none))
    }

    @Test func emptyInputs() {
        let e = Tensor.zeros([0, 3])
        for loss in [{ mseLoss($0, target: $1, reduction: $2) }, { l1Loss($0, target: $1, reduction: $2) },
                     { klDiv($0, target: $1, reduction: $2) }] as [(Tensor, Tensor, Reduction) -> Tensor] {
            #expect(loss(e, e, .mean).doubleValue.isNaN, "PyTorch: an empty mean is NaN")
            #expect(loss(e, e, .sum).doubleValue == 0)
            #expect(loss(e, e, .none).shape == [0, 3])
        }
        #expect(klDiv(e, target: e, reduction: .batchMean).doubleValue.isNaN, "0 / 0 samples")
        #expect(crossEntropy(e, target: e).doubleValue.isNaN, "probabilities: 0 / 0 samples")
        #expect(nllLoss(Tensor.zeros([0, 3, 2]), target: Tensor.zeros([0, 2], dtype: .int64), reduction: .none).shape == [0, 2])
    }

    @Test func nanPropagates() {
        let x = Tensor([1, .nan, 3] as [Float]), y = Tensor([0, 0, 0] as [Float])
        for reduction in [Reduction.mean, .sum] {
            #expect(mseLoss(x, target: y, reduction: reduction).doubleValue.isNaN)
            #expect(smoothL1Loss(x, target: y, reduction: reduction).doubleValue.isNaN)
            #expect(binaryCrossEntropyWithLogits(x, target: y, reduction: reduction).doubleValue.isNaN)
        }
        let xi = x.requiringGrad()
        l1Loss(xi, target: y).backward()
        let g = xi.grad!.doubles
        #expect(g[0] > 0 && g[1].isNaN && g[2] > 0, "\(g)")
    }

    @Test func dtypesPromoteAsInPyTorch() {
        let x = Tensor([0.5, 1.5] as [Float]).requiringGrad()
        let loss = mseLoss(x, target: Tensor([0, 1] as [Double]))
        #expect(loss.dtype == .float64, "float32 input, float64 target -> float64 (PyTorch)")
        loss.backward()
        #expect(x.grad?.dtype == .float32)
        expectClose(x.grad!, Tensor([0.5, 0.5] as [Float]), atol: 0, rtol: 1e-7)
        #expect(l1Loss(Tensor([0.5, 1.5] as [Float]), target: Tensor([0, 1] as [Int])).dtype == .float32, "int64 target -> float32")
        #expect(huberLoss(Tensor([0.5] as [Double]), target: Tensor([true])).dtype == .float64)
        #expect(klDiv(Tensor([-0.5] as [Float]), target: Tensor([0.5] as [Double])).dtype == .float64)
        #expect(binaryCrossEntropyWithLogits(Tensor([0.5] as [Double]), target: Tensor([1] as [Float])).dtype == .float64)
        // class weights for BCE are cast to the input's dtype, as PyTorch's in-place multiply does
        let bw = binaryCrossEntropy(Tensor([0.25] as [Float]), target: Tensor([1] as [Float]), weight: Tensor([2] as [Double]))
        #expect(bw.dtype == .float32)
        expectClose(bw, Tensor(Float(2 * log(4.0))), atol: 0, rtol: 1e-6)
        // probabilities in float64 with float32 logits -> float64 (PyTorch)
        let ce = crossEntropy(Tensor([1, 2, 3] as [Float]), target: Tensor([0.2, 0.3, 0.5] as [Double]))
        #expect(ce.dtype == .float64)
    }

    /// Every class-index layout reduces to `[N, C, S]`: a rank-5 loss equals the same data as rank 3.
    @Test func higherRankTargetsMatchTheirFlattenedForm() {
        let x = Tensor((0..<24).map { (i: Int) -> Double in sin(Double(i)) * 2 }, shape: [2, 3, 2, 1, 2])
        let t = Tensor([0, 2, 1, 1, 2, 0, 0, 1] as [Int], shape: [2, 2, 1, 2])
        let w = Tensor([0.5, 1, 2] as [Double])
        for reduction in [Reduction.none, .mean, .sum] {
            let five = crossEntropy(x, target: t, weight: w, ignoreIndex: 0, reduction: reduction, labelSmoothing: 0.1)
            let three = crossEntropy(x.reshaped([2, 3, 4]), target: t.reshaped([2, 4]), weight: w, ignoreIndex: 0,
                                     reduction: reduction, labelSmoothing: 0.1)
            #expect(five.shape == (reduction == .none ? [2, 2, 1, 2] : []))
            expectClose(five.reshaped(three.shape), three, atol: 1e-15, rtol: 1e-14)
        }
    }

    /// PyTorch accepts `[C]` input with a 0-d target or a target of shape `[1]`; both give a 0-d loss.
    @Test func unbatchedTargets() {
        let x = fx["cls/1d/x"]
        let scalar = crossEntropy(x, target: Tensor(Int64(2)), reduction: .none)
        let one = crossEntropy(x, target: Tensor([2] as [Int]), reduction: .none)
        #expect(scalar.shape == [] && one.shape == [])
        expectBitwiseEqual(scalar, one)
        expectClose(scalar, -x.logSoftmax(axis: 0).select(axis: 0, index: 2), atol: 1e-6, rtol: 1e-6)
        #expect(crossEntropy(x, target: Tensor(Int64(-100))).doubleValue.isNaN, "the only sample ignored")
    }

    @Test func weightedMeanDividesByTheWeightsOfKeptTargets() {
        // Hand-computed: -(w0 lp[0, 0] + w2 lp[2, 2]) / (w0 + w2), sample 1 ignored.
        let lp = Tensor([-1, -2, -3, -4, -5, -6, -7, -8, -9] as [Double], shape: [3, 3])
        let w = Tensor([2, 10, 0.5] as [Double])
        let t = Tensor([0, -100, 2] as [Int])
        let expected = (2 * 1 + 0.5 * 9) / 2.5
        #expect(abs(nllLoss(lp, target: t, weight: w).doubleValue - expected) < 1e-15)
        #expect(nllLoss(lp, target: t, weight: w, reduction: .sum).doubleValue == 2 * 1 + 0.5 * 9)
    }
}
