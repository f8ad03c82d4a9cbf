import Ember
import Testing

// The C layer-normalization kernel (`ember_layer_norm_f32`, float32 rows, float64 statistics)
// against the Swift loop it replaces (`GroupedNormKernel.forwardRows`), bitwise, on every vector
// path this CPU runs: row lengths below, at and off multiples of eight, each affine combination.

@Suite("Layer norm kernel")
struct LayerNormKernelTests {
    @Test("the C kernel is bitwise the Swift loop", arguments: GEMMKernelPath.supported)
    func matchesSwift(path: GEMMKernelPath) {
        for size in [1, 7, 8, 9, 256, 263] {
            let rows = 5
            let x = gemmTestValues(rows * size, seed: UInt64(size)).map { Float($0 * 3 + 0.5) }
            let gamma = gemmTestValues(size, seed: 77).map { Float($0) }, beta = gemmTestValues(size, seed: 78).map { Float($0) }
            for (useGamma, useBeta) in [(true, true), (true, false), (false, true), (false, false)] {
                var expected = [Float](repeating: 0, count: rows * size), actual = expected
                let (m0, v0) = x.withUnsafeBufferPointer { xp in
                    gamma.withUnsafeBufferPointer { g in
                        beta.withUnsafeBufferPointer { b in
                            expected.withUnsafeMutableBufferPointer { y in
                                GroupedNormKernel.forwardRows(xp.baseAddress!, y.baseAddress!, rows: rows, size: size, eps: 1e-5,
                                                              affineIndex: nil, gamma: useGamma ? g.baseAddress : nil,
                                                              beta: useBeta ? b.baseAddress : nil)
                            }
                        }
                    }
                }
                let (m1, v1) = x.withUnsafeBufferPointer { xp in
                    gamma.withUnsafeBufferPointer { g in
                        beta.withUnsafeBufferPointer { b in
                            actual.withUnsafeMutableBufferPointer { y in
                                GroupedNormKernel.layerNorm(path: path, xp.baseAddress!, y.baseAddress!, rows: rows, size: size,
                                                            eps: 1e-5, gamma: useGamma ? g.baseAddress : nil,
                                                            beta: useBeta ? b.baseAddress : nil)
                            }
                        }
                    }
                }
                let what = "size \(size) gamma \(useGamma) beta \(useBeta)"
                #expect(actual.map(\.bitPattern) == expected.map(\.bitPattern), "\(what): output")
                #expect(m1.map(\.bitPattern) == m0.map(\.bitPattern), "\(what): mean")
                #expect(v1.map(\.bitPattern) == v0.map(\.bitPattern), "\(what): invstd")
            }
        }
    }
}
