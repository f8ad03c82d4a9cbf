import Ember
import Foundation
import Testing
import _EmberTestSupport

/// The fused `[N, C]` cross-entropy kernel against the general path (logSoftmax + NLL kernel):
/// same values and gradients for every option, across thread splits, layouts and empty batches.
@Suite struct LossFusedCrossEntropyTests {
    func logits(_ n: Int, _ c: Int, dtype: DType = .float32, seed: Double = 0) -> Tensor {
        let v: [Double] = (0..<(n * c)).map { (i: Int) -> Double in
            let a: Double = 4 * sin(seed + 0.37 * Double(i))
            return a + cos(1.3 * Double(i % 7))
        }
        return Tensor(v, shape: [n, c]).to(dtype)
    }

    func targets(_ n: Int, _ c: Int, ignoreEvery: Int = 0) -> Tensor {
        let v: [Int] = (0..<n).map { (i: Int) -> Int in ignoreEvery > 0 && i % ignoreEvery == 3 ? -100 : (i * 7 + 3) % c }
        return Tensor(v, shape: [n])
    }

    /// Loss and input gradient (upstream `up` for `.none`) through the chosen path.
    func run(_ x: Tensor, _ t: Tensor, _ reduction: Reduction, _ ls: Double, path: CrossEntropyPath, up: Tensor? = nil)
        -> (loss: Tensor, grad: Tensor)
    {
        let xi = x.detached().requiringGrad()
        let loss = crossEntropy(xi, t, nil, -100, reduction, ls, op: "crossEntropy", path: path)
        if reduction == .none { (loss * (up ?? loss.onesLike())).sum().backward() } else { loss.backward() }
        return (loss, xi.grad!)
    }

    static let options: [(Reduction, Double)] = [(.none, 0), (.mean, 0), (.sum, 0), (.none, 0.15), (.mean, 0.15), (.sum, 0.15)]

    @Test(arguments: [DType.float32, .float64])
    func fusedMatchesGeneralPath(_ dtype: DType) throws {
        let x = logits(37, 11, dtype: dtype), t = targets(37, 11, ignoreEvery: 5)
        let up = logits(37, 1, dtype: dtype, seed: 2).reshaped([37])
        let tol = dtype == .float32 ? 2e-6 : 1e-13
        for (reduction, ls) in Self.options {
            let fused = run(x, t, reduction, ls, path: .automatic, up: up)
            let general = run(x, t, reduction, ls, path: .general, up: up)
            expectClose(fused.loss, general.loss, atol: tol, rtol: tol, "\(dtype) \(reduction) ls \(ls) loss")
            expectClose(fused.grad, general.grad, atol: tol, rtol: tol, "\(dtype) \(reduction) ls \(ls) gradient")
            if ls == 0 && reduction == .none {
                // the same formulas: per-sample losses agree to within 2 ulp
                expectClose(fused.loss, general.loss, atol: 0, rtol: dtype == .float32 ? 2.4e-7 : 4.5e-16,
                            "\(dtype) per-sample losses")
            }
        }
    }

    @Test func fusedPathIsOneNodeAndGeneralPathTwo() throws {
        let x = logits(4, 3).requiringGrad(), t = targets(4, 3)
        let fused = crossEntropy(x, target: t)
        let fusedInput = try #require(fused.autograd?.inputs.first ?? nil)
        #expect(fusedInput === x.autograd, "the fused op reads the logits directly")
        let weighted = crossEntropy(x, target: t, weight: Tensor([1, 1, 1] as [Float]))
        #expect(weighted.autograd?.inputs.first??.opName == "logSoftmax", "weights take the general path")
        #expect(fused.gradFnName == "crossEntropy" && weighted.gradFnName == "crossEntropy")
    }

    /// Large enough to split rows across threads: the result must not depend on the split.
    @Test func threadSplitDoesNotChangeResults() {
        // 2053 rows of 33: at least two chunks of ~1000 rows
        let x = logits(2053, 33), t = targets(2053, 33, ignoreEvery: 9)
        for (reduction, ls) in Self.options {
            let many = run(x, t, reduction, ls, path: .automatic)
            let one = Threading.withThreads(1) { run(x, t, reduction, ls, path: .automatic) }
            expectBitwiseEqual(many.loss, one.loss, "\(reduction) ls \(ls) loss")
            expectBitwiseEqual(many.grad, one.grad, "\(reduction) ls \(ls) gradient")
            guard reduction == .mean else { continue }
            let general = run(x, t, reduction, ls, path: .general)
            expectClose(many.loss, general.loss, atol: 1e-5, rtol: 1e-5, "\(reduction) ls \(ls) vs general")
            expectClose(many.grad, general.grad, atol: 1e-7, rtol: 1e-5, "\(reduction) ls \(ls) gradient vs general")
        }
    }

    @Test func nonContiguousLogits() {
        let x = logits(6, 5), t = targets(6, 5)
        let transposedStorage = x.t.contiguous().t  // same values, column-major layout
        #expect(!transposedStorage.isContiguous)
        for (reduction, ls) in Self.options {
            let a = run(x, t, reduction, ls, path: .automatic)
            let b = run(transposedStorage, t, reduction, ls, path: .automatic)
            expectBitwiseEqual(a.loss, b.loss)
            expectBitwiseEqual(a.grad, b.grad)
        }
        // an expanded (stride-0) batch: every row the same
        let row = logits(1, 5).expanded(to: [4, 5])
        let losses = crossEntropy(row, target: Tensor([2, 2, 2, 2] as [Int]), reduction: .none)
        #expect(Set(losses.doubles).count == 1)
    }

    @Test func emptyBatch() {
        let x = Tensor.zeros([0, 5]).requiringGrad(), t = Tensor([Int]())
        #expect(crossEntropy(x, target: t).doubleValue.isNaN, "PyTorch: an empty mean is NaN")
        #expect(crossEntropy(x, target: t, reduction: .sum).doubleValue == 0)
        #expect(crossEntropy(x, target: t, reduction: .none).shape == [0])
        crossEntropy(x, target: t, reduction: .sum).backward()
        #expect(x.grad?.shape == [0, 5])
    }

    @Test func nanAndInfinityPropagate() {
        let x = Tensor([Float.nan, 1, 2, .infinity, 1, 0, 0, 1, -.infinity] as [Float], shape: [3, 3])
        let loss = crossEntropy(x, target: Tensor([1, 1, 2] as [Int]), reduction: .none).doubles
        #expect(loss[0].isNaN && loss[1].isNaN, "PyTorch: NaN in a row, or +inf, gives NaN")
        #expect(loss[2] == .infinity, "a -inf logit at the target gives +inf")
    }

    @Test func tinyNetworkTrainingStepMatchesGeneralPath() {
        // One SGD step of a linear classifier: the fused loss's gradient drives the same update.
        let w = Tensor((0..<12).map { (i: Int) -> Float in Float(sin(Double(i))) }, shape: [3, 4])
        let x = logits(8, 4, seed: 5), t = targets(8, 3)
        func step(_ path: CrossEntropyPath) -> Tensor {
            let wi = w.detached().requiringGrad()
            crossEntropy(x.matmul(wi.t), t, nil, -100, .mean, 0, op: "crossEntropy", path: path).backward()
            return wi.grad!
        }
        expectClose(step(.automatic), step(.general), atol: 1e-6, rtol: 1e-5)
    }
}
