import Ember
import Foundation
import Testing
import _EmberTestSupport

// Tests of the performance paths added for the whole-workload benchmarks (BENCHMARKS.md): each
// must give exactly what the general path gives (or what its documentation promises), so a
// speed-up can never change a result.

@Suite struct FastPathTests {
    // MARK: Philox, eight blocks at a time

    @Test(arguments: [0, 1, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 64, 1000])
    func philoxFillMatchesScalarBlocks(_ blocks: Int) {
        // Counters that cross the 2^32 boundary of the low word, and a non-zero stream.
        for (seed, index, stream) in [(UInt64(42), UInt64(0), UInt64(0)),
                                      (0xDEAD_BEEF_1234_5678, 0xFFFF_FFFC, 0),
                                      (7, 123_456_789, 3)] {
            var words = [UInt32](repeating: 0xFFFF_FFFF, count: 4 * blocks + 4)
            words.withUnsafeMutableBufferPointer {
                Philox.fill(seed: seed, index: index, stream: stream, blocks: blocks, into: $0.baseAddress!)
            }
            for b in 0..<blocks {
                let w = Philox.block(seed: seed, index: index &+ UInt64(b), stream: stream)
                #expect(Array(words[(4 * b)..<(4 * b + 4)]) == [w.0, w.1, w.2, w.3], "block \(b) of \(blocks)")
            }
            #expect(words[(4 * blocks)...].allSatisfy { $0 == 0xFFFF_FFFF }, "nothing written past the last block")
            // Both kernel widths the CPU has, whichever `fill` dispatches.
            let widths = PhiloxKernel.isAvailable ? [false] + (GEMMKernelPath.avx512.isSupported ? [true] : []) : []
            for sixteen in widths {
                var direct = [UInt32](repeating: 0xFFFF_FFFF, count: 4 * blocks + 4)
                direct.withUnsafeMutableBufferPointer {
                    PhiloxKernel.fill(sixteenWide: sixteen, seed: seed, index: index, stream: stream, blocks: blocks,
                                      into: $0.baseAddress!)
                }
                #expect(direct == words, "\(sixteen ? 16 : 8) blocks at a time, \(blocks) blocks")
            }
        }
    }

    // MARK: Single-row products

    /// One row of A times a transposed B alone (the row-vector path), and two rows and many rows
    /// (the blocked path): bitwise equal, and close to a float64 reference.
    @Test(arguments: [(1, 1), (20, 10), (7, 9), (8, 8), (9, 17), (64, 511), (130, 512), (33, 513), (512, 784), (10, 1100)])
    func rowProductsEqualTheRowsOfABlockedProduct(_ size: (n: Int, k: Int)) {
        let (n, k) = size
        let rows = max(3, (1 << 14) / (n * k) + 2)  // several A blocks for small n * k
        let g = Generator(seed: UInt64(n * 7919 + k))
        let a = Tensor.uniform([rows, k], low: -1, high: 1, generator: g).floats
        let w = Tensor.uniform([n, k], low: -1, high: 1, generator: g).floats  // B = w^T
        let c0 = Tensor.uniform([rows, n], low: -1, high: 1, generator: g).floats
        for beta: Float in [0, 1] {
            for threads in [1, 2] {
                var batch = c0, one = Array(c0[n..<(2 * n)]), two = Array(c0[0..<(2 * n)])
                Threading.withThreads(threads) {
                    a.withUnsafeBufferPointer { pa in
                        w.withUnsafeBufferPointer { pw in
                            let (pa, pw) = (pa.baseAddress!, pw.baseAddress!)
                            GEMM.sgemm(m: rows, n: n, k: k, alpha: 1, a: pa, rowStrideA: k, colStrideA: 1,
                                       b: pw, rowStrideB: 1, colStrideB: k, beta: beta, c: &batch, ldc: n)
                            GEMM.sgemm(m: 1, n: n, k: k, alpha: 1, a: pa + k, rowStrideA: k, colStrideA: 1,
                                       b: pw, rowStrideB: 1, colStrideB: k, beta: beta, c: &one, ldc: n)
                            GEMM.sgemm(m: 2, n: n, k: k, alpha: 1, a: pa, rowStrideA: k, colStrideA: 1,
                                       b: pw, rowStrideB: 1, colStrideB: k, beta: beta, c: &two, ldc: n)
                        }
                    }
                }
                let context = "n=\(n) k=\(k) beta=\(beta) threads=\(threads)"
                #expect(one.map(\.bitPattern) == batch[n..<(2 * n)].map(\.bitPattern), "\(context): one row")
                #expect(two.map(\.bitPattern) == batch[0..<(2 * n)].map(\.bitPattern), "\(context): two rows")
                for j in 0..<n {
                    var exact = beta == 1 ? Double(c0[n + j]) : 0
                    for p in 0..<k { exact += Double(a[k + p]) * Double(w[j * k + p]) }
                    #expect(abs(Double(one[j]) - exact) <= 1e-5 * Double(k), "\(context): column \(j)")
                }
            }
        }
    }

    @Test func batchOneLinearEqualsItsRowInABatch() {
        let g = Generator(seed: 5)
        let layer = withGenerator(g) { Linear(784, 512) }
        let x = Tensor.uniform([4, 784], generator: g)
        let batch = withNoGrad { layer(x) }
        for i in 0..<4 {
            let alone = withNoGrad { layer(x.narrow(axis: 0, start: i, length: 1)) }
            expectBitwiseEqual(alone, batch.narrow(axis: 0, start: i, length: 1), "row \(i)")
        }
    }

    // MARK: Fused dropout

    /// Element `i` is kept when word `i % 4` of Philox block `i / 4` is below `round((1 - p) 2^32)`,
    /// kept values are `x * (1 / (1 - p))` in the dtype, and the generator advances by
    /// `ceil(n / 4)` blocks.
    @Test(arguments: [(0.5, DType.float32), (0.2, .float32), (0.9, .float64)])
    func dropoutFollowsItsDocumentedLayout(_ c: (p: Double, dtype: DType)) {
        let n = 1_003
        let x = Tensor.uniform([n], low: 1, high: 2, dtype: c.dtype, generator: Generator(seed: 1))
        let g = Generator(seed: 77)
        let start = g.state
        let y = dropout(x, p: c.p, training: true, generator: g)
        #expect(g.state.offset == start.offset + UInt64((n + 3) / 4))
        let threshold = UInt64(((1 - c.p) * 0x1p32).rounded())
        let scale = c.dtype == .float32 ? Double(1 / Float(1 - c.p)) : 1 / (1 - c.p)
        let xs = x.doubles, ys = y.doubles
        for i in 0..<n {
            let w = Philox.block(seed: start.seed, index: start.offset + UInt64(i / 4))
            let word = [w.0, w.1, w.2, w.3][i % 4]
            let expected = UInt64(word) < threshold
                ? (c.dtype == .float32 ? Double(Float(xs[i]) * Float(scale)) : xs[i] * scale) : 0
            #expect(ys[i] == expected, "element \(i)")
        }
    }

    @Test func dropoutGradientIsTheMaskAndNonFiniteDroppedValuesBecomeNaN() throws {
        let x = Tensor([Float](repeating: .infinity, count: 64)).requiringGrad()
        let y = dropout(x, p: 0.5, training: true, generator: Generator(seed: 3))
        let values = y.floats
        #expect(values.contains { $0.isNaN } && values.contains { $0 == .infinity }, "inf * 0 is NaN, as in PyTorch")
        y.backward(Tensor.ones([64]))
        let grad = try #require(x.grad).floats
        for i in 0..<64 { #expect(grad[i] == (values[i].isNaN ? 0 : 2), "element \(i)") }
    }

    @Test func dropoutOfAViewEqualsDropoutOfItsCopy() {
        let x = Tensor.normal([6, 9], generator: Generator(seed: 4))
        let t = x.transposed(0, 1)
        let a = dropout(t, p: 0.3, training: true, generator: Generator(seed: 8))
        let b = dropout(t.contiguous(), p: 0.3, training: true, generator: Generator(seed: 8))
        expectBitwiseEqual(a, b)
    }

    @Test func dropoutIsTheSameOnOneOrTwoThreads() {
        let x = Tensor.normal([300_000], generator: Generator(seed: 2))
        let one = Threading.withThreads(1) { dropout(x, p: 0.4, training: true, generator: Generator(seed: 9)) }
        let two = Threading.withThreads(2) { dropout(x, p: 0.4, training: true, generator: Generator(seed: 9)) }
        expectBitwiseEqual(one, two)
    }

    @Test func reluAndDropoutBackwardAreTheSameOnAnyThreadCount() {
        // 40,000 elements: split over threads (from 32Ki), with a tail that is not a multiple of 8.
        let g = Generator(seed: 5)
        let x = Tensor.normal([40_003], generator: g), upstream = Tensor.normal([40_003], generator: g)
        func grads() -> [Tensor] {
            let a = x.requiringGrad()
            (a.relu() * upstream).sum().backward()
            let b = x.requiringGrad()
            (dropout(b, p: 0.3, training: true, generator: Generator(seed: 6)) * upstream).sum().backward()
            return [a.grad!, b.grad!]
        }
        let one = Threading.withThreads(1) { grads() }, three = Threading.withThreads(3) { grads() }
        expectBitwiseEqual(three[0], one[0], "relu backward")
        expectBitwiseEqual(three[1], one[1], "dropout backward")
        #expect(one[0].floats.enumerated().allSatisfy { $0.element == (x.floats[$0.offset] > 0 ? upstream.floats[$0.offset] : 0) })
    }

    /// `[N, C]` batch normalization splits its channels over threads (in groups of 16) when large:
    /// every output and gradient is the same bits on any thread count, and each thread's channels
    /// read their own column of the rows (a split that mixed up the row stride would not be).
    @Test func batchNormChannelsAreTheSameOnAnyThreadCount() {
        let g = Generator(seed: 12)
        let (n, c) = (64, 302)  // 75 vector groups of 4 and a two-channel scalar tail
        let x = Tensor.normal([n, c], mean: 1, std: 2, generator: g), upstream = Tensor.normal([n, c], generator: g)
        let weight = Tensor.uniform([c], low: 0.5, high: 1.5, generator: g), bias = Tensor.normal([c], generator: g)
        func run(training: Bool) -> [Tensor] {
            let xi = x.requiringGrad(), w = weight.requiringGrad(), b = bias.requiringGrad()
            var rm: Tensor? = Tensor.full([c], 0.2), rv: Tensor? = Tensor.full([c], 1.5)
            let y = batchNorm(xi, runningMean: &rm, runningVar: &rv, weight: w, bias: b, training: training,
                              momentum: 0.1, eps: 1e-5)
            (y * upstream).sum().backward()
            return [y.detached(), rm!, rv!, xi.grad!, w.grad!, b.grad!]
        }
        for training in [true, false] {
            let one = Threading.withThreads(1) { run(training: training) }
            let three = Threading.withThreads(3) { run(training: training) }
            for (i, name) in ["y", "running mean", "running var", "dx", "dweight", "dbias"].enumerated() {
                expectBitwiseEqual(three[i], one[i], "\(name), training \(training)")
            }
            // Channel 100 (second thread's range on three threads) by hand: training normalizes with
            // the batch's statistics, eval with the running ones.
            let column = (0..<n).map { Double(x.floats[$0 * c + 100]) }
            let mean = training ? column.reduce(0, +) / Double(n) : 0.2
            let variance = training ? column.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n) : 1.5
            let expected = (column[7] - mean) / (variance + 1e-5).squareRoot() * Double(weight.floats[100]) + Double(bias.floats[100])
            #expect(abs(Double(one[0].floats[7 * c + 100]) - expected) < 1e-4)
        }
    }

    // MARK: Batch normalization

    /// `[N, C]` input takes the contiguous-channel loops; the same values as `[N, C, L]` input
    /// (with the positions moved into the batch) take the general loops. Both agree with each
    /// other and are checked against finite differences.
    @Test func batchNormChannelLastLoopsAgreeWithTheGeneralLoops() throws {
        let g = Generator(seed: 11)
        let x3 = Tensor.normal([4, 5, 3], mean: 1, std: 2, generator: g)
        let x2 = x3.permuted([0, 2, 1]).reshaped([12, 5]).contiguous()
        let weight = Tensor.uniform([5], low: 0.5, high: 1.5, generator: g)
        let bias = Tensor.normal([5], generator: g)
        let upstream3 = Tensor.normal([4, 5, 3], generator: g)
        let upstream2 = upstream3.permuted([0, 2, 1]).reshaped([12, 5]).contiguous()
        func run(_ x: Tensor, _ upstream: Tensor) -> (y: Tensor, mean: Tensor, variance: Tensor, grads: [Tensor]) {
            let xi = x.requiringGrad(), w = weight.requiringGrad(), b = bias.requiringGrad()
            var rm: Tensor? = Tensor.zeros([5]), rv: Tensor? = Tensor.ones([5])
            let y = batchNorm(xi, runningMean: &rm, runningVar: &rv, weight: w, bias: b, training: true,
                              momentum: 0.1, eps: 1e-5)
            (y * upstream).sum().backward()
            return (y.detached(), rm!, rv!, [xi.grad!, w.grad!, b.grad!])
        }
        let r3 = run(x3, upstream3), r2 = run(x2, upstream2)
        expectClose(r2.y, r3.y.permuted([0, 2, 1]).reshaped([12, 5]), atol: 1e-5, rtol: 1e-5)
        expectClose(r2.mean, r3.mean, atol: 1e-6, rtol: 1e-6)
        expectClose(r2.variance, r3.variance, atol: 1e-6, rtol: 1e-6)
        expectClose(r2.grads[0], r3.grads[0].permuted([0, 2, 1]).reshaped([12, 5]), atol: 1e-5, rtol: 1e-5)
        expectClose(r2.grads[1], r3.grads[1], atol: 1e-5, rtol: 1e-5)
        expectClose(r2.grads[2], r3.grads[2], atol: 1e-5, rtol: 1e-5)

        let xd = Tensor.normal([6, 4], dtype: .float64, generator: g)
        let wd = Tensor.uniform([4], low: 0.5, high: 1.5, dtype: .float64, generator: g)
        let bd = Tensor.normal([4], dtype: .float64, generator: g)
        #expect(checkGradients([xd, wd, bd]) { args in
            var rm: Tensor? = nil, rv: Tensor? = nil
            return batchNorm(args[0], runningMean: &rm, runningVar: &rv, weight: args[1], bias: args[2],
                             training: true, momentum: 0.1, eps: 1e-5)
        } == nil)
        #expect(checkGradients([xd, wd, bd]) { args in
            var rm: Tensor? = Tensor.full([4], 0.3, dtype: .float64), rv: Tensor? = Tensor.full([4], 2, dtype: .float64)
            return batchNorm(args[0], runningMean: &rm, runningVar: &rv, weight: args[1], bias: args[2],
                             training: false, momentum: 0.1, eps: 1e-5)
        } == nil)
    }

    /// Float32 `[N, C]` runs sixteen and four channels at a time and the `C % 4` rest one by one;
    /// every channel is computed independently, so each column of a 7- or 21-channel result
    /// (forward, running statistics, all gradients; training and eval) must be bitwise the result
    /// for that column alone, which takes the one-channel loops.
    @Test(arguments: [true, false], [7, 21])
    func batchNormVectorChannelsEqualSingleChannels(_ training: Bool, _ c: Int) throws {
        let g = Generator(seed: 21)
        let n = 9
        let x = Tensor.normal([n, c], mean: 0.5, std: 3, generator: g)
        let w = Tensor.uniform([c], low: 0.5, high: 1.5, generator: g), b = Tensor.normal([c], generator: g)
        let rm0 = Tensor.normal([c], generator: g), rv0 = Tensor.uniform([c], low: 0.5, high: 2, generator: g)
        let upstream = Tensor.normal([n, c], generator: g)
        func run(_ cols: Range<Int>) -> [Tensor] {
            let width = cols.count
            func pick(_ t: Tensor) -> Tensor { t.narrow(axis: t.rank - 1, start: cols.lowerBound, length: width).contiguous() }
            let xi = pick(x).requiringGrad(), wi = pick(w).requiringGrad(), bi = pick(b).requiringGrad()
            var rm: Tensor? = pick(rm0), rv: Tensor? = pick(rv0)
            let y = batchNorm(xi, runningMean: &rm, runningVar: &rv, weight: wi, bias: bi, training: training,
                              momentum: 0.1, eps: 1e-5)
            (y * pick(upstream)).sum().backward()
            return [y.detached(), rm!, rv!, xi.grad!, wi.grad!, bi.grad!]
        }
        let all = run(0..<c)
        for ch in 0..<c {
            let alone = run(ch..<(ch + 1))
            for (k, (a, b)) in zip(all, alone).enumerated() {
                expectBitwiseEqual(a.narrow(axis: a.rank - 1, start: ch, length: 1), b, "channel \(ch), output \(k)")
            }
        }
    }

    // MARK: Optimizer state

    /// A captured state keeps its values when training continues (the in-place update of the
    /// momentum buffer copies a buffer that a saved state still shares).
    @Test func savedSGDStateIsNotChangedByLaterSteps() throws {
        let p = Parameter(Tensor([1, 2, 3] as [Float]))
        let sgd = SGD([p], lr: 0.1, momentum: 0.9)
        for _ in 0..<2 {
            p.grad = Tensor([1, 1, 1] as [Float])
            sgd.step()
        }
        let saved = sgd.state()
        let before = try #require(saved.parameters[0]?.buffers["momentum_buffer"]).floats
        p.grad = Tensor([5, 5, 5] as [Float])
        sgd.step()
        #expect(try #require(saved.parameters[0]?.buffers["momentum_buffer"]).floats == before)
    }
}
