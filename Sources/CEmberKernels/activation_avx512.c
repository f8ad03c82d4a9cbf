// AVX-512F float32 exponentials: `e^x` sixteen lanes per operation (bitwise activation_x86.c's
// AVX2 `ember_exp8`, so bitwise EmberTensor's `expVector`), and attention's softmax numerators in
// one pass with a fused multiply-add exponential (within 2 ulp, not those bits).
//
// Each function carries its own target attribute, so this file compiles with the default flags;
// the Swift callers check that GEMM dispatches its AVX-512 kernels first.
#pragma clang fp contract(off)
#include "include/CEmberKernels.h"
#include "activation_common.h"

#if defined(__x86_64__)
#include <immintrin.h>

// `e^x` sixteen lanes per operation, the same operations as `ember_exp8` lane by lane
// (so bitwise `expVector`). Requires AVX-512F; callers check the dispatched GEMM path first.

#define EMBER_AVX512_ONLY __attribute__((target("avx512f")))
#define SPLAT16(c) _mm512_set1_ps(c)
#define SELECT16(m, v, r) _mm512_mask_blend_ps(m, r, v)

// p * 2^n for the integer n held in t's low mantissa bits (t = n + 1.5 * 2^23): two steps of
// 2^(n/2), so that n below -126 (a subnormal result) does not wrap the exponent field.
static inline __attribute__((always_inline)) EMBER_AVX512_ONLY __m512 ember_times_pow2_16(__m512 p, __m512 t) {
    __m512i ni = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(0x4B400000));
    __m512i half = _mm512_srai_epi32(ni, 1);
    __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(half, _mm512_set1_epi32(127)), 23));
    __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_sub_epi32(ni, half), _mm512_set1_epi32(127)), 23));
    return _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
}

static inline __attribute__((always_inline)) EMBER_AVX512_ONLY void ember_exp16(int K, const __m512 *x, __m512 *y) {
    const __m512 magic = SPLAT16(12582912.0f);
    __m512 xc[KMAX], t[KMAX], r[KMAX], p[KMAX];
    FOR_K xc[k] = SELECT16(_mm512_cmp_ps_mask(x[k], SPLAT16(89.0f), _CMP_GT_OQ), SPLAT16(89.0f), x[k]);
    FOR_K xc[k] = SELECT16(_mm512_cmp_ps_mask(x[k], SPLAT16(-104.0f), _CMP_LT_OQ), SPLAT16(-104.0f), xc[k]);
    FOR_K t[k] = _mm512_add_ps(_mm512_mul_ps(xc[k], SPLAT16(EMBER_F32(0x3fb8aa3bu))), magic);
    FOR_K {
        __m512 n = _mm512_sub_ps(t[k], magic);
        r[k] = _mm512_sub_ps(_mm512_sub_ps(xc[k], _mm512_mul_ps(n, SPLAT16(EMBER_F32(0x3f318000u)))),
                             _mm512_mul_ps(n, SPLAT16(EMBER_F32(0xb95e8083u))));
    }
    FOR_K p[k] = _mm512_add_ps(_mm512_mul_ps(SPLAT16(EMBER_F32(0x39506967u)), r[k]), SPLAT16(EMBER_F32(0x3ab743ceu)));
    FOR_K p[k] = _mm512_add_ps(_mm512_mul_ps(p[k], r[k]), SPLAT16(EMBER_F32(0x3c088908u)));
    FOR_K p[k] = _mm512_add_ps(_mm512_mul_ps(p[k], r[k]), SPLAT16(EMBER_F32(0x3d2aa9c1u)));
    FOR_K p[k] = _mm512_add_ps(_mm512_mul_ps(p[k], r[k]), SPLAT16(EMBER_F32(0x3e2aaaaau)));
    FOR_K p[k] = _mm512_add_ps(_mm512_mul_ps(p[k], r[k]), SPLAT16(EMBER_F32(0x3f000000u)));
    FOR_K p[k] = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(p[k], _mm512_mul_ps(r[k], r[k])), r[k]), SPLAT16(1.0f));
    FOR_K p[k] = ember_times_pow2_16(p[k], t[k]);
    FOR_K {
        __m512 result = SELECT16(_mm512_cmp_ps_mask(x[k], SPLAT16(EMBER_F32(0x42b17218u)), _CMP_GT_OQ),
                                 SPLAT16(__builtin_inff()), p[k]);
        result = SELECT16(_mm512_cmp_ps_mask(x[k], SPLAT16(EMBER_F32(0xc2cff1b4u)), _CMP_LT_OQ),
                          _mm512_setzero_ps(), result);
        y[k] = SELECT16(_mm512_cmp_ps_mask(x[k], x[k], _CMP_NEQ_UQ), x[k], result);
    }
}

EMBER_AVX512_ONLY void ember_sexp_avx512(long n, const float *x, float *y) {
    long i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 v[4];
        for (int k = 0; k < 4; ++k) v[k] = _mm512_loadu_ps(x + i + 16 * k);
        ember_exp16(4, v, v);
        for (int k = 0; k < 4; ++k) _mm512_storeu_ps(y + i + 16 * k, v[k]);
    }
    for (; i < n; i += 16) {
        long count = n - i < 16 ? n - i : 16;
        __mmask16 mask = (__mmask16)((1u << count) - 1);
        __m512 v = _mm512_maskz_loadu_ps(mask, x + i);
        ember_exp16(1, &v, &v);
        _mm512_mask_storeu_ps(y + i, mask, v);
    }
}

// `e^x` for x <= 0 or NaN (attention's shifted scores: each is at most its row's maximum), with
// fused multiply-adds: ember_exp16's range reduction and polynomial, each multiply and add one
// rounding instead of two, the clamps as min and max (they keep a NaN: MINPS and MAXPS return the
// second operand when either is NaN), and no overflow select (x <= 0 cannot overflow). Within
// 2 ulp of e^x like ember_exp16, not bitwise it; about half its operations.
static inline __attribute__((always_inline)) EMBER_AVX512_ONLY void ember_exp16_nonpositive(int K, const __m512 *x,
                                                                                          __m512 *y) {
    const __m512 magic = SPLAT16(12582912.0f);
    __m512 xc[KMAX], t[KMAX], r[KMAX], p[KMAX];
    FOR_K xc[k] = _mm512_max_ps(SPLAT16(-104.0f), _mm512_min_ps(SPLAT16(0.0f), x[k]));
    FOR_K t[k] = _mm512_fmadd_ps(xc[k], SPLAT16(EMBER_F32(0x3fb8aa3bu)), magic);
    FOR_K {
        __m512 n = _mm512_sub_ps(t[k], magic);
        r[k] = _mm512_fnmadd_ps(n, SPLAT16(EMBER_F32(0xb95e8083u)), _mm512_fnmadd_ps(n, SPLAT16(EMBER_F32(0x3f318000u)), xc[k]));
    }
    FOR_K p[k] = _mm512_fmadd_ps(SPLAT16(EMBER_F32(0x39506967u)), r[k], SPLAT16(EMBER_F32(0x3ab743ceu)));
    FOR_K p[k] = _mm512_fmadd_ps(p[k], r[k], SPLAT16(EMBER_F32(0x3c088908u)));
    FOR_K p[k] = _mm512_fmadd_ps(p[k], r[k], SPLAT16(EMBER_F32(0x3d2aa9c1u)));
    FOR_K p[k] = _mm512_fmadd_ps(p[k], r[k], SPLAT16(EMBER_F32(0x3e2aaaaau)));
    FOR_K p[k] = _mm512_fmadd_ps(p[k], r[k], SPLAT16(EMBER_F32(0x3f000000u)));
    FOR_K p[k] = _mm512_add_ps(_mm512_fmadd_ps(p[k], _mm512_mul_ps(r[k], r[k]), r[k]), SPLAT16(1.0f));
    FOR_K y[k] = ember_times_pow2_16(p[k], t[k]);
}

// Lanes 8..<16 (AVX-512F has no 32-bit-lane extract of a half without DQ; the 64-bit one moves
// the same bytes).
static inline __attribute__((always_inline)) EMBER_AVX512_ONLY __m256 ember_high8(__m512 v) {
    return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

// Softmax numerators of a tile of attention scores, in one pass: row r (cols values at
// tile + r * ld, each at most shifts[r], or NaN) becomes exp(x - shifts[r])
// (ember_exp16_nonpositive), and sums[r] their sum: eight lanes added chunk after chunk of eight,
// those lanes left to right, then the last cols % 8 values.
EMBER_AVX512_ONLY void ember_sexp_shifted_rows_avx512(long rows, long cols, long ld, float *tile, const float *shifts,
                                                      float *sums) {
    for (long r = 0; r < rows; ++r) {
        float *row = tile + r * ld;
        const __m512 shift = _mm512_set1_ps(shifts[r]);
        __m256 lanes = _mm256_setzero_ps();
        long c = 0;
        for (; c + 64 <= cols; c += 64) {
            __m512 v[4];
            for (int k = 0; k < 4; ++k) v[k] = _mm512_sub_ps(_mm512_loadu_ps(row + c + 16 * k), shift);
            ember_exp16_nonpositive(4, v, v);
            for (int k = 0; k < 4; ++k) {
                _mm512_storeu_ps(row + c + 16 * k, v[k]);
                lanes = _mm256_add_ps(lanes, _mm512_castps512_ps256(v[k]));
                lanes = _mm256_add_ps(lanes, ember_high8(v[k]));
            }
        }
        for (; c < cols; c += 16) {
            long count = cols - c < 16 ? cols - c : 16;
            __mmask16 mask = (__mmask16)((1u << count) - 1);
            __m512 v = _mm512_sub_ps(_mm512_maskz_loadu_ps(mask, row + c), shift);
            ember_exp16_nonpositive(1, &v, &v);
            _mm512_mask_storeu_ps(row + c, mask, v);
            if (count >= 8) lanes = _mm256_add_ps(lanes, _mm512_castps512_ps256(v));
            if (count == 16) lanes = _mm256_add_ps(lanes, ember_high8(v));
        }
        float l[8];
        _mm256_storeu_ps(l, lanes);
        float sum = 0;
        for (int k = 0; k < 8; ++k) sum += l[k];
        for (long t = cols / 8 * 8; t < cols; ++t) sum += row[t];
        sums[r] = sum;
    }
}

// The largest of row[0..<count] ignoring NaN, -inf if none: `max_ps(x, m)` returns m when x is
// NaN or equal to it, as the comparison `x > m` keeps m.
EMBER_AVX512_ONLY float ember_smax_row_avx512(const float *row, long count) {
    __m512 m = _mm512_set1_ps(-__builtin_inff());
    long c = 0;
    for (; c + 16 <= count; c += 16) m = _mm512_max_ps(_mm512_loadu_ps(row + c), m);
    if (c < count) {
        __mmask16 mask = (__mmask16)((1u << (count - c)) - 1);
        m = _mm512_mask_max_ps(m, mask, _mm512_maskz_loadu_ps(mask, row + c), m);
    }
    float l[16], best = -__builtin_inff();
    _mm512_storeu_ps(l, m);
    for (int k = 0; k < 16; ++k)
        if (l[k] > best) best = l[k];
    return best;
}

#else

#pragma clang diagnostic ignored "-Wunused-parameter"
#define EMBER_TRAP_STUB(signature) \
    signature { __builtin_trap(); }  // callers check the dispatched GEMM path first

EMBER_TRAP_STUB(void ember_sexp_avx512(long n, const float *x, float *y))
EMBER_TRAP_STUB(float ember_smax_row_avx512(const float *row, long count))
EMBER_TRAP_STUB(void ember_sexp_shifted_rows_avx512(long rows, long cols, long ld, float *tile, const float *shifts,
                                                    float *sums))

#endif
