import Foundation
import Testing
@testable import EmberWorkloads

// The work counts behind the `% roof` column, checked against the arithmetic BENCHMARKS.md writes
// out by hand.

@Test func mlpTrainingStepCountsForwardWeightAndInputGradients() {
    // Forward 128 (784*512 + 512*256 + 256*10) = 68,485,120 multiply-adds, the weight gradients
    // the same, the input gradients of layers 2 and 3 128 (512*256 + 256*10) = 17,104,896.
    let multiplyAdds = 2 * 68_485_120.0 + 17_104_896
    #expect(denseFlops(batch: 128, layers: mlpLayers, training: true) == 2 * multiplyAdds)
}

@Test func mlpEvalCountsForwardProductsOnly() {
    #expect(denseFlops(batch: 1024, layers: mlpLayers, training: false) == 2 * 1024 * 535_040)
}

@Test func seedNetworkCounts() {
    // 32 (10*20 + 20*2) = 7,680 multiply-adds forward; a step adds as much for the weight gradients
    // and 32*20*2 = 1,280 for the second layer's input gradient.
    #expect(denseFlops(batch: 32, layers: seedLayers, training: false) == 2 * 7_680)
    #expect(denseFlops(batch: 32, layers: seedLayers, training: true) == 2 * (2 * 7_680 + 1_280))
}

@Test func batchOneForwardBytesAreTheParametersAndActivations() {
    let parameters = 784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10  // 535,818
    let batchNorm = 4 * (512 + 256)
    let activations = 784 + 3 * 512 + 3 * 256 + 10
    #expect(mlpForwardBytes(batch: 1) == Double(4 * (parameters + batchNorm + activations)))
}

@Test func workloadsCarryTheirWork() {
    let workloads = Dictionary(uniqueKeysWithValues: allWorkloads(sizes: [1024]).map { ($0.key, $0) })
    #expect(workloads["mlp.eval_b1"]?.roofWork == .bytes(mlpForwardBytes(batch: 1)))
    #expect(workloads["mlp.train_step_b128"]?.roofWork == .flops(denseFlops(batch: 128, layers: mlpLayers, training: true)))
    #expect(workloads["sgemm.1024"]?.roofWork == .flops(2 * 1024 * 1024 * 1024))
    #expect(workloads["seed.forward_eval_grad"]?.roofWork == .flops(2 * 7_680))
    // Every timed workload has a roofline cell.
    #expect(workloads.values.allSatisfy { $0.roofWork != nil })
}

@Test func rooflineFractionDividesByTheMatchingReference() {
    let roofline = Roofline(sgemmFlopsPerSecond: 100e9, copyBytesPerSecond: 20e9)
    #expect(roofline.fraction(of: .flops(50e9), seconds: 1) == 0.5)
    #expect(roofline.fraction(of: .bytes(5e9), seconds: 0.5) == 0.5)
}

@Test func percentagesKeepTwoSignificantDigits() {
    #expect(formatPercent(0.934) == "93%")
    #expect(formatPercent(0.0412) == "4.1%")
    #expect(formatPercent(0.00173) == "0.17%")
    #expect(formatPercent(nil) == "–")
}
