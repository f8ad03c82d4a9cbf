import Foundation
import EmberAutograd
import EmberTensor
import EmberStorage

/// Query rows per tile of the tiled attention kernel: the largest multiple of the GEMM
/// micro-kernel's tile rows up to 112 (112 for float32 on AVX-512, 108 on AVX2), so the tile
/// products compute no padding rows. Where a head's packed `K` and `V` exceed
/// `attentionHeadPackingBytes`, each key tile's blocks are packed once per query block: 112 rows
/// rather than 28 pack them a quarter as often (BENCHMARKS.md, "Thirteenth session").
package func attentionQueryBlock(_ dtype: DType) -> Int {
    let mr = GEMM.tileRows(double: dtype == .float64)
    return mr * max(1, 112 / mr)
}
/// Key rows per tile of the tiled attention kernel: 128 rather than 64, so up to 128 keys are one
/// tile per query block (no rescaling) and the products are fewer and deeper (BENCHMARKS.md,
/// "Twelfth session").
package let attentionKeyBlock = 128

/// Bytes per worker thread for a head's keys and values packed once for all its query blocks; a
/// head that needs more packs each key tile again for every query block instead.
package let attentionHeadPackingBytes = 1 << 20

/// The most scratch memory, in bytes, that the tiled (inference) attention kernel of
/// ``scaledDotProductAttention(query:key:value:attnMask:dropoutP:isCausal:scale:enableGQA:generator:)``
/// uses on top of its inputs and output: per worker thread one score tile of at most `112 x 128`, an
/// accumulator of at most `112 x Ev`, five values per query row (running maximum and sum, the
/// tile's shifts, rescale factors and sums) and up to 1 MiB for a head's keys and values packed for
/// the products. It depends on neither `L` nor `S`; the composed path would need `L * S` elements
/// per head for the scores alone.
///
/// PyTorch parity: none (PyTorch's flash-attention CPU kernel has a similar fixed-size buffer).
public func scaledDotProductAttentionWorkspaceBytes(valueDim: Int, dtype: DType, threads: Int = Threading.maxThreads) -> Int {
    let bq = attentionQueryBlock(dtype)
    let perThread = (bq * attentionKeyBlock + bq * valueDim + 5 * bq) * dtype.itemSize + attentionHeadPackingBytes
    return max(threads, 1) * perThread
}

/// Records the scratch bytes tiled-attention calls allocate (for tests: they must not grow with
/// `L * S`). Install one with `AttentionWorkspaceRecorder.$current.withValue(recorder) { ... }`.
package final class AttentionWorkspaceRecorder: @unchecked Sendable {
    /// Scratch bytes of each tiled call made while this recorder was installed, in order.
    package var calls: [Int] = []
    package init() {}
    @TaskLocal package static var current: AttentionWorkspaceRecorder?
}

/// The tiled online-softmax attention (flash-attention style), no graph: blocks of up to 112 queries
/// against blocks of 128 keys; each query row keeps a running maximum `m`, sum `l` and output
/// accumulator, rescaled by `exp(m_old - m_new)` when the maximum grows. A row whose keys are all
/// masked ends with `l = 0` and gives 0 (PyTorch's safe softmax).
func tiledAttention(query: Tensor, key: Tensor, value: Tensor, mask: Tensor?, isCausal: Bool, scale: Double,
                    l: Int, s: Int) -> Tensor {
    let e = query.shape[query.rank - 1], ev = value.shape[value.rank - 1]
    let qBatch = Shape(query.shape.dropLast(2)), kBatch = Shape(key.shape.dropLast(2)), vBatch = Shape(value.shape.dropLast(2))
    let op = "scaled_dot_product_attention"
    var batch = broadcastShapes(broadcastShapes(qBatch, kBatch, op: op), vBatch, op: op)
    var maskView: Tensor?
    if let mask {
        let mb = mask.rank > 2 ? Shape(mask.shape.dropLast(2)) : Shape()
        batch = broadcastShapes(batch, mb, op: op)
        var ms = batch
        ms.append(l); ms.append(s)
        _ = broadcastShapes(mask.shape, ms, op: op)  // checks the mask broadcasts to [..., L, S]
        maskView = mask.expanded(to: ms)              // a view: broadcast dimensions have stride 0
    }
    let nb = batch.elementCount
    // q, k and v are read in place (each batch entry at its own offset, rows a stride apart), so
    // heads split from a projection by a view cost no copy; only strided columns are copied.
    func operand(_ x: Tensor, _ rows: Int, _ cols: Int) -> AttentionOperand {
        var full = batch
        full.append(rows); full.append(cols)
        var view = x.expanded(to: full)
        if cols > 1 && view.strides[view.rank - 1] != 1 { view = view.contiguous() }
        return AttentionOperand(view)
    }
    let q = operand(query, l, e), k = operand(key, s, e), v = operand(value, s, ev)
    var outShape = batch
    outShape.append(l); outShape.append(ev)
    let out = attentionOutput(shape: outShape, like: q.tensor)
    guard nb > 0, l > 0, ev > 0 else { return out }
    let o = AttentionOperand(out)
    // Element offsets of each batch entry's [L, S] mask plane, and the mask's row/column strides.
    var maskPlanes: [Int] = []
    var maskRowStride = 0, maskColStride = 0
    if let mv = maskView {
        maskRowStride = mv.strides[mv.rank - 2]; maskColStride = mv.strides[mv.rank - 1]
        maskPlanes = batchOffsets(mv)
    }
    let bq = attentionQueryBlock(query.dtype)
    let blocks = (l + bq - 1) / bq
    let tasks = nb * blocks
    let threads = max(1, min(Threading.maxThreads, tasks))
    // A head's K^T and V tiles packed once for its query blocks when they fit the packing budget.
    let double = query.dtype == .float64
    let keyTiles = (s + attentionKeyBlock - 1) / attentionKeyBlock
    let keyTilePack = GEMM.packedBCount(k: e, n: attentionKeyBlock, double: double)
    let valueTilePack = GEMM.packedBCount(k: attentionKeyBlock, n: ev, double: double)
    let headPack = keyTiles * (keyTilePack + valueTilePack)
    let packsHeads = blocks > 1 && headPack * query.dtype.itemSize <= attentionHeadPackingBytes
    let perThread = bq * attentionKeyBlock + bq * ev + 5 * bq + (packsHeads ? headPack : 0)
    AttentionWorkspaceRecorder.current?.calls.append(threads * perThread * query.dtype.itemSize)
    let geometry = TileGeometry(l: l, s: s, e: e, ev: ev, queryBlock: bq, blocks: blocks, tasks: tasks, threads: threads, scale: scale,
                                isCausal: isCausal, maskPlanes: maskPlanes, maskRowStride: maskRowStride,
                                maskColStride: maskColStride,
                                headPacking: packsHeads ? (keyTile: keyTilePack, valueTile: valueTilePack, tiles: keyTiles) : nil)
    switch query.dtype {
    case .float32:
        runTiles(Float.self, q, k, v, maskView, o, geometry)
    default:
        runTiles(Double.self, q, k, v, maskView, o, geometry)
    }
    return out
}

/// The element offset of each batch entry's `[rows, cols]` plane of `x` (batch dimensions: all
/// but the last two, in row-major order of the batch index).
private func batchOffsets(_ x: Tensor) -> [Int] {
    let r = x.rank
    let count = Shape(x.shape.dropLast(2)).elementCount
    return (0..<count).map { b in
        var rest = b, off = x.offset
        for d in stride(from: r - 3, through: 0, by: -1) {
            off += (rest % x.shape[d]) * x.strides[d]
            rest /= x.shape[d]
        }
        return off
    }
}

/// A `[..., rows, cols]` operand of the tiled kernel read in place: batch entry `b`'s element
/// `(i, j)` is at `planes[b] + i * rowStride + j` from the storage's start (columns contiguous).
struct AttentionOperand {
    let tensor: Tensor
    let planes: [Int]
    let rowStride: Int
    init(_ tensor: Tensor) {
        self.tensor = tensor
        planes = batchOffsets(tensor)
        rowStride = tensor.strides[tensor.rank - 2]
    }
}

/// The output `[..., L, Ev]`, laid out in memory as the query is: a query split into heads by a
/// view of `[B, L, H * E]` gives an output whose heads merge back by a view; a contiguous query a
/// contiguous output. PyTorch 2.15's CPU `scaled_dot_product_attention` gives the same strides in
/// both cases. Contiguous when the query's columns are not innermost. Uninitialised: the kernel
/// writes every row.
private func attentionOutput(shape: Shape, like q: Tensor) -> Tensor {
    let r = q.rank
    // Dimensions from outermost to innermost in the query's memory (size-1 dimensions anywhere).
    let order = (0..<r).sorted { a, b in
        let (sa, sb) = (q.shape[a] == 1 ? -1 : q.strides[a], q.shape[b] == 1 ? -1 : q.strides[b])
        return sa != sb ? sa > sb : a < b
    }
    guard order.last == r - 1 || q.shape[r - 1] == 1 else {
        return Tensor(uninitializedShape: shape, dtype: q.dtype)
    }
    let stored = Tensor(uninitializedShape: Shape(order.map { shape[$0] }), dtype: q.dtype)
    var inverse = [Int](repeating: 0, count: r)
    for (i, d) in order.enumerated() { inverse[d] = i }
    return stored.permuted(inverse)
}

struct TileGeometry {
    let l, s, e, ev, queryBlock, blocks, tasks, threads: Int
    let scale: Double
    let isCausal: Bool
    let maskPlanes: [Int]
    let maskRowStride, maskColStride: Int
    /// Elements of one packed K^T tile and one packed V tile, and the key tiles per head, when a
    /// head's tiles are packed once for all its query blocks; nil: packed per query block.
    let headPacking: (keyTile: Int, valueTile: Int, tiles: Int)?
}

/// The float types of the tiled kernel, with their `exp` and their matrix product (one thread:
/// the kernel already runs one tile per worker).
protocol AttentionFloat: TensorScalar, BinaryFloatingPoint {
    /// The largest of `row[0..<count]` ignoring NaN (as `x > max` comparisons do), `-inf` if none.
    static func maximum(_ row: UnsafeMutablePointer<Self>, count: Int) -> Self
    /// `row[c] = e^(row[c] - shift)` for `c < count`; returns their sum.
    static func exponentiate(_ row: UnsafeMutablePointer<Self>, count: Int, minus shift: Self) -> Self
    /// ``exponentiate(_:count:minus:)`` of rows `r < rows` of a tile (`cols` values each, rows
    /// `ld` apart) with `shifts[r]`, their sums into `sums[r]`.
    static func exponentiateTile(_ tile: UnsafeMutablePointer<Self>, rows: Int, cols: Int, ld: Int,
                                 shifts: UnsafePointer<Self>, sums: UnsafeMutablePointer<Self>)
    static func gemm(m: Int, n: Int, k: Int, alpha: Self, a: UnsafePointer<Self>, rowStrideA: Int, colStrideA: Int,
                     b: UnsafePointer<Self>, rowStrideB: Int, colStrideB: Int, beta: Self,
                     c: UnsafeMutablePointer<Self>, ldc: Int)
    /// Packs the `k x n` B for ``gemm(m:n:k:alpha:a:rowStrideA:colStrideA:packedB:packedRows:beta:c:ldc:)``.
    static func packB(k: Int, n: Int, _ b: UnsafePointer<Self>, rowStride: Int, colStride: Int,
                      into dst: UnsafeMutablePointer<Self>)
    /// The product with B packed by ``packB(k:n:_:rowStride:colStride:into:)`` with `packedRows`
    /// rows, of which the first `k` are used (A read in place).
    static func gemm(m: Int, n: Int, k: Int, alpha: Self, a: UnsafePointer<Self>, rowStrideA: Int, colStrideA: Int,
                     packedB: UnsafePointer<Self>, packedRows: Int, beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
}
extension AttentionFloat {
    static func exponentiateTile(_ tile: UnsafeMutablePointer<Self>, rows: Int, cols: Int, ld: Int,
                                 shifts: UnsafePointer<Self>, sums: UnsafeMutablePointer<Self>) {
        for r in 0..<rows { sums[r] = exponentiate(tile + r * ld, count: cols, minus: shifts[r]) }
    }
}

extension Float: AttentionFloat {
    /// The row kernel over the whole tile in one call where the CPU has it: one 64-column row is
    /// too short a run to keep the exponential's long dependency chains overlapped.
    static func exponentiateTile(_ tile: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int,
                                 shifts: UnsafePointer<Float>, sums: UnsafeMutablePointer<Float>) {
        if ActivationKernels.scoreKernels {
            // One pass over the tile, with a fused multiply-add exponential (within 2 ulp).
            ActivationKernels.exponentiateRows(tile, rows: rows, cols: cols, ld: ld, shifts: shifts, sums: sums)
            return
        }
        guard ActivationKernels.isAvailable, cols == ld else {
            for r in 0..<rows { sums[r] = exponentiate(tile + r * ld, count: cols, minus: shifts[r]) }
            return
        }
        for r in 0..<rows {
            let row = tile + r * ld, shift = Float8(repeating: shifts[r])
            var c = 0
            while c + 8 <= cols {
                let raw = UnsafeMutableRawPointer(row + c)
                raw.storeBytes(of: raw.loadUnaligned(as: Float8.self) - shift, as: Float8.self)
                c += 8
            }
            while c < cols { row[c] -= shifts[r]; c += 1 }
        }
        ActivationKernels.run(.exp, tile, into: tile, count: rows * cols)
        for r in 0..<rows {
            let row = tile + r * ld
            var lanes = Float8(repeating: 0)
            var c = 0
            while c + 8 <= cols { lanes += UnsafeMutableRawPointer(row + c).loadUnaligned(as: Float8.self); c += 8 }
            var sum = lanes.sum()
            while c < cols { sum += row[c]; c += 1 }
            sums[r] = sum
        }
    }

    static func maximum(_ row: UnsafeMutablePointer<Float>, count: Int) -> Float {
        if ActivationKernels.scoreKernels { return ActivationKernels.rowMaximum(row, count: count) }
        var lanes = Float8(repeating: -.infinity)
        var c = 0
        while c + 8 <= count {
            let x = UnsafeMutableRawPointer(row + c).loadUnaligned(as: Float8.self)
            lanes.replace(with: x, where: x .> lanes)
            c += 8
        }
        var m = -Float.infinity
        for k in 0..<8 where lanes[k] > m { m = lanes[k] }
        while c < count {
            if row[c] > m { m = row[c] }
            c += 1
        }
        return m
    }
    /// Eight lanes at a time with EmberTensor's `expVector` (within 2 ulp of `exp`); on AVX2 CPUs
    /// the exponentials run in `CEmberKernels`' row kernel (bitwise `expVector`), eight lanes per
    /// instruction where the Swift vector code, compiled for SSE2, runs four.
    static func exponentiate(_ row: UnsafeMutablePointer<Float>, count: Int, minus shift: Float) -> Float {
        var sums = Float8(repeating: 0)
        let shifts = Float8(repeating: shift)
        var c = 0
        if ActivationKernels.isAvailable {
            while c + 8 <= count {
                let raw = UnsafeMutableRawPointer(row + c)
                raw.storeBytes(of: raw.loadUnaligned(as: Float8.self) - shifts, as: Float8.self)
                c += 8
            }
            while c < count { row[c] -= shift; c += 1 }
            ActivationKernels.run(.exp, row, into: row, count: count)
            c = 0
            while c + 8 <= count {
                sums += UnsafeMutableRawPointer(row + c).loadUnaligned(as: Float8.self)
                c += 8
            }
            var sum = sums.sum()
            while c < count { sum += row[c]; c += 1 }
            return sum
        }
        while c + 8 <= count {
            let raw = UnsafeMutableRawPointer(row + c)
            let p = expVector(raw.loadUnaligned(as: Float8.self) - shifts)
            raw.storeBytes(of: p, as: Float8.self)
            sums += p
            c += 8
        }
        var sum = sums.sum()
        while c < count {
            let p = expLane(row[c] - shift)
            row[c] = p
            sum += p
            c += 1
        }
        return sum
    }
    static func gemm(m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, rowStrideA: Int, colStrideA: Int,
                     b: UnsafePointer<Float>, rowStrideB: Int, colStrideB: Int, beta: Float,
                     c: UnsafeMutablePointer<Float>, ldc: Int) {
        GEMM.sgemm(m: m, n: n, k: k, alpha: alpha, a: a, rowStrideA: rowStrideA, colStrideA: colStrideA,
                   b: b, rowStrideB: rowStrideB, colStrideB: colStrideB, beta: beta, c: c, ldc: ldc)
    }
    static func packB(k: Int, n: Int, _ b: UnsafePointer<Float>, rowStride: Int, colStride: Int,
                      into dst: UnsafeMutablePointer<Float>) {
        GEMM.packFloatB(k: k, n: n, b, rowStride: rowStride, colStride: colStride, into: dst, nr: GEMM.tileColumns(double: false))
    }
    static func gemm(m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, rowStrideA: Int, colStrideA: Int,
                     packedB: UnsafePointer<Float>, packedRows: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        GEMM.sgemm(m: m, n: n, k: k, alpha: alpha, a: a, rowStrideA: rowStrideA, colStrideA: colStrideA,
                   packedB: packedB, packedRows: packedRows, beta: beta, c: c, ldc: ldc)
    }
}
extension Double: AttentionFloat {
    static func maximum(_ row: UnsafeMutablePointer<Double>, count: Int) -> Double {
        var m = -Double.infinity
        for c in 0..<count where row[c] > m { m = row[c] }
        return m
    }
    static func exponentiate(_ row: UnsafeMutablePointer<Double>, count: Int, minus shift: Double) -> Double {
        var sum = 0.0
        for c in 0..<count {
            let p = Foundation.exp(row[c] - shift)
            row[c] = p
            sum += p
        }
        return sum
    }
    static func gemm(m: Int, n: Int, k: Int, alpha: Double, a: UnsafePointer<Double>, rowStrideA: Int, colStrideA: Int,
                     b: UnsafePointer<Double>, rowStrideB: Int, colStrideB: Int, beta: Double,
                     c: UnsafeMutablePointer<Double>, ldc: Int) {
        GEMM.dgemm(m: m, n: n, k: k, alpha: alpha, a: a, rowStrideA: rowStrideA, colStrideA: colStrideA,
                   b: b, rowStrideB: rowStrideB, colStrideB: colStrideB, beta: beta, c: c, ldc: ldc)
    }
    static func packB(k: Int, n: Int, _ b: UnsafePointer<Double>, rowStride: Int, colStride: Int,
                      into dst: UnsafeMutablePointer<Double>) {
        GEMM.packDoubleB(k: k, n: n, b, rowStride: rowStride, colStride: colStride, into: dst, nr: GEMM.tileColumns(double: true))
    }
    static func gemm(m: Int, n: Int, k: Int, alpha: Double, a: UnsafePointer<Double>, rowStrideA: Int, colStrideA: Int,
                     packedB: UnsafePointer<Double>, packedRows: Int, beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int) {
        GEMM.dgemm(m: m, n: n, k: k, alpha: alpha, a: a, rowStrideA: rowStrideA, colStrideA: colStrideA,
                   packedB: packedB, packedRows: packedRows, beta: beta, c: c, ldc: ldc)
    }
}

private func runTiles<T: AttentionFloat>(
    _: T.Type, _ q: AttentionOperand, _ k: AttentionOperand, _ v: AttentionOperand, _ mask: Tensor?,
    _ out: AttentionOperand, _ g: TileGeometry
) {
    // Plane offsets count from each storage's start.
    let qp = UnsafePointer(q.tensor.storage.baseAddress.assumingMemoryBound(to: T.self))
    let kp = UnsafePointer(k.tensor.storage.baseAddress.assumingMemoryBound(to: T.self))
    let vp = UnsafePointer(v.tensor.storage.baseAddress.assumingMemoryBound(to: T.self))
    let op = out.tensor.storage.baseAddress.assumingMemoryBound(to: T.self)
    let (qRow, kRow, vRow, oRow) = (q.rowStride, k.rowStride, v.rowStride, out.rowStride)
    let boolMask: UnsafePointer<Bool>? = mask.flatMap { $0.dtype == .bool ? UnsafePointer($0.storage.baseAddress.assumingMemoryBound(to: Bool.self)) : nil }
    let floatMask: UnsafePointer<T>? = mask.flatMap { $0.dtype != .bool ? UnsafePointer($0.storage.baseAddress.assumingMemoryBound(to: T.self)) : nil }
    let bq = g.queryBlock, bk = attentionKeyBlock
    let scale = T(g.scale)
    let (l, s, e, ev) = (g.l, g.s, g.e, g.ev)
    let outAddress = Int(bitPattern: op)
    Threading.parallelFor(chunks: g.threads) { worker in Threading.withThreads(1) {
        let op = UnsafeMutablePointer<T>(bitPattern: outAddress)!
        // The per-thread workspace: scores [bq, bk], accumulator [bq, ev], row max and sum.
        let scores = UnsafeMutablePointer<T>.allocate(capacity: bq * bk)
        let acc = UnsafeMutablePointer<T>.allocate(capacity: bq * ev)
        let rowMax = UnsafeMutablePointer<T>.allocate(capacity: bq)
        let rowSum = UnsafeMutablePointer<T>.allocate(capacity: bq)
        // Per tile: each row's shift, the exponent of its rescale factor, and its sum.
        let shifts = UnsafeMutablePointer<T>.allocate(capacity: 3 * bq)
        let rescale = shifts + bq, sums = rescale + bq
        // A head's packed K^T tiles, then its packed V tiles; `packedHead`'s first `packedTiles`
        // tiles are current.
        let headPacking = g.headPacking
        let keyPack = UnsafeMutablePointer<T>.allocate(capacity: headPacking.map { $0.tiles * ($0.keyTile + $0.valueTile) } ?? 0)
        let valuePack = keyPack + (headPacking.map { $0.tiles * $0.keyTile } ?? 0)
        var (packedHead, packedTiles) = (-1, 0)
        defer {
            scores.deallocate(); acc.deallocate(); rowMax.deallocate(); rowSum.deallocate(); shifts.deallocate()
            keyPack.deallocate()
        }
        // Each worker takes a run of consecutive tasks, so its query blocks share heads.
        for task in (g.tasks * worker / g.threads)..<(g.tasks * (worker + 1) / g.threads) {
            let b = task / g.blocks, i0 = (task % g.blocks) * bq
            let rows = min(bq, l - i0)
            let qb = qp + q.planes[b] + i0 * qRow, kb = kp + k.planes[b], vb = vp + v.planes[b]
            if b != packedHead { (packedHead, packedTiles) = (b, 0) }
            acc.update(repeating: 0, count: rows * ev)
            rowMax.update(repeating: -T.infinity, count: rows)
            rowSum.update(repeating: 0, count: rows)
            let plane = g.maskPlanes.isEmpty ? 0 : g.maskPlanes[b]
            // Causal: keys beyond the block's last query row are masked for every row of it.
            let keyEnd = g.isCausal ? min(s, i0 + rows) : s
            var j0 = 0
            while j0 < keyEnd {
                let cols = min(bk, keyEnd - j0), tile = j0 / bk
                if let headPacking {
                    // The head's tiles up to this one, each packed once: K^T [e, keys], V [keys, ev].
                    while packedTiles <= tile {
                        let t0 = packedTiles * bk, n = min(bk, s - t0)
                        T.packB(k: e, n: n, kb + t0 * kRow, rowStride: 1, colStride: kRow,
                                into: keyPack + packedTiles * headPacking.keyTile)
                        T.packB(k: n, n: ev, vb + t0 * vRow, rowStride: vRow, colStride: 1,
                                into: valuePack + packedTiles * headPacking.valueTile)
                        packedTiles += 1
                    }
                    T.gemm(m: rows, n: cols, k: e, alpha: scale, a: qb, rowStrideA: qRow, colStrideA: 1,
                           packedB: keyPack + tile * headPacking.keyTile, packedRows: e, beta: 0, c: scores, ldc: bk)
                } else {
                    // scores = scale Q_blk K_blk^T, one GEMM per tile (K read transposed in place).
                    T.gemm(m: rows, n: cols, k: e, alpha: scale, a: qb, rowStrideA: qRow, colStrideA: 1,
                           b: kb + j0 * kRow, rowStrideB: 1, colStrideB: kRow, beta: 0, c: scores, ldc: bk)
                }
                for r in 0..<rows {
                    let i = i0 + r
                    let srow = scores + r * bk
                    var blockMax = -T.infinity
                    if boolMask == nil && floatMask == nil && !(g.isCausal && j0 + cols - 1 > i) {
                        // Nothing to mask in this row of the tile: only its maximum.
                        blockMax = T.maximum(srow, count: cols)
                    } else {
                    for c in 0..<cols {
                        let j = j0 + c
                        var x = srow[c]
                        if g.isCausal && j > i {
                            x = -T.infinity
                        } else {
                            let mi = plane + i * g.maskRowStride + j * g.maskColStride
                            if let boolMask, !boolMask[mi] { x -= T.infinity }  // a bias, as PyTorch: NaN stays NaN
                            if let floatMask { x += floatMask[mi] }
                        }
                        srow[c] = x
                        if x > blockMax { blockMax = x }
                    }
                    }
                    let oldMax = rowMax[r]
                    let newMax = Swift.max(oldMax, blockMax)
                    if newMax == -T.infinity {
                        // Every key so far masked: this tile adds nothing to the row (its
                        // exponentials are 0, its rescale factor 1).
                        for c in 0..<cols { srow[c] = -T.infinity }
                        (shifts[r], rescale[r]) = (0, 0)
                        continue
                    }
                    (shifts[r], rescale[r]) = (newMax, oldMax == -T.infinity ? -T.infinity : oldMax - newMax)
                    rowMax[r] = newMax
                }
                // The tile's exponentials and the rows' rescale factors, each in one pass.
                T.exponentiateTile(scores, rows: rows, cols: cols, ld: bk, shifts: shifts, sums: sums)
                _ = T.exponentiate(rescale, count: rows, minus: 0)
                for r in 0..<rows {
                    let alpha = rescale[r], ar = acc + r * ev
                    if alpha != 1 { for d in 0..<ev { ar[d] *= alpha } }
                    rowSum[r] = rowSum[r] * alpha + sums[r]
                }
                // acc += P V_blk.
                if let headPacking {
                    // The tile was packed with all its keys; a causal block may use fewer.
                    T.gemm(m: rows, n: ev, k: cols, alpha: 1, a: scores, rowStrideA: bk, colStrideA: 1,
                           packedB: valuePack + tile * headPacking.valueTile, packedRows: min(bk, s - j0),
                           beta: 1, c: acc, ldc: ev)
                } else {
                    T.gemm(m: rows, n: ev, k: cols, alpha: 1, a: scores, rowStrideA: bk, colStrideA: 1,
                           b: vb + j0 * vRow, rowStrideB: vRow, colStrideB: 1, beta: 1, c: acc, ldc: ev)
                }
                j0 += cols
            }
            for r in 0..<rows {
                let o = op + out.planes[b] + (i0 + r) * oRow, ar = acc + r * ev
                let total = rowSum[r]
                if total != 0 {  // NaN propagates; 0 means every key was masked
                    let inv = 1 / total
                    for d in 0..<ev { o[d] = ar[d] * inv }
                } else {
                    for d in 0..<ev { o[d] = 0 }  // every key masked: 0, as PyTorch's safe softmax
                }
            }
        }
    } }
}
