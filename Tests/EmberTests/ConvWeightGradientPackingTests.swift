import Ember
@testable import EmberFunctional
import EmberStorage
import Testing
import _EmberTestSupport

/// The stride-1 weight gradient packs its right operand (the output gradient at the padded
/// columns, zero at the dropped ones) straight from the gradient's planes
/// (`PaddedColumns.packSpread`). The promise: every panel is exactly the one `GEMM.packFloatB` makes
/// from that operand laid out in full, for 2-D and 3-D geometries, strips wider and narrower than
/// the planes, and panels that start and end inside a padded row.
@Suite("Convolution weight gradient: packing the output gradient")
struct ConvWeightGradientPackingTests {
    /// The operand in full: `[planes, columns]`, plane `j`'s gradient at its padded columns.
    static func spread(_ padded: PaddedColumns, _ src: [Float], planes: Int) -> [Float] {
        let g = padded.g, (oD, oH, oW) = (g.output[0], g.output[1], g.output[2])
        var out = [Float](repeating: 0, count: planes * padded.columns)
        for j in 0..<planes {
            for od in 0..<oD {
                for oh in 0..<oH {
                    for ow in 0..<oW {
                        out[j * padded.columns + (od * padded.hp + oh) * padded.wp + ow] = src[((j * oD + od) * oH + oh) * oW + ow]
                    }
                }
            }
        }
        return out
    }

    static let geometries: [(name: String, input: [Int], kernel: [Int], pad: [Int])] = [
        ("3 x 3, padding 1, 9 x 7", [1, 9, 7], [1, 3, 3], [0, 1, 1]),
        ("5 x 5 unpadded, 13 x 11", [1, 13, 11], [1, 5, 5], [0, 0, 0]),
        ("3-D, 3 x 3 x 3, padding 1", [4, 5, 6], [3, 3, 3], [1, 1, 1]),
    ]

    @Test("each panel is GEMM.packFloatB's panel of the operand laid out in full")
    func panelsMatch() {
        for geo in Self.geometries {
            let g = WindowGeometry.convolution(input: geo.input, kernel: geo.kernel, stride: [1, 1, 1], padBefore: geo.pad,
                                               padAfter: geo.pad, dilation: [1, 1, 1], describe: { "test" })
            let padded = PaddedColumns(g, channels: 2)
            for planes in [3, 8, 21] {
                let src = Tensor.normal([planes * g.outputPlane], generator: Generator(seed: UInt64(planes))).floats
                let full = Self.spread(padded, src, planes: planes)
                for (kc, nr) in [(7, 8), (40, 16), (padded.columns, 32)] {
                    for jc in stride(from: 0, to: planes, by: 16) {
                        let nc = min(16, planes - jc), strips = (nc + nr - 1) / nr
                        for pc in stride(from: 0, to: padded.columns, by: kc) {
                            let depth = min(kc, padded.columns - pc)
                            var packed = [Float](repeating: .nan, count: strips * nr * depth), expected = packed
                            src.withUnsafeBufferPointer { s in
                                packed.withUnsafeMutableBufferPointer { p in
                                    padded.packSpread(s.baseAddress!, pc: pc, kc: depth, jc: jc, nc: nc, into: p.baseAddress!, nr: nr)
                                }
                            }
                            full.withUnsafeBufferPointer { f in
                                expected.withUnsafeMutableBufferPointer { e in
                                    GEMM.packFloatB(k: depth, n: nc, f.baseAddress! + pc + jc * padded.columns, rowStride: 1,
                                               colStride: padded.columns, into: e.baseAddress!, nr: nr)
                                }
                            }
                            #expect(packed.map(\.bitPattern) == expected.map(\.bitPattern),
                                    "\(geo.name), \(planes) planes, kc \(kc), nr \(nr), columns \(jc)..., depth \(pc)...")
                        }
                    }
                }
            }
        }
    }
}
