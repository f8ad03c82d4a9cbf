import Ember
import Testing

// A row-major A larger than one `mc x kc` block is read in place instead of packed when C is
// narrow (on the float32 AVX-512 kernels): the choice, and that it gives bitwise what packing the
// same A gives, with and without the epilogue, across panels in depth, edge tiles and threads.

@Suite("GEMM reads a row-major A in place")
struct GEMMInPlaceTests {
    /// Several A blocks (m > mc) and panels (k > kc) on every path; 150 columns is narrow enough to
    /// read A in place wherever a path does.
    static let g = GEMMCase(m: 203, n: 150, k: 600, beta: 0.5, ldcPadding: 3)

    /// The same operands with A stored column-major: the driver must pack it.
    static func columnMajorA(_ operands: GEMMOperands, _ g: GEMMCase) -> (GEMMCase, GEMMOperands) {
        var t = g
        t.transposeA = true
        var packed = GEMMOperands(t)
        for i in 0..<g.m { for p in 0..<g.k { packed.a[p * g.m + i] = operands.a[i * g.k + p] } }
        packed.b = operands.b
        packed.c = operands.c
        return (t, packed)
    }

    @Test("which products read A in place")
    func choice() {
        // One block of A: always in place, on every path.
        for path in GEMMKernelPath.supported {
            #expect(!GEMM.packsA(m: 14, n: 4096, k: 64, colStrideA: 1, path: path))
            #expect(!GEMM.packsA(m: 14, n: 4096, k: 64, colStrideA: 14, path: path))
            // A transposed view spanning several blocks is packed.
            #expect(GEMM.packsA(m: 2048, n: 256, k: 1024, colStrideA: 2048, path: path))
            // Double precision always packs a large A.
            #expect(GEMM.packsA(m: 2048, n: 256, k: 1024, colStrideA: 1, path: path, double: true))
        }
        if GEMMKernelPath.supported.contains(.avx512) {
            // Narrow C (the Transformer's output projection and second feed-forward product).
            #expect(!GEMM.packsA(m: 2048, n: 256, k: 1024, colStrideA: 1, path: .avx512))
            #expect(!GEMM.packsA(m: 2048, n: 768, k: 256, colStrideA: 1, path: .avx512))
            // Wide C: packing pays for itself.
            #expect(GEMM.packsA(m: 2048, n: 1024, k: 256, colStrideA: 1, path: .avx512))
        }
        if GEMMKernelPath.supported.contains(.avx2) {
            #expect(GEMM.packsA(m: 2048, n: 256, k: 1024, colStrideA: 1, path: .avx2))
        }
    }

    @Test("two threads split rows when both halves would stream a large in-place A")
    func threadSplit() {
        guard GEMMKernelPath.supported.contains(.avx512) else { return }
        // The MLP's first layer at batch 1024: A (1024 x 784) read in place. Split by columns, each
        // thread would read all of it; split by rows, half each.
        #expect(GEMM.threadSplit(m: 1024, n: 512, k: 784, colStrideA: 1, threads: 2, path: .avx512) == (2, 1))
        // The same product with A transposed (packed): packing B twice costs less than packing all
        // of A twice, so still rows; a wide C with a small A splits columns.
        #expect(GEMM.threadSplit(m: 1024, n: 512, k: 784, colStrideA: 1024, threads: 2, path: .avx512) == (2, 1))
        #expect(GEMM.threadSplit(m: 140, n: 333, k: 97, colStrideA: 1, threads: 2, path: .avx512) == (1, 2))
    }

    @Test("in place equals packed, bitwise, with and without the epilogue, on 1 and 2 threads",
          arguments: GEMMKernelPath.supported)
    func inPlaceEqualsPacked(path: GEMMKernelPath) {
        let g = Self.g
        let operands = GEMMOperands(g, seed: 5)
        let (t, packed) = Self.columnMajorA(operands, g)
        let bias = gemmTestValues(g.n, seed: 9).map { Float($0) }
        for threads in [1, 2] {
            Threading.withThreads(threads) {
                expectSameBits(operands.sgemm(g, path: path), packed.sgemm(t, path: path), "\(path) sgemm, \(threads) threads")
                expectSameBits(operands.dgemm(g, path: path), packed.dgemm(t, path: path), "\(path) dgemm, \(threads) threads")
                bias.withUnsafeBufferPointer { b in
                    let epilogue = GEMMEpilogue(bias: b.baseAddress, scale: nil, shift: nil, relu: true)
                    expectSameBits(operands.sgemm(g, path: path, epilogue: epilogue),
                                   packed.sgemm(t, path: path, epilogue: epilogue), "\(path) sgemm + bias + ReLU, \(threads) threads")
                }
            }
        }
    }
}
