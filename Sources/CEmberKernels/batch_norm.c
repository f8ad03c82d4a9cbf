// Batch normalization's loops along one float32 plane (`[N, C, S]` input, `S > 1`: after a
// convolution), the arithmetic of EmberFunctional's Swift `BatchNormPlanes` step for step, so the
// results are bitwise the same:
// - each sum runs in sixteen float64 lanes, lane c adding the elements j = c mod 16 in order over
//   the whole groups of sixteen (the Swift loop's four SIMD4 accumulators a0..a3), combined as
//   r = (a0 + a1) + (a2 + a3) lane by lane, then ((r0 + r1) + r2) + r3 (`SIMD.sum()`), then the
//   remaining elements added one by one;
// - the input gradient is element-wise: float(k * ((m * g - sumG) - xhat * sumGX)) with
//   xhat = (x - mean) * invstd, in float64.
// One body, compiled for AVX-512F, AVX2 and the baseline (clang vectorizes the lanes at each
// width); contraction is off, so every path gives the same bits. The Swift loops, compiled for the
// baseline target, ran two float64 lanes per instruction.
#pragma clang fp contract(off)
#include "include/CEmberKernels.h"

static inline __attribute__((always_inline)) double bn_combine(const double *l) {
    double r0 = (l[0] + l[4]) + (l[8] + l[12]), r1 = (l[1] + l[5]) + (l[9] + l[13]);
    double r2 = (l[2] + l[6]) + (l[10] + l[14]), r3 = (l[3] + l[7]) + (l[11] + l[15]);
    return ((r0 + r1) + r2) + r3;
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
    double total = bn_combine(lanes);
    for (; j < s; ++j) {
        double v = (double)x[j];
        total += squared ? (v - mu) * (v - mu) : v;
    }
    return total;
}

// sum(g) and sum(g * (x - mu) * inv).
static inline __attribute__((always_inline)) void bn_gradient_sums(const float *x, const float *g, long s, double mu,
                                                                     double inv, double *sum_g, double *sum_gx) {
    double lg[16] = {0}, lgx[16] = {0};
    long j = 0;
    for (; j + 16 <= s; j += 16)
        for (int c = 0; c < 16; ++c) {
            double gv = (double)g[j + c];
            lg[c] += gv;
            lgx[c] += gv * ((double)x[j + c] - mu) * inv;
        }
    double tg = bn_combine(lg), tgx = bn_combine(lgx);
    for (long t = j; t < s; ++t) tg += (double)g[t];
    for (; j < s; ++j) tgx += (double)g[j] * ((double)x[j] - mu) * inv;
    *sum_g = tg;
    *sum_gx = tgx;
}

static inline __attribute__((always_inline)) void bn_input_gradient(const float *x, const float *g, float *dx, long s,
                                                                      double m, double mu, double inv, double k,
                                                                      double sg, double sgx) {
    for (long j = 0; j < s; ++j) {
        double xhat = ((double)x[j] - mu) * inv;
        dx[j] = (float)(k * ((m * (double)g[j] - sg) - xhat * sgx));
    }
}

#define EMBER_BN_FNS(suffix, attributes)                                                                   \
    attributes static double bn_sum_##suffix(const float *x, long s, int squared, double mu) {            \
        return squared ? bn_sum(x, s, 1, mu) : bn_sum(x, s, 0, mu);                                        \
    }                                                                                                      \
    attributes static void bn_gradient_sums_##suffix(const float *x, const float *g, long s, double mu,   \
                                                     double inv, double *sum_g, double *sum_gx) {          \
        bn_gradient_sums(x, g, s, mu, inv, sum_g, sum_gx);                                                 \
    }                                                                                                      \
    attributes static void bn_input_gradient_##suffix(const float *x, const float *g, float *dx, long s,  \
                                                      double m, double mu, double inv, double k, double sg, \
                                                      double sgx) {                                        \
        bn_input_gradient(x, g, dx, s, m, mu, inv, k, sg, sgx);                                            \
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
