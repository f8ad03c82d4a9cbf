import Ember
@testable import EmberFunctional
import Testing
import _EmberTestSupport

/// The float32 forward of stride-1 convolutions packs its columns from a padded copy of the input
/// (`PaddedColumns`); float64 and strided convolutions build the column matrix. Both must give the
/// same numbers: float32 results are compared with the float64 path over a grid of options.
@Suite struct ConvPathTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var dims: Int, batch: Int, inChannels: Int, outChannels: Int, size: [Int], kernel: [Int]
        var padding: [Int], dilation: [Int], groups: Int, bias: Bool
        var testDescription: String { "\(dims)d in \(inChannels) out \(outChannels) size \(size) k \(kernel) pad \(padding) dil \(dilation) g \(groups)" }
    }

    static let cases: [Case] = [
        Case(dims: 2, batch: 3, inChannels: 4, outChannels: 5, size: [9, 11], kernel: [3, 3], padding: [1, 1], dilation: [1, 1], groups: 1, bias: true),
        Case(dims: 2, batch: 2, inChannels: 3, outChannels: 6, size: [7, 40], kernel: [3, 5], padding: [0, 2], dilation: [1, 2], groups: 1, bias: false),
        Case(dims: 2, batch: 2, inChannels: 6, outChannels: 6, size: [12, 12], kernel: [3, 3], padding: [2, 2], dilation: [2, 2], groups: 6, bias: true),
        Case(dims: 2, batch: 1, inChannels: 4, outChannels: 8, size: [5, 5], kernel: [5, 5], padding: [0, 0], dilation: [1, 1], groups: 2, bias: true),
        Case(dims: 2, batch: 2, inChannels: 40, outChannels: 9, size: [33, 33], kernel: [3, 3], padding: [1, 1], dilation: [1, 1], groups: 1, bias: true),
        Case(dims: 1, batch: 2, inChannels: 3, outChannels: 4, size: [50], kernel: [4], padding: [3], dilation: [1], groups: 1, bias: true),
        // 1000 column-matrix rows make 64-column chunks; the second starts at padded column 64,
        // past the 18 real ones of its 22-wide row, so the fast path's compaction must skip it.
        Case(dims: 2, batch: 1, inChannels: 40, outChannels: 3, size: [8, 22], kernel: [5, 5], padding: [0, 0], dilation: [1, 1], groups: 1, bias: true),
        Case(dims: 3, batch: 2, inChannels: 2, outChannels: 3, size: [4, 5, 6], kernel: [2, 3, 3], padding: [1, 1, 0], dilation: [1, 1, 2], groups: 1, bias: true),
        // Output rows a whole number of 8- or 16-wide tiles: products written one output row at a
        // time (`PaddedColumns.writesRows`), with and without bias, groups, 1d and 3d; 32 and 64
        // output channels mix 6- and 4-row tiles.
        Case(dims: 2, batch: 2, inChannels: 7, outChannels: 32, size: [5, 32], kernel: [3, 3], padding: [1, 1], dilation: [1, 1], groups: 1, bias: true),
        Case(dims: 2, batch: 1, inChannels: 16, outChannels: 64, size: [4, 16], kernel: [3, 3], padding: [1, 1], dilation: [1, 1], groups: 2, bias: false),
        Case(dims: 1, batch: 2, inChannels: 4, outChannels: 6, size: [48], kernel: [3], padding: [1], dilation: [1], groups: 2, bias: true),
        Case(dims: 3, batch: 1, inChannels: 3, outChannels: 5, size: [3, 4, 16], kernel: [2, 3, 3], padding: [0, 1, 1], dilation: [1, 1, 1], groups: 1, bias: false),
        // Output rows exactly one vector wide (16 columns on AVX-512, 8 on AVX2): each tile covers
        // two output rows (`PaddedColumns.rowsPerTile`), an odd last row alone; bias row, groups,
        // 3d, and a wide dilated kernel whose second vector reads one padded row past the image.
        Case(dims: 2, batch: 2, inChannels: 5, outChannels: 32, size: [5, 18], kernel: [3, 3], padding: [1, 0], dilation: [1, 1], groups: 1, bias: true),
        Case(dims: 2, batch: 2, inChannels: 6, outChannels: 10, size: [7, 8], kernel: [3, 3], padding: [1, 1], dilation: [1, 1], groups: 2, bias: true),
        Case(dims: 3, batch: 1, inChannels: 3, outChannels: 9, size: [2, 3, 16], kernel: [1, 3, 3], padding: [0, 1, 1], dilation: [1, 1, 1], groups: 1, bias: true),
        Case(dims: 2, batch: 1, inChannels: 2, outChannels: 17, size: [3, 34], kernel: [3, 7], padding: [1, 0], dilation: [1, 3], groups: 1, bias: false),
        // Small padded planes whose last tile is mostly unused stack several samples in one
        // buffer, sharing their padding rows (`PaddedColumns.stackedSamples`): three per buffer
        // over seven samples (a last group of one) with the bias row; the input gradient of a
        // valid convolution (padding 2 on 11 x 11); dilated.
        Case(dims: 2, batch: 7, inChannels: 112, outChannels: 5, size: [11, 11], kernel: [3, 3], padding: [2, 2], dilation: [1, 1], groups: 1, bias: true),
        Case(dims: 2, batch: 5, inChannels: 4, outChannels: 6, size: [13, 13], kernel: [3, 3], padding: [0, 0], dilation: [1, 1], groups: 1, bias: true),
        Case(dims: 2, batch: 3, inChannels: 2, outChannels: 3, size: [5, 5], kernel: [3, 3], padding: [3, 3], dilation: [2, 2], groups: 1, bias: true),
    ]

    @Test(arguments: cases)
    func float32MatchesTheFloat64PathWithGradients(_ c: Case) {
        let g = Generator(seed: 7)
        let x = Tensor.normal(Shape([c.batch, c.inChannels] + c.size), dtype: .float64, generator: g)
        let w = Tensor.normal(Shape([c.outChannels, c.inChannels / c.groups] + c.kernel), dtype: .float64, generator: g)
        let b: Tensor? = c.bias ? Tensor.normal([c.outChannels], dtype: .float64, generator: g) : nil
        var grads: [DType: (Tensor, Tensor)] = [:]
        func run(_ dtype: DType) -> Tensor {
            let (xi, wi, bi) = (x.to(dtype).requiringGrad(), w.to(dtype).requiringGrad(), b?.to(dtype))
            defer {
                let up = Tensor.normal(Shape(outputShape(xi, wi)), dtype: .float64, generator: Generator(seed: 9)).to(dtype)
                (convolve(xi, wi, bi) * up).sum().backward()
                grads[dtype] = (xi.grad!, wi.grad!)
            }
            return withNoGrad { convolve(xi, wi, bi) }
        }
        func outputShape(_ xi: Tensor, _ wi: Tensor) -> [Int] { Array(withNoGrad { convolve(xi, wi, nil) }.shape) }
        func convolve(_ xi: Tensor, _ wi: Tensor, _ bi: Tensor?) -> Tensor {
            let padding = ConvPadding.explicit(c.padding), dilation = SpatialSize(c.dilation)
            switch c.dims {
            case 1: return conv1d(xi, weight: wi, bias: bi, padding: padding, dilation: dilation, groups: c.groups)
            case 2: return conv2d(xi, weight: wi, bias: bi, padding: padding, dilation: dilation, groups: c.groups)
            default: return conv3d(xi, weight: wi, bias: bi, padding: padding, dilation: dilation, groups: c.groups)
            }
        }
        let single = run(.float32), double = run(.float64)
        #expect(single.shape == double.shape)
        expectClose(single.to(.float64), double, atol: 1e-4, rtol: 1e-4, c.testDescription)
        // The input gradient of a stride-1 float32 convolution is itself a convolution on the
        // fast path; the weight gradient builds columns.
        expectClose(grads[.float32]!.0.to(.float64), grads[.float64]!.0, atol: 1e-4, rtol: 1e-4, "input gradient, \(c.testDescription)")
        expectClose(grads[.float32]!.1.to(.float64), grads[.float64]!.1, atol: 1e-3, rtol: 1e-4, "weight gradient, \(c.testDescription)")
    }

    /// Stacked samples with unequal padding above and below (the input gradient of a `"same"`
    /// convolution with an even kernel has such padding): each sample's rows start the larger of the
    /// two paddings after the previous sample's, so no output reads another sample's rows. The
    /// float32 stacked forward against the float64 column-matrix loop on the same geometry.
    @Test func stackedSamplesWithUnequalPadding() {
        let g = WindowGeometry.convolution(input: [1, 11, 11], kernel: [1, 3, 3], stride: [1, 1, 1], padBefore: [0, 2, 2],
                                           padAfter: [0, 1, 1], dilation: [1, 1, 1], describe: { "test" })
        // Five input channels: 46 column-matrix rows, more than the one-row-at-a-time path takes.
        let sizes = ConvolutionKernel.Sizes(batch: 5, inChannels: 5, outChannels: 4, groups: 1)
        let x = Tensor.normal([5, 5, 11, 11], dtype: .float64, generator: Generator(seed: 3))
        let w = Tensor.normal([4, 5, 3, 3], dtype: .float64, generator: Generator(seed: 4))
        let b = Tensor.normal([4], dtype: .float64, generator: Generator(seed: 5))
        let outShape: Shape = [5, 4, g.output[1], g.output[2]]
        let single = Tensor(uninitializedShape: outShape, dtype: .float32), double = Tensor(uninitializedShape: outShape, dtype: .float64)
        let (x32, w32, b32) = (x.to(.float32), w.to(.float32), b.to(.float32))
        ConvolutionKernel.forward(x: x32.pointer(as: Float.self), w: w32.pointer(as: Float.self), bias: b32.pointer(as: Float.self),
                                  y: single.mutablePointer(as: Float.self), sizes, g)
        ConvolutionKernel.forward(x: x.pointer(as: Double.self), w: w.pointer(as: Double.self), bias: b.pointer(as: Double.self),
                                  y: double.mutablePointer(as: Double.self), sizes, g)
        expectClose(single.to(.float64), double, atol: 1e-4, rtol: 1e-4)
    }

    /// 2x2 windows on rows of 4-7 outputs run four columns at a time (`max2x2FloatNarrow`): the
    /// same values and indices as the float64 loop, ties and NaNs included.
    @Test(arguments: [9, 11, 13, 15])
    func narrowMaxPoolingMatchesTheFloat64Kernel(_ width: Int) {
        var values = Tensor.normal([2, 3, 7, width], dtype: .float64, generator: Generator(seed: 11)).doubles.map { ($0 * 2).rounded() / 2 }
        values[3] = .nan
        values[width + 2] = .nan
        let reference = Tensor(values, shape: [2, 3, 7, width])
        let expected = maxPool2dWithIndices(reference, kernelSize: 2, stride: 2)
        let actual = maxPool2dWithIndices(reference.to(.float32), kernelSize: 2, stride: 2)
        #expect(actual.indices.scalars(as: Int64.self) == expected.indices.scalars(as: Int64.self), "width \(width)")
        let same = zip(actual.output.doubles, expected.output.doubles).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
        #expect(same, "width \(width)")
    }

    /// Windows that tile the plane take a backward that writes `dx` row by row without zero-filling
    /// it first: input rows and columns no window covers must still get 0, whatever the fresh
    /// allocation held (NaN-filled tensors of the same size are freed just before).
    @Test(arguments: [DType.float32, .float64])
    func tiledMaxPoolingGradientZeroesUncoveredRows(_ dtype: DType) {
        for _ in 0..<3 {
            do { _ = Tensor.full([4, 5, 9, 11], .nan, dtype: dtype) }
            let x = Tensor.normal([4, 5, 9, 11], dtype: dtype, generator: Generator(seed: 3)).requiringGrad()
            maxPool2d(x, kernelSize: 2, stride: 2).sum().backward()
            let g = x.grad!.doubles
            let finite = g.allSatisfy { $0.isFinite }
            #expect(finite)
            // One 1 per window (4 x 5 planes of 4 x 5 windows), zeros elsewhere.
            #expect(g.filter { $0 == 1 }.count == 4 * 5 * 4 * 5 && g.filter { $0 == 0 }.count == g.count - 400)
        }
    }

    /// Inference max pooling skips the indices (`maxValues2d`); its values must be bitwise those of
    /// the indexed kernel, NaNs and ties included.
    @Test(arguments: [DType.float32, .float64])
    func maxPoolingWithoutIndicesMatchesTheIndexedKernel(_ dtype: DType) {
        var values = Tensor.normal([2, 3, 9, 37], dtype: .float64, generator: Generator(seed: 5)).doubles.map { ($0 * 2).rounded() / 2 }
        values[7] = .nan
        values[100] = .nan
        values[101] = .infinity
        values[230] = -.infinity
        values[300] = .nan
        values[301] = .nan
        let x = Tensor(values, shape: [2, 3, 9, 37]).to(dtype)
        let reference = Tensor(values, shape: [2, 3, 9, 37])
        for (k, s) in [(2, 2), (3, 3), (3, 2), (2, 1)] {
            let plain = withNoGrad { maxPool2d(x, kernelSize: SpatialSize(k), stride: SpatialSize(s)) }
            let indexed = maxPool2dWithIndices(x, kernelSize: SpatialSize(k), stride: SpatialSize(s)).output
            #expect(plain.shape == indexed.shape)
            let a = plain.doubles, b = indexed.doubles
            #expect(zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }, "kernel \(k) stride \(s)")
            #expect(a.contains { $0.isNaN }, "the NaN must propagate")
            // float32 runs eight columns at a time in SIMD registers, float64 one at a time: the
            // same indices (ties keep the first, the last NaN wins).
            let expected = maxPool2dWithIndices(reference, kernelSize: SpatialSize(k), stride: SpatialSize(s)).indices
            #expect(maxPool2dWithIndices(x, kernelSize: SpatialSize(k), stride: SpatialSize(s)).indices.scalars(as: Int64.self)
                    == expected.scalars(as: Int64.self), "indices, kernel \(k) stride \(s)")
        }
    }

    /// Windows with padding, dilation or ceil mode take the general max-pooling loop: a NaN in a
    /// window makes its maximum NaN, at the last NaN's position (PyTorch's rule), in both dtypes.
    @Test(arguments: [DType.float32, .float64])
    func generalMaxPoolingPropagatesNaN(_ dtype: DType) {
        var values = (0..<35).map { Double($0 % 7) }
        values[8] = .nan   // row 1, column 1
        values[9] = .nan   // row 1, column 2
        let x = Tensor(values, shape: [1, 1, 5, 7]).to(dtype)
        let (out, indices) = maxPool2dWithIndices(x, kernelSize: 3, stride: 2, padding: 1)
        // Windows (rows, columns) 0..<2 x 0..<2 and 0..<2 x 1..<4 hold the NaNs, and so do the
        // windows starting at row 1 over those columns.
        let v = out.doubles, i = indices.scalars(as: Int64.self)
        #expect(out.shape == [1, 1, 3, 4])
        #expect(v[0].isNaN && v[1].isNaN && v[4].isNaN && v[5].isNaN, "\(v)")
        #expect(i[0] == 8 && i[1] == 9 && i[4] == 8 && i[5] == 9, "the last NaN's position: \(i)")
        #expect(!v[2].isNaN && !v[3].isNaN && !v[8].isNaN, "\(v)")
        #expect(withNoGrad { maxPool2d(x, kernelSize: 3, stride: 2, padding: 1) }.doubles.enumerated().allSatisfy {
            $0.element.isNaN == v[$0.offset].isNaN })
    }
}
