import Ember
import Testing
import _EmberTestSupport

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
                expectSameBits(actual, expected, "\(what): output")
                expectSameBits(m1, m0, "\(what): mean")
                expectSameBits(v1, v0, "\(what): invstd")
            }
        }
    }

    @Test("with a second input the kernel normalises the float32 sum, bitwise", arguments: GEMMKernelPath.supported)
    func normalisesTheSum(path: GEMMKernelPath) {
        for size in [7, 256, 263] {
            let rows = 4
            let a = gemmTestValues(rows * size, seed: 31).map { Float($0) }, b = gemmTestValues(rows * size, seed: 32).map { Float($0 * 2) }
            let sum = zip(a, b).map { $0 + $1 }
            let gamma = gemmTestValues(size, seed: 33).map { Float($0) }
            var expected = [Float](repeating: 0, count: rows * size), actual = expected
            let (m0, v0) = sum.withUnsafeBufferPointer { s in
                gamma.withUnsafeBufferPointer { g in
                    expected.withUnsafeMutableBufferPointer { y in
                        GroupedNormKernel.forwardRows(s.baseAddress!, y.baseAddress!, rows: rows, size: size, eps: 1e-5,
                                                      affineIndex: nil, gamma: g.baseAddress, beta: nil)
                    }
                }
            }
            let (m1, v1) = a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    gamma.withUnsafeBufferPointer { g in
                        actual.withUnsafeMutableBufferPointer { y in
                            GroupedNormKernel.layerNorm(path: path, ap.baseAddress!, adding: bp.baseAddress, y.baseAddress!, rows: rows,
                                                        size: size, eps: 1e-5, gamma: g.baseAddress, beta: nil)
                        }
                    }
                }
            }
            expectSameBits(actual, expected, "size \(size): output")
            expectSameBits(m1, m0, "size \(size): mean")
            expectSameBits(v1, v0, "size \(size): invstd")
        }
    }

    @Test("LayerNorm.forwardOfSum is bitwise self(a + b) without gradients, and records with them")
    func moduleForwardOfSum() {
        let g = Generator(seed: 12)
        let norm = withGenerator(g) { LayerNorm(40) }
        norm.weight!.value = Tensor.normal([40], generator: g)
        norm.bias!.value = Tensor.normal([40], generator: g)
        let a = Tensor.normal([3, 5, 40], generator: g), b = Tensor.normal([3, 5, 40], generator: g)
        expectBitwiseEqual(withNoGrad { norm.forwardOfSum(a, b) }, withNoGrad { norm(a + b) }, "fused")
        // With gradients the sum is built and recorded: the same values, and a gradient reaches a.
        let leaf = a.requiringGrad()
        let y = norm.forwardOfSum(leaf, b)
        expectBitwiseEqual(y, norm(a + b), "recorded")
        y.sum().backward()
        #expect(leaf.grad != nil)
        // A transposed (non-contiguous) operand takes the two-step path: still the same values.
        let t = Tensor.normal([5, 3, 40], generator: g).transposed(0, 1)
        expectBitwiseEqual(withNoGrad { norm.forwardOfSum(t, b) }, withNoGrad { norm(t + b) }, "strided")
    }
}
