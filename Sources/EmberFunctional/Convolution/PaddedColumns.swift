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
struct PaddedColumns {
    let g: WindowGeometry
    let channels: Int
    /// Padded sizes.
    let dp: Int, hp: Int, wp: Int
    /// Padded output columns (the last real output's corner, plus one).
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
    init(_ g: WindowGeometry, channels: Int, bias: Bool = false) {
        self.g = g
        self.channels = channels
        dp = g.input[0] + g.padBefore[0] + g.padAfter[0]
        hp = g.input[1] + g.padBefore[1] + g.padAfter[1]
        wp = g.input[2] + g.padBefore[2] + g.padAfter[2]
        columns = (g.output[0] - 1) * hp * wp + (g.output[1] - 1) * wp + g.output[2]
        var offsets: [Int] = []
        offsets.reserveCapacity(channels * g.kernelVolume)
        for c in 0..<channels {
            for kd in 0..<g.kernel[0] {
                for kh in 0..<g.kernel[1] {
                    for kw in 0..<g.kernel[2] {
                        offsets.append(((c * dp + kd * g.dilation[0]) * hp + kh * g.dilation[1]) * wp + kw * g.dilation[2])
                    }
                }
            }
        }
        let image = channels * dp * hp * wp
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

    /// Copies `channels` input planes into `buffer` with zero borders. With `bordersZeroed` the
    /// buffer's borders are already zero (an earlier `fill` of this layout wrote them, and
    /// nothing since has written outside the planes' interiors): only the interiors are copied.
    func fill(_ src: UnsafePointer<Float>, into buffer: UnsafeMutablePointer<Float>, bordersZeroed: Bool = false) {
        let iD = g.input[0], iH = g.input[1], iW = g.input[2]
        let before = g.padBefore[2]
        // Only the padding is zeroed: whole padded planes and rows, then the ends of each row.
        var zeroFrom = 0
        for c in 0..<channels {
            for d in 0..<dp {
                let inside = d >= g.padBefore[0] && d < g.padBefore[0] + iD
                for h in 0..<hp where inside && h >= g.padBefore[1] && h < g.padBefore[1] + iH {
                    let row = ((c * dp + d) * hp + h) * wp
                    if !bordersZeroed { (buffer + zeroFrom).update(repeating: 0, count: row + before - zeroFrom) }
                    Self.copy(src + ((c * iD + d - g.padBefore[0]) * iH + h - g.padBefore[1]) * iW, to: buffer + row + before, count: iW)
                    zeroFrom = row + before + iW
                }
            }
        }
        if !bordersZeroed { (buffer + zeroFrom).update(repeating: 0, count: (onesOffset ?? bufferCount) - zeroFrom) }
    }

    /// Copies `planes` output planes (`[planes, outputPlane]`) into `[planes, columns]` in padded
    /// column coordinates, zero at the dropped columns: the right operand of the weight gradient.
    /// With `droppedZeroed` the dropped columns are already zero (an earlier `spread` of this
    /// layout and plane count wrote them).
    func spread(_ src: UnsafePointer<Float>, planes: Int, into dst: UnsafeMutablePointer<Float>, droppedZeroed: Bool = false) {
        let oD = g.output[0], oH = g.output[1], oW = g.output[2]
        if !droppedZeroed { dst.update(repeating: 0, count: planes * columns) }
        for o in 0..<planes {
            for od in 0..<oD {
                for oh in 0..<oH {
                    Self.copy(src + o * g.outputPlane + (od * oH + oh) * oW, to: dst + o * columns + (od * hp + oh) * wp, count: oW)
                }
            }
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
        let outChannels = weight.m
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
        // The runs of real output columns in a chunk, found once per chunk for every channel:
        // (offset in the chunk, offset in an output plane, length).
        var runs: [(from: Int, to: Int, count: Int)] = []
        rowOffsets.withUnsafeBufferPointer { offsets in
            var start = 0
            while start < columns {
                let width = min(chunk, columns - start)
                GEMM.sgemm(weight, n: width, b: buffer + start, rowOffsets: offsets.baseAddress!, beta: 0, c: scratch, ldc: width)
                runs.removeAll(keepingCapacity: true)
                var j = start
                while j < start + width {
                    let od = j / plane, rest = j - od * plane, oh = rest / wp, ow = rest - oh * wp
                    let run = min(wp - ow, start + width - j)
                    if oh < oH && ow < oW { runs.append((j - start, (od * oH + oh) * oW + ow, min(run, oW - ow))) }
                    j += run
                }
                for o in 0..<outChannels {
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
