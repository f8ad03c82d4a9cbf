#ifndef CEMBER_KERNELS_H
#define CEMBER_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#pragma clang assume_nonnull begin

/// Which SIMD path the CPU supports: 0 portable, 1 AVX2+FMA, 2 AVX-512F, 3 NEON.
int ember_cpu_simd_level(void);

/// Sets glibc's M_MMAP_THRESHOLD and M_TRIM_THRESHOLD; returns 1 when both were set, 0 otherwise
/// (always 0 off glibc).
int ember_set_malloc_thresholds(long mmap_threshold, long trim_threshold);

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

/// The same micro-kernel with A packed and B read indirectly: row `p` of B is the `NR` elements
/// whose `j`-th vector of `VW` (the kernel's `vw`) starts at `b + b_off[p] + j * b_step`
/// (`b_step == VW`: contiguous). Columns `n..<NR` are read, so they must be readable, and
/// discarded. A convolution multiplies its weight by rows of its zero-padded input this way; with
/// `b_step` the padded row length, one tile covers `NR / VW` output rows of `VW` columns.
typedef void (*ember_gemm_indirect_fn)(long kc, const void *a, const void *b, const long *b_off, long b_step,
                                       void *c, long ldc, double alpha, double beta, long m, long n);

/// The same micro-kernel with A read indirectly, B packed: row `i` of A is contiguous from
/// `a + a_off[i]` (`a_off` has `m` entries). A convolution's weight gradient reads its column
/// matrix this way, as rows of its zero-padded input.
typedef void (*ember_gemm_rows_fn)(long kc, const void *a, const long *a_off, const void *b, void *c,
                                   long ldc, double alpha, double beta, long m, long n);

/// The GEMM epilogue on an `m x n` block of C (row `i` at `c + i * ldc`), on kernel path `path`'s
/// vector width (any other path: the baseline target). Each element, in this order: `+ bias[j]`
/// (unless `bias` is NULL), `* scale[j] + shift[j]` (`scale` and `shift` both given or both NULL),
/// and with `relu`, `0` where the value is `<= 0` (NaN stays NaN). Every step is one rounded
/// operation (no contraction), so every path gives the same bits.
void ember_sgemm_epilogue(int path, float *c, long ldc, long m, long n, const float *_Nullable bias,
                          const float *_Nullable scale, const float *_Nullable shift, int relu);
/// The epilogue of a convolution's output, one sample's `[channels, plane]` float32 values `x`
/// into `y` (they may be the same): per channel `i`, in this order, `* scale[i] + shift[i]`
/// (`scale` and `shift` both given or both NULL), `+ residual[i * plane + j]` (unless NULL), and
/// with `relu`, `0` where the value is `<= 0` (NaN stays NaN). Each step one rounded operation, as
/// an eval-mode BatchNorm, an addition and a ReLU compute them; `path` as `ember_sgemm_epilogue`.
void ember_channel_epilogue_f32(int path, const float *x, float *y, long channels, long plane,
                                const float *_Nullable scale, const float *_Nullable shift,
                                const float *_Nullable residual, int relu);
/// ReLU's backward on float32: `out[i] = y[i] <= 0 ? 0 : g[i]` (`y` the ReLU's output; NaN passes
/// the gradient), on `path`'s vector width (any other: the baseline target).
void ember_relu_backward_f32(int path, long n, const float *g, const float *y, float *out);
/// Copies `rows` rows of `cols` floats from `src` (rows `src_stride` apart) to `dst` (rows
/// `dst_stride` apart; the two do not overlap), on `path`'s vector width.
void ember_copy_rows_f32(int path, long rows, long cols, const float *src, long src_stride, float *dst, long dst_stride);
/// `strips` full GEMM B strips of `nr` columns from the `k x (strips * nr)` row-major float32 `src`
/// (rows `src_stride` apart): strip `t` at `dst + t * k * nr`, its row `p` at `+ p * nr` (the
/// layout of `GEMM.packB`), read row by row.
void ember_pack_b_strips_f32(int path, long k, long strips, long nr, const float *src, long src_stride, float *dst);
/// `ember_sgemm_epilogue` for float64.
void ember_dgemm_epilogue(int path, double *c, long ldc, long m, long n, const double *_Nullable bias,
                          const double *_Nullable scale, const double *_Nullable shift, int relu);

/// Layer normalization of `rows` contiguous float32 rows of `n` (`n > 0`) into `y`, with float64
/// statistics: per row `mean[r]`, `invstd[r] = 1 / sqrt(biased variance + eps)` and
/// `y = float(((x - mean) * invstd) * gamma + beta)` (`gamma`, `beta` optional, `n` values).
/// The arithmetic of EmberFunctional's Swift `GroupedNormKernel.forward`, bitwise (layer_norm.c
/// says how); `path` picks the vector width (any other: the baseline target). With `x2`, the rows
/// normalised are the float32 sums `x + x2` (built one at a time in `scratch`, `n` floats).
void ember_layer_norm_f32(int path, const float *x, const float *_Nullable x2, float *_Nullable scratch, float *y,
                          long rows, long n, double eps, const float *_Nullable gamma, const float *_Nullable beta,
                          double *mean, double *invstd);

/// Batch normalization along one float32 plane of `s` values (batch_norm.c), bitwise EmberFunctional's
/// Swift `BatchNormPlanes` loops on every `path` (any other: the baseline target): the sum of `x`,
/// or with `squared` of `(x - mu)^2`, in sixteen float64 lanes.
double ember_bn_plane_sum_f32(int path, const float *x, long s, int squared, double mu);
/// A plane's moments: `sum` of `x` and `m2`, the sum of `(x - sum / s)^2`, as `ember_bn_plane_sum_f32`
/// sums (the plane is read twice while it is in cache).
void ember_bn_plane_moments_f32(int path, const float *x, long s, double *sum, double *m2);
/// `sum(g)` and `sum(g * (x - mu) * inv)` along one plane, as `ember_bn_plane_sum_f32` sums.
void ember_bn_plane_gradient_sums_f32(int path, const float *x, const float *g, long s, double mu, double inv,
                                      double *sum_g, double *sum_gx);
/// ReLU's mask of the `s` float32 values `y` (a ReLU's output): bit `j % 16` of `bits[j / 16]` is
/// set where `y[j]` is not `<= 0` (NaN included), the bits past `s` in the last word are 0;
/// `(s + 15) / 16` words.
void ember_relu_mask_bits_f32(int path, const float *y, long s, uint16_t *bits);
/// `ember_bn_plane_gradient_sums_f32` of ReLU's backward of `g` (`y <= 0 ? 0 : g`,
/// `ember_relu_backward_f32`) through the mask `bits` of its output `y`
/// (`ember_relu_mask_bits_f32`), which is also written to `gm` when given.
void ember_bn_plane_masked_gradient_sums_f32(int path, const float *x, const float *g, const uint16_t *bits,
                                             float *_Nullable gm, long s, double mu, double inv, double *sum_g,
                                             double *sum_gx);
/// `ember_bn_plane_input_gradient_f32` of ReLU's backward of `g` through the mask `bits`.
void ember_bn_plane_masked_input_gradient_f32(int path, const float *x, const float *g, const uint16_t *bits, float *dx,
                                              long s, double m, double mu, double inv, double k, double sum_g,
                                              double sum_gx);
/// `dx = float(k * ((m * g - sum_g) - (x - mu) * inv * sum_gx))` along one plane, in float64.
void ember_bn_plane_input_gradient_f32(int path, const float *x, const float *g, float *dx, long s, double m,
                                       double mu, double inv, double k, double sum_g, double sum_gx);

/// The packed micro-kernel with the GEMM epilogue (`ember_sgemm_epilogue`'s steps, the same bits)
/// applied to the tile in registers before it is stored; for the last panel of a product.
typedef void (*ember_gemm_packed_epilogue_fn)(long kc, const void *a, const void *b, void *c, long ldc, double alpha,
                                              double beta, long m, long n, const void *_Nullable bias,
                                              const void *_Nullable scale, const void *_Nullable shift, int relu);

/// The strided micro-kernel with the GEMM epilogue in registers, as `ember_gemm_packed_epilogue_fn`.
typedef void (*ember_gemm_strided_epilogue_fn)(long kc, const void *a, long rs_a, long cs_a, const void *b, void *c,
                                               long ldc, double alpha, double beta, long m, long n,
                                               const void *_Nullable bias, const void *_Nullable scale,
                                               const void *_Nullable shift, int relu);

/// A micro-kernel and the block sizes it is tuned for.
typedef struct {
    /// Tile rows and columns of the micro-kernel, and the lanes of one vector (`nr` is a multiple).
    long mr, nr, vw;
    /// Cache blocking: depth of a packed panel, rows of a packed A block, columns of a B panel.
    /// `mc` is a multiple of `mr` and `nc` a multiple of `nr`.
    long kc, mc, nc;
    /// NULL when the path is not compiled in for this architecture.
    ember_gemm_packed_fn _Nullable packed;
    ember_gemm_strided_fn _Nullable strided;
    ember_gemm_indirect_fn _Nullable indirect;
    /// A second, shorter indirect kernel (`mr_short` rows, same `nr`) that tiles row counts the
    /// main one does not divide; 0 and NULL where the path has none.
    long mr_short;
    ember_gemm_indirect_fn _Nullable indirect_short;
    ember_gemm_rows_fn _Nullable rows;
    /// `packed` with the epilogue in registers; NULL where the path has none (the driver then
    /// runs `ember_sgemm_epilogue` on the stored tile: the same bits).
    ember_gemm_packed_epilogue_fn _Nullable packed_epilogue;
    /// `strided` with the epilogue in registers; NULL where `packed_epilogue` is.
    ember_gemm_strided_epilogue_fn _Nullable strided_epilogue;
    /// Widest block of C (columns) for which a row-major A is read in place rather than packed
    /// when it spans several A blocks or panels: each packed element would serve at most
    /// `a_in_place_n / nr` tiles. 0: always pack.
    long a_in_place_n;
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
/// 8 x 8 register transposes instead of one strided store per element; the last `width % 8` columns
/// through one more transpose and masked stores. Also packs row-major A strips (the same layout).
void ember_spack_b_columns_avx2(long k, long width, const float *b, long col_stride, float *dst, long nr);

/// `v[i] = 1 / sqrt(v[i] + eps)` for `i < count`, four at a time (correctly rounded IEEE
/// operations, so the same values as one at a time).
void ember_inverse_sqrt_plus_avx2(double *v, long count, double eps);

/// Philox4x32-10 blocks for counters `(index + b, stream)`, `b < blocks`, with key `seed`: the four
/// words of block `b` go to `out[4 * b ..< 4 * b + 4]`. Eight blocks at a time.
void ember_philox4x32_10_avx2(uint64_t seed, uint64_t index, uint64_t stream, long blocks, uint32_t *out);
/// `ember_philox4x32_10_avx2` sixteen blocks at a time (the same words). Requires AVX-512F.
void ember_philox4x32_10_avx512(uint64_t seed, uint64_t index, uint64_t stream, long blocks, uint32_t *out);

// 2x2 max pooling with stride 2 (pool_x86.c, AVX2). Call only after
// `ember_cpu_supports_path(EMBER_PATH_AVX2)` returned 1; elsewhere they trap.

/// Max over each 2x2 window with stride 2 of `planes` float32 planes `ih x iw` (row-major), into
/// `oh x ow` planes (`2 oh <= ih`, `2 ow <= iw`, `ih * iw < 2^31`): candidates top-left, top-right,
/// bottom-left, bottom-right, a later one taking over when greater or NaN; `indices` (or NULL)
/// gets the flat position of each maximum within its input plane.
void ember_smax_pool2x2_avx2(long planes, long ih, long iw, long oh, long ow, const float *x, float *y,
                             int64_t *_Nullable indices);
/// The input gradient of `ember_smax_pool2x2_avx2`: `dx` (`planes x ih x iw`) is `0 + g` at each
/// window's index and +0 everywhere else (every element is written).
void ember_smax_pool2x2_backward_avx2(long planes, long ih, long iw, long oh, long ow, const float *g,
                                      const int64_t *indices, float *dx);
/// `ember_smax_pool2x2_avx2` sixteen windows at a time (the same values and indices). Requires AVX-512F.
void ember_smax_pool2x2_avx512(long planes, long ih, long iw, long oh, long ow, const float *x, float *y,
                               int64_t *_Nullable indices);
/// `ember_smax_pool2x2_backward_avx2` sixteen windows at a time (the same gradient). Requires AVX-512F.
void ember_smax_pool2x2_backward_avx512(long planes, long ih, long iw, long oh, long ow, const float *g,
                                        const int64_t *indices, float *dx);

// Float32 activations and recurrent step passes (activation_x86.c, AVX2 without FMA). Call only
// after `ember_cpu_supports_path(EMBER_PATH_AVX2)` returned 1; elsewhere they trap. Every value is
// bitwise the one of EmberTensor's Swift `expVector`/`sigmoidVector`/`tanhVector` (and SiLU/GELU
// functions built on them) and of the Swift
// cell passes in EmberNN's `Recurrent/` (same constants, same operations in the same order).

/// `y[i] = e^x[i]` for `i < n` (`x` and `y` may be the same row).
void ember_sexp_avx2(long n, const float *x, float *y);
/// `ember_sexp_avx2` sixteen lanes at a time (the same bits). Requires AVX-512F.
void ember_sexp_avx512(long n, const float *x, float *y);
/// Attention's softmax numerators: row `r < rows` of the tile (`cols` values at `tile + r * ld`,
/// each at most `shifts[r]` or NaN) becomes `e^(x - shifts[r])` (within 2 ulp, with fused
/// multiply-adds: not `ember_sexp_avx512`'s bits) and `sums[r]` their sum: eight lanes added chunk
/// by chunk, the lanes left to right, then the last `cols % 8` values. Requires AVX-512F.
void ember_sexp_shifted_rows_avx512(long rows, long cols, long ld, float *tile, const float *shifts, float *sums);
/// The largest of `row[0..<count]` ignoring NaN (as `x > max` comparisons do), `-inf` if none.
/// Requires AVX-512F.
float ember_smax_row_avx512(const float *row, long count);
/// `ember_sexp_shifted_rows_avx512` and `ember_smax_row_avx512` eight lanes wide (attention_avx2.c):
/// the same bits. Require AVX2 and FMA.
void ember_sexp_shifted_rows_avx2(long rows, long cols, long ld, float *tile, const float *shifts, float *sums);
float ember_smax_row_avx2(const float *row, long count);
/// `y[i] = 1 / (1 + e^-x[i])` for `i < n`.
void ember_ssigmoid_avx2(long n, const float *x, float *y);
/// `y[i] = tanh(x[i])` for `i < n`.
void ember_stanh_avx2(long n, const float *x, float *y);
/// `y[i] = sqrt(x[i])` and `y[i] = 1 / sqrt(x[i])` for `i < n` (IEEE, so the scalar values).
void ember_ssqrt_avx2(long n, const float *x, float *y);
void ember_srsqrt_avx2(long n, const float *x, float *y);
/// `y[i] = log(x[i])` (EmberTensor's `logVector`, Cephes' `logf`) for `i < n`.
void ember_slog_avx2(long n, const float *x, float *y);
/// `y[i] = x[i] / (1 + e^-x[i])` (SiLU) for `i < n`.
void ember_ssilu_avx2(long n, const float *x, float *y);
/// `y[i] = x[i] / 2 * (1 + erf(x[i] / sqrt 2))` (GELU with EmberTensor's `erfVector`) for `i < n`.
void ember_sgelu_avx2(long n, const float *x, float *y);
/// `y[i] = x[i] / 2 * (1 + tanh(sqrt(2 / pi) (x[i] + 0.044715 x[i]^3)))` for `i < n`.
void ember_sgelu_tanh_avx2(long n, const float *x, float *y);

/// One LSTM step for `rows` hidden units `r` and `cols` batch columns `n` (EmberNN's
/// `LSTMSequence.cellForward`). Gate `q` (`i, f, g, o`) of unit `r` is the row
/// `gates[(q * gate_rows + r) * gate_stride ...]` plus `bias[q * gate_rows + r]`; the activated gates
/// go to the same places of `activations` (row stride `activation_stride`) unless it is NULL;
/// `c_prev`, `c_out`, `tanh_c` are `rows x cols` with row stride `state_stride`; `h` element
/// `(r, n)` is `h[r * h_row_stride + n * h_col_stride]`.
void ember_lstm_forward_avx2(long rows, long cols, long gate_rows, const float *gates, long gate_stride,
                             const float *bias, float *_Nullable activations, long activation_stride,
                             const float *c_prev, float *c_out, float *tanh_c, long state_stride, float *h,
                             long h_row_stride, long h_col_stride);

/// One LSTM step backward (EmberNN's `LSTMSequence.cellBackward`): activated gates (as in
/// `ember_lstm_forward_avx2`, row stride `stride`), `c_prev`, `tanh_c`, `d_h` and the running `d_c`
/// (row stride `stride`) give the gate pre-activation gradients (`d_gates`, row stride
/// `d_gate_stride`) and the previous cell's gradient (in `d_c`).
void ember_lstm_backward_avx2(long rows, long cols, long gate_rows, const float *gates, const float *c_prev,
                              const float *tanh_c, const float *d_h, float *d_c, long stride, float *d_gates,
                              long d_gate_stride);

/// One GRU step (EmberNN's `GRUSequence.cellForward`), laid out as `ember_lstm_forward_avx2` with
/// three gates `r, z, n`; `hidden_gates` (`W_hh h`, row stride `hidden_gate_stride`) and `h_prev`
/// (strided like `h`) may be NULL for a zero previous state.
void ember_gru_forward_avx2(long rows, long cols, long gate_rows, const float *gates, long gate_stride,
                            const float *input_bias, const float *_Nullable hidden_gates, long hidden_gate_stride,
                            const float *hidden_bias, const float *_Nullable h_prev, long h_prev_row_stride,
                            long h_prev_col_stride, float *_Nullable activations, long activation_stride,
                            float *hidden_new, long hidden_new_stride, float *h, long h_row_stride,
                            long h_col_stride);

/// One Elman RNN step (EmberNN's `RNNSequence.forward`): `h(r, n) = act(pre[r * pre_stride + n] +
/// bias[r])` with `act` tanh, or ReLU when `relu` is non-zero.
void ember_rnn_forward_avx2(long rows, long cols, const float *pre, long pre_stride, const float *bias, int relu,
                            float *h, long h_row_stride, long h_col_stride);

/// `dst[r * dst_row_stride + c] += src[r * src_row_stride + c * src_col_stride]` for `r < rows`,
/// `c < cols` (EmberNN's `addOutputGradient`); a transposed `src` (`src_row_stride == 1`) goes
/// through 8 x 8 register transposes.
void ember_add_block_avx2(long rows, long cols, const float *src, long src_row_stride, long src_col_stride,
                          float *dst, long dst_row_stride);

/// The innermost module whose forward runs on this thread, when that module is in evaluation
/// mode (an unretained Swift object), or NULL. EmberNN sets it around `Module.callAsFunction`;
/// functional dropout reads it to warn about dropping inside an eval-mode module.
const void *_Nullable ember_eval_forward_owner(void);
void ember_set_eval_forward_owner(const void *_Nullable owner);

#pragma clang assume_nonnull end

#endif
