import CEmberKernels
import EmberStorage
import Testing

/// `GEMM.packB`'s layout (strip `s` holds element `(p, j)` at `s * k * nr + p * nr + (j - s * nr)`,
/// zero padded) for a row-major float32 B, whose full strips are packed row by row
/// (`ember_pack_b_strips_f32`, on every kernel path's width): each element where the layout puts
/// it, the padding zero, nothing written past the last strip; with rows farther apart than they
/// are wide and blocks narrower than one strip.
@Suite("GEMM: packing a row-major B")
struct GEMMPackBTests {
    @Test("every element in its strip, padding zero", arguments: [8, 16, 32])
    func layout(nr: Int) {
        for (k, n, rowStride) in [(1, nr, nr), (7, 3 * nr + 5, 3 * nr + 9), (33, nr - 3, 40), (5, 2 * nr, 2 * nr)] {
            let b = (0..<(k * rowStride)).map { Float($0) * 0.5 + 1 }
            let strips = (n + nr - 1) / nr
            var packed = [Float](repeating: .nan, count: strips * k * nr + 3)
            b.withUnsafeBufferPointer { src in
                packed.withUnsafeMutableBufferPointer { dst in
                    GEMM.packFloatB(k: k, n: n, src.baseAddress!, rowStride: rowStride, colStride: 1, into: dst.baseAddress!, nr: nr)
                }
            }
            var expected = [Float](repeating: 0, count: strips * k * nr)
            for s in 0..<strips {
                for p in 0..<k {
                    for j in (s * nr)..<min(n, (s + 1) * nr) { expected[s * k * nr + p * nr + j - s * nr] = b[p * rowStride + j] }
                }
            }
            #expect(Array(packed.prefix(expected.count)) == expected, "nr \(nr), k \(k), n \(n), row stride \(rowStride)")
            #expect(packed.suffix(3).allSatisfy { $0.isNaN }, "nr \(nr), k \(k), n \(n): nothing past the last strip")
        }
    }

    @Test("the strip packer gives the same strips on every kernel path")
    func everyPath() {
        let (k, strips, nr, rowStride) = (9, 3, 16, 53)
        let b = (0..<(k * rowStride)).map { Float($0) - 100 }
        var results: [[Float]] = []
        for path in GEMMKernelPath.supported {
            var packed = [Float](repeating: .nan, count: strips * k * nr)
            b.withUnsafeBufferPointer { src in
                packed.withUnsafeMutableBufferPointer { dst in
                    ember_pack_b_strips_f32(Int32(path.rawValue), k, strips, nr, src.baseAddress!, rowStride, dst.baseAddress!)
                }
            }
            results.append(packed)
        }
        let expected = (0..<(strips * k * nr)).map { i -> Float in
            let s = i / (k * nr), p = i % (k * nr) / nr, j = i % nr
            return b[p * rowStride + s * nr + j]
        }
        for (path, packed) in zip(GEMMKernelPath.supported, results) { #expect(packed == expected, "\(path)") }
    }
}
