import Ember
import Testing
import _EmberTestSupport

// The strided element-wise loops (`StridedRuns`: unit, broadcast and general strides) and the
// tiled copy of transposed views, against element-by-element references.

@Suite struct StridedKernelTests {
    /// Row-major multi-index of flat position `i` in `shape`.
    static func index(_ i: Int, _ shape: [Int]) -> [Int] {
        var rest = i
        var out = [Int](repeating: 0, count: shape.count)
        for k in stride(from: shape.count - 1, through: 0, by: -1) {
            out[k] = rest % shape[k]
            rest /= shape[k]
        }
        return out
    }

    /// Element of `values` (row-major, `shape`) at a broadcast index.
    static func element(_ values: [Float], _ shape: [Int], at index: [Int]) -> Float {
        let offset = index.count - shape.count
        var flat = 0
        for k in 0..<shape.count { flat = flat * shape[k] + (shape[k] == 1 ? 0 : index[offset + k]) }
        return values[flat]
    }

    @Test(arguments: [
        ([64, 33], [33]), ([64, 33], [64, 1]), ([1, 33], [64, 33]), ([64, 1], [1, 33]), ([7, 1, 9], [1, 5, 1]),
        ([3, 40, 17], [40, 1]), ([17], [3, 40, 17]), ([2, 3, 4, 5], [3, 1, 5]),
    ])
    func broadcastBinaryOpsMatchElementwiseReference(_ shapes: ([Int], [Int])) {
        let (sa, sb) = shapes
        let g = Generator(seed: UInt64(sa.reduce(1, *) * 31 + sb.reduce(1, *)))
        let a = Tensor.uniform(Shape(sa), low: 0.5, high: 2, generator: g)
        let b = Tensor.uniform(Shape(sb), low: 0.5, high: 2, generator: g)
        let out = Array((a + b).shape)
        let (fa, fb) = (a.floats, b.floats)
        for (name, result, f) in [("add", a + b, { (x: Float, y: Float) in x + y }), ("sub", a - b, { $0 - $1 }),
                                  ("mul", a * b, { $0 * $1 }), ("div", a / b, { $0 / $1 })] as [(String, Tensor, (Float, Float) -> Float)] {
            let values = result.floats
            var mismatches = 0
            for i in 0..<values.count {
                let idx = Self.index(i, out)
                let expected = f(Self.element(fa, sa, at: idx), Self.element(fb, sb, at: idx))
                if values[i].bitPattern != expected.bitPattern { mismatches += 1 }
            }
            #expect(mismatches == 0, "\(name) \(sa) with \(sb): \(mismatches) elements differ")
        }
    }

    @Test func unaryOpsOnStridedViewsMatchTheirContiguousCopies() {
        let g = Generator(seed: 3)
        let x = Tensor.uniform([40, 24], low: -2, high: 2, generator: g)
        for view in [x.transposed(0, 1), x[.all, .slice(0, 24, step: 3)], x.expanded(to: [3, 40, 24])] {
            let copy = view.contiguous()
            expectBitwiseEqual(view.relu(), copy.relu(), "relu of a \(view.strides) view")
            expectBitwiseEqual(-view, -copy, "neg of a \(view.strides) view")
            expectBitwiseEqual(view.abs(), copy.abs(), "abs of a \(view.strides) view")
        }
    }

    @Test(arguments: [[8, 8], [37, 21], [16, 100], [3, 37, 21], [2, 3, 17, 16]])
    func transposedViewsCopyEveryElement(_ shape: [Int]) {
        let count = shape.reduce(1, *)
        let x = Tensor((0..<count).map(Float.init), shape: Shape(shape))
        let r = shape.count
        let t = x.transposed(r - 2, r - 1)
        let c = t.contiguous()
        #expect(c.isContiguous)
        var tshape = shape
        tshape.swapAt(r - 2, r - 1)
        #expect(Array(c.shape) == tshape)
        let values = c.floats
        var mismatches = 0
        for i in 0..<count {
            var idx = Self.index(i, tshape)
            idx.swapAt(r - 2, r - 1)
            var flat = 0
            for k in 0..<r { flat = flat * shape[k] + idx[k] }
            if values[i] != Float(flat) { mismatches += 1 }
        }
        #expect(mismatches == 0, "\(shape): \(mismatches) elements misplaced")
        // Eight-byte elements take the tiled path (four-byte ones the register transposes).
        let wide = x.to(.float64).transposed(r - 2, r - 1).contiguous().to(.float32)
        #expect(wide.floats == values, "\(shape) float64")
        // A transposed view of a non-contiguous slice (leading stride not the matrix size).
        if r == 3 {
            let slice = x[0..., 1..., 0...]  // drops the first row of every matrix
            let st = slice.transposed(1, 2).contiguous()
            let expected = slice.contiguous().transposed(1, 2).contiguous()
            #expect(st.floats == expected.floats, "\(shape): transposed view of a slice")
        }
    }
}
