// Layer normalization of float32 rows with float64 statistics, the arithmetic of EmberFunctional's
// `GroupedNormKernel.forward` (Swift) step for step, so the results are bitwise the same:
// - each sum runs in eight lanes, lane c adding elements j = c mod 8 in order over the whole
//   groups of eight, combined as ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)), then the
//   remaining elements one by one;
// - mean = sum / n; the squared deviations (x - mean)^2 summed the same way; invstd =
//   1 / sqrt(var + eps);
// - y = float(((x - mean) * invstd) * gamma + beta) in float64, gamma and beta optional;
// - with a second input, each row is first the float32 sum x + x2 (the residual connection's add).
// One body, compiled for AVX-512F, AVX2 and the baseline (clang vectorizes the lanes at each
// width); contraction is off, so every path gives the same bits.
#pragma clang fp contract(off)
#include "include/CEmberKernels.h"

// The eight lanes of a row's sums, for the whole groups of eight: SUMS(p, whole, mu, &s, &sq)
// leaves in `s` the lanes of sum(x) combined, and in `sq` those of sum((x - mu)^2) for the mu
// it is given afterwards (two passes, as the Swift loop).
#define EMBER_COMBINE(l) (((l)[0] + (l)[1]) + ((l)[2] + (l)[3])) + (((l)[4] + (l)[5]) + ((l)[6] + (l)[7]))

static inline __attribute__((always_inline)) double ember_ln_sum_portable(const float *p, long whole) {
    double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (long j = 0; j < whole; j += 8)
        for (int c = 0; c < 8; ++c) lanes[c] += (double)p[j + c];
    return EMBER_COMBINE(lanes);
}
static inline __attribute__((always_inline)) double ember_ln_sq_portable(const float *p, long whole, double mu) {
    double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (long j = 0; j < whole; j += 8)
        for (int c = 0; c < 8; ++c) {
            double d = (double)p[j + c] - mu;
            lanes[c] += d * d;
        }
    return EMBER_COMBINE(lanes);
}

#if defined(__x86_64__)
#include <immintrin.h>
#define EMBER_AVX512 __attribute__((target("avx512f")))
#define EMBER_AVX2 __attribute__((target("avx2")))

static inline __attribute__((always_inline)) EMBER_AVX512 double ember_ln_sum_avx512(const float *p, long whole) {
    __m512d acc = _mm512_setzero_pd();
    for (long j = 0; j < whole; j += 8) acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm256_loadu_ps(p + j)));
    double lanes[8];
    _mm512_storeu_pd(lanes, acc);
    return EMBER_COMBINE(lanes);
}
static inline __attribute__((always_inline)) EMBER_AVX512 double ember_ln_sq_avx512(const float *p, long whole, double mu) {
    __m512d acc = _mm512_setzero_pd(), m = _mm512_set1_pd(mu);
    for (long j = 0; j < whole; j += 8) {
        __m512d d = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(p + j)), m);
        acc = _mm512_add_pd(acc, _mm512_mul_pd(d, d));
    }
    double lanes[8];
    _mm512_storeu_pd(lanes, acc);
    return EMBER_COMBINE(lanes);
}
static inline __attribute__((always_inline)) EMBER_AVX2 double ember_ln_sum_avx2(const float *p, long whole) {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    for (long j = 0; j < whole; j += 8) {
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm_loadu_ps(p + j)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm_loadu_ps(p + j + 4)));
    }
    double lanes[8];
    _mm256_storeu_pd(lanes, lo);
    _mm256_storeu_pd(lanes + 4, hi);
    return EMBER_COMBINE(lanes);
}
static inline __attribute__((always_inline)) EMBER_AVX2 double ember_ln_sq_avx2(const float *p, long whole, double mu) {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd(), m = _mm256_set1_pd(mu);
    for (long j = 0; j < whole; j += 8) {
        __m256d a = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + j)), m);
        __m256d b = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + j + 4)), m);
        lo = _mm256_add_pd(lo, _mm256_mul_pd(a, a));
        hi = _mm256_add_pd(hi, _mm256_mul_pd(b, b));
    }
    double lanes[8];
    _mm256_storeu_pd(lanes, lo);
    _mm256_storeu_pd(lanes + 4, hi);
    return EMBER_COMBINE(lanes);
}
#endif

#define EMBER_LN_BODY(SUM, SQ)                                                                         \
    for (long r = 0; r < rows; ++r) {                                                                  \
        const float *p = x + r * n;                                                                    \
        if (x2) {                                                                                      \
            for (long j = 0; j < n; ++j) scratch[j] = p[j] + x2[r * n + j];                            \
            p = scratch;                                                                               \
        }                                                                                              \
        float *q = y + r * n;                                                                          \
        long whole = n - n % 8;                                                                        \
        double total = SUM(p, whole);                                                                  \
        for (long j = whole; j < n; ++j) total += (double)p[j];                                        \
        double mu = total / (double)n;                                                                 \
        double sq = SQ(p, whole, mu);                                                                  \
        for (long j = whole; j < n; ++j) {                                                             \
            double d = (double)p[j] - mu;                                                              \
            sq += d * d;                                                                               \
        }                                                                                              \
        double inv = 1 / __builtin_sqrt(sq / (double)n + eps);                                         \
        mean[r] = mu;                                                                                  \
        invstd[r] = inv;                                                                               \
        if (gamma && beta) {                                                                           \
            for (long j = 0; j < n; ++j) q[j] = (float)(((double)p[j] - mu) * inv * (double)gamma[j] + (double)beta[j]); \
        } else if (gamma) {                                                                            \
            for (long j = 0; j < n; ++j) q[j] = (float)(((double)p[j] - mu) * inv * (double)gamma[j]); \
        } else if (beta) {                                                                             \
            for (long j = 0; j < n; ++j) q[j] = (float)(((double)p[j] - mu) * inv + (double)beta[j]);  \
        } else {                                                                                       \
            for (long j = 0; j < n; ++j) q[j] = (float)(((double)p[j] - mu) * inv);                    \
        }                                                                                              \
    }

#define EMBER_LN_FN(name, attributes, SUM, SQ)                                                         \
    attributes static void name(const float *x, const float *x2, float *scratch, float *y, long rows, long n, \
                                double eps, const float *gamma, const float *beta, double *mean,       \
                                double *invstd) {                                                      \
        EMBER_LN_BODY(SUM, SQ)                                                                         \
    }

EMBER_LN_FN(layer_norm_portable, , ember_ln_sum_portable, ember_ln_sq_portable)
#if defined(__x86_64__)
EMBER_LN_FN(layer_norm_avx2, EMBER_AVX2, ember_ln_sum_avx2, ember_ln_sq_avx2)
EMBER_LN_FN(layer_norm_avx512, EMBER_AVX512, ember_ln_sum_avx512, ember_ln_sq_avx512)
#endif

void ember_layer_norm_f32(int path, const float *x, const float *x2, float *scratch, float *y, long rows, long n,
                          double eps, const float *gamma, const float *beta, double *mean, double *invstd) {
    switch (path) {
#if defined(__x86_64__)
    case EMBER_PATH_AVX512: layer_norm_avx512(x, x2, scratch, y, rows, n, eps, gamma, beta, mean, invstd); return;
    case EMBER_PATH_AVX2: layer_norm_avx2(x, x2, scratch, y, rows, n, eps, gamma, beta, mean, invstd); return;
#endif
    default: layer_norm_portable(x, x2, scratch, y, rows, n, eps, gamma, beta, mean, invstd); return;
    }
}
