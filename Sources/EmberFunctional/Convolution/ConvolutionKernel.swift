import CEmberKernels
import EmberStorage
import EmberTensor

/// The loops of convolution and transposed convolution: per sample and group, column matrices
/// (``ColumnMatrix``) and matrix products with the weight. The column matrix is built a chunk of
/// output rows at a time, small enough to stay in the core's L2 cache while the product packs
/// and reads it. A 1x1 convolution with stride 1 and no padding multiplies the input planes
/// directly.
///
/// Layouts (contiguous): input `[N, C_in, inputPlane]`, output `[N, C_out, outputPlane]` of the
/// geometry; a convolution's weight `[C_out, C_in / groups, kernelVolume]`, a transposed
/// convolution's `[C_in, C_out / groups, kernelVolume]` (PyTorch's layouts). For a transposed
/// convolution the geometry is that of the convolution it is the adjoint of: its `input` is the
/// transposed convolution's output.
enum ConvolutionKernel {
    struct Sizes {
        let batch: Int, inChannels: Int, outChannels: Int, groups: Int
    }

    /// Elements of one chunk's column matrix to aim for (256 KB in float32, half the L2 of the
    /// cores measured on).
    static let chunkElements = 64 * 1024

    /// The output-row chunks of a column matrix with `rows` rows, and scratch for the largest.
    struct Chunks<T> {
        let ranges: [Range<Int>]
        let width: Int
        let scratch: UnsafeMutablePointer<T>?

        init(_ g: WindowGeometry, rows: Int) {
            let outputRows = g.output[0] * g.output[1], oW = g.output[2]
            let step = max(1, min(outputRows, ConvolutionKernel.chunkElements / max(rows * oW, 1)))
            ranges = stride(from: 0, to: outputRows, by: step).map { $0..<min($0 + step, outputRows) }
            width = step * oW
            scratch = g.isPointwise ? nil : .allocate(capacity: max(rows * width, 1))
        }

        func release() { scratch?.deallocate() }
    }

    /// With `written`, the float32 stride-1 path calls `written(n, output)` on each sample's
    /// output right after writing it (on the thread that did, while it is in cache), and the
    /// result says so (`false`: the path does not apply and `written` was not called).
    /// `packed`, when given, is ``packedWeights(_:bias:_:_:)`` of `w` and `bias` (kept between
    /// calls: ``ConvolutionWeightCache``), for the float32 stride-1 path.
    @discardableResult
    static func forward<T: TensorFloat>(x: UnsafePointer<T>, w: UnsafePointer<T>, bias: UnsafePointer<T>?,
                                        y: UnsafeMutablePointer<T>, _ s: Sizes, _ g: WindowGeometry,
                                        packed: [GEMM.PackedSingleA]? = nil,
                                        written: ((Int, UnsafePointer<Float>) -> Void)? = nil) -> Bool {
        let cinG = s.inChannels / s.groups, coutG = s.outChannels / s.groups
        let rows = cinG * g.kernelVolume, L = g.outputPlane, P = g.inputPlane, oW = g.output[2]
        if usesPaddedForward(T.self, s, g) {
            paddedForward(x: UnsafeRawPointer(x).assumingMemoryBound(to: Float.self),
                          w: UnsafeRawPointer(w).assumingMemoryBound(to: Float.self),
                          bias: bias.map { UnsafeRawPointer($0).assumingMemoryBound(to: Float.self) },
                          y: UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self), s, g, packed: packed, sink: written)
            return written != nil
        }
        let chunks = Chunks<T>(g, rows: rows)
        defer { chunks.release() }
        for n in 0..<s.batch {
            for gi in 0..<s.groups {
                let src = x + (n * s.inChannels + gi * cinG) * P
                let c = y + (n * s.outChannels + gi * coutG) * L
                var beta: T = 0
                if let bias {
                    for o in 0..<coutG { (c + o * L).update(repeating: bias[gi * coutG + o], count: L) }
                    beta = 1
                } else if rows == 0 {
                    c.update(repeating: 0, count: coutG * L)
                }
                guard rows > 0 else { continue }
                let weight = w + gi * coutG * rows
                guard let cols = chunks.scratch else {
                    gemm(m: coutG, n: L, k: rows, a: weight, rows, 1, b: src, L, 1, beta: beta, c: c, ldc: L)
                    continue
                }
                for range in chunks.ranges {
                    let width = range.count * oW
                    ColumnMatrix.im2col(src, channels: cinG, g, rows: range, into: cols)
                    gemm(m: coutG, n: width, k: rows, a: weight, rows, 1, b: cols, width, 1, beta: beta,
                         c: c + range.lowerBound * oW, ldc: L)
                }
            }
        }
        return false
    }

    /// Whether ``forward`` takes the float32 stride-1 path (``paddedForward(x:w:bias:y:_:_:packed:sink:)``).
    static func usesPaddedForward<T>(_: T.Type, _ s: Sizes, _ g: WindowGeometry) -> Bool {
        T.self == Float.self && !g.isPointwise && s.inChannels / s.groups * g.kernelVolume > 0 && PaddedColumns.applies(g)
    }

    /// ``forward`` for float32 with stride 1 (``PaddedColumns``). With a `sink`, `sink(n, output)`
    /// gets each sample's output (`[outChannels, outputPlane]`) on the thread that computed it,
    /// while it is in cache: in `y` when given, else in a per-thread scratch.
    static func paddedForward(x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                              y: UnsafeMutablePointer<Float>?, _ s: Sizes, _ g: WindowGeometry,
                              packed: [GEMM.PackedSingleA]? = nil, sink: ((Int, UnsafePointer<Float>) -> Void)? = nil) {
        let cinG = s.inChannels / s.groups, coutG = s.outChannels / s.groups
        let L = g.outputPlane, P = g.inputPlane
        let padded = PaddedColumns(g, channels: cinG, bias: bias != nil)
        let rows = padded.rowOffsets.count
        // Samples are split over threads (each with its own buffers); the products run on one
        // thread each.
        let threads = forwardThreads(s, g, rows: rows)
        let weights = packed ?? packedWeights(w, bias: bias, s, g)
        let (chunk, stack) = forwardLayout(padded, weights: weights, s, g, threads: threads, sink: sink != nil)
        let stacked = stack > 1 ? PaddedColumns(g, channels: cinG, bias: bias != nil, stack: stack) : nil
        Threading.parallelFor(chunks: threads) { part in
            let samples = (s.batch * part / threads)..<(s.batch * (part + 1) / threads)
            if let stacked {
                let buffer = UnsafeMutablePointer<Float>.allocate(capacity: stacked.bufferCount)
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: coutG * chunk)
                defer { buffer.deallocate(); scratch.deallocate() }
                stacked.prepare(buffer)
                for first in stride(from: samples.lowerBound, to: samples.upperBound, by: stack) {
                    let count = min(stack, samples.upperBound - first)
                    stacked.fillSamples(x + first * s.inChannels * P, sampleStride: s.inChannels * P, count: count, into: buffer,
                                        bordersZeroed: first != samples.lowerBound)
                    stacked.forwardSamples(buffer: buffer, weight: weights[0], count: count, y: y! + first * s.outChannels * L,
                                           sampleStride: s.outChannels * L, scratch: scratch, chunk: chunk)
                }
                return
            }
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: padded.bufferCount)
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: coutG * chunk)
            let sampleOutput = sink == nil || y != nil ? nil : UnsafeMutablePointer<Float>.allocate(capacity: max(s.outChannels * L, 1))
            defer { buffer.deallocate(); scratch.deallocate(); sampleOutput?.deallocate() }
            padded.prepare(buffer)
            for n in samples {
                let out = sampleOutput ?? y! + n * s.outChannels * L
                for gi in 0..<s.groups {
                    padded.fill(x + (n * s.inChannels + gi * cinG) * P, into: buffer, bordersZeroed: n != samples.lowerBound || gi > 0)
                    padded.forward(buffer: buffer, weight: weights[gi], y: out + gi * coutG * L, scratch: scratch, chunk: chunk)
                }
                sink?(n, out)
            }
        }
    }

    /// Threads for a stride-1 float32 convolution's samples: one for small work.
    static func forwardThreads(_ s: Sizes, _ g: WindowGeometry, rows: Int) -> Int {
        s.batch * s.outChannels * g.outputPlane * rows < GEMM.parallelWorkThreshold ? 1 : min(Threading.maxThreads, s.batch)
    }

    /// Each group's weight `[coutG, cinG * kernelVolume]` packed for ``PaddedColumns/forward(buffer:weight:y:scratch:chunk:)``,
    /// with the bias as one more column when given (it multiplies the padded buffer's row of ones).
    static func packedWeights(_ w: UnsafePointer<Float>, bias: UnsafePointer<Float>?, _ s: Sizes, _ g: WindowGeometry) -> [GEMM.PackedSingleA] {
        let cinG = s.inChannels / s.groups, coutG = s.outChannels / s.groups
        let weightColumns = cinG * g.kernelVolume, rows = weightColumns + (bias == nil ? 0 : 1)
        return (0..<s.groups).map { gi in
            guard let bias else {
                return GEMM.PackedSingleA(m: coutG, k: rows, a: w + gi * coutG * rows, rowStride: rows, colStride: 1)
            }
            // [W_g | b_g]: the bias multiplies the row of ones.
            let augmented = [Float](unsafeUninitializedCapacity: coutG * rows) { buffer, count in
                for o in 0..<coutG {
                    let row = buffer.baseAddress! + o * rows
                    row.initialize(from: w + (gi * coutG + o) * weightColumns, count: weightColumns)
                    row[weightColumns] = bias[gi * coutG + o]
                }
                count = coutG * rows
            }
            return GEMM.PackedSingleA(m: coutG, k: rows, a: augmented, rowStride: rows, colStride: 1)
        }
    }

    /// Columns per product of a stride-1 forward (whole tiles, a partial tile costs a whole one;
    /// about 256 KB of B) and how many samples one product covers (``PaddedColumns/stackedSamples(_:channels:tileColumns:samples:)``;
    /// 1 with a per-sample `sink`).
    static func forwardLayout(_ padded: PaddedColumns, weights: [GEMM.PackedSingleA], _ s: Sizes, _ g: WindowGeometry,
                              threads: Int, sink: Bool) -> (chunk: Int, stack: Int) {
        let rows = padded.rowOffsets.count, nr = weights[0].tileColumns
        let chunk = max(nr, chunkElements / rows / nr * nr)
        let stack = sink || s.groups > 1 || padded.writesRows(tileColumns: nr) || padded.rowsPerTile(weights[0]) > 1 ? 1
            : PaddedColumns.stackedSamples(g, channels: s.inChannels / s.groups, tileColumns: nr, samples: s.batch / threads)
        return (chunk, stack)
    }

    /// Input and weight gradients of ``forward``; either output may be `nil` (not needed). With
    /// `planeSums` (`[batch, outChannels]`), the float32 weight gradient of a stride-1
    /// convolution also writes each output-gradient plane's ``biasPlaneSum(_:_:)`` while the
    /// plane is in cache, and the result says so (`false`: not written).
    @discardableResult
    static func backward<T: TensorFloat>(x: UnsafePointer<T>, w: UnsafePointer<T>, gy: UnsafePointer<T>,
                                         dx: UnsafeMutablePointer<T>?, dw: UnsafeMutablePointer<T>?,
                                         _ s: Sizes, _ g: WindowGeometry,
                                         planeSums: UnsafeMutablePointer<Double>? = nil) -> Bool {
        var dx = dx, dw = dw, summed = false
        let rows = s.inChannels / s.groups * g.kernelVolume
        let paddedWeightGradient = T.self == Float.self && !g.isPointwise && rows > 0 && PaddedColumns.applies(g)
        if let target = dx, let weights = dw, paddedWeightGradient, s.outChannels > 0,
           paddedGradients(x: UnsafeRawPointer(x).assumingMemoryBound(to: Float.self), w: UnsafeRawPointer(w).assumingMemoryBound(to: Float.self),
                           gy: UnsafeRawPointer(gy).assumingMemoryBound(to: Float.self),
                           dx: UnsafeMutableRawPointer(target).assumingMemoryBound(to: Float.self),
                           dw: UnsafeMutableRawPointer(weights).assumingMemoryBound(to: Float.self), s, g, planeSums: planeSums) {
            return planeSums != nil
        }
        if let target = dx, T.self == Float.self, let adjoint = adjointGeometry(g) {
            inputGradientAsConvolution(w: w, gy: gy, dx: target, s, g, adjoint)
            dx = nil
        }
        let cinG = s.inChannels / s.groups, coutG = s.outChannels / s.groups
        let L = g.outputPlane, P = g.inputPlane, oW = g.output[2]
        if let target = dw, paddedWeightGradient {
            paddedGradients(x: UnsafeRawPointer(x).assumingMemoryBound(to: Float.self), w: UnsafeRawPointer(w).assumingMemoryBound(to: Float.self),
                            gy: UnsafeRawPointer(gy).assumingMemoryBound(to: Float.self), dx: nil,
                            dw: UnsafeMutableRawPointer(target).assumingMemoryBound(to: Float.self), s, g, planeSums: planeSums)
            dw = nil
            summed = planeSums != nil
        }
        if dx == nil && dw == nil { return summed }
        let chunks = Chunks<T>(g, rows: rows)
        defer { chunks.release() }
        dw?.update(repeating: 0, count: s.outChannels * rows)
        dx?.update(repeating: 0, count: s.batch * s.inChannels * P)
        for n in 0..<s.batch {
            for gi in 0..<s.groups {
                let src = x + (n * s.inChannels + gi * cinG) * P
                let grad = gy + (n * s.outChannels + gi * coutG) * L
                let weight = w + gi * coutG * rows
                let target = dx.map { $0 + (n * s.inChannels + gi * cinG) * P }
                guard let cols = chunks.scratch else {
                    // dW_g += gy_ng [coutG, L] x x_ng^T; dx_ng = W_g^T [rows, coutG] x gy_ng
                    if let dw { gemm(m: coutG, n: rows, k: L, a: grad, L, 1, b: src, 1, L, beta: 1, c: dw + gi * coutG * rows, ldc: rows) }
                    if let target { gemm(m: rows, n: L, k: coutG, a: weight, 1, rows, b: grad, L, 1, beta: 0, c: target, ldc: L) }
                    continue
                }
                for range in chunks.ranges {
                    let width = range.count * oW, offset = range.lowerBound * oW
                    if let dw {
                        ColumnMatrix.im2col(src, channels: cinG, g, rows: range, into: cols)
                        gemm(m: coutG, n: rows, k: width, a: grad + offset, L, 1, b: cols, 1, width, beta: 1,
                             c: dw + gi * coutG * rows, ldc: rows)
                    }
                    if let target {
                        gemm(m: rows, n: width, k: coutG, a: weight, 1, rows, b: grad + offset, L, 1, beta: 0, c: cols, ldc: width)
                        ColumnMatrix.col2im(cols, channels: cinG, g, rows: range, into: target)
                    }
                }
            }
        }
        return summed
    }

    /// One output-gradient plane's sum for the bias gradient: sixteen Double lanes
    /// (`ember_bn_plane_sum_f32`, BatchNorm's sum), the bias gradient then adds the planes' sums
    /// over the batch in order, so the result does not depend on where or on how many threads the
    /// planes were summed.
    @inline(__always)
    static func biasPlaneSum(_ plane: UnsafePointer<Float>, _ count: Int) -> Double {
        ember_bn_plane_sum_f32(Int32(GEMMKernelPath.best.rawValue), plane, count, 0, 0)
    }

    /// The float32 weight gradient of a stride-1 convolution without a column matrix and, when `dx`
    /// is given, its input gradient in the same pass over the samples.
    ///
    /// `dW_g^T [rows, coutG] = sum over samples of cols_ng [rows, columns] x gy_ng^T`, where row `r`
    /// of `cols_ng` is read in place from the sample's zero-padded input (``PaddedColumns``) and
    /// `gy_ng` is spread over the padded columns with zeros at the dropped ones
    /// (``addWeightGradient(_:input:outputGradient:channels:buffer:bordersZeroed:offsets:planeSums:into:)``).
    /// Samples split over threads, each accumulating its own `dW^T`; the sums are transposed into
    /// `dw` at the end. With `dx`, each sample's input gradient is computed first
    /// (``inputGradientAsConvolution``'s forward, per sample), and its output gradient, just copied
    /// into the input gradient's padded buffer, is then packed for the weight gradient while it is
    /// still in cache: run one after the other, each read it from memory. Bitwise the two alone.
    /// Returns `false`, having written nothing, where the input gradient cannot run here: no
    /// ``adjointGeometry(_:)``, or its forward would stack samples (small planes:
    /// ``PaddedColumns/stackedSamples(_:channels:tileColumns:samples:)``).
    @discardableResult
    static func paddedGradients(x: UnsafePointer<Float>, w: UnsafePointer<Float>, gy: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>,
                                _ s: Sizes, _ g: WindowGeometry, planeSums: UnsafeMutablePointer<Double>?) -> Bool {
        let cinG = s.inChannels / s.groups, coutG = s.outChannels / s.groups
        let L = g.outputPlane, P = g.inputPlane
        let weightPadded = PaddedColumns(g, channels: cinG)
        let rows = weightPadded.rowOffsets.count
        var threads = forwardThreads(s, g, rows: rows)
        // The input gradient's layout, and its weight (reversed taps, swapped channel axes) packed.
        var input: (padded: PaddedColumns, weights: [GEMM.PackedSingleA], chunk: Int)?
        if dx != nil {
            guard let adjoint = adjointGeometry(g) else { return false }
            let adjointSizes = Sizes(batch: s.batch, inChannels: s.outChannels, outChannels: s.inChannels, groups: s.groups)
            let padded = PaddedColumns(adjoint, channels: coutG)
            let flipped = flippedWeight(w, s, g)
            defer { flipped.deallocate() }
            let weights = packedWeights(flipped, bias: nil, adjointSizes, adjoint)
            threads = min(threads, forwardThreads(adjointSizes, adjoint, rows: padded.rowOffsets.count))
            let (chunk, stack) = forwardLayout(padded, weights: weights, adjointSizes, adjoint, threads: threads, sink: false)
            guard stack == 1 else { return false }
            input = (padded, weights, chunk)
        }
        let perThread = s.groups * rows * coutG
        let sums = UnsafeMutablePointer<Float>.allocate(capacity: max(threads * perThread, 1))
        defer { sums.deallocate() }
        sums.update(repeating: 0, count: threads * perThread)
        Threading.parallelFor(chunks: threads) { part in
            let weightBuffer = UnsafeMutablePointer<Float>.allocate(capacity: weightPadded.bufferCount)
            let inputBuffer = input.map { UnsafeMutablePointer<Float>.allocate(capacity: $0.padded.bufferCount) }
            let scratch = input.map { UnsafeMutablePointer<Float>.allocate(capacity: cinG * $0.chunk) }
            defer { weightBuffer.deallocate(); inputBuffer?.deallocate(); scratch?.deallocate() }
            let sum = sums + part * perThread
            weightPadded.rowOffsets.withUnsafeBufferPointer { offsets in
                let samples = (s.batch * part / threads)..<(s.batch * (part + 1) / threads)
                for n in samples {
                    for gi in 0..<s.groups {
                        let again = n != samples.lowerBound || gi > 0
                        let planes = gy + (n * s.outChannels + gi * coutG) * L
                        if let input, let dx, let inputBuffer, let scratch {
                            input.padded.fill(planes, into: inputBuffer, bordersZeroed: again)
                            input.padded.forward(buffer: inputBuffer, weight: input.weights[gi], y: dx + (n * s.inChannels + gi * cinG) * P,
                                                 scratch: scratch, chunk: input.chunk)
                        }
                        addWeightGradient(weightPadded, input: x + (n * s.inChannels + gi * cinG) * P, outputGradient: planes,
                                          channels: coutG, buffer: weightBuffer, bordersZeroed: again, offsets: offsets.baseAddress!,
                                          planeSums: planeSums.map { $0 + n * s.outChannels + gi * coutG }, into: sum + gi * rows * coutG)
                    }
                }
            }
        }
        reduceWeightGradient(sums, threads: threads, perThread: perThread, into: dw, s, rows: rows)
        return true
    }

    /// One sample and group's share of a stride-1 weight gradient: its `input` planes copied into
    /// `buffer` (``PaddedColumns/fill(_:into:bordersZeroed:)``), with `planeSums` each of its
    /// `channels` output-gradient planes' ``biasPlaneSum(_:_:)``, and `sum += cols gy^T` (`sum` is
    /// `[rows, channels]`), `gy` spread over the padded columns and packed panel by panel straight
    /// from its planes (``PaddedColumns/packSpread(_:pc:kc:jc:nc:into:nr:)``).
    static func addWeightGradient(_ padded: PaddedColumns, input: UnsafePointer<Float>, outputGradient planes: UnsafePointer<Float>,
                                  channels: Int, buffer: UnsafeMutablePointer<Float>, bordersZeroed: Bool, offsets: UnsafePointer<Int>,
                                  planeSums: UnsafeMutablePointer<Double>?, into sum: UnsafeMutablePointer<Float>) {
        padded.fill(input, into: buffer, bordersZeroed: bordersZeroed)
        let L = padded.g.outputPlane
        if let planeSums {
            for o in 0..<channels { planeSums[o] = biasPlaneSum(planes + o * L, L) }
        }
        GEMM.sgemm(m: padded.rowOffsets.count, n: channels, k: padded.columns, a: buffer, rowOffsets: offsets, beta: 1,
                   c: sum, ldc: channels) { pc, kc, jc, nc, panel, nr in
            padded.packSpread(planes, pc: pc, kc: kc, jc: jc, nc: nc, into: panel, nr: nr)
        }
    }

    /// `dW_g` (`[coutG, rows]` per group) from the threads' transposed sums (`[rows, coutG]` per
    /// group, `perThread` floats per thread), added in thread order.
    static func reduceWeightGradient(_ sums: UnsafePointer<Float>, threads: Int, perThread: Int, into dw: UnsafeMutablePointer<Float>,
                                     _ s: Sizes, rows: Int) {
        let coutG = s.outChannels / s.groups
        for gi in 0..<s.groups {
            for o in 0..<coutG {
                let to = dw + (gi * coutG + o) * rows
                for r in 0..<rows {
                    var total: Float = 0
                    for t in 0..<threads { total += sums[t * perThread + (gi * rows + r) * coutG + o] }
                    to[r] = total
                }
            }
        }
    }

    /// For a stride-1 convolution whose padding is at most the dilated kernel's reach, the input
    /// gradient is itself a stride-1 convolution: of the output gradient, with the weight's taps
    /// reversed and its channel axes swapped, and padding `dilation (k - 1) - padding` on each
    /// side. This is its geometry (so the input gradient runs on the fast forward path), or `nil`.
    static func adjointGeometry(_ g: WindowGeometry) -> WindowGeometry? {
        guard g.stride == [1, 1, 1], !g.isPointwise else { return nil }
        let reach = (0..<3).map { g.dilation[$0] * (g.kernel[$0] - 1) }
        let before = (0..<3).map { reach[$0] - g.padBefore[$0] }, after = (0..<3).map { reach[$0] - g.padAfter[$0] }
        guard (before + after).allSatisfy({ $0 >= 0 }) else { return nil }
        return WindowGeometry(input: g.output, kernel: g.kernel, stride: [1, 1, 1], padBefore: before, padAfter: after,
                              dilation: g.dilation, output: g.input)
    }

    /// `dx` as the convolution of `gy` with the reversed, transposed weight (``adjointGeometry(_:)``).
    static func inputGradientAsConvolution<T: TensorFloat>(w: UnsafePointer<T>, gy: UnsafePointer<T>, dx: UnsafeMutablePointer<T>,
                                                           _ s: Sizes, _ g: WindowGeometry, _ adjoint: WindowGeometry) {
        let flipped = flippedWeight(w, s, g)
        defer { flipped.deallocate() }
        forward(x: gy, w: flipped, bias: nil, y: dx,
                Sizes(batch: s.batch, inChannels: s.outChannels, outChannels: s.inChannels, groups: s.groups), adjoint)
    }

    /// The weight of the input gradient as a convolution (``adjointGeometry(_:)``), taps reversed
    /// and channel axes swapped: `w'[gi * cinG + c, o, t] = w[gi * coutG + o, c, k - 1 - t]`
    /// (the caller deallocates it).
    static func flippedWeight<T>(_ w: UnsafePointer<T>, _ s: Sizes, _ g: WindowGeometry) -> UnsafeMutablePointer<T> {
        let cinG = s.inChannels / s.groups, coutG = s.outChannels / s.groups, k = g.kernelVolume
        let flipped = UnsafeMutablePointer<T>.allocate(capacity: max(s.inChannels * coutG * k, 1))
        for gi in 0..<s.groups {
            for c in 0..<cinG {
                for o in 0..<coutG {
                    let from = w + ((gi * coutG + o) * cinG + c) * k, to = flipped + ((gi * cinG + c) * coutG + o) * k
                    for t in 0..<k { to[t] = from[k - 1 - t] }
                }
            }
        }
        return UnsafeMutablePointer(flipped)
    }

    /// Transposed convolution: `y_ng = col2im(W_g^T x_ng)`, then the bias per channel.
    static func transposedForward<T: TensorFloat>(x: UnsafePointer<T>, w: UnsafePointer<T>, bias: UnsafePointer<T>?,
                                                  y: UnsafeMutablePointer<T>, _ s: Sizes, _ g: WindowGeometry) {
        let cinG = s.inChannels / s.groups, coutG = s.outChannels / s.groups
        let rows = coutG * g.kernelVolume, Lin = g.outputPlane, P = g.inputPlane, oW = g.output[2]
        let chunks = Chunks<T>(g, rows: rows)
        defer { chunks.release() }
        y.update(repeating: 0, count: s.batch * s.outChannels * P)
        for n in 0..<s.batch {
            for gi in 0..<s.groups {
                let target = y + (n * s.outChannels + gi * coutG) * P
                let input = x + (n * s.inChannels + gi * cinG) * Lin, weight = w + gi * cinG * rows
                guard let cols = chunks.scratch else {
                    gemm(m: rows, n: Lin, k: cinG, a: weight, 1, rows, b: input, Lin, 1, beta: 0, c: target, ldc: Lin)
                    continue
                }
                for range in chunks.ranges {
                    let width = range.count * oW
                    gemm(m: rows, n: width, k: cinG, a: weight, 1, rows, b: input + range.lowerBound * oW, Lin, 1, beta: 0,
                         c: cols, ldc: width)
                    ColumnMatrix.col2im(cols, channels: coutG, g, rows: range, into: target)
                }
            }
        }
        if let bias {
            for n in 0..<s.batch {
                for o in 0..<s.outChannels {
                    let b = bias[o], p = y + (n * s.outChannels + o) * P
                    for j in 0..<P { p[j] += b }
                }
            }
        }
    }

    /// Input and weight gradients of ``transposedForward``.
    static func transposedBackward<T: TensorFloat>(x: UnsafePointer<T>, w: UnsafePointer<T>, gy: UnsafePointer<T>,
                                                   dx: UnsafeMutablePointer<T>?, dw: UnsafeMutablePointer<T>?,
                                                   _ s: Sizes, _ g: WindowGeometry) {
        let cinG = s.inChannels / s.groups, coutG = s.outChannels / s.groups
        let rows = coutG * g.kernelVolume, Lin = g.outputPlane, P = g.inputPlane, oW = g.output[2]
        let chunks = Chunks<T>(g, rows: rows)
        defer { chunks.release() }
        dw?.update(repeating: 0, count: s.inChannels * rows)
        if rows == 0 { dx?.update(repeating: 0, count: s.batch * s.inChannels * Lin) }
        for n in 0..<s.batch {
            for gi in 0..<s.groups {
                let grad = gy + (n * s.outChannels + gi * coutG) * P
                let input = x + (n * s.inChannels + gi * cinG) * Lin, weight = w + gi * cinG * rows
                let target = dx.map { $0 + (n * s.inChannels + gi * cinG) * Lin }
                for range in chunks.scratch == nil ? [0..<(g.output[0] * g.output[1])] : chunks.ranges {
                    let width = range.count * oW, offset = range.lowerBound * oW
                    let cols: UnsafePointer<T>
                    if let scratch = chunks.scratch {
                        ColumnMatrix.im2col(grad, channels: coutG, g, rows: range, into: scratch)
                        cols = UnsafePointer(scratch)
                    } else {
                        cols = grad
                    }
                    // dx_ng[:, chunk] = W_g [cinG, rows] x cols; dW_g += x_ng[:, chunk] x cols^T
                    if let target {
                        gemm(m: cinG, n: width, k: rows, a: weight, rows, 1, b: cols, chunks.scratch == nil ? Lin : width, 1,
                             beta: 0, c: target + offset, ldc: Lin)
                    }
                    if let dw {
                        gemm(m: cinG, n: rows, k: width, a: input + offset, Lin, 1, b: cols, 1, chunks.scratch == nil ? Lin : width,
                             beta: 1, c: dw + gi * cinG * rows, ldc: rows)
                    }
                }
            }
        }
    }
}
