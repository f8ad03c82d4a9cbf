import Ember
import Testing
import _EmberTestSupport

/// BatchNorm options the PyTorch fixture does not reach: tracking switched off after
/// construction, and BatchNorm3d.
@Suite struct BatchNormOptionGapTests {
    let x = Tensor(rows: [[1, 2, 3], [4, 5, 6], [7, 8, 10], [2, 0, 1]] as [[Float]])

    /// PyTorch: with `track_running_stats` set to False later, training uses batch statistics and
    /// updates nothing (not even the counter); eval still uses the existing running statistics.
    @Test func trackingSwitchedOffLaterFreezesStatisticsButEvalStillUsesThem() {
        let bn = BatchNorm1d(3)
        _ = bn(x)
        let mean = bn.runningMean!.value, variance = bn.runningVar!.value, count = bn.numBatchesTracked!.value
        bn.trackRunningStats = false
        let y = bn(x * 2.0)
        expectBitwiseEqual(bn.runningMean!.value, mean, "running_mean")
        expectBitwiseEqual(bn.runningVar!.value, variance, "running_var")
        expectBitwiseEqual(bn.numBatchesTracked!.value, count, "num_batches_tracked")
        expectBitwiseEqual(y, BatchNorm1d(3, trackRunningStats: false)(x * 2.0),
                           "training normalises with the batch's statistics")
        bn.eval()
        let m = mean.doubles, v = variance.doubles, xs = x.doubles
        var rows: [[Float]] = []
        for r in 0..<4 {
            var row: [Float] = []
            for c in 0..<3 {
                let centred: Double = xs[r * 3 + c] - m[c]
                row.append(Float(centred / (v[c] + 1e-5).squareRoot()))
            }
            rows.append(row)
        }
        let expected = Tensor(rows: rows)
        expectClose(bn(x), expected, atol: 1e-6, rtol: 1e-6, "eval normalises with the running statistics")
    }

    /// Per-channel statistics over all non-channel dimensions: BatchNorm3d on `[N, C, D, H, W]`
    /// equals BatchNorm2d on the same data viewed as `[N, C, D * H, W]`, in both modes.
    @Test func batchNorm3dMatchesBatchNorm2dOnFlattenedDepth() {
        let input = withGenerator(Generator(seed: 8)) { Tensor.normal([2, 3, 2, 2, 3]) }
        let bn3 = BatchNorm3d(3, momentum: 0.3), bn2 = BatchNorm2d(3, momentum: 0.3)
        expectBitwiseEqual(bn3(input).reshaped([2, 3, 4, 3]), bn2(input.reshaped([2, 3, 4, 3])), "training")
        expectBitwiseEqual(bn3.runningVar!.value, bn2.runningVar!.value)
        bn3.eval(); bn2.eval()
        expectBitwiseEqual(bn3(input).reshaped([2, 3, 4, 3]), bn2(input.reshaped([2, 3, 4, 3])), "eval")
        #expect(BatchNorm3d(3).extraDescription == "3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True")
    }
}
