// Attention's row kernels at AVX2 width with FMA: the softmax numerators of a score tile in one pass
// and a row's maximum. The same operations lane by lane as activation_avx512.c's
// `ember_sexp_shifted_rows_avx512` and `ember_smax_row_avx512`, and the row sums added in the same
// order, so both paths give the same bits; without them AVX2 machines took three passes (shift,
// `ember_sexp_avx2`, sum) and a Swift maximum compiled for SSE2.
//
// Each function carries its own target attribute, so this file compiles with the default flags;
// the Swift callers check that GEMM dispatches its AVX2 kernels (AVX2 and FMA) first.
#pragma clang fp contract(off)
#include "include/CEmberKernels.h"
#include "activation_common.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define EMBER_AVX2_FMA __attribute__((target("avx2,fma")))
#define SPLAT8(c) _mm256_set1_ps(c)

// `e^x` for x <= 0 or NaN with fused multiply-adds: ember_exp16_nonpositive eight lanes wide (the
// same operations, so the same bits).
static inline __attribute__((always_inline)) EMBER_AVX2_FMA void ember_exp8_nonpositive(int K, __m256 *v) {
    const __m256 magic = SPLAT8(12582912.0f);
    __m256 t[KMAX], r[KMAX], p[KMAX];
    FOR_K v[k] = _mm256_max_ps(SPLAT8(-104.0f), _mm256_min_ps(SPLAT8(0.0f), v[k]));
    FOR_K t[k] = _mm256_fmadd_ps(v[k], SPLAT8(EMBER_F32(0x3fb8aa3bu)), magic);
    FOR_K {
        __m256 n = _mm256_sub_ps(t[k], magic);
        r[k] = _mm256_fnmadd_ps(n, SPLAT8(EMBER_F32(0xb95e8083u)), _mm256_fnmadd_ps(n, SPLAT8(EMBER_F32(0x3f318000u)), v[k]));
    }
    FOR_K p[k] = _mm256_fmadd_ps(SPLAT8(EMBER_F32(0x39506967u)), r[k], SPLAT8(EMBER_F32(0x3ab743ceu)));
    FOR_K p[k] = _mm256_fmadd_ps(p[k], r[k], SPLAT8(EMBER_F32(0x3c088908u)));
    FOR_K p[k] = _mm256_fmadd_ps(p[k], r[k], SPLAT8(EMBER_F32(0x3d2aa9c1u)));
    FOR_K p[k] = _mm256_fmadd_ps(p[k], r[k], SPLAT8(EMBER_F32(0x3e2aaaaau)));
    FOR_K p[k] = _mm256_fmadd_ps(p[k], r[k], SPLAT8(EMBER_F32(0x3f000000u)));
    FOR_K p[k] = _mm256_add_ps(_mm256_fmadd_ps(p[k], _mm256_mul_ps(r[k], r[k]), r[k]), SPLAT8(1.0f));
    // p * 2^n in two steps of 2^(n/2), as ember_times_pow2_16.
    FOR_K {
        __m256i ni = _mm256_sub_epi32(_mm256_castps_si256(t[k]), _mm256_set1_epi32(0x4B400000));
        __m256i half = _mm256_srai_epi32(ni, 1);
        __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, _mm256_set1_epi32(127)), 23));
        __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, half), _mm256_set1_epi32(127)), 23));
        v[k] = _mm256_mul_ps(_mm256_mul_ps(p[k], s1), s2);
    }
}

EMBER_AVX2_FMA void ember_sexp_shifted_rows_avx2(long rows, long cols, long ld, float *tile, const float *shifts,
                                                 float *sums) {
    for (long r = 0; r < rows; ++r) {
        float *row = tile + r * ld;
        const __m256 shift = _mm256_set1_ps(shifts[r]);
        __m256 lanes = _mm256_setzero_ps();
        long c = 0;
        for (; c + 32 <= cols; c += 32) {
            __m256 v[4];
            for (int k = 0; k < 4; ++k) v[k] = _mm256_sub_ps(_mm256_loadu_ps(row + c + 8 * k), shift);
            ember_exp8_nonpositive(4, v);
            for (int k = 0; k < 4; ++k) {
                _mm256_storeu_ps(row + c + 8 * k, v[k]);
                lanes = _mm256_add_ps(lanes, v[k]);
            }
        }
        for (; c + 8 <= cols; c += 8) {
            __m256 v = _mm256_sub_ps(_mm256_loadu_ps(row + c), shift);
            ember_exp8_nonpositive(1, &v);
            _mm256_storeu_ps(row + c, v);
            lanes = _mm256_add_ps(lanes, v);
        }
        if (c < cols) {
            float last[8] = {0};
            for (long t = c; t < cols; ++t) last[t - c] = row[t];
            __m256 v = _mm256_sub_ps(_mm256_loadu_ps(last), shift);
            ember_exp8_nonpositive(1, &v);
            _mm256_storeu_ps(last, v);
            for (long t = c; t < cols; ++t) row[t] = last[t - c];
        }
        float l[8];
        _mm256_storeu_ps(l, lanes);
        float sum = 0;
        for (int k = 0; k < 8; ++k) sum += l[k];
        for (long t = c; t < cols; ++t) sum += row[t];
        sums[r] = sum;
    }
}

EMBER_AVX2_FMA float ember_smax_row_avx2(const float *row, long count) {
    __m256 m = _mm256_set1_ps(-__builtin_inff());
    long c = 0;
    for (; c + 8 <= count; c += 8) m = _mm256_max_ps(_mm256_loadu_ps(row + c), m);
    float l[8], best = -__builtin_inff();
    _mm256_storeu_ps(l, m);
    for (int k = 0; k < 8; ++k)
        if (l[k] > best) best = l[k];
    for (; c < count; ++c)
        if (row[c] > best) best = row[c];
    return best;
}

#else

#pragma clang diagnostic ignored "-Wunused-parameter"
#define EMBER_TRAP_STUB(signature) \
    signature { __builtin_trap(); }  // callers check the dispatched GEMM path first

EMBER_TRAP_STUB(float ember_smax_row_avx2(const float *row, long count))
EMBER_TRAP_STUB(void ember_sexp_shifted_rows_avx2(long rows, long cols, long ld, float *tile, const float *shifts,
                                                  float *sums))

#endif
