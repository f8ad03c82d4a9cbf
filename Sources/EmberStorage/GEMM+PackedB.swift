// Products whose B the caller packed once for several products: attention multiplies each packed
// block of a head's keys and values by every query block of the head.

extension GEMM {
    /// Columns of one packed-B strip on the dispatched path (`nr`: 16 for float32 on AVX2, 32 on
    /// AVX-512).
    package static func tileColumns(double: Bool) -> Int {
        double ? Double.microKernel(for: GEMMKernelPath.best).nr : Float.microKernel(for: GEMMKernelPath.best).nr
    }

    /// Elements a `k x n` B takes packed for the dispatched path: `ceil(n / nr) * nr * k`.
    package static func packedBCount(k: Int, n: Int, double: Bool) -> Int {
        let nr = tileColumns(double: double)
        return (n + nr - 1) / nr * nr * k
    }

    /// ``packFloatB(k:n:_:rowStride:colStride:into:nr:)`` for float64.
    package static func packDoubleB(k: Int, n: Int, _ b: UnsafePointer<Double>, rowStride: Int, colStride: Int,
                                    into dst: UnsafeMutablePointer<Double>, nr: Int) {
        packB(k: k, n: n, b, rowStride: rowStride, colStride: colStride, into: dst, nr: nr)
    }

    /// `C = alpha * A * B + beta * C` on the dispatched path with B (`k x n`) already packed by
    /// ``packFloatB(k:n:_:rowStride:colStride:into:nr:)`` with ``tileColumns(double:)`` and the same
    /// `k`, and A (`m x k`) read in place through its strides; one thread. The same tile kernels and
    /// order as ``sgemm(m:n:k:alpha:a:rowStrideA:colStrideA:b:rowStrideB:colStrideB:beta:c:ldc:)``
    /// where that reads A in place in one panel (`m` and `k` within one block), so the same bits.
    /// `packedRows` (at least `k`, default `k`): the depth B was packed with, of which the first `k`
    /// rows are used.
    package static func sgemm(m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, rowStrideA: Int, colStrideA: Int,
                              packedB: UnsafePointer<Float>, packedRows: Int? = nil, beta: Float,
                              c: UnsafeMutablePointer<Float>, ldc: Int) {
        productPackedB(Float.microKernel(for: .best), m: m, n: n, k: k, alpha: alpha, a: a, rowStrideA: rowStrideA,
                       colStrideA: colStrideA, packedB: packedB, packedRows: packedRows ?? k, beta: beta, c: c, ldc: ldc)
    }

    /// ``sgemm(m:n:k:alpha:a:rowStrideA:colStrideA:packedB:beta:c:ldc:)`` for float64.
    package static func dgemm(m: Int, n: Int, k: Int, alpha: Double, a: UnsafePointer<Double>, rowStrideA: Int,
                              colStrideA: Int, packedB: UnsafePointer<Double>, packedRows: Int? = nil, beta: Double,
                              c: UnsafeMutablePointer<Double>, ldc: Int) {
        productPackedB(Double.microKernel(for: .best), m: m, n: n, k: k, alpha: alpha, a: a, rowStrideA: rowStrideA,
                       colStrideA: colStrideA, packedB: packedB, packedRows: packedRows ?? k, beta: beta, c: c, ldc: ldc)
    }

    static func productPackedB<T: GEMMScalar>(
        _ kernel: MicroKernel, m: Int, n: Int, k: Int, alpha: T, a: UnsafePointer<T>, rowStrideA: Int, colStrideA: Int,
        packedB: UnsafePointer<T>, packedRows: Int, beta: T, c: UnsafeMutablePointer<T>, ldc: Int
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0 && ldc >= n && packedRows >= k,
                     "GEMM: m=\(m) n=\(n) k=\(k) ldc=\(ldc) packed rows=\(packedRows) for a packed B")
        guard m > 0, n > 0 else { return }
        guard k > 0, alpha != 0 else {
            scale(m: m, n: n, c: c, ldc: ldc, by: beta)
            return
        }
        let (mr, nr) = (kernel.mr, kernel.nr)
        let (alphaD, betaD) = (Double(alpha), Double(beta))
        var jr = 0
        while jr < n {
            let cols = min(nr, n - jr)
            let strip = UnsafeRawPointer(packedB + jr * packedRows)
            var ir = 0
            while ir < m {
                kernel.strided(k, a + ir * rowStrideA, rowStrideA, colStrideA, strip, c + ir * ldc + jr, ldc,
                               alphaD, betaD, min(mr, m - ir), cols)
                ir += mr
            }
            jr += nr
        }
    }
}
