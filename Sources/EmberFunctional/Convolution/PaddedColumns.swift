import CEmberKernels
import EmberStorage

/// The float32 forward of a stride-1 convolution without a column matrix.
///
/// The input planes are copied once into a zero-padded buffer. In padded coordinates every
/// kernel tap reads the input at a fixed offset from the window's corner, so row `r` of the column
/// matrix is the padded buffer itself from offset `rowOffset[r]`, over "padded" output columns
/// `j = od * Hp * Wp + oh * Wp + ow`. The micro-kernels read those rows in place from the buffer
/// (`GEMM.sgemm(_:n:b:rowOffsets:...)`, the weight packed once per call); the columns with
/// `ow >= oW` or `oh >= oH` are computed and dropped when the result is compacted into the
/// output. Compared with building the column matrix and packing it again, this saves a pass over
/// `kernelVolume` times the input, at the cost of the dropped columns (`Wp / oW` more work, 6% for
/// a 3x3 kernel with padding 1 on 32 columns). When the output rows are a whole number of the
/// kernel's tiles wide (32 or 16 columns on 16-wide tiles) the products run one output row at a
/// time instead, written straight into the output: no dropped columns and no compaction.
///
/// Small padded planes waste much of a tile row on the last few columns of each sample (13 x 13
/// outputs on 15 x 15 padded planes are 193 columns, seven 32-wide tiles for 169 outputs). With
/// `stack` samples, the buffer holds each channel's planes of that many samples one below the
/// other, sharing their padding rows, and one product covers them all (``forwardSamples``).
struct PaddedColumns {
    let g: WindowGeometry
    let channels: Int
    /// Padded sizes.
    let dp: Int, hp: Int, wp: Int
    /// Samples per buffer, their planes stacked along the height (2-D geometries only), and the
    /// rows from one sample's plane to the next (the input's rows plus the larger of the two
    /// paddings: the padding rows between two samples are shared).
    let stack: Int, sampleRows: Int
    /// Rows of one channel's (stacked) plane in the buffer.
    let planeRows: Int
    /// Padded output columns (the last real output's corner, plus one), for `stack` samples.
    let columns: Int
    /// Per column-matrix row, its offset in the padded buffer.
    let rowOffsets: [Int]
    /// Elements of the padded buffer, with slack for the micro-kernel's reads past the last column.
    let bufferCount: Int
    /// Where the run of ones starts that the last row reads when the product carries the bias
    /// (the weight gains a bias column), or `nil`.
    let onesOffset: Int?

    /// The layout for `channels` input planes; with `bias`, one more column-matrix row of ones
    /// after the image, so the bias is one more multiply-add of the product instead of a pass
    /// over the output.
    init(_ g: WindowGeometry, channels: Int, bias: Bool = false, stack: Int = 1) {
        precondition(stack == 1 || Self.stacks(g), "PaddedColumns: samples stack only for 2-D geometries")
        self.g = g
        self.channels = channels
        self.stack = stack
        dp = g.input[0] + g.padBefore[0] + g.padAfter[0]
        hp = g.input[1] + g.padBefore[1] + g.padAfter[1]
        wp = g.input[2] + g.padBefore[2] + g.padAfter[2]
        sampleRows = g.input[1] + max(g.padBefore[1], g.padAfter[1])
        planeRows = (stack - 1) * sampleRows + hp
        columns = (g.output[0] - 1) * hp * wp + ((stack - 1) * sampleRows + g.output[1] - 1) * wp + g.output[2]
        var offsets: [Int] = []
        offsets.reserveCapacity(channels * g.kernelVolume)
        for c in 0..<channels {
            for kd in 0..<g.kernel[0] {
                for kh in 0..<g.kernel[1] {
                    for kw in 0..<g.kernel[2] {
                        offsets.append(((c * dp + kd * g.dilation[0]) * planeRows + kh * g.dilation[1]) * wp + kw * g.dilation[2])
                    }
                }
            }
        }
        let image = channels * dp * planeRows * wp
        onesOffset = bias ? image : nil
        if bias { offsets.append(image) }
        rowOffsets = offsets
        // Slack for the kernels' reads past the last column: a tile's width (at most 32), or, for
        // tiles over several output rows, one padded row more.
        bufferCount = image + (bias ? columns : 0) + 64 + wp
    }

    /// Writes the run of ones (once per buffer: ``fill(_:into:)`` leaves it alone).
    func prepare(_ buffer: UnsafeMutablePointer<Float>) {
        if let onesOffset { (buffer + onesOffset).update(repeating: 1, count: bufferCount - onesOffset) }
    }

    /// Whether this path applies: stride 1 everywhere.
    static func applies(_ g: WindowGeometry) -> Bool { g.stride == [1, 1, 1] }

    /// Whether samples may stack: a 2-D (or 1-D) geometry, no depth.
    static func stacks(_ g: WindowGeometry) -> Bool {
        g.input[0] == 1 && g.kernel[0] == 1 && g.padBefore[0] == 0 && g.padAfter[0] == 0
    }

    /// How many samples a forward should stack (1: none): when one sample's padded columns end
    /// in a partly used tile of `tileColumns` and its stacked share (its plane, sharing padding
    /// rows) is at least 5% fewer columns, as many as keep the buffer near 256 KB, at most
    /// `samples`.
    static func stackedSamples(_ g: WindowGeometry, channels: Int, tileColumns nr: Int, samples: Int) -> Int {
        guard stacks(g), samples > 1 else { return 1 }
        let single = PaddedColumns(g, channels: 0)
        let tiles = (single.columns + nr - 1) / nr * nr, share = single.sampleRows * single.wp
        guard share * 20 < tiles * 19 else { return 1 }
        return max(1, min(samples, 16, 65_536 / max(channels * share, 1)))
    }

    /// Copies `channels` input planes into `buffer` with zero borders. With `bordersZeroed` the
    /// buffer's borders are already zero (an earlier `fill` of this layout wrote them, and
    /// nothing since has written outside the planes' interiors): only the interiors are copied.
    func fill(_ src: UnsafePointer<Float>, into buffer: UnsafeMutablePointer<Float>, bordersZeroed: Bool = false) {
        let iD = g.input[0], iH = g.input[1], iW = g.input[2]
        let d0 = g.padBefore[0], h0 = g.padBefore[1], before = g.padBefore[2]
        if bordersZeroed {
            // The interiors alone: rows of iW at a padded-row stride.
            var from = src
            let path = Int32(GEMMKernelPath.best.rawValue)
            for c in 0..<channels {
                for d in d0..<(d0 + iD) {
                    ember_copy_rows_f32(path, iH, iW, from, iW, buffer + ((c * dp + d) * hp + h0) * wp + before, wp)
                    from += iH * iW
                }
            }
            return
        }
        // Only the padding is zeroed: whole padded planes and rows, then the ends of each row.
        var zeroFrom = 0
        for c in 0..<channels {
            for d in 0..<dp {
                let inside = d >= d0 && d < d0 + iD
                for h in 0..<hp where inside && h >= h0 && h < h0 + iH {
                    let row = ((c * dp + d) * hp + h) * wp
                    (buffer + zeroFrom).update(repeating: 0, count: row + before - zeroFrom)
                    Self.copy(src + ((c * iD + d - d0) * iH + h - h0) * iW, to: buffer + row + before, count: iW)
                    zeroFrom = row + before + iW
                }
            }
        }
        (buffer + zeroFrom).update(repeating: 0, count: (onesOffset ?? bufferCount) - zeroFrom)
    }

    /// ``fill(_:into:bordersZeroed:)`` for `count <= stack` samples (`sampleStride` elements apart
    /// in `src`), sample `s` at rows `s * sampleRows` of each channel's stacked plane. Rows of
    /// samples `count..<stack` left from an earlier call are read only by dropped columns.
    func fillSamples(_ src: UnsafePointer<Float>, sampleStride: Int, count: Int, into buffer: UnsafeMutablePointer<Float>,
                     bordersZeroed: Bool) {
        precondition(count >= 1 && count <= stack, "PaddedColumns: \(count) samples for a stack of \(stack)")
        let iH = g.input[1], iW = g.input[2]
        if !bordersZeroed { buffer.update(repeating: 0, count: onesOffset ?? bufferCount) }
        for n in 0..<count {
            var from = src + n * sampleStride
            for c in 0..<channels {
                var to = buffer + (c * planeRows + n * sampleRows + g.padBefore[1]) * wp + g.padBefore[2]
                for _ in 0..<iH {
                    Self.copy(from, to: to, count: iW)
                    from += iW
                    to += wp
                }
            }
        }
    }

    /// Packs rows `pc..<pc + kc` and columns `jc..<jc + nc` of the weight gradient's right operand
    /// into GEMM strips of `nr` columns (`GEMM.packFloatB`'s layout): element `(p, j)` is plane `j` of
    /// `src` (`[planes, outputPlane]`) at padded column `p`, 0 at the dropped columns. Packed
    /// straight from the planes: a copy spread over the padded columns first cost a pass.
    func packSpread(_ src: UnsafePointer<Float>, pc: Int, kc: Int, jc: Int, nc: Int, into panel: UnsafeMutablePointer<Float>, nr: Int) {
        let oH = g.output[1], oW = g.output[2], plane = hp * wp, L = g.outputPlane
        var strip = panel, j0 = jc
        while j0 < jc + nc {
            let width = min(nr, jc + nc - j0)
            var p = pc
            while p < pc + kc {
                // The rest of padded row (od, oh) from column ow: its real columns, then dropped ones.
                let od = p / plane, rest = p - od * plane, oh = rest / wp, ow = rest - oh * wp
                let run = min(wp - ow, pc + kc - p)
                let real = oh < oH ? max(0, min(oW - ow, run)) : 0
                let dst = strip + (p - pc) * nr
                if real > 0 {
                    GEMM.packFloatB(k: real, n: width, src + j0 * L + (od * oH + oh) * oW + ow, rowStride: 1, colStride: L, into: dst, nr: nr)
                }
                if real < run { (dst + real * nr).update(repeating: 0, count: (run - real) * nr) }
                p += run
            }
            strip += kc * nr
            j0 += nr
        }
    }

    /// Whether products run one output row at a time, written in place, rather than over the
    /// padded columns into scratch and compacted: when whole tiles of `tileColumns` waste no more
    /// of a row than the padding columns do (32 columns on a 16-wide tile: none).
    func writesRows(tileColumns nr: Int) -> Bool {
        let oW = g.output[2]
        return (oW + nr - 1) / nr * nr <= wp || rowOffsets.count <= 32
    }

    /// Output rows per product when one tile covers whole output rows of one vector each (the
    /// rows exactly a vector wide: 16 columns on AVX-512, 8 on AVX2), else 1.
    func rowsPerTile(_ weight: GEMM.PackedSingleA) -> Int {
        let vw = weight.vectorWidth
        return vw > 1 && g.output[2] == vw && weight.tileColumns >= 2 * vw ? weight.tileColumns / vw : 1
    }

    /// `y = W x` for one sample and group: `weight` is `[outChannels, rows]` (its last column the
    /// bias when the layout has the row of ones), `y` `[outChannels, outputPlane]`; `scratch` holds
    /// `outChannels * chunk` floats.
    func forward(buffer: UnsafePointer<Float>, weight: GEMM.PackedSingleA,
                 y: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, chunk: Int) {
        let oD = g.output[0], oH = g.output[1], oW = g.output[2], plane = hp * wp
        let perTile = rowsPerTile(weight)
        if perTile > 1 {
            // Output rows exactly a vector wide: each tile covers `perTile` consecutive output
            // rows, vector j reading its row of the buffer one padded row (wp) after vector j - 1,
            // and the rows are consecutive in y. No dropped columns, no compaction.
            rowOffsets.withUnsafeBufferPointer { offsets in
                for od in 0..<oD {
                    var oh = 0
                    while oh < oH {
                        let rows = min(perTile, oH - oh)
                        GEMM.sgemm(weight, n: rows * oW, b: buffer + od * plane + oh * wp, rowOffsets: offsets.baseAddress!,
                                   vectorStride: wp, beta: 0, c: y + (od * oH + oh) * oW, ldc: g.outputPlane)
                        oh += rows
                    }
                }
            }
            return
        }
        if writesRows(tileColumns: weight.tileColumns) {
            // One product per output row, straight into y: row (od, oh) of every output plane
            // reads the buffer from that row's corner.
            rowOffsets.withUnsafeBufferPointer { offsets in
                for od in 0..<oD {
                    for oh in 0..<oH {
                        GEMM.sgemm(weight, n: oW, b: buffer + od * plane + oh * wp, rowOffsets: offsets.baseAddress!,
                                   beta: 0, c: y + (od * oH + oh) * oW, ldc: g.outputPlane)
                    }
                }
            }
            return
        }
        productCompacted(buffer: buffer, weight: weight, columns: columns, y: y, scratch: scratch, chunk: chunk) { j in
            let od = j / plane, rest = j - od * plane, oh = rest / wp, ow = rest - oh * wp
            return (oh < oH && ow < oW ? (od * oH + oh) * oW + ow : nil, oW - ow, wp - ow)
        }
    }

    /// ``forward(buffer:weight:y:scratch:chunk:)`` for `count <= stack` stacked samples
    /// (``fillSamples``): sample `n`'s output `[outChannels, outputPlane]` goes to
    /// `y + n * sampleStride`.
    func forwardSamples(buffer: UnsafePointer<Float>, weight: GEMM.PackedSingleA, count: Int,
                        y: UnsafeMutablePointer<Float>, sampleStride: Int, scratch: UnsafeMutablePointer<Float>, chunk: Int) {
        precondition(count >= 1 && count <= stack, "PaddedColumns: \(count) samples for a stack of \(stack)")
        let oH = g.output[1], oW = g.output[2]
        let total = ((count - 1) * sampleRows + oH - 1) * wp + oW
        productCompacted(buffer: buffer, weight: weight, columns: total, y: y, scratch: scratch, chunk: chunk) { j in
            let row = j / wp, ow = j - row * wp, n = row / sampleRows, oh = row - n * sampleRows
            return (oh < oH && ow < oW ? n * sampleStride + oh * oW + ow : nil, oW - ow, wp - ow)
        }
    }

    /// The product over `columns` padded columns, a chunk of columns at a time into `scratch`,
    /// each chunk's real columns then copied to `y` (`[outChannels, outputPlane]`). For a padded
    /// column `j`, `place(j)` gives where its run of real columns starts in `y`'s planes (`nil`
    /// for a dropped column), how many real columns the run has from `j`, and how many columns
    /// are left in its padded row. The runs are found once per chunk for every channel.
    private func productCompacted(buffer: UnsafePointer<Float>, weight: GEMM.PackedSingleA, columns: Int,
                                  y: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, chunk: Int,
                                  place: (Int) -> (to: Int?, real: Int, rowLeft: Int)) {
        var runs: [(from: Int, to: Int, count: Int)] = []
        rowOffsets.withUnsafeBufferPointer { offsets in
            var start = 0
            while start < columns {
                let width = min(chunk, columns - start)
                GEMM.sgemm(weight, n: width, b: buffer + start, rowOffsets: offsets.baseAddress!, beta: 0, c: scratch, ldc: width)
                runs.removeAll(keepingCapacity: true)
                var j = start
                while j < start + width {
                    let (to, real, rowLeft) = place(j)
                    let run = min(rowLeft, start + width - j)
                    if let to { runs.append((j - start, to, min(run, real))) }
                    j += run
                }
                for o in 0..<weight.m {
                    let row = scratch + o * width, plane = y + o * g.outputPlane
                    for run in runs { Self.copy(row + run.from, to: plane + run.to, count: run.count) }
                }
                start += width
            }
        }
    }

    /// Copies `count` floats with eight-wide moves; a run of at least 8 ends with one that
    /// overlaps the previous (the source and destination never overlap each other).
    @inline(__always)
    static func copy(_ from: UnsafePointer<Float>, to: UnsafeMutablePointer<Float>, count: Int) {
        if count < 8 {
            for i in 0..<count { to[i] = from[i] }
            return
        }
        var i = 0
        while i + 8 <= count {
            UnsafeMutableRawPointer(to + i).storeBytes(of: UnsafeRawPointer(from + i).loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
            i += 8
        }
        if i < count {
            let last = count - 8
            UnsafeMutableRawPointer(to + last).storeBytes(of: UnsafeRawPointer(from + last).loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
        }
    }
}
