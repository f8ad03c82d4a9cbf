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
// that apply a following ReLU's backward to the gradient as they read it.
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

// sum(g) and sum(g * (x - mu) * inv). With `masked` (a constant at each call), g is first
// replaced by ReLU's backward through the output y (`y <= 0 ? 0 : g`, ember_relu_backward_f32),
// and with `store` that gradient is also written to gm.
static inline __attribute__((always_inline)) void bn_gradient_sums_body(const float *x, const float *g, const float *y, float *gm,
                                                                          long s, double mu, double inv, double *sum_g,
                                                                          double *sum_gx, const int masked, const int store) {
    double lg[16] = {0}, lgx[16] = {0};
    long j = 0;
    for (; j + 16 <= s; j += 16)
        for (int c = 0; c < 16; ++c) {
            float gf = g[j + c];
            if (masked) gf = y[j + c] <= 0 ? 0 : gf;
            if (store) gm[j + c] = gf;
            double gv = (double)gf;
            lg[c] += gv;
            lgx[c] += gv * ((double)x[j + c] - mu) * inv;
        }
    double tg = bn_combine(lg), tgx = bn_combine(lgx);
    for (; j < s; ++j) {
        float gf = g[j];
        if (masked) gf = y[j] <= 0 ? 0 : gf;
        if (store) gm[j] = gf;
        tg += (double)gf;
        tgx += (double)gf * ((double)x[j] - mu) * inv;
    }
    *sum_g = tg;
    *sum_gx = tgx;
}

static inline __attribute__((always_inline)) void bn_gradient_sums(const float *x, const float *g, long s, double mu,
                                                                     double inv, double *sum_g, double *sum_gx) {
    bn_gradient_sums_body(x, g, 0, 0, s, mu, inv, sum_g, sum_gx, 0, 0);
}

// dx from g, or with `masked` from ReLU's backward of g through y.
static inline __attribute__((always_inline)) void bn_input_gradient_body(const float *x, const float *g, const float *y,
                                                                           float *dx, long s, double m, double mu,
                                                                           double inv, double k, double sg, double sgx,
                                                                           const int masked) {
    for (long j = 0; j < s; ++j) {
        float gf = g[j];
        if (masked) gf = y[j] <= 0 ? 0 : gf;
        double xhat = ((double)x[j] - mu) * inv;
        dx[j] = (float)(k * ((m * (double)gf - sg) - xhat * sgx));
    }
}

static inline __attribute__((always_inline)) void bn_input_gradient(const float *x, const float *g, float *dx, long s,
                                                                      double m, double mu, double inv, double k,
                                                                      double sg, double sgx) {
    bn_input_gradient_body(x, g, 0, dx, s, m, mu, inv, k, sg, sgx, 0);
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

#define EMBER_BN_FNS(suffix, attributes)                                                                   \
    attributes static void bn_moments_##suffix(const float *x, long s, double *sum, double *m2) {         \
        double total = bn_sum_##suffix(x, s, 0, 0);                                                        \
        *sum = total;                                                                                      \
        *m2 = bn_sum_##suffix(x, s, 1, total / (double)s);                                                 \
    }                                                                                                      \
    attributes static void bn_gradient_sums_##suffix(const float *x, const float *g, long s, double mu,   \
                                                     double inv, double *sum_g, double *sum_gx) {          \
        bn_gradient_sums(x, g, s, mu, inv, sum_g, sum_gx);                                                 \
    }                                                                                                      \
    attributes static void bn_input_gradient_##suffix(const float *x, const float *g, float *dx, long s,  \
                                                      double m, double mu, double inv, double k, double sg, \
                                                      double sgx) {                                        \
        bn_input_gradient(x, g, dx, s, m, mu, inv, k, sg, sgx);                                            \
    }                                                                                                      \
    attributes static void bn_masked_gradient_sums_##suffix(const float *x, const float *g, const float *y, \
                                                            float *gm, long s, double mu, double inv,      \
                                                            double *sum_g, double *sum_gx) {               \
        if (gm)                                                                                            \
            bn_gradient_sums_body(x, g, y, gm, s, mu, inv, sum_g, sum_gx, 1, 1);                          \
        else                                                                                               \
            bn_gradient_sums_body(x, g, y, 0, s, mu, inv, sum_g, sum_gx, 1, 0);                           \
    }                                                                                                      \
    attributes static void bn_masked_input_gradient_##suffix(const float *x, const float *g, const float *y, \
                                                             float *dx, long s, double m, double mu,       \
                                                             double inv, double k, double sg, double sgx) { \
        bn_input_gradient_body(x, g, y, dx, s, m, mu, inv, k, sg, sgx, 1);                                 \
    }

EMBER_BN_FNS(portable, )
#if defined(__x86_64__)
EMBER_BN_FNS(avx2, __attribute__((target("avx2"))))
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
    case EMBER_PATH_AVX512: bn_gradient_sums_avx512(x, g, s, mu, inv, sum_g, sum_gx); return;
    case EMBER_PATH_AVX2: bn_gradient_sums_avx2(x, g, s, mu, inv, sum_g, sum_gx); return;
#endif
    default: bn_gradient_sums_portable(x, g, s, mu, inv, sum_g, sum_gx); return;
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

void ember_bn_plane_masked_gradient_sums_f32(int path, const float *x, const float *g, const float *y, float *gm, long s,
                                             double mu, double inv, double *sum_g, double *sum_gx) {
    switch (path) {
#if defined(__x86_64__)
    case EMBER_PATH_AVX512: bn_masked_gradient_sums_avx512(x, g, y, gm, s, mu, inv, sum_g, sum_gx); return;
    case EMBER_PATH_AVX2: bn_masked_gradient_sums_avx2(x, g, y, gm, s, mu, inv, sum_g, sum_gx); return;
#endif
    default: bn_masked_gradient_sums_portable(x, g, y, gm, s, mu, inv, sum_g, sum_gx); return;
    }
}

void ember_bn_plane_masked_input_gradient_f32(int path, const float *x, const float *g, const float *y, float *dx, long s,
                                              double m, double mu, double inv, double k, double sum_g, double sum_gx) {
    switch (path) {
#if defined(__x86_64__)
    case EMBER_PATH_AVX512: bn_masked_input_gradient_avx512(x, g, y, dx, s, m, mu, inv, k, sum_g, sum_gx); return;
    case EMBER_PATH_AVX2: bn_masked_input_gradient_avx2(x, g, y, dx, s, m, mu, inv, k, sum_g, sum_gx); return;
#endif
    default: bn_masked_input_gradient_portable(x, g, y, dx, s, m, mu, inv, k, sum_g, sum_gx); return;
    }
}
