import EmberAutograd
import EmberTensor
import EmberStorage

// Element-wise passes over one step's `features x batch` block, eight lanes at a time.
//
// The gate buffers are feature-major (`[G, L * N]`: one row per gate unit, one column per time
// step and batch element), so one step's gates are a `G x N` block whose rows are contiguous along
// the batch. A pass runs its lanes along the batch when there are at least 8 batch elements (plain
// vector loads), else along the features (loads strided by the row length), so small batches and
// unbatched input still fill the lanes.

/// Eight lanes of a `rows x cols` block starting at element `(row, col)`: along the columns
/// (`alongRows == false`) or along the rows; `count` (1...8) of them are real.
struct Lanes {
    var row: Int
    var col: Int
    var count: Int
    var alongRows: Bool
}

/// Calls `body` for lane groups covering every element of a `rows x cols` block exactly once.
@inline(__always)
func forEachLaneGroup(rows: Int, cols: Int, _ body: (Lanes) -> Void) {
    if cols >= 8 || cols >= rows {
        for r in 0..<rows {
            var c = 0
            while c < cols {
                body(Lanes(row: r, col: c, count: Swift.min(8, cols - c), alongRows: false))
                c += 8
            }
        }
    } else {
        for c in 0..<cols {
            var r = 0
            while r < rows {
                body(Lanes(row: r, col: c, count: Swift.min(8, rows - r), alongRows: true))
                r += 8
            }
        }
    }
}

/// A strided 2-D view: element `(row, col)` at `base[row * rowStride + col * colStride]`. A stride
/// of 0 broadcasts (a bias vector is a block with `colStride` 0).
struct Block<T: RecurrentFloat> {
    var base: UnsafeMutablePointer<T>
    var rowStride: Int
    var colStride: Int

    @inline(__always) init(_ base: UnsafeMutablePointer<T>, rowStride: Int, colStride: Int = 1) {
        self.base = base
        self.rowStride = rowStride
        self.colStride = colStride
    }

    @inline(__always) init(_ base: UnsafePointer<T>, rowStride: Int, colStride: Int = 1) {
        self.init(UnsafeMutablePointer(mutating: base), rowStride: rowStride, colStride: colStride)
    }

    /// The block starting `rows` rows further down.
    @inline(__always) func offset(rows: Int) -> Block { Block(base + rows * rowStride, rowStride: rowStride, colStride: colStride) }

    /// The lanes of `l`, shifted down by `rowOffset` rows (the gate block of a stacked matrix).
    @inline(__always) func load(_ l: Lanes, rowOffset: Int = 0) -> SIMD8<T> {
        let p = base + (l.row + rowOffset) * rowStride + l.col * colStride
        let stride = l.alongRows ? rowStride : colStride
        if stride == 1 { return load8(p, l.count) }
        if stride == 0 { return SIMD8<T>(repeating: p[0]) }
        var v = SIMD8<T>()
        for i in 0..<l.count { v[i] = p[i * stride] }
        return v
    }

    @inline(__always) func store(_ v: SIMD8<T>, _ l: Lanes, rowOffset: Int = 0) {
        let p = base + (l.row + rowOffset) * rowStride + l.col * colStride
        let stride = l.alongRows ? rowStride : colStride
        if stride == 1 {
            store8(v, p, l.count)
            return
        }
        for i in 0..<l.count { p[i * stride] = v[i] }
    }
}

extension Optional {
    /// The lanes of an optional block, zeros when absent (a zero initial state).
    @inline(__always) func load<T>(_ l: Lanes, rowOffset: Int = 0) -> SIMD8<T> where Wrapped == Block<T> {
        switch self {
        case .some(let b): b.load(l, rowOffset: rowOffset)
        case .none: SIMD8<T>()
        }
    }
}

extension Optional {
    /// The optional block starting `rows` rows further down.
    @inline(__always) func offset<T>(rows: Int) -> Block<T>? where Wrapped == Block<T> { map { $0.offset(rows: rows) } }
}

/// Elements of a step's element-wise pass worth splitting over threads (below it the hand-off
/// costs more than it saves).
let minimumParallelStepElements = 2048

/// Runs `body` on disjoint ranges of `units` hidden units covering them all: in parallel, one range
/// per available thread (whole groups of 8), when the step has at least
/// ``minimumParallelStepElements`` elements, else once. Matrix multiplies inside `body` run on the
/// calling thread. Each range touches only its own units' rows of the gate, state and output
/// buffers, so the ranges write disjoint memory.
@inline(__always)
func forEachUnitRange(units: Int, elements: Int, _ body: (Range<Int>) -> Void) {
    let threads = elements >= minimumParallelStepElements ? Swift.min(Threading.maxThreads, units / 8) : 1
    if threads <= 1 {
        body(0..<units)
        return
    }
    let size = ((units + threads - 1) / threads + 7) / 8 * 8
    let count = (units + size - 1) / size
    Threading.parallelFor(chunks: count) { c in
        Threading.withThreads(1) { body(c * size ..< Swift.min(units, (c + 1) * size)) }
    }
}

/// `dst[j, n] = src[n, j]` for a `rows x cols` destination (both row-major with the given row
/// strides): small state transposes between the `[N, H]` API layout and the feature-major kernels.
@inline(__always)
func transposeInto<T>(_ dst: UnsafeMutablePointer<T>, rows: Int, cols: Int, dstStride: Int,
                      from src: UnsafePointer<T>, srcStride: Int)
{
    for j in 0..<rows {
        for n in 0..<cols { dst[j * dstStride + n] = src[n * srcStride + j] }
    }
}

/// The largest row count `GEMM` multiplies without repacking A on every call (its `mc` on x86 with
/// AVX2). The per-step products of the recurrence have a small right-hand side (`N` columns) and a
/// large weight on the left; splitting the weight's rows into blocks of this size keeps it
/// unpacked, so a step packs only the `k x N` right-hand side.
let unpackedRowBlock = 144

/// `C = A B + beta C` with A's rows taken in blocks of at most ``unpackedRowBlock``.
@inline(__always)
func gemmInRowBlocks<T: RecurrentFloat>(
    m: Int, n: Int, k: Int, a: UnsafePointer<T>, rowStrideA: Int, colStrideA: Int,
    b: UnsafePointer<T>, rowStrideB: Int, colStrideB: Int, beta: T, c: UnsafeMutablePointer<T>, ldc: Int
) {
    var i = 0
    while i < m {
        let rows = Swift.min(unpackedRowBlock, m - i)
        T.gemm(m: rows, n: n, k: k, a: a + i * rowStrideA, rowStrideA: rowStrideA, colStrideA: colStrideA,
               b: b, rowStrideB: rowStrideB, colStrideB: colStrideB, beta: beta, c: c + i * ldc, ldc: ldc)
        i += rows
    }
}

/// `out[j] = sum_c m[j * stride + c]` for `rows` rows of `cols` contiguous elements.
@inline(__always)
func rowSums<T: RecurrentFloat>(_ m: UnsafePointer<T>, rows: Int, cols: Int, stride: Int, into out: UnsafeMutablePointer<T>) {
    for j in 0..<rows {
        let row = m + j * stride
        var acc = SIMD8<T>()
        var c = 0
        while c + 8 <= cols {
            acc += load8(row + c, 8)
            c += 8
        }
        var total = acc.sum()
        while c < cols {
            total += row[c]
            c += 1
        }
        out[j] = total
    }
}
