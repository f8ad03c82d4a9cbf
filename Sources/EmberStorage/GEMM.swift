/// Matrix multiply on raw pointers: `C = alpha * A * B + beta * C`.
///
/// `A` is `m x k` with element `(i, p)` at `a[i * rowStrideA + p * colStrideA]`, `B` is `k x n`
/// likewise, and `C` is `m x n` row-major with leading dimension `ldc`. Arbitrary strides let
/// transposed views multiply without a copy. When `beta == 0`, `C` is not read (NaNs in it do not
/// propagate), as BLAS specifies.
public enum GEMM {
    public static func sgemm(
        m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, rowStrideA: Int, colStrideA: Int,
        b: UnsafePointer<Float>, rowStrideB: Int, colStrideB: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        referenceGEMM(m: m, n: n, k: k, alpha: alpha, a: a, rowStrideA: rowStrideA, colStrideA: colStrideA,
                      b: b, rowStrideB: rowStrideB, colStrideB: colStrideB, beta: beta, c: c, ldc: ldc)
    }

    public static func dgemm(
        m: Int, n: Int, k: Int, alpha: Double,
        a: UnsafePointer<Double>, rowStrideA: Int, colStrideA: Int,
        b: UnsafePointer<Double>, rowStrideB: Int, colStrideB: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        referenceGEMM(m: m, n: n, k: k, alpha: alpha, a: a, rowStrideA: rowStrideA, colStrideA: colStrideA,
                      b: b, rowStrideB: rowStrideB, colStrideB: colStrideB, beta: beta, c: c, ldc: ldc)
    }

    /// Plain triple loop, accumulating in `T`. The portable reference the fast paths are tested against.
    public static func referenceGEMM<T: BinaryFloatingPoint>(
        m: Int, n: Int, k: Int, alpha: T,
        a: UnsafePointer<T>, rowStrideA: Int, colStrideA: Int,
        b: UnsafePointer<T>, rowStrideB: Int, colStrideB: Int,
        beta: T, c: UnsafeMutablePointer<T>, ldc: Int
    ) {
        for i in 0..<m {
            let crow = c + i * ldc
            if beta == 0 {
                for j in 0..<n { crow[j] = 0 }
            } else if beta != 1 {
                for j in 0..<n { crow[j] *= beta }
            }
            for p in 0..<k {
                let av = alpha * a[i * rowStrideA + p * colStrideA]
                let brow = b + p * rowStrideB
                for j in 0..<n { crow[j] += av * brow[j * colStrideB] }
            }
        }
    }
}
