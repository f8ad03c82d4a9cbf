// Products whose B is never stored: row p of B is read in place at an offset from a base pointer
// ("indirect" B). A convolution's column matrix has this form over its zero-padded input: row
// (channel, tap) is the padded image itself from that tap's offset. The micro-kernels read those
// rows directly, so neither the column matrix nor a packed copy of it is ever written.

extension GEMM {
    /// Single-precision A packed once into the strips the micro-kernels read, for products with
    /// many right-hand sides (a convolution's weight, reused by every sample). Immutable after
    /// init, so threads may share it.
    package final class PackedSingleA: @unchecked Sendable {
        let kernel: MicroKernel
        /// Rows and columns of A.
        package let m: Int, k: Int
        /// Horizontal strips of A: first row, height (the kernel's `mr` or `mrShort`; rows past
        /// `m` are zero) and where the strip starts in `storage` (element `(i, p)` of the strip
        /// at `offset + p * height + i`).
        let strips: [(row: Int, height: Int, offset: Int)]
        let storage: UnsafeMutablePointer<Float>

        /// Packs the `m x k` matrix with element `(i, p)` at `a[i * rowStride + p * colStride]`.
        package init(m: Int, k: Int, a: UnsafePointer<Float>, rowStride: Int, colStride: Int,
                     path: GEMMKernelPath = .best) {
            precondition(m >= 0 && k >= 0, "GEMM: negative size m=\(m) k=\(k)")
            kernel = Float.microKernel(for: path)
            (self.m, self.k) = (m, k)
            let heights = Self.stripHeights(m: m, mr: kernel.mr, short: kernel.indirectShort == nil ? 0 : kernel.mrShort)
            var strips: [(row: Int, height: Int, offset: Int)] = []
            var (row, offset) = (0, 0)
            for h in heights {
                strips.append((row, h, offset))
                row += h
                offset += h * k
            }
            self.strips = strips
            storage = .allocate(capacity: max(offset, 1))
            for s in strips {
                packA(m: min(s.height, m - s.row), k: k, a + s.row * rowStride, rowStride: rowStride, colStride: colStride,
                      into: storage + s.offset, mr: s.height)
            }
        }

        deinit { storage.deallocate() }

        /// Tile columns of the kernel: how far past its last column a row of B is read.
        package var tileColumns: Int { kernel.nr }
        /// Lanes of one of the kernel's vectors: a tile's columns are `tileColumns / vectorWidth`
        /// vectors, which `sgemm(_:n:b:rowOffsets:vectorStride:...)` may read from separate places.
        package var vectorWidth: Int { kernel.vw }

        /// Strip heights covering `m` rows with `mr`-row strips and, when `short > 0`, `short`-row
        /// ones: the fewest wasted rows, then the fewest strips (32 rows with 6 and 4: four of 6,
        /// two of 4, none wasted, where 6-row strips alone compute 36).
        static func stripHeights(m: Int, mr: Int, short: Int) -> [Int] {
            var best = (waste: Int.max, count: Int.max, full: 0, shorts: 0)
            for shorts in 0...(short > 0 ? mr : 0) {
                let rest = max(0, m - shorts * short)
                let full = (rest + mr - 1) / mr
                let waste = full * mr + shorts * short - m
                if waste < best.waste || waste == best.waste && full + shorts < best.count {
                    best = (waste, full + shorts, full, shorts)
                }
            }
            return Array(repeating: mr, count: best.full) + Array(repeating: short, count: best.shorts)
        }
    }

    /// `C = A B + beta C` on one thread, where row `p` of the `k x n` matrix B is the `n`
    /// contiguous elements at `b + rowOffsets[p]`; or, with a `vectorStride`, the `n <=
    /// tileColumns` elements whose `j`-th run of `vectorWidth` starts at `b + rowOffsets[p] + j *
    /// vectorStride` (a convolution's tile over several output rows).
    ///
    /// Each row is read up to `tileColumns - 1` elements past its last column (the values are
    /// discarded), or up to its last vector's end: the caller keeps that much readable memory.
    package static func sgemm(
        _ a: PackedSingleA, n: Int, b: UnsafePointer<Float>, rowOffsets: UnsafePointer<Int>,
        vectorStride: Int? = nil, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let (m, k, kernel) = (a.m, a.k, a.kernel)
        precondition(n >= 0 && ldc >= n, "GEMM: bad sizes m=\(m) n=\(n) k=\(k) ldc=\(ldc)")
        precondition(vectorStride == nil || n <= kernel.nr, "GEMM: a vector stride needs n <= \(kernel.nr), got \(n)")
        let step = vectorStride ?? kernel.vw
        if m == 0 || n == 0 { return }
        if k == 0 {
            scale(m: m, n: n, c: c, ldc: ldc, by: beta)
            return
        }
        let nr = kernel.nr
        // Blocks of strips with at most `mc` rows: an A block stays in L2 while the rows of B one
        // strip of nr columns reads stay in L1 and the A strips stream past them.
        var blocks: [Range<Int>] = []
        var first = 0, rows = 0
        for (i, strip) in a.strips.enumerated() {
            if rows + strip.height > kernel.mc && i > first {
                blocks.append(first..<i)
                (first, rows) = (i, 0)
            }
            rows += strip.height
        }
        blocks.append(first..<a.strips.count)
        let short = kernel.indirectShort
        // Depth panels of equal length up to a quarter over the kernel's (B's rows for a tile
        // still fit L1): no short last panel that pays C's reload for a few steps.
        let panels = (k + kernel.kc * 5 / 4 - 1) / (kernel.kc * 5 / 4), depth = (k + panels - 1) / panels
        rowOffsets.withMemoryRebound(to: CLong.self, capacity: k) { offsets in
            var pc = 0
            while pc < k {
                let kc = min(depth, k - pc)
                let betaD = pc == 0 ? Double(beta) : 1
                for block in blocks {
                    var jr = 0
                    while jr < n {
                        let cols = min(nr, n - jr)
                        for s in block {
                            let strip = a.strips[s]
                            let tile = strip.height == kernel.mr ? kernel.indirect : short!
                            tile(kc, a.storage + strip.offset + pc * strip.height, b + jr, offsets + pc, step,
                                 c + strip.row * ldc + jr, ldc, 1, betaD, min(strip.height, m - strip.row), cols)
                        }
                        jr += nr
                    }
                }
                pc += depth
            }
        }
    }
}

extension GEMM {
    /// `C = A B + beta C` on one thread, where row `i` of the `m x k` matrix A is the `k`
    /// contiguous elements at `a + rowOffsets[i]` and B has element `(p, j)` at
    /// `b[p * rowStrideB + j * colStrideB]` (packed here, a panel at a time).
    package static func sgemm(
        m: Int, n: Int, k: Int, a: UnsafePointer<Float>, rowOffsets: UnsafePointer<Int>,
        b: UnsafePointer<Float>, rowStrideB: Int, colStrideB: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, path: GEMMKernelPath = .best
    ) {
        sgemm(m: m, n: n, k: k, a: a, rowOffsets: rowOffsets, beta: beta, c: c, ldc: ldc, path: path) { pc, kc, jc, nc, panel, nr in
            packB(k: kc, n: nc, b + pc * rowStrideB + jc * colStrideB, rowStride: rowStrideB, colStride: colStrideB, into: panel, nr: nr)
        }
    }

    /// ``sgemm(m:n:k:a:rowOffsets:b:rowStrideB:colStrideB:beta:c:ldc:path:)`` with B given by
    /// `packB(pc, kc, jc, nc, panel, nr)`, which writes rows `pc..<pc + kc` and columns
    /// `jc..<jc + nc` of B into `panel` in ``packB(k:n:_:rowStride:colStride:into:nr:)``'s layout
    /// (strips of `nr` columns, zero padded): for a B that is cheaper to pack from its source than
    /// to lay out as a strided matrix first.
    package static func sgemm(
        m: Int, n: Int, k: Int, a: UnsafePointer<Float>, rowOffsets: UnsafePointer<Int>,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, path: GEMMKernelPath = .best,
        packB: (_ pc: Int, _ kc: Int, _ jc: Int, _ nc: Int, _ panel: UnsafeMutablePointer<Float>, _ nr: Int) -> Void
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0 && ldc >= n, "GEMM: bad sizes m=\(m) n=\(n) k=\(k) ldc=\(ldc)")
        if m == 0 || n == 0 { return }
        if k == 0 {
            scale(m: m, n: n, c: c, ldc: ldc, by: beta)
            return
        }
        let kernel = Float.microKernel(for: path)
        let (mr, nr) = (kernel.mr, kernel.nr)
        let kcMax = min(k, kernel.kc), ncMax = min(roundUp(n, to: nr), kernel.nc)
        let panel = UnsafeMutablePointer<Float>.allocate(capacity: kcMax * ncMax)
        defer { panel.deallocate() }
        rowOffsets.withMemoryRebound(to: CLong.self, capacity: m) { offsets in
            var jc = 0
            while jc < n {
                let nc = min(kernel.nc, n - jc)
                var pc = 0
                while pc < k {
                    let kc = min(kernel.kc, k - pc)
                    packB(pc, kc, jc, nc, panel, nr)
                    let betaD = pc == 0 ? Double(beta) : 1
                    var jr = 0
                    while jr < nc {
                        let cols = min(nr, nc - jr)
                        var ir = 0
                        while ir < m {
                            kernel.rows(kc, a + pc, offsets + ir, panel + jr * kc, c + ir * ldc + jc + jr, ldc, 1, betaD,
                                        min(mr, m - ir), cols)
                            ir += mr
                        }
                        jr += nr
                    }
                    pc += kernel.kc
                }
                jc += kernel.nc
            }
        }
    }
}
