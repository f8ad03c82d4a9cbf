#ifndef CEMBER_KERNELS_H
#define CEMBER_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#pragma clang assume_nonnull begin

/// Which SIMD path the CPU supports: 0 portable, 1 AVX2+FMA, 2 AVX-512F, 3 NEON.
int ember_cpu_simd_level(void);

/// Kernel paths, numbered like `ember_cpu_simd_level`.
enum {
    EMBER_PATH_PORTABLE = 0,
    EMBER_PATH_AVX2 = 1,
    EMBER_PATH_AVX512 = 2,
    EMBER_PATH_NEON = 3,
};

/// Whether this CPU (and OS) can run kernel path `path`: 1 yes, 0 no.
int ember_cpu_supports_path(int path);

/// A GEMM micro-kernel on a packed A strip: `C[0..<m, 0..<n] = alpha * (A * B) + beta * C` for
/// one MR x NR tile.
///
/// - `a`: a packed MR x kc strip, element `(i, p)` at `a[p * MR + i]`, zero in rows `m..<MR`.
/// - `b`: a packed kc x NR strip, element `(p, j)` at `b[p * NR + j]`, zero in columns `n..<NR`.
/// - `c`: row-major tile with leading dimension `ldc`; only its `m x n` elements are touched.
/// - `beta == 0` means `c` is not read (NaNs there do not propagate), as BLAS specifies.
/// Pointers are `float *` or `double *` according to the kernel's dtype; `alpha` and `beta` are
/// passed as double for both (a float converts exactly).
typedef void (*ember_gemm_packed_fn)(long kc, const void *a, const void *b, void *c, long ldc,
                                     double alpha, double beta, long m, long n);

/// The same micro-kernel reading A in place: element `(i, p)` at `a[i * rs_a + p * cs_a]`; rows
/// `m..<MR` are never read. Used for small products, where packing A costs more than it saves.
typedef void (*ember_gemm_strided_fn)(long kc, const void *a, long rs_a, long cs_a, const void *b,
                                      void *c, long ldc, double alpha, double beta, long m, long n);

/// A micro-kernel and the block sizes it is tuned for.
typedef struct {
    /// Tile rows and columns of the micro-kernel.
    long mr, nr;
    /// Cache blocking: depth of a packed panel, rows of a packed A block, columns of a B panel.
    /// `mc` is a multiple of `mr` and `nc` a multiple of `nr`.
    long kc, mc, nc;
    /// NULL when the path is not compiled in for this architecture.
    ember_gemm_packed_fn _Nullable packed;
    ember_gemm_strided_fn _Nullable strided;
} ember_gemm_ukernel;

/// The float32 micro-kernel for `path`; `kernel` is NULL when the path is not compiled in for
/// this architecture. The caller checks `ember_cpu_simd_level` before using a SIMD path.
ember_gemm_ukernel ember_sgemm_ukernel(int path);

/// The float64 micro-kernel for `path`; see `ember_sgemm_ukernel`.
ember_gemm_ukernel ember_dgemm_ukernel(int path);

// Vector kernels outside GEMM (vector_x86.c). Call only after
// `ember_cpu_supports_path(EMBER_PATH_AVX2)` returned 1; elsewhere they trap.

/// `y[j] = sum_p x[p] * w[j * ldw + p]` for `j < n`, `p < k` (float32), accumulated exactly as the
/// GEMM micro-kernels accumulate one element of C: a fused multiply-add chain over `p` in order,
/// restarted for each panel of `kc` values of `p` and added to `y[j]` after the panel. The first
/// panel overwrites `y[j]` unless `accumulate` is non-zero. So the result is bitwise the one
/// `sgemm` (alpha 1, beta 0 or 1) gives for a one-row A and a transposed B, without packing B.
void ember_sgemv_rows_avx2(long n, long k, long kc, const float *x, const float *w, long ldw, float *y,
                           int accumulate);

/// `ember_sgemv_rows_avx2`'s product (the same chains, so bitwise the same `y`) on a weight packed
/// once into strips of 32 columns: strip `s` holds `packed[s * 32 * k + p * 32 + c] = W(32 s + c, p)`
/// for `p < k`, columns past `n` zero. Every load is contiguous and no transposes remain, which
/// roughly halves the time of a batch-1 `Linear` that runs repeatedly on the same weight.
void ember_sgemv_packed_avx2(long n, long k, long kc, const float *x, const float *packed, float *y,
                             int accumulate);

/// Packs `width <= nr` columns of a float32 B whose columns are contiguous (element `(p, j)` at
/// `b[p + j * col_stride]`) into one GEMM B strip: `dst[p * nr + j] = B(p, j)` for `p < k`,
/// `j < width` (columns `width..<nr` are left to the caller). Eight columns at a time through
/// 8 x 8 register transposes instead of one strided store per element.
void ember_spack_b_columns_avx2(long k, long width, const float *b, long col_stride, float *dst, long nr);

/// `v[i] = 1 / sqrt(v[i] + eps)` for `i < count`, four at a time (correctly rounded IEEE
/// operations, so the same values as one at a time).
void ember_inverse_sqrt_plus_avx2(double *v, long count, double eps);

/// Philox4x32-10 blocks for counters `(index + b, stream)`, `b < blocks`, with key `seed`: the four
/// words of block `b` go to `out[4 * b ..< 4 * b + 4]`. Eight blocks at a time.
void ember_philox4x32_10_avx2(uint64_t seed, uint64_t index, uint64_t stream, long blocks, uint32_t *out);

#pragma clang assume_nonnull end

#endif
