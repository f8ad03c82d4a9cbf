import Ember
@testable import EmberFunctional
import Testing
import _EmberTestSupport

/// The 2x2 max pooling of `pool_x86.c`, AVX2 and (where the CPU has it) AVX-512, gives bitwise the
/// Swift loops' values and indices (forward with and without indices) and input gradients, on
/// every row width (the 16-, 8- and 4-wide groups, their overlapping or masked last group, the
/// one-at-a-time tail), odd input sizes (the row and column no window covers), NaN, ties, signed
/// zeros and infinities. The output buffers carry guard elements that must stay untouched.
@Suite(.enabled(if: PoolKernel.native2x2, "needs AVX2"))
struct PoolNativeKernelTests {
    static let special: [Float] = [.nan, .infinity, -.infinity, 0, -0, 1, -1, 0.5]

    /// Deterministic values: one in three from ``special`` (ties and NaN in many windows), the
    /// rest spread over `[-4, 4]`.
    static func values(_ count: Int, seed: UInt32) -> [Float] {
        var state = seed &* 2_654_435_761 &+ 1
        return (0..<count).map { _ in
            state = state &* 1_664_525 &+ 1_013_904_223
            if state >> 30 == 0 || state >> 30 == 1 && state & 1 == 0 { return special[Int(state >> 8) % special.count] }
            return (Float(state >> 8) / Float(1 << 24) - 0.5) * 8
        }
    }

    static let sizes: [(Int, Int)] = [(2, 2), (3, 5), (4, 7), (5, 9), (6, 14), (7, 15), (8, 16), (9, 17), (11, 11), (13, 27),
                                      (26, 26), (2, 40), (3, 33), (2, 63), (4, 64), (3, 67)]

    /// The kernel widths this CPU runs: AVX2, and AVX-512 where GEMM dispatches it.
    static let widths: [Bool] = PoolKernel.native2x2Wide ? [false, true] : [false]
    static let guardValue: Float = 12345

    static func windows(_ ih: Int, _ iw: Int, planes: Int) -> PoolWindows {
        PoolWindows.sliding(input: [ih, iw], kernel: [2, 2], stride: [2, 2], padding: [0, 0], dilation: [1, 1], ceilMode: false,
                            planes: planes, describe: { "test" })
    }

    static func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
    }

    @Test("forward: the values and indices of the Swift loop, with and without indices", arguments: widths)
    func forward(wide: Bool) {
        let planes = 3
        for (ih, iw) in Self.sizes {
            let w = Self.windows(ih, iw, planes: planes)
            #expect(PoolKernel.is2x2(w))
            let outCount = planes * w.outputPlane
            let x = Self.values(planes * ih * iw, seed: UInt32(ih * 100 + iw))
            var swiftY = [Float](repeating: 7, count: outCount)
            var swiftI = [Int64](repeating: -1, count: outCount)
            var nativeY = [Float](repeating: Self.guardValue, count: outCount + 16), valuesOnly = nativeY
            var nativeI = [Int64](repeating: -7, count: outCount + 16)
            x.withUnsafeBufferPointer { xp in
                PoolKernel.max2x2Float(xp.baseAddress!, &swiftY, &swiftI, planes: planes, w)
                PoolKernel.max2x2Native(xp.baseAddress!, &nativeY, &nativeI, planes: planes, w, wide: wide)
                PoolKernel.max2x2Native(xp.baseAddress!, &valuesOnly, nil, planes: planes, w, wide: wide)
            }
            #expect(Self.sameBits(Array(nativeY.prefix(outCount)), swiftY), "values, input \(ih)x\(iw)")
            #expect(Array(nativeI.prefix(outCount)) == swiftI, "indices, input \(ih)x\(iw)")
            #expect(Self.sameBits(Array(valuesOnly.prefix(outCount)), swiftY), "values without indices, input \(ih)x\(iw)")
            #expect(nativeY.suffix(16).allSatisfy { $0 == Self.guardValue } && nativeI.suffix(16).allSatisfy { $0 == -7 }
                    && valuesOnly.suffix(16).allSatisfy { $0 == Self.guardValue }, "nothing written past the output, \(ih)x\(iw)")
            #expect(swiftY.contains { $0.isNaN } || outCount < 4, "the inputs exercise NaN")
        }
    }

    @Test("backward: the Swift loop's gradient, every element written, -0 gradients made +0", arguments: widths)
    func backward(wide: Bool) {
        let planes = 2
        for (ih, iw) in Self.sizes {
            let w = Self.windows(ih, iw, planes: planes)
            let x = Self.values(planes * ih * iw, seed: UInt32(ih * 31 + iw))
            var y = [Float](repeating: 0, count: planes * w.outputPlane)
            var indices = [Int64](repeating: 0, count: y.count)
            x.withUnsafeBufferPointer { PoolKernel.max2x2Float($0.baseAddress!, &y, &indices, planes: planes, w) }
            let g = Self.values(y.count, seed: UInt32(ih * 7 + iw)).map { $0 == 0.5 ? -0.0 : $0 }
            // NaN fill: an element the native kernel did not write would stay NaN; guards after.
            var swiftDx = [Float](repeating: .nan, count: x.count)
            var nativeDx = [Float](repeating: .nan, count: x.count) + [Float](repeating: Self.guardValue, count: 32)
            g.withUnsafeBufferPointer { gp in
                indices.withUnsafeBufferPointer { ip in
                    PoolKernel.scatterTiledLoop(gp.baseAddress!, ip.baseAddress!, &swiftDx, planes: planes, w, kernelHeight: 2)
                    PoolKernel.scatter2x2Native(gp.baseAddress!, ip.baseAddress!, &nativeDx, planes: planes, w, wide: wide)
                }
            }
            #expect(Self.sameBits(Array(nativeDx.prefix(x.count)), swiftDx), "input \(ih)x\(iw)")
            #expect(!nativeDx.contains { $0.bitPattern == (-0.0 as Float).bitPattern }, "no -0 in dx")
            #expect(nativeDx.suffix(32).allSatisfy { $0 == Self.guardValue }, "nothing written past dx, \(ih)x\(iw)")
        }
    }
}
