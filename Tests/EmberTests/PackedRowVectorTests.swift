@testable import EmberNN
import Ember
import Testing
import _EmberTestSupport

// The packed single-row product (`GEMM+PackedRowVector.swift`) and the packed-weight cache of
// `Linear` in eval mode: bitwise the unpacked product, and never stale.

@Suite struct PackedRowVectorTests {
    /// The packed product equals the unpacked row-vector product (itself tested bitwise against
    /// the blocked driver in FastPathTests), from a weight with unit or strided columns.
    @Test(arguments: [(1, 1), (7, 9), (10, 256), (31, 5), (32, 257), (33, 513), (64, 511), (130, 512), (512, 784), (10, 1100)])
    func packedProductEqualsTheUnpackedOne(_ size: (n: Int, k: Int)) throws {
        try #require(GEMM.packsRowVectorWeights, "needs the AVX2 kernel path")
        let (n, k) = size
        let g = Generator(seed: UInt64(31 * n + k))
        let x = Tensor.uniform([k], low: -1, high: 1, generator: g)
        let w = Tensor.uniform([n, k], low: -1, high: 1, generator: g)
        let y0 = Tensor.uniform([n], low: -1, high: 1, generator: g).floats
        // The same weight as a transposed view of a [k, n] tensor (column stride n).
        let wT = w.transposed(0, 1).contiguous().transposed(0, 1)
        #expect(wT.strides[1] == n || k == 1)
        for beta: Float in [0, 1] {
            for threads in [1, 2] {
                var expected = y0
                x.floats.withUnsafeBufferPointer { px in
                    w.floats.withUnsafeBufferPointer { pw in
                        Threading.withThreads(threads) {
                            GEMM.sgemm(m: 1, n: n, k: k, alpha: 1, a: px.baseAddress!, rowStrideA: k, colStrideA: 1,
                                       b: pw.baseAddress!, rowStrideB: 1, colStrideB: k, beta: beta, c: &expected, ldc: n)
                        }
                    }
                }
                for source in [w, wT] {
                    let packed = RowVectorPackedWeight(storage: source.storage, offset: source.offset, n: n, k: k,
                                                       rowStride: source.strides[0], colStride: source.strides[1])
                    var y = y0
                    x.floats.withUnsafeBufferPointer { px in
                        Threading.withThreads(threads) {
                            GEMM.rowVectorProduct(packed: packed, x: px.baseAddress!, beta: beta, y: &y)
                        }
                    }
                    #expect(y.map(\.bitPattern) == expected.map(\.bitPattern),
                            "n=\(n) k=\(k) beta=\(beta) threads=\(threads) column stride \(source.strides[1])")
                }
            }
        }
    }

    /// In eval mode a batch-1 `Linear` (packed path) gives bitwise its row of a batch (blocked
    /// path), before and after every way the weight can change.
    @Test func evalBatchOneLinearFollowsEveryWeightChange() throws {
        let g = Generator(seed: 11)
        let layer = withGenerator(g) { Linear(300, 70) }
        layer.eval()
        let x = Tensor.uniform([3, 300], generator: g)
        func check(_ when: String) -> Tensor {
            let batch = withNoGrad { layer(x) }
            for i in 0..<3 {
                let alone = withNoGrad { layer(x.narrow(axis: 0, start: i, length: 1)) }
                expectBitwiseEqual(alone, batch.narrow(axis: 0, start: i, length: 1), "\(when): row \(i)")
            }
            return withNoGrad { layer(x.narrow(axis: 0, start: 0, length: 1)) }
        }
        var last = check("first call")
        func expectChanged(_ when: String) {
            let now = check(when)
            #expect(now.floats != last.floats, "\(when): the output follows the new weight")
            last = now
        }
        // An optimizer step in eval mode (the gradient comes from an eval-mode forward).
        let sgd = SGD(layer.parameters(), lr: 0.1, momentum: 0.9)
        layer(x).sum().backward()
        sgd.step()
        expectChanged("after an SGD step")
        // A second step (the momentum path writes the weight in place again).
        sgd.step()
        expectChanged("after a second SGD step")
        // Loading a state dict.
        let other = withGenerator(Generator(seed: 12)) { Linear(300, 70) }
        try layer.loadStateDict(other.stateDict())
        expectChanged("after loadStateDict")
        // Assigning a new value, and a transposed view of one.
        layer.weight.value = Tensor.uniform([70, 300], generator: g)
        expectChanged("after assigning a weight")
        layer.weight.value = Tensor.uniform([300, 70], generator: g).transposed(0, 1)
        expectChanged("after assigning a transposed view")
        // Training and back: a training-mode forward drops the packing.
        layer.train()
        _ = layer(x.narrow(axis: 0, start: 0, length: 1))
        layer.eval()
        _ = check("after a training pass")
    }
}
