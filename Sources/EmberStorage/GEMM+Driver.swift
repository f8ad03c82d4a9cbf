import CEmberKernels

// The blocked driver (Goto/BLIS loop nest) around the C micro-kernels, and its thread split.

extension GEMM {
    /// Products with fewer multiply-adds than this (64^3) run on one thread: below it, handing half
    /// the work to a helper costs about what it saves (measured in BENCHMARKS.md's sgemm rows).
    package static let parallelWorkThreshold = 1 << 18

    /// Fewest multiply-adds worth giving each thread (half the threshold, so a product at the
    /// threshold gets two).
    static let workPerThread = 1 << 17

    /// `C = alpha * A * B + beta * C` for any strides of A and B, on the micro-kernels of `path`.
    ///
    /// Validates the shapes, handles the degenerate cases, then splits large products over a grid
    /// of disjoint blocks of C, one per thread (see ``ThreadGrid``).
    @inline(__always)
    static func gemm<T: GEMMScalar>(
        m: Int, n: Int, k: Int, alpha: T,
        a: UnsafePointer<T>, rowStrideA: Int, colStrideA: Int,
        b: UnsafePointer<T>, rowStrideB: Int, colStrideB: Int,
        beta: T, c: UnsafeMutablePointer<T>, ldc: Int, path: GEMMKernelPath, epilogue: GEMMEpilogue<T> = .none
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "GEMM: negative size m=\(m) n=\(n) k=\(k)")
        precondition(ldc >= n || m <= 1, "GEMM: ldc (\(ldc)) must be at least n (\(n)) for row-major C")
        if m == 0 || n == 0 { return }
        if k == 0 || alpha == 0 {
            scale(m: m, n: n, c: c, ldc: ldc, by: beta)
            epilogue.apply(c: c, ldc: ldc, m: m, n: n, path: path)
            return
        }
        let kernel = T.microKernel(for: path)
        if rowVectorProduct(m: m, n: n, k: k, alpha: alpha, a: a, rowStrideA: rowStrideA, colStrideA: colStrideA,
                            b: b, rowStrideB: rowStrideB, colStrideB: colStrideB, beta: beta, c: c,
                            kernel: kernel, path: path) {
            epilogue.apply(c: c, ldc: ldc, m: m, n: n, path: path)
            return
        }
        let work = m * n * k
        let grid = work < parallelWorkThreshold
            ? ThreadGrid.single
            : ThreadGrid(m: m, n: n, k: k, colStrideA: colStrideA,
                         threads: min(Threading.maxThreads, work / workPerThread), kernel: kernel)
        if grid.chunks == 1 {
            blocked(kernel, m: m, n: n, k: k, alpha: alpha, a: a, rowStrideA: rowStrideA, colStrideA: colStrideA,
                    b: b, rowStrideB: rowStrideB, colStrideB: colStrideB, beta: beta, c: c, ldc: ldc,
                    epilogue: epilogue, path: path)
            return
        }
        // Chunk (r, s) writes only C[r*height ..< (r+1)*height, s*width ..< (s+1)*width] and reads
        // A and B: the chunks touch disjoint memory.
        Threading.parallelFor(chunks: grid.chunks) { chunk in
            let i0 = (chunk / grid.columnBlocks) * grid.height, j0 = (chunk % grid.columnBlocks) * grid.width
            blocked(kernel, m: min(grid.height, m - i0), n: min(grid.width, n - j0), k: k, alpha: alpha,
                    a: a + i0 * rowStrideA, rowStrideA: rowStrideA, colStrideA: colStrideA,
                    b: b + j0 * colStrideB, rowStrideB: rowStrideB, colStrideB: colStrideB,
                    beta: beta, c: c + i0 * ldc + j0, ldc: ldc, epilogue: epilogue.columns(from: j0), path: path)
        }
    }

    /// How a product is split over threads: `rowBlocks x columnBlocks` disjoint blocks of C, each
    /// `height x width` (whole micro-tiles; the last row and column of blocks may be smaller).
    ///
    /// Every block packs its own columns of B and, unless it reads them in place (``packsA``), its
    /// rows of A: `rowBlocks * k * n` plus `columnBlocks * m * k` packed
    /// elements, A's counted twice (packing A gathers, packing B copies rows), and an A larger than
    /// one block that is read in place counted once per column block (it streams from memory like
    /// packing, without the writes). The grid minimises that. With two threads this is a split of the columns (wide C) or the rows (tall or square
    /// C: each half of a 256^3 product then reads A in place).
    struct ThreadGrid {
        var rowBlocks = 1, columnBlocks = 1
        var height = Int.max, width = Int.max
        var chunks: Int { rowBlocks * columnBlocks }

        static let single = ThreadGrid()

        init() {}

        init(m: Int, n: Int, k: Int, colStrideA: Int, threads requested: Int, kernel: MicroKernel) {
            let threads = max(1, requested)
            // Prefer the grid that keeps the most threads busy, then the one that packs least.
            var best = (chunks: 0, cost: Int.max)
            for rows in 1...threads where threads % rows == 0 {
                let columns = threads / rows
                // Whole tiles per block; blocks that would be empty are dropped.
                let height = roundUp((m + rows - 1) / rows, to: kernel.mr)
                let width = roundUp((n + columns - 1) / columns, to: kernel.nr)
                let (usedRows, usedColumns) = ((m + height - 1) / height, (n + width - 1) / width)
                let packsA = GEMM.packsA(m: height, n: width, k: k, colStrideA: colStrideA, kernel: kernel)
                // A larger than one block and read in place streams from memory once per column
                // block, as packing does (reads only).
                let aFactor = packsA ? 2 : (height > kernel.mc || k > kernel.kc ? 1 : 0)
                let candidate = (chunks: usedRows * usedColumns, cost: aFactor * usedColumns * m + usedRows * n)
                if candidate.chunks > best.chunks || candidate.chunks == best.chunks && candidate.cost < best.cost {
                    best = candidate
                    (rowBlocks, columnBlocks, self.height, self.width) = (usedRows, usedColumns, height, width)
                }
            }
        }
    }

    /// The single-threaded blocked product.
    ///
    /// Loop nest: B panels of `kc x nc` are packed once and reused by every A block of `mc x kc`;
    /// within a block each `kc x nr` B strip stays in L1 while the `mr x kc` A strips stream past
    /// it. When all of A fits one block it is read in place (no A packing), which is what keeps
    /// small products cheap. The epilogue runs on each tile of C right after its last panel (while the tile is in L1).
    static func blocked<T: GEMMScalar>(
        _ kernel: MicroKernel, m: Int, n: Int, k: Int, alpha: T,
        a: UnsafePointer<T>, rowStrideA: Int, colStrideA: Int,
        b: UnsafePointer<T>, rowStrideB: Int, colStrideB: Int,
        beta: T, c: UnsafeMutablePointer<T>, ldc: Int, epilogue: GEMMEpilogue<T>, path: GEMMKernelPath
    ) {
        let mr = kernel.mr, nr = kernel.nr
        let kcMax = min(k, kernel.kc)
        let ncMax = min(roundUp(n, to: nr), kernel.nc)
        let packsA = packsA(m: m, n: n, k: k, colStrideA: colStrideA, kernel: kernel)
        let mcMax = min(roundUp(m, to: mr), kernel.mc)
        let bCount = kcMax * ncMax
        let aCount = packsA ? kcMax * mcMax : 0
        let (alphaD, oneD) = (Double(alpha), 1.0)

        // Stack memory when small (Swift only stack-allocates with natural alignment, so align the
        // packed strips to cache lines by hand), heap otherwise.
        withUnsafeTemporaryAllocation(
            byteCount: (aCount + bCount) * MemoryLayout<T>.stride + cacheLine, alignment: MemoryLayout<T>.alignment
        ) { raw in
            let base = UnsafeMutableRawPointer(bitPattern: roundUp(Int(bitPattern: raw.baseAddress!), to: cacheLine))!
            let bPacked = base.bindMemory(to: T.self, capacity: aCount + bCount)
            let aPacked = bPacked + bCount
            var jc = 0
            while jc < n {
                let nc = min(kernel.nc, n - jc)
                var pc = 0
                while pc < k {
                    let kc = min(kernel.kc, k - pc)
                    packB(k: kc, n: nc, b + pc * rowStrideB + jc * colStrideB,
                          rowStride: rowStrideB, colStride: colStrideB, into: bPacked, nr: nr)
                    // The first panel applies the caller's beta; later ones accumulate.
                    let betaD = pc == 0 ? Double(beta) : oneD
                    let lastPanel = pc + kc == k && !epilogue.isNone
                    var ic = 0
                    while ic < m {
                        let mc = min(kernel.mc, m - ic)
                        let aBlock = a + ic * rowStrideA + pc * colStrideA
                        if packsA {
                            packA(m: mc, k: kc, aBlock, rowStride: rowStrideA, colStride: colStrideA,
                                  into: aPacked, mr: mr)
                        }
                        var jr = 0
                        while jr < nc {
                            let cols = min(nr, nc - jr)
                            let bStrip = UnsafeRawPointer(bPacked + jr * kc)
                            let cTile = c + ic * ldc + jc + jr
                            let tileEpilogue = epilogue.columns(from: jc + jr)
                            var ir = 0
                            while ir < mc {
                                let rows = min(mr, mc - ir)
                                if packsA, lastPanel, let fused = kernel.packedEpilogue {
                                    // The epilogue in registers, before the tile is stored.
                                    fused(kc, aPacked + ir * kc, bStrip, cTile + ir * ldc, ldc, alphaD, betaD, rows, cols,
                                          tileEpilogue.bias, tileEpilogue.scale, tileEpilogue.shift, tileEpilogue.relu ? 1 : 0)
                                    ir += mr
                                    continue
                                } else if packsA {
                                    kernel.packed(kc, aPacked + ir * kc, bStrip, cTile + ir * ldc, ldc,
                                                  alphaD, betaD, rows, cols)
                                } else if lastPanel, let fused = kernel.stridedEpilogue {
                                    fused(kc, aBlock + ir * rowStrideA, rowStrideA, colStrideA, bStrip, cTile + ir * ldc, ldc,
                                          alphaD, betaD, rows, cols, tileEpilogue.bias, tileEpilogue.scale, tileEpilogue.shift,
                                          tileEpilogue.relu ? 1 : 0)
                                    ir += mr
                                    continue
                                } else {
                                    kernel.strided(kc, aBlock + ir * rowStrideA, rowStrideA, colStrideA, bStrip,
                                                   cTile + ir * ldc, ldc, alphaD, betaD, rows, cols)
                                }
                                if lastPanel { tileEpilogue.apply(c: cTile + ir * ldc, ldc: ldc, m: rows, n: cols, path: path) }
                                ir += mr
                            }
                            jr += nr
                        }
                        ic += kernel.mc
                    }
                    pc += kernel.kc
                }
                jc += kernel.nc
            }
        }
    }

    /// Whether the blocked product packs A (`m x k`, for a block of C `n` wide) or reads it in place.
    ///
    /// A that fits one `mc x kc` block is always read in place. A larger one is packed, except that
    /// a row-major A (`colStrideA == 1`) is read in place for blocks of C at most
    /// `kernel.aInPlaceWidth` wide, where packing would serve too few tiles to pay for its pass.
    static func packsA(m: Int, n: Int, k: Int, colStrideA: Int, kernel: MicroKernel) -> Bool {
        guard m > kernel.mc || k > kernel.kc else { return false }
        return !(colStrideA == 1 && n <= kernel.aInPlaceWidth)
    }

    /// ``packsA(m:n:k:colStrideA:kernel:)`` for the float32 (or float64) kernels of `path`.
    package static func packsA(m: Int, n: Int, k: Int, colStrideA: Int, path: GEMMKernelPath, double: Bool = false) -> Bool {
        packsA(m: m, n: n, k: k, colStrideA: colStrideA,
               kernel: double ? Double.microKernel(for: path) : Float.microKernel(for: path))
    }

    /// The thread grid (`rowBlocks`, `columnBlocks`) the float32 kernels of `path` use for a product
    /// of this shape on `threads` threads (for tests of the choice).
    package static func threadSplit(m: Int, n: Int, k: Int, colStrideA: Int, threads: Int,
                                    path: GEMMKernelPath) -> (rowBlocks: Int, columnBlocks: Int) {
        let grid = ThreadGrid(m: m, n: n, k: k, colStrideA: colStrideA, threads: threads, kernel: Float.microKernel(for: path))
        return (grid.rowBlocks, grid.columnBlocks)
    }

    /// `C = beta * C` (zero-fill when `beta == 0`, without reading C).
    static func scale<T: GEMMScalar>(m: Int, n: Int, c: UnsafeMutablePointer<T>, ldc: Int, by beta: T) {
        if beta == 1 { return }
        for i in 0..<m {
            let row = c + i * ldc
            if beta == 0 {
                row.update(repeating: 0, count: n)
            } else {
                for j in 0..<n { row[j] *= beta }
            }
        }
    }

    /// Alignment of the packed buffers, in bytes.
    static let cacheLine = 64

    @inline(__always)
    static func roundUp(_ x: Int, to multiple: Int) -> Int { (x + multiple - 1) / multiple * multiple }
}
