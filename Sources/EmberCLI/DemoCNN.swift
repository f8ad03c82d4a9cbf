import Ember
import Foundation

/// Section 9 of `ember demo`: the convolutional layers' modes, channel by channel.
func runConvolutionDemo() {
    let conv = Conv2d(1, 4, 3, padding: 1), bn = BatchNorm2d(4), drop = Dropout2d(0.5)
    let model = Sequential(conv, bn, ReLU(), drop)
    let x = Tensor.normal([8, 1, 6, 6])
    func channelValues(_ t: Tensor, sample: Int, channel: Int) -> [Double] {
        let v = t.doubles, plane = t.shape[2] * t.shape[3], base = (sample * t.shape[1] + channel) * plane
        return Array(v[base..<(base + plane)])
    }
    say9()
    say9("9. Convolutional networks: BatchNorm2d and Dropout2d work per channel, differently in each mode.")
    say9("   model: Conv2d(1, 4, 3, padding: 1) -> BatchNorm2d(4) -> ReLU -> Dropout2d(0.5), input [8, 1, 6, 6]")
    let features = withNoGrad { conv(x) }
    let f0 = (0..<8).flatMap { channelValues(features, sample: $0, channel: 0) }
    let mean = f0.reduce(0, +) / Double(f0.count)
    let variance = f0.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(f0.count - 1)
    model.train()
    let trained = withNoGrad { model(x) }
    say9(String(format: "   Training mode, BatchNorm2d: channel 0 is normalised with the batch's statistics over N x H x W = %d values", f0.count))
    say9(String(format: "   (mean %.4f, unbiased variance %.4f); its running mean moves 10%% of the way: %.4f,", mean, variance,
                bn.runningMean!.value.doubles[0]))
    say9(String(format: "   its running variance from 1 to %.4f.", bn.runningVar!.value.doubles[0]))
    let kept = (0..<4).map { c in channelValues(trained, sample: 0, channel: c).contains { $0 != 0 } }
    say9("   Training mode, Dropout2d: whole channels of a sample are zeroed, the others scaled by 2. Sample 0's channels:")
    say9("   " + (0..<4).map { "channel \($0): \(kept[$0] ? "kept" : "all 36 zero")" }.joined(separator: ", "))
    model.eval()
    let evaluated = withNoGrad { model(x) }, again = withNoGrad { model(x) }
    let alone = withNoGrad { model(x[0..<1]) }
    let same = zip(alone.doubles, evaluated[0..<1].doubles).allSatisfy { $0.bitPattern == $1.bitPattern }
    let repeatable = zip(again.doubles, evaluated.doubles).allSatisfy { $0.bitPattern == $1.bitPattern }
    let zeroChannels = (0..<8).flatMap { n in (0..<4).map { c in channelValues(evaluated, sample: n, channel: c).allSatisfy { $0 == 0 } } }
        .filter { $0 }.count
    say9("   Eval mode: BatchNorm2d uses its running statistics, so a sample's output does not depend on its batch:")
    say9("   sample 0 alone equals sample 0 in the batch of 8 bitwise: \(same ? "yes" : "NO"); repeated eval bitwise equal: \(repeatable ? "yes" : "NO");")
    say9("   Dropout2d drops nothing (all-zero channels after ReLU: \(zeroChannels) of 32, from ReLU alone).")
}

private func say9(_ text: String = "") { print(text) }
