import Ember
@testable import EmberFunctional
import EmberStorage
import Testing
import _EmberTestSupport

/// A float32 stride-1 convolution's backward computes both gradients sample by sample
/// (`ConvolutionKernel.paddedGradients`: each sample's output gradient packed for the weight
/// gradient right after the input gradient read it). The promise: the same bits as asking for each
/// gradient alone (the separate passes), on one thread and two, with groups, dilation, uneven
/// padding and bias sums; and where the input gradient's forward would stack samples (small
/// planes) it declines and the separate passes run.
@Suite("Convolution backward, both gradients per sample")
struct ConvolutionBackwardPerSampleTests {
    struct Case {
        let name: String, batch: Int, cin: Int, cout: Int, groups: Int
        let input: [Int], kernel: [Int], padBefore: [Int], padAfter: [Int], dilation: [Int]
    }

    static let cases = [
        Case(name: "ResNet-like 3 x 3, padding 1", batch: 5, cin: 8, cout: 8, groups: 1, input: [1, 12, 12], kernel: [1, 3, 3],
             padBefore: [0, 1, 1], padAfter: [0, 1, 1], dilation: [1, 1, 1]),
        Case(name: "groups 2, 5 x 3, uneven padding", batch: 3, cin: 4, cout: 6, groups: 2, input: [1, 17, 20], kernel: [1, 5, 3],
             padBefore: [0, 2, 1], padAfter: [0, 1, 0], dilation: [1, 1, 1]),
        Case(name: "dilation 2, 16 x 16", batch: 4, cin: 3, cout: 16, groups: 1, input: [1, 16, 16], kernel: [1, 3, 3],
             padBefore: [0, 2, 2], padAfter: [0, 2, 2], dilation: [1, 2, 2]),
        Case(name: "3-D, 3 x 3 x 3, padding 1", batch: 2, cin: 2, cout: 4, groups: 1, input: [5, 6, 7], kernel: [3, 3, 3],
             padBefore: [1, 1, 1], padAfter: [1, 1, 1], dilation: [1, 1, 1]),
        Case(name: "small planes (stacked samples: declines)", batch: 6, cin: 4, cout: 4, groups: 1, input: [1, 5, 5],
             kernel: [1, 3, 3], padBefore: [0, 1, 1], padAfter: [0, 1, 1], dilation: [1, 1, 1]),
    ]

    @Test("the same bits as each gradient alone", arguments: [1, 2])
    func sameAsSeparate(threads: Int) {
        for c in Self.cases {
            let g = WindowGeometry.convolution(input: c.input, kernel: c.kernel, stride: [1, 1, 1], padBefore: c.padBefore,
                                               padAfter: c.padAfter, dilation: c.dilation, describe: { "test" })
            let sizes = ConvolutionKernel.Sizes(batch: c.batch, inChannels: c.cin, outChannels: c.cout, groups: c.groups)
            let x = Tensor.normal([c.batch * c.cin * g.inputPlane], generator: Generator(seed: 1)).floats
            let w = Tensor.normal([c.cout * c.cin / c.groups * g.kernelVolume], generator: Generator(seed: 2)).floats
            let gy = Tensor.normal([c.batch * c.cout * g.outputPlane], generator: Generator(seed: 3)).floats
            var dx = [Float](repeating: .nan, count: x.count), dw = [Float](repeating: .nan, count: w.count)
            var dxAlone = dx, dwAlone = dw
            var sums = [Double](repeating: .nan, count: c.batch * c.cout), sumsAlone = sums
            Threading.withThreads(threads) {
                x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in gy.withUnsafeBufferPointer { gp in
                    let (xb, wb, gb) = (xp.baseAddress!, wp.baseAddress!, gp.baseAddress!)
                    dx.withUnsafeMutableBufferPointer { d in dw.withUnsafeMutableBufferPointer { e in sums.withUnsafeMutableBufferPointer { s in
                        let summed = ConvolutionKernel.backward(x: xb, w: wb, gy: gb, dx: d.baseAddress!, dw: e.baseAddress!, sizes, g,
                                                                planeSums: s.baseAddress!)
                        #expect(summed, "\(c.name): the plane sums are written")
                    } } }
                    dxAlone.withUnsafeMutableBufferPointer { d in
                        ConvolutionKernel.backward(x: xb, w: wb, gy: gb, dx: d.baseAddress!, dw: nil, sizes, g)
                    }
                    dwAlone.withUnsafeMutableBufferPointer { e in sumsAlone.withUnsafeMutableBufferPointer { s in
                        ConvolutionKernel.backward(x: xb, w: wb, gy: gb, dx: nil, dw: e.baseAddress!, sizes, g, planeSums: s.baseAddress!)
                    } }
                } } }
            }
            #expect(zip(dx, dxAlone).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(c.name), \(threads) threads: input gradient")
            #expect(zip(dw, dwAlone).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(c.name), \(threads) threads: weight gradient")
            #expect(zip(sums, sumsAlone).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(c.name), \(threads) threads: plane sums")
            #expect(!dx.contains { $0.isNaN } && !dw.contains { $0.isNaN }, "\(c.name): every element written")
        }
    }

    @Test("declines where the input gradient would stack samples, runs where it would not")
    func declinesForStackedSamples() {
        func runs(_ input: [Int], batch: Int) -> Bool {
            let g = WindowGeometry.convolution(input: input, kernel: [1, 3, 3], stride: [1, 1, 1], padBefore: [0, 1, 1],
                                               padAfter: [0, 1, 1], dilation: [1, 1, 1], describe: { "test" })
            let sizes = ConvolutionKernel.Sizes(batch: batch, inChannels: 4, outChannels: 4, groups: 1)
            var x = [Float](repeating: 1, count: batch * 4 * g.inputPlane), w = [Float](repeating: 1, count: 16 * 9)
            var gy = [Float](repeating: 1, count: batch * 4 * g.outputPlane)
            return x.withUnsafeMutableBufferPointer { xp in w.withUnsafeMutableBufferPointer { wp in gy.withUnsafeMutableBufferPointer { gp in
                var dx = [Float](repeating: 0, count: xp.count), dw = [Float](repeating: 0, count: wp.count)
                return dx.withUnsafeMutableBufferPointer { d in dw.withUnsafeMutableBufferPointer { e in
                    ConvolutionKernel.paddedGradients(x: xp.baseAddress!, w: wp.baseAddress!, gy: gp.baseAddress!, dx: d.baseAddress!,
                                                      dw: e.baseAddress!, sizes, g, planeSums: nil)
                } }
            } } }
        }
        #expect(!runs([1, 5, 5], batch: 6), "5 x 5 planes stack")
        #expect(runs([1, 16, 16], batch: 6), "16 x 16 planes do not")
    }
}
