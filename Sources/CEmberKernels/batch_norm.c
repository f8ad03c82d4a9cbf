// Batch normalization's loops along one float32 plane (`[N, C, S]` input, `S > 1`: after a
// convolution), the arithmetic of EmberFunctional's Swift `BatchNormPlanes` step for step, so the
// results are bitwise the same:
// - each sum runs in sixteen float64 lanes, lane c adding the elements j = c mod 16 in order over
//   the whole groups of sixteen (the Swift loop's four SIMD4 accumulators a0..a3), combined as
//   r = (a0 + a1) + (a2 + a3) lane by lane, then ((r0 + r1) + r2) + r3 (`SIMD.sum()`), then the
//   remaining elements added one by one;
// - the input gradient is element-wise: float(k * ((m * g - sumG) - xhat * sumGX)) with
//   xhat = (x - mean) * invstd, in float64.
// Added since, with no Swift loop behind them: a plane's moments (its sum and the sum of squared
// deviations from its own mean sum / s, each such a sum), and masked forms of the gradient loops
// that apply a following ReLU's backward to the gradient as they read it. The mask is one bit per
// element (`ember_relu_mask_bits_f32`, taken from the ReLU's output in the forward while the plane
// is in cache): reading the float output again cost the backward's passes a third of their
// memory traffic.
// The sums' lanes are intrinsics on AVX-512F and AVX2; the other loops are one body compiled for
// each width and the baseline. Contraction is off, so every path gives the same bits. The Swift
// loops, compiled for the baseline target, ran two float64 lanes per instruction.
#pragma clang fp contract(off)
#include "include/CEmberKernels.h"

static inline __attribute__((always_inline)) double bn_combine(const double *l) {
    double r0 = (l[0] + l[4]) + (l[8] + l[12]), r1 = (l[1] + l[5]) + (l[9] + l[13]);
    double r2 = (l[2] + l[6]) + (l[10] + l[14]), r3 = (l[3] + l[7]) + (l[11] + l[15]);
    return ((r0 + r1) + r2) + r3;
}

// The end of a sum: the sixteen lanes combined, then the elements from j on added one by one.
static double bn_finish(const double *lanes, const float *x, long j, long s, int squared, double mu) {
    double total = bn_combine(lanes);
    for (; j < s; ++j) {
        double v = (double)x[j];
        total += squared ? (v - mu) * (v - mu) : v;
    }
    return total;
}

// sum(x), or with `squared` sum((x - mu)^2).
static inline __attribute__((always_inline)) double bn_sum(const float *x, long s, int squared, double mu) {
    double lanes[16] = {0};
    long j = 0;
    for (; j + 16 <= s; j += 16)
        for (int c = 0; c < 16; ++c) {
            double v = (double)x[j + c];
            if (squared) v = (v - mu) * (v - mu);
            lanes[c] += v;
        }
    return bn_finish(lanes, x, j, s, squared, mu);
}

// Whether ReLU's mask keeps element j's gradient: bit j % 16 of word j / 16.
static inline __attribute__((always_inline)) int bn_kept(const uint16_t *bits, long j) { return (bits[j >> 4] >> (j & 15)) & 1; }

// The end of the gradient sums: the lanes combined, then the elements from j on one by one.
static inline __attribute__((always_inline)) void bn_gradient_sums_finish(const double *lg, const double *lgx, const float *x,
                                                                            const float *g, const uint16_t *bits, float *gm,
                                                                            long j, long s, double mu, double inv,
                                                                            double *sum_g, double *sum_gx) {
    double tg = bn_combine(lg), tgx = bn_combine(lgx);
    for (; j < s; ++j) {
        float gf = g[j];
        if (bits) gf = bn_kept(bits, j) ? gf : 0;
        if (gm) gm[j] = gf;
        tg += (double)gf;
        tgx += (double)gf * ((double)x[j] - mu) * inv;
    }
    *sum_g = tg;
    *sum_gx = tgx;
}

// sum(g) and sum(g * (x - mu) * inv). With `masked` (a constant at each call), g is first
// replaced by ReLU's backward (`y <= 0 ? 0 : g`, ember_relu_backward_f32) through the mask bits
// of its output y, and with `store` that gradient is also written to gm.
static inline __attribute__((always_inline)) void bn_gradient_sums_body(const float *x, const float *g, const uint16_t *bits,
                                                                          float *gm, long s, double mu, double inv,
                                                                          double *sum_g, double *sum_gx, const int masked,
                                                                          const int store) {
    double lg[16] = {0}, lgx[16] = {0};
    long j = 0;
    for (; j + 16 <= s; j += 16)
        for (int c = 0; c < 16; ++c) {
            float gf = g[j + c];
            if (masked) gf = (bits[j >> 4] >> c) & 1 ? gf : 0;
            if (store) gm[j + c] = gf;
            double gv = (double)gf;
            lg[c] += gv;
            lgx[c] += gv * ((double)x[j + c] - mu) * inv;
        }
    bn_gradient_sums_finish(lg, lgx, x, g, masked ? bits : 0, store ? gm : 0, j, s, mu, inv, sum_g, sum_gx);
}

// dx from g, or with `masked` from ReLU's backward of g through the mask bits, from element j0 on.
static inline __attribute__((always_inline)) void bn_input_gradient_body(const float *x, const float *g, const uint16_t *bits,
                                                                           float *dx, long j0, long s, double m, double mu,
                                                                           double inv, double k, double sg, double sgx,
                                                                           const int masked) {
    for (long j = j0; j < s; ++j) {
        float gf = g[j];
        if (masked) gf = bn_kept(bits, j) ? gf : 0;
        double xhat = ((double)x[j] - mu) * inv;
        dx[j] = (float)(k * ((m * (double)gf - sg) - xhat * sgx));
    }
}

static inline __attribute__((always_inline)) void bn_input_gradient(const float *x, const float *g, float *dx, long s,
                                                                      double m, double mu, double inv, double k,
                                                                      double sg, double sgx) {
    bn_input_gradient_body(x, g, 0, dx, 0, s, m, mu, inv, k, sg, sgx, 0);
}

static double bn_sum_portable(const float *x, long s, int squared, double mu) {
    return squared ? bn_sum(x, s, 1, mu) : bn_sum(x, s, 0, mu);
}

#if defined(__x86_64__)
#include <immintrin.h>

// The lanes of a sum as vectors: clang kept bn_sum's `lanes[16]` loop in two-lane registers (SSE
// width, with element inserts) even when compiled for AVX-512. Lane c still adds the elements
// j = c mod 16 in order, so the bits are the same.
__attribute__((target("avx512f"))) static double bn_sum_avx512(const float *x, long s, int squared, double mu) {
    __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
    const __m512d m = _mm512_set1_pd(mu);
    long j = 0;
    for (; j + 16 <= s; j += 16) {
        __m512d a = _mm512_cvtps_pd(_mm256_loadu_ps(x + j)), b = _mm512_cvtps_pd(_mm256_loadu_ps(x + j + 8));
        if (squared) {
            a = _mm512_sub_pd(a, m);
            b = _mm512_sub_pd(b, m);
            a = _mm512_mul_pd(a, a);
            b = _mm512_mul_pd(b, b);
        }
        lo = _mm512_add_pd(lo, a);
        hi = _mm512_add_pd(hi, b);
    }
    double lanes[16];
    _mm512_storeu_pd(lanes, lo);
    _mm512_storeu_pd(lanes + 8, hi);
    return bn_finish(lanes, x, j, s, squared, mu);
}

__attribute__((target("avx2"))) static double bn_sum_avx2(const float *x, long s, int squared, double mu) {
    __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
    const __m256d m = _mm256_set1_pd(mu);
    long j = 0;
    for (; j + 16 <= s; j += 16)
        for (int q = 0; q < 4; ++q) {
            __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(x + j + 4 * q));
            if (squared) {
                v = _mm256_sub_pd(v, m);
                v = _mm256_mul_pd(v, v);
            }
            acc[q] = _mm256_add_pd(acc[q], v);
        }
    double lanes[16];
    for (int q = 0; q < 4; ++q) _mm256_storeu_pd(lanes + 4 * q, acc[q]);
    return bn_finish(lanes, x, j, s, squared, mu);
}
#endif

// ReLU's mask of one plane: bit j % 16 of bits[j / 16] set where y[j] is not <= 0 (NaN
// included: ReLU's backward passes its gradient); the unused bits of the last word are zero.
static void relu_mask_bits_portable(const float *y, long s, uint16_t *bits) {
    for (long w = 0; w * 16 < s; ++w) {
        uint16_t word = 0;
        for (long c = 0; c < 16 && w * 16 + c < s; ++c) word |= (uint16_t)(!(y[w * 16 + c] <= 0)) << c;
        bits[w] = word;
    }
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static void relu_mask_bits_avx512(const float *y, long s, uint16_t *bits) {
    const __m512 zero = _mm512_setzero_ps();
    long j = 0;
    for (; j + 16 <= s; j += 16) bits[j >> 4] = _mm512_cmp_ps_mask(_mm512_loadu_ps(y + j), zero, _CMP_NLE_UQ);
    if (j < s) {
        __mmask16 tail = (__mmask16)((1u << (s - j)) - 1);
        bits[j >> 4] = _mm512_mask_cmp_ps_mask(tail, _mm512_maskz_loadu_ps(tail, y + j), zero, _CMP_NLE_UQ);
    }
}

__attribute__((target("avx2"))) static void relu_mask_bits_avx2(const float *y, long s, uint16_t *bits) {
    const __m256 zero = _mm256_setzero_ps();
    long j = 0;
    for (; j + 16 <= s; j += 16) {
        int lo = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(y + j), zero, _CMP_NLE_UQ));
        int hi = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(y + j + 8), zero, _CMP_NLE_UQ));
        bits[j >> 4] = (uint16_t)(lo | hi << 8);
    }
    if (j < s) relu_mask_bits_portable(y + j, s - j, bits + (j >> 4));
}

// The masked loops with the mask as the load's mask (masked-off lanes read as 0, never from
// memory); each lane's arithmetic as in bn_gradient_sums_body and bn_input_gradient_body.
__attribute__((target("avx512f"))) static inline __m512d bn_low_pd(__m512 v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
__attribute__((target("avx512f"))) static inline __m512d bn_high_pd(__m512 v) {
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

// The gradient sums, masked when `bits` is given (the unmasked sums run here too, so that both
// give the same bits, NaN's sign included: the order of a product's operands decides it).
__attribute__((target("avx512f"))) static void bn_gradient_sums_avx512(const float *x, const float *g, const uint16_t *bits,
                                                                      float *gm, long s, double mu, double inv,
                                                                      double *sum_g, double *sum_gx) {
    __m512d g0 = _mm512_setzero_pd(), g1 = g0, gx0 = g0, gx1 = g0;
    const __m512d m = _mm512_set1_pd(mu), iv = _mm512_set1_pd(inv);
    long j = 0;
    for (; j + 16 <= s; j += 16) {
        __m512 gf = bits ? _mm512_maskz_loadu_ps((__mmask16)bits[j >> 4], g + j) : _mm512_loadu_ps(g + j);
        if (gm) _mm512_storeu_ps(gm + j, gf);
        __m512 xf = _mm512_loadu_ps(x + j);
        __m512d a = bn_low_pd(gf), b = bn_high_pd(gf);
        g0 = _mm512_add_pd(g0, a);
        g1 = _mm512_add_pd(g1, b);
        gx0 = _mm512_add_pd(gx0, _mm512_mul_pd(_mm512_mul_pd(a, _mm512_sub_pd(bn_low_pd(xf), m)), iv));
        gx1 = _mm512_add_pd(gx1, _mm512_mul_pd(_mm512_mul_pd(b, _mm512_sub_pd(bn_high_pd(xf), m)), iv));
    }
    double lg[16], lgx[16];
    _mm512_storeu_pd(lg, g0);
    _mm512_storeu_pd(lg + 8, g1);
    _mm512_storeu_pd(lgx, gx0);
    _mm512_storeu_pd(lgx + 8, gx1);
    bn_gradient_sums_finish(lg, lgx, x, g, bits, gm, j, s, mu, inv, sum_g, sum_gx);
}

__attribute__((target("avx512f"))) static void bn_masked_input_gradient_avx512(const float *x, const float *g, const uint16_t *bits,
                                                                              float *dx, long s, double m, double mu,
                                                                              double inv, double k, double sg, double sgx) {
    const __m512d vm = _mm512_set1_pd(m), vmu = _mm512_set1_pd(mu), vinv = _mm512_set1_pd(inv), vk = _mm512_set1_pd(k);
    const __m512d vsg = _mm512_set1_pd(sg), vsgx = _mm512_set1_pd(sgx);
    long j = 0;
    for (; j + 16 <= s; j += 16) {
        __m512 gf = _mm512_maskz_loadu_ps((__mmask16)bits[j >> 4], g + j);
        __m512 xf = _mm512_loadu_ps(x + j);
        __m512d r[2];
        for (int h = 0; h < 2; ++h) {
            __m512d gv = h ? bn_high_pd(gf) : bn_low_pd(gf), xv = h ? bn_high_pd(xf) : bn_low_pd(xf);
            __m512d xhat = _mm512_mul_pd(_mm512_sub_pd(xv, vmu), vinv);
            r[h] = _mm512_mul_pd(vk, _mm512_sub_pd(_mm512_sub_pd(_mm512_mul_pd(vm, gv), vsg), _mm512_mul_pd(xhat, vsgx)));
        }
        _mm256_storeu_ps(dx + j, _mm512_cvtpd_ps(r[0]));
        _mm256_storeu_ps(dx + j + 8, _mm512_cvtpd_ps(r[1]));
    }
    bn_input_gradient_body(x, g, bits, dx, j, s, m, mu, inv, k, sg, sgx, 1);
}
#endif

#define EMBER_BN_FNS(suffix, attributes)                                                                   \
    attributes static void bn_moments_##suffix(const float *x, long s, double *sum, double *m2) {         \
        double total = bn_sum_##suffix(x, s, 0, 0);                                                        \
        *sum = total;                                                                                      \
        *m2 = bn_sum_##suffix(x, s, 1, total / (double)s);                                                 \
    }                                                                                                      \
    attributes static void bn_input_gradient_##suffix(const float *x, const float *g, float *dx, long s,  \
                                                      double m, double mu, double inv, double k, double sg, \
                                                      double sgx) {                                        \
        bn_input_gradient(x, g, dx, s, m, mu, inv, k, sg, sgx);                                            \
    }                                                                                                      \

// The gradient sums, masked when `bits` is given (and then the masked gradient written to `gm`
// when given), and the masked input gradient.
#define EMBER_BN_GRADIENT_FNS(suffix, attributes)                                                            \
    attributes static void bn_gradient_sums_##suffix(const float *x, const float *g, const uint16_t *bits, \
                                                     float *gm, long s, double mu, double inv,             \
                                                     double *sum_g, double *sum_gx) {                      \
        if (!bits)                                                                                         \
            bn_gradient_sums_body(x, g, 0, 0, s, mu, inv, sum_g, sum_gx, 0, 0);                           \
        else if (gm)                                                                                       \
            bn_gradient_sums_body(x, g, bits, gm, s, mu, inv, sum_g, sum_gx, 1, 1);                       \
        else                                                                                               \
            bn_gradient_sums_body(x, g, bits, 0, s, mu, inv, sum_g, sum_gx, 1, 0);                        \
    }                                                                                                      \
    attributes static void bn_masked_input_gradient_##suffix(const float *x, const float *g,              \
                                                             const uint16_t *bits, float *dx, long s,      \
                                                             double m, double mu, double inv, double k,    \
                                                             double sg, double sgx) {                      \
        bn_input_gradient_body(x, g, bits, dx, 0, s, m, mu, inv, k, sg, sgx, 1);                          \
    }

EMBER_BN_FNS(portable, )
EMBER_BN_GRADIENT_FNS(portable, )
#if defined(__x86_64__)
EMBER_BN_FNS(avx2, __attribute__((target("avx2"))))
EMBER_BN_GRADIENT_FNS(avx2, __attribute__((target("avx2"))))
EMBER_BN_FNS(avx512, __attribute__((target("avx512f"))))
#endif

double ember_bn_plane_sum_f32(int path, const float *x, long s, int squared, double mu) {
    switch (path) {
#if defined(__x86_64__)
    case EMBER_PATH_AVX512: return bn_sum_avx512(x, s, squared, mu);
    case EMBER_PATH_AVX2: return bn_sum_avx2(x, s, squared, mu);
#endif
    default: return bn_sum_portable(x, s, squared, mu);
    }
}

void ember_bn_plane_moments_f32(int path, const float *x, long s, double *sum, double *m2) {
    switch (path) {
#if defined(__x86_64__)
    case EMBER_PATH_AVX512: bn_moments_avx512(x, s, sum, m2); return;
    case EMBER_PATH_AVX2: bn_moments_avx2(x, s, sum, m2); return;
#endif
    default: bn_moments_portable(x, s, sum, m2); return;
    }
}

void ember_bn_plane_gradient_sums_f32(int path, const float *x, const float *g, long s, double mu, double inv,
                                      double *sum_g, double *sum_gx) {
    switch (path) {
#if defined(__x86_64__)
    case EMBER_PATH_AVX512: bn_gradient_sums_avx512(x, g, 0, 0, s, mu, inv, sum_g, sum_gx); return;
    case EMBER_PATH_AVX2: bn_gradient_sums_avx2(x, g, 0, 0, s, mu, inv, sum_g, sum_gx); return;
#endif
    default: bn_gradient_sums_portable(x, g, 0, 0, s, mu, inv, sum_g, sum_gx); return;
    }
}

void ember_bn_plane_input_gradient_f32(int path, const float *x, const float *g, float *dx, long s, double m,
                                       double mu, double inv, double k, double sum_g, double sum_gx) {
    switch (path) {
#if defined(__x86_64__)
    case EMBER_PATH_AVX512: bn_input_gradient_avx512(x, g, dx, s, m, mu, inv, k, sum_g, sum_gx); return;
    case EMBER_PATH_AVX2: bn_input_gradient_avx2(x, g, dx, s, m, mu, inv, k, sum_g, sum_gx); return;
#endif
    default: bn_input_gradient_portable(x, g, dx, s, m, mu, inv, k, sum_g, sum_gx); return;
    }
}

void ember_relu_mask_bits_f32(int path, const float *y, long s, uint16_t *bits) {
    switch (path) {
#if defined(__x86_64__)
    case EMBER_PATH_AVX512: relu_mask_bits_avx512(y, s, bits); return;
    case EMBER_PATH_AVX2: relu_mask_bits_avx2(y, s, bits); return;
#endif
    default: relu_mask_bits_portable(y, s, bits); return;
    }
}

void ember_bn_plane_masked_gradient_sums_f32(int path, const float *x, const float *g, const uint16_t *bits, float *gm, long s,
                                             double mu, double inv, double *sum_g, double *sum_gx) {
    switch (path) {
#if defined(__x86_64__)
    case EMBER_PATH_AVX512: bn_gradient_sums_avx512(x, g, bits, gm, s, mu, inv, sum_g, sum_gx); return;
    case EMBER_PATH_AVX2: bn_gradient_sums_avx2(x, g, bits, gm, s, mu, inv, sum_g, sum_gx); return;
#endif
    default: bn_gradient_sums_portable(x, g, bits, gm, s, mu, inv, sum_g, sum_gx); return;
    }
}

void ember_bn_plane_masked_input_gradient_f32(int path, const float *x, const float *g, const uint16_t *bits, float *dx, long s,
                                              double m, double mu, double inv, double k, double sum_g, double sum_gx) {
    switch (path) {
#if defined(__x86_64__)
    case EMBER_PATH_AVX512: bn_masked_input_gradient_avx512(x, g, bits, dx, s, m, mu, inv, k, sum_g, sum_gx); return;
    case EMBER_PATH_AVX2: bn_masked_input_gradient_avx2(x, g, bits, dx, s, m, mu, inv, k, sum_g, sum_gx); return;
#endif
    default: bn_masked_input_gradient_portable(x, g, bits, dx, s, m, mu, inv, k, sum_g, sum_gx); return;
    }
}
