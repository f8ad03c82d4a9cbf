// AVX2 float32 activations (exp, sigmoid, tanh) over whole rows, and the element-wise step passes
// of the fused recurrent layers built on them (LSTM forward and backward, GRU forward, Elman RNN
// forward).
//
// Every value is bitwise the one EmberTensor's Swift `expVector`/`sigmoidVector`/`tanhVector`
// (and EmberNN's inlined copies in `RecurrentMath.swift`, and the Swift cell passes in
// `LSTMSequence`/`GRUSequence`/`RNNSequence`) compute: the same constants (checked bit for bit),
// the same operations in the same order, each a correctly rounded IEEE operation. So:
// - no fused multiply-add: contraction is off for this file and the target is plain "avx2" (no
//   "fma"), and every product and sum is an explicit `_mm256_mul_ps`/`_mm256_add_ps`;
// - Swift's SIMD negation is `0 - x` (so `-(+0)` is `+0` and a NaN keeps its sign), written here
//   as `_mm256_sub_ps(zero, x)`;
// - Swift's lane comparisons `.>`, `.<`, `.>=` are ordered (`_CMP_*_OQ`), `.!=` is unordered
//   (`_CMP_NEQ_UQ`), and `replace(with:where:)` is a blend.
// A lane's value never depends on its neighbours, so lanes may be grouped differently from the
// Swift loops (whole rows here, tails through masked loads and stores).
//
// Each function carries its own target attribute, so this file compiles with the default flags;
// the Swift callers check `ember_cpu_supports_path(EMBER_PATH_AVX2)` first.
#pragma clang fp contract(off)
#include "include/CEmberKernels.h"
#include "activation_common.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define EMBER_AVX2_ONLY __attribute__((target("avx2")))
#define EMBER_INLINE static inline __attribute__((always_inline)) EMBER_AVX2_ONLY

#define SPLAT(c) _mm256_set1_ps(c)
#define ADD(a, b) _mm256_add_ps(a, b)
#define SUB(a, b) _mm256_sub_ps(a, b)
#define MUL(a, b) _mm256_mul_ps(a, b)
#define DIV(a, b) _mm256_div_ps(a, b)
// `r.replace(with: v, where: m)`.
#define SELECT(m, v, r) _mm256_blendv_ps(r, v, m)


/// `e^x` (EmberTensor's `expVector`) of `x[0..<K]` into `y[0..<K]` (`y` may be `x`).
EMBER_INLINE void ember_exp8(int K, const __m256 *x, __m256 *y) {
    const __m256 magic = SPLAT(12582912.0f);
    __m256 xc[KMAX], t[KMAX], r[KMAX], p[KMAX];
    __m256i ni[KMAX];
    FOR_K xc[k] = SELECT(_mm256_cmp_ps(x[k], SPLAT(89.0f), _CMP_GT_OQ), SPLAT(89.0f), x[k]);
    FOR_K xc[k] = SELECT(_mm256_cmp_ps(x[k], SPLAT(-104.0f), _CMP_LT_OQ), SPLAT(-104.0f), xc[k]);
    FOR_K t[k] = ADD(MUL(xc[k], SPLAT(EMBER_F32(0x3fb8aa3bu))), magic);  // 1.442_695_04
    FOR_K {
        __m256 n = SUB(t[k], magic);
        r[k] = SUB(SUB(xc[k], MUL(n, SPLAT(EMBER_F32(0x3f318000u)))),    // 0.693_359_375
                   MUL(n, SPLAT(EMBER_F32(0xb95e8083u))));                // -2.121_944_4e-4
    }
    FOR_K p[k] = ADD(MUL(SPLAT(EMBER_F32(0x39506967u)), r[k]),           // 1.987_569_15e-4
                     SPLAT(EMBER_F32(0x3ab743ceu)));                      // 1.398_199_950_7e-3
    FOR_K p[k] = ADD(MUL(p[k], r[k]), SPLAT(EMBER_F32(0x3c088908u)));    // 8.333_451_907_3e-3
    FOR_K p[k] = ADD(MUL(p[k], r[k]), SPLAT(EMBER_F32(0x3d2aa9c1u)));    // 4.166_579_589_4e-2
    FOR_K p[k] = ADD(MUL(p[k], r[k]), SPLAT(EMBER_F32(0x3e2aaaaau)));    // 1.666_666_545_9e-1
    FOR_K p[k] = ADD(MUL(p[k], r[k]), SPLAT(EMBER_F32(0x3f000000u)));    // 5.000_000_120_1e-1
    FOR_K p[k] = ADD(ADD(MUL(p[k], MUL(r[k], r[k])), r[k]), SPLAT(1.0f));
    FOR_K ni[k] = _mm256_sub_epi32(_mm256_castps_si256(t[k]), _mm256_set1_epi32(0x4B400000));
    FOR_K {
        __m256i half = _mm256_srai_epi32(ni[k], 1);
        __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, _mm256_set1_epi32(127)), 23));
        __m256 s2 = _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni[k], half), _mm256_set1_epi32(127)), 23));
        p[k] = MUL(MUL(p[k], s1), s2);
    }
    FOR_K {
        __m256 result = SELECT(_mm256_cmp_ps(x[k], SPLAT(EMBER_F32(0x42b17218u)), _CMP_GT_OQ),  // 88.722_839
                               SPLAT(__builtin_inff()), p[k]);
        result = SELECT(_mm256_cmp_ps(x[k], SPLAT(EMBER_F32(0xc2cff1b4u)), _CMP_LT_OQ),        // -103.972_08
                        _mm256_setzero_ps(), result);
        y[k] = SELECT(_mm256_cmp_ps(x[k], x[k], _CMP_NEQ_UQ), x[k], result);
    }
}

/// `1 / (1 + e^-x)` (EmberTensor's `sigmoidVector`) of `x[0..<K]` into `y[0..<K]`.
EMBER_INLINE void ember_sigmoid8(int K, const __m256 *x, __m256 *y) {
    __m256 e[KMAX];
    FOR_K e[k] = SUB(_mm256_setzero_ps(), x[k]);
    ember_exp8(K, e, e);
    FOR_K y[k] = DIV(SPLAT(1.0f), ADD(SPLAT(1.0f), e[k]));
}

// tanh in two halves around its exp, so callers can run the exp of several functions in one
// lock-step group: `ember_tanh_exp_argument` gives `2|x|`, `ember_tanh_finish` takes `e^(2|x|)`.
EMBER_INLINE __m256 ember_tanh_exp_argument(__m256 x) {
    __m256 ax = SELECT(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ), SUB(_mm256_setzero_ps(), x), x);
    return ADD(ax, ax);
}
EMBER_INLINE void ember_tanh_finish(int K, const __m256 *x, const __m256 *e, __m256 *y) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 z[KMAX], p[KMAX];
    FOR_K z[k] = MUL(x[k], x[k]);
    FOR_K p[k] = ADD(MUL(SPLAT(EMBER_F32(0xbbbaf0eau)), z[k]),          // -5.704_988_727_45e-3
                     SPLAT(EMBER_F32(0x3ca9134eu)));                      // + 2.063_908_879_54e-2
    FOR_K p[k] = SUB(MUL(p[k], z[k]), SPLAT(EMBER_F32(0x3d5c1e2du)));    // - 5.373_971_555_31e-2
    FOR_K p[k] = ADD(MUL(p[k], z[k]), SPLAT(EMBER_F32(0x3e088393u)));    // + 1.333_144_220_36e-1
    FOR_K p[k] = SUB(MUL(p[k], z[k]), SPLAT(EMBER_F32(0x3eaaaa99u)));    // - 3.333_328_194_22e-1
    FOR_K {
        __m256 negative = _mm256_cmp_ps(x[k], zero, _CMP_LT_OQ);
        __m256 ax = SELECT(negative, SUB(zero, x[k]), x[k]);
        __m256 small = ADD(MUL(MUL(p[k], z[k]), x[k]), x[k]);
        __m256 large = SUB(SPLAT(1.0f), DIV(SPLAT(2.0f), ADD(e[k], SPLAT(1.0f))));
        large = SELECT(negative, SUB(zero, large), large);
        __m256 result = SELECT(_mm256_cmp_ps(ax, SPLAT(0.625f), _CMP_GE_OQ), large, small);
        y[k] = SELECT(_mm256_cmp_ps(x[k], x[k], _CMP_NEQ_UQ), x[k], result);
    }
}

/// `tanh(x)` (EmberTensor's `tanhVector`: a polynomial below 0.625, else `1 - 2 / (e^(2|x|) + 1)`
/// with the sign restored) of `x[0..<K]` into `y[0..<K]`.
EMBER_INLINE void ember_tanh8(int K, const __m256 *x, __m256 *y) {
    __m256 e[KMAX];
    FOR_K e[k] = ember_tanh_exp_argument(x[k]);
    ember_exp8(K, e, e);
    ember_tanh_finish(K, x, e, y);
}

/// The LSTM gate activations of R rows: `a[4 * j + q]` is gate q (`i, f, g, o`) of row j; sigmoid
/// for i, f, o and tanh for g, all eight exps in one lock-step group.
EMBER_INLINE void ember_lstm_gates(int R, const __m256 *a, __m256 *y) {
    __m256 e[KMAX];
    for (int k = 0; k < 4 * R; ++k) e[k] = k % 4 == 2 ? ember_tanh_exp_argument(a[k]) : SUB(_mm256_setzero_ps(), a[k]);
    ember_exp8(4 * R, e, e);
    for (int k = 0; k < 4 * R; ++k)
        if (k % 4 != 2) y[k] = DIV(SPLAT(1.0f), ADD(SPLAT(1.0f), e[k]));
    for (int j = 0; j < R; ++j) ember_tanh_finish(1, a + 4 * j + 2, e + 4 * j + 2, y + 4 * j + 2);
}

// Lanes 0..<count (1...8) of a row: masked loads read zeros in the other lanes and touch no memory
// there; masked stores write only the first `count` lanes.
EMBER_INLINE __m256i ember_lane_mask(long count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
EMBER_INLINE __m256 ember_load(const float *p, long count, __m256i mask) {
    return count == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
}
EMBER_INLINE void ember_store(float *p, __m256 v, long count, __m256i mask) {
    if (count == 8) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, mask, v);
}

// `y[i] = f(x[i])` for `i < n` (x and y may be the same), four vectors in lock step.
#define EMBER_ROW_FUNCTION(name, f)                                                                  \
    EMBER_AVX2_ONLY void name(long n, const float *x, float *y) {                                   \
        long i = 0;                                                                                  \
        for (; i + 32 <= n; i += 32) {                                                               \
            __m256 v[4];                                                                             \
            for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(x + i + 8 * k);                       \
            f(4, v, v);                                                                              \
            for (int k = 0; k < 4; ++k) _mm256_storeu_ps(y + i + 8 * k, v[k]);                       \
        }                                                                                            \
        for (; i < n; i += 8) {                                                                      \
            long count = n - i < 8 ? n - i : 8;                                                      \
            __m256i mask = ember_lane_mask(count);                                                   \
            __m256 v = ember_load(x + i, count, mask);                                               \
            f(1, &v, &v);                                                                            \
            ember_store(y + i, v, count, mask);                                                      \
        }                                                                                            \
    }

/// `x / (1 + e^-x)` (EmberTensor's `SiLUFunction`).
EMBER_INLINE void ember_silu8(int K, const __m256 *x, __m256 *y) {
    __m256 e[KMAX];
    FOR_K e[k] = SUB(_mm256_setzero_ps(), x[k]);
    ember_exp8(K, e, e);
    FOR_K y[k] = DIV(x[k], ADD(SPLAT(1.0f), e[k]));
}

/// `x * 0.5 * (1 + erf(x * 0.70710678))` with EmberTensor's `erfVector` (Abramowitz & Stegun
/// 7.1.26; EmberTensor's `GELUFunction`).
EMBER_INLINE void ember_gelu8(int K, const __m256 *x, __m256 *y) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 z[KMAX], e[KMAX];
    FOR_K z[k] = MUL(x[k], SPLAT(EMBER_F32(0x3f3504f3u)));  // 0.707_106_781_186_547_5
    FOR_K e[k] = SUB(zero, MUL(z[k], z[k]));
    ember_exp8(K, e, e);
    FOR_K {
        __m256 negative = _mm256_cmp_ps(z[k], zero, _CMP_LT_OQ);
        __m256 az = SELECT(negative, SUB(zero, z[k]), z[k]);
        __m256 t = DIV(SPLAT(1.0f), ADD(MUL(az, SPLAT(EMBER_F32(0x3ea7ba05u))), SPLAT(1.0f)));  // 0.327_591_1
        __m256 p = SUB(MUL(SPLAT(EMBER_F32(0x3f87dc22u)), t), SPLAT(EMBER_F32(0x3fba00e3u)));   // 1.061.., 1.453..
        p = ADD(MUL(p, t), SPLAT(EMBER_F32(0x3fb5f0e3u)));                                     // 1.421_413_741
        p = SUB(MUL(p, t), SPLAT(EMBER_F32(0x3e91a98eu)));                                     // 0.284_496_736
        p = ADD(MUL(p, t), SPLAT(EMBER_F32(0x3e827906u)));                                     // 0.254_829_592
        __m256 erf = SUB(SPLAT(1.0f), MUL(MUL(p, t), e[k]));
        erf = SELECT(negative, SUB(zero, erf), erf);
        erf = SELECT(_mm256_cmp_ps(z[k], z[k], _CMP_NEQ_UQ), z[k], erf);
        y[k] = MUL(MUL(x[k], SPLAT(0.5f)), ADD(SPLAT(1.0f), erf));
    }
}

/// `0.5 x (1 + tanh(0.79788456 (x + 0.044715 x^3)))` (EmberTensor's `GELUTanhFunction`).
EMBER_INLINE void ember_gelu_tanh8(int K, const __m256 *x, __m256 *y) {
    __m256 inner[KMAX], t[KMAX];
    FOR_K inner[k] = MUL(ADD(x[k], MUL(MUL(MUL(x[k], x[k]), x[k]), SPLAT(EMBER_F32(0x3d372713u)))),  // 0.044715
                         SPLAT(EMBER_F32(0x3f4c422au)));                                             // 0.797_884_56
    ember_tanh8(K, inner, t);
    FOR_K y[k] = MUL(MUL(x[k], SPLAT(0.5f)), ADD(SPLAT(1.0f), t[k]));
}

/// `log(x)` (EmberTensor's `logVector`: Cephes' `logf`, within about 1 ulp). Denormals are scaled
/// by 2^23 first; `x = m 2^e` with `m` in [sqrt(1/2), sqrt(2)), a degree-8 polynomial in `m - 1`.
EMBER_INLINE void ember_log8(int K, const __m256 *x, __m256 *y) {
    // Stage by stage over the K vectors (FOR_K per step), so their long dependent chains interleave.
    const __m256 zero = _mm256_setzero_ps(), one = SPLAT(1.0f);
    __m256 m[KMAX], z[KMAX], p[KMAX], ef[KMAX];
    FOR_K {
        __m256 denormal = _mm256_and_ps(_mm256_cmp_ps(x[k], SPLAT(EMBER_F32(0x00800000u)), _CMP_LT_OQ),
                                        _mm256_cmp_ps(x[k], zero, _CMP_GT_OQ));
        __m256 xs = SELECT(denormal, MUL(x[k], SPLAT(EMBER_F32(0x4b000000u))), x[k]);  // 2^23
        __m256i bits = _mm256_castps_si256(xs);
        __m256i e = _mm256_sub_epi32(_mm256_and_si256(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(0xff)),
                                     _mm256_set1_epi32(126));
        e = _mm256_sub_epi32(e, _mm256_and_si256(_mm256_castps_si256(denormal), _mm256_set1_epi32(23)));
        __m256 mk = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                                                        _mm256_set1_epi32(0x3f000000)));
        __m256 small = _mm256_cmp_ps(mk, SPLAT(EMBER_F32(0x3f3504f3u)), _CMP_LT_OQ);  // sqrt(1/2)
        e = _mm256_sub_epi32(e, _mm256_and_si256(_mm256_castps_si256(small), _mm256_set1_epi32(1)));
        m[k] = SELECT(small, SUB(ADD(mk, mk), one), SUB(mk, one));
        ef[k] = _mm256_cvtepi32_ps(e);
    }
    FOR_K z[k] = MUL(m[k], m[k]);
    FOR_K p[k] = SUB(MUL(SPLAT(EMBER_F32(0x3d9021bbu)), m[k]), SPLAT(EMBER_F32(0x3debd1b8u)));
    FOR_K p[k] = ADD(MUL(p[k], m[k]), SPLAT(EMBER_F32(0x3def251au)));
    FOR_K p[k] = SUB(MUL(p[k], m[k]), SPLAT(EMBER_F32(0x3dfe5d4fu)));
    FOR_K p[k] = ADD(MUL(p[k], m[k]), SPLAT(EMBER_F32(0x3e11e9bfu)));
    FOR_K p[k] = SUB(MUL(p[k], m[k]), SPLAT(EMBER_F32(0x3e2aae50u)));
    FOR_K p[k] = ADD(MUL(p[k], m[k]), SPLAT(EMBER_F32(0x3e4cceacu)));
    FOR_K p[k] = SUB(MUL(p[k], m[k]), SPLAT(EMBER_F32(0x3e7ffffcu)));
    FOR_K p[k] = ADD(MUL(p[k], m[k]), SPLAT(EMBER_F32(0x3eaaaaaau)));
    FOR_K p[k] = MUL(MUL(p[k], m[k]), z[k]);
    FOR_K p[k] = SUB(p[k], MUL(ef[k], SPLAT(EMBER_F32(0x395e8083u))));  // 2.121_944_4e-4
    FOR_K p[k] = SUB(p[k], MUL(z[k], SPLAT(0.5f)));
    FOR_K {
        __m256 r = ADD(ADD(m[k], p[k]), MUL(ef[k], SPLAT(EMBER_F32(0x3f318000u))));  // 0.693_359_375
        r = SELECT(_mm256_cmp_ps(x[k], SPLAT(__builtin_inff()), _CMP_EQ_OQ), x[k], r);
        r = SELECT(_mm256_cmp_ps(x[k], zero, _CMP_EQ_OQ), SPLAT(-__builtin_inff()), r);
        r = SELECT(_mm256_cmp_ps(x[k], zero, _CMP_LT_OQ), SPLAT(__builtin_nanf("")), r);
        y[k] = SELECT(_mm256_cmp_ps(x[k], x[k], _CMP_NEQ_UQ), x[k], r);
    }
}

/// `sqrt(x)` and `1 / sqrt(x)`: correctly rounded IEEE operations, so the scalar values.
EMBER_INLINE void ember_sqrt8(int K, const __m256 *x, __m256 *y) { FOR_K y[k] = _mm256_sqrt_ps(x[k]); }
EMBER_INLINE void ember_rsqrt8(int K, const __m256 *x, __m256 *y) { FOR_K y[k] = DIV(SPLAT(1.0f), _mm256_sqrt_ps(x[k])); }

EMBER_ROW_FUNCTION(ember_sexp_avx2, ember_exp8)
EMBER_ROW_FUNCTION(ember_ssqrt_avx2, ember_sqrt8)
EMBER_ROW_FUNCTION(ember_slog_avx2, ember_log8)
EMBER_ROW_FUNCTION(ember_srsqrt_avx2, ember_rsqrt8)
EMBER_ROW_FUNCTION(ember_ssilu_avx2, ember_silu8)
EMBER_ROW_FUNCTION(ember_sgelu_avx2, ember_gelu8)
EMBER_ROW_FUNCTION(ember_sgelu_tanh_avx2, ember_gelu_tanh8)
EMBER_ROW_FUNCTION(ember_ssigmoid_avx2, ember_sigmoid8)
EMBER_ROW_FUNCTION(ember_stanh_avx2, ember_tanh8)

// 8 x 8 transpose: afterwards v[j] lane i holds what v[i] lane j held.
EMBER_INLINE void ember_transpose8(__m256 v[8]) {
    __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
    __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
    __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
    __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    v[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    v[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    v[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    v[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    v[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    v[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    v[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    v[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// A strided 2-D block, element (row, col) at base[row * rs + col * cs].
typedef struct {
    float *base;
    long rs, cs;
} ember_block;

// Stores a tile of `rows` (1...8) row vectors, `count` (1...8) lanes each, at (r0, c). A block
// stored transposed (rows contiguous, the `[N, H]` output rows) goes through an 8 x 8 register
// transpose when the tile is full, one scalar store per element otherwise.
EMBER_INLINE void ember_store_tile(ember_block b, long r0, long c, long rows, long count, __m256 v[8]) {
    if (b.cs == 1) {
        __m256i mask = ember_lane_mask(count);
        for (long i = 0; i < rows; ++i) ember_store(b.base + (r0 + i) * b.rs + c, v[i], count, mask);
    } else if (b.rs == 1 && rows == 8 && count == 8) {
        ember_transpose8(v);
        for (long j = 0; j < 8; ++j) _mm256_storeu_ps(b.base + (c + j) * b.cs + r0, v[j]);
    } else {
        for (long i = 0; i < rows; ++i) {
            float lanes[8];
            _mm256_storeu_ps(lanes, v[i]);
            for (long j = 0; j < count; ++j) b.base[(r0 + i) * b.rs + (c + j) * b.cs] = lanes[j];
        }
    }
}

// The reverse: a tile of row vectors from a block (zeros in lanes >= count).
EMBER_INLINE void ember_load_tile(ember_block b, long r0, long c, long rows, long count, __m256 v[8]) {
    if (b.cs == 1) {
        __m256i mask = ember_lane_mask(count);
        for (long i = 0; i < rows; ++i) v[i] = ember_load(b.base + (r0 + i) * b.rs + c, count, mask);
    } else if (b.rs == 1 && rows == 8 && count == 8) {
        for (long j = 0; j < 8; ++j) v[j] = _mm256_loadu_ps(b.base + (c + j) * b.cs + r0);
        ember_transpose8(v);
    } else {
        for (long i = 0; i < rows; ++i) {
            float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            for (long j = 0; j < count; ++j) lanes[j] = b.base[(r0 + i) * b.rs + (c + j) * b.cs];
            v[i] = _mm256_loadu_ps(lanes);
        }
    }
}

EMBER_AVX2_ONLY void ember_lstm_forward_avx2(long rows, long cols, long gate_rows, const float *gates, long gate_stride,
                                             const float *bias, float *_Nullable activations, long activation_stride,
                                             const float *c_prev, float *c_out, float *tanh_c, long state_stride,
                                             float *h, long h_row_stride, long h_col_stride) {
    const long gs = gate_rows * gate_stride, as = gate_rows * activation_stride;
    ember_block hb = {h, h_row_stride, h_col_stride};
    // Tiles of 8 rows x 8 columns in two phases: the gates and cells of each row, then tanh of
    // the cells four rows at a time. One row's whole chain (exp, divide, cell, tanh) is too long
    // for the out-of-order window to overlap with the next row's; each phase's rows are
    // independent and short enough.
    for (long r0 = 0; r0 < rows; r0 += 8) {
        long tile_rows = rows - r0 < 8 ? rows - r0 : 8;
        for (long c = 0; c < cols; c += 8) {
            long count = cols - c < 8 ? cols - c : 8;
            __m256i mask = ember_lane_mask(count);
            __m256 cell[8], o[8], hv[8];
            for (long k = 0; k < tile_rows; ++k) {
                long r = r0 + k;
                const float *g = gates + r * gate_stride + c;
                __m256 a[4], act[4];
                for (int q = 0; q < 4; ++q)
                    a[q] = ADD(ember_load(g + q * gs, count, mask), _mm256_broadcast_ss(bias + r + q * gate_rows));
                ember_lstm_gates(1, a, act);
                long s = r * state_stride + c;
                cell[k] = ADD(MUL(act[1], ember_load(c_prev + s, count, mask)), MUL(act[0], act[2]));
                o[k] = act[3];
                if (activations) {
                    float *out = activations + r * activation_stride + c;
                    for (int q = 0; q < 4; ++q) ember_store(out + q * as, act[q], count, mask);
                }
                ember_store(c_out + s, cell[k], count, mask);
            }
            long k = 0;
            for (; k + 4 <= tile_rows; k += 4) ember_tanh8(4, cell + k, hv + k);
            for (; k < tile_rows; ++k) ember_tanh8(1, cell + k, hv + k);
            for (k = 0; k < tile_rows; ++k) {
                ember_store(tanh_c + (r0 + k) * state_stride + c, hv[k], count, mask);
                hv[k] = MUL(o[k], hv[k]);
            }
            ember_store_tile(hb, r0, c, tile_rows, count, hv);
        }
    }
}

EMBER_AVX2_ONLY void ember_lstm_backward_avx2(long rows, long cols, long gate_rows, const float *gates,
                                              const float *c_prev, const float *tanh_c, const float *d_h, float *d_c,
                                              long stride, float *d_gates, long d_gate_stride) {
    const long gs = gate_rows * stride, ds = gate_rows * d_gate_stride;
    const __m256 one = SPLAT(1.0f);
    for (long r = 0; r < rows; ++r) {
        for (long c = 0; c < cols; c += 8) {
            long count = cols - c < 8 ? cols - c : 8;
            __m256i mask = ember_lane_mask(count);
            long s = r * stride + c;
            const float *g = gates + s;
            __m256 i = ember_load(g, count, mask), f = ember_load(g + gs, count, mask);
            __m256 cand = ember_load(g + 2 * gs, count, mask), o = ember_load(g + 3 * gs, count, mask);
            __m256 th = ember_load(tanh_c + s, count, mask), dh = ember_load(d_h + s, count, mask);
            __m256 cp = ember_load(c_prev + s, count, mask);
            __m256 dc = ADD(ember_load(d_c + s, count, mask), MUL(MUL(dh, o), SUB(one, MUL(th, th))));
            float *dg = d_gates + r * d_gate_stride + c;
            ember_store(dg, MUL(MUL(MUL(dc, cand), i), SUB(one, i)), count, mask);
            ember_store(dg + ds, MUL(MUL(MUL(dc, cp), f), SUB(one, f)), count, mask);
            ember_store(dg + 2 * ds, MUL(MUL(dc, i), SUB(one, MUL(cand, cand))), count, mask);
            ember_store(dg + 3 * ds, MUL(MUL(MUL(dh, th), o), SUB(one, o)), count, mask);
            ember_store(d_c + s, MUL(dc, f), count, mask);
        }
    }
}

EMBER_AVX2_ONLY void ember_gru_forward_avx2(long rows, long cols, long gate_rows, const float *gates, long gate_stride,
                                            const float *input_bias, const float *_Nullable hidden_gates,
                                            long hidden_gate_stride, const float *hidden_bias,
                                            const float *_Nullable h_prev, long h_prev_row_stride,
                                            long h_prev_col_stride, float *_Nullable activations,
                                            long activation_stride, float *hidden_new, long hidden_new_stride,
                                            float *h, long h_row_stride, long h_col_stride) {
    const long gs = gate_rows * gate_stride, hs = gate_rows * hidden_gate_stride, as = gate_rows * activation_stride;
    ember_block hb = {h, h_row_stride, h_col_stride};
    ember_block pb = {(float *)h_prev, h_prev_row_stride, h_prev_col_stride};
    for (long r0 = 0; r0 < rows; r0 += 8) {
        long tile_rows = rows - r0 < 8 ? rows - r0 : 8;
        for (long c = 0; c < cols; c += 8) {
            long count = cols - c < 8 ? cols - c : 8;
            __m256i mask = ember_lane_mask(count);
            __m256 hv[8];
            if (h_prev) ember_load_tile(pb, r0, c, tile_rows, count, hv);
            else
                for (long k = 0; k < 8; ++k) hv[k] = _mm256_setzero_ps();
            for (long k = 0; k < tile_rows; ++k) {
                long r = r0 + k;
                const float *g = gates + r * gate_stride + c;
                __m256 xr = ADD(ember_load(g, count, mask), _mm256_broadcast_ss(input_bias + r));
                __m256 xz = ADD(ember_load(g + gs, count, mask), _mm256_broadcast_ss(input_bias + r + gate_rows));
                __m256 xn = ADD(ember_load(g + 2 * gs, count, mask), _mm256_broadcast_ss(input_bias + r + 2 * gate_rows));
                __m256 hr = _mm256_setzero_ps(), hz = _mm256_setzero_ps(), hn = _mm256_setzero_ps();
                if (hidden_gates) {
                    const float *q = hidden_gates + r * hidden_gate_stride + c;
                    hr = ember_load(q, count, mask);
                    hz = ember_load(q + hs, count, mask);
                    hn = ember_load(q + 2 * hs, count, mask);
                }
                __m256 sr = ADD(hr, _mm256_broadcast_ss(hidden_bias + r));
                __m256 sz = ADD(hz, _mm256_broadcast_ss(hidden_bias + r + gate_rows));
                hn = ADD(hn, _mm256_broadcast_ss(hidden_bias + r + 2 * gate_rows));
                __m256 pre[2] = {ADD(xr, sr), ADD(xz, sz)}, gate[2], candidate;
                ember_sigmoid8(2, pre, gate);
                __m256 reset = gate[0], update = gate[1];
                pre[0] = ADD(xn, MUL(reset, hn));
                ember_tanh8(1, pre, &candidate);
                if (activations) {
                    float *a = activations + r * activation_stride + c;
                    ember_store(a, reset, count, mask);
                    ember_store(a + as, update, count, mask);
                    ember_store(a + 2 * as, candidate, count, mask);
                }
                ember_store(hidden_new + r * hidden_new_stride + c, hn, count, mask);
                hv[k] = ADD(MUL(SUB(hv[k], candidate), update), candidate);
            }
            ember_store_tile(hb, r0, c, tile_rows, count, hv);
        }
    }
}

EMBER_AVX2_ONLY void ember_rnn_forward_avx2(long rows, long cols, const float *pre, long pre_stride, const float *bias,
                                            int relu, float *h, long h_row_stride, long h_col_stride) {
    ember_block hb = {h, h_row_stride, h_col_stride};
    const __m256 zero = _mm256_setzero_ps();
    for (long r0 = 0; r0 < rows; r0 += 8) {
        long tile_rows = rows - r0 < 8 ? rows - r0 : 8;
        for (long c = 0; c < cols; c += 8) {
            long count = cols - c < 8 ? cols - c : 8;
            __m256i mask = ember_lane_mask(count);
            __m256 hv[8];
            for (long k = 0; k < tile_rows; ++k) {
                long r = r0 + k;
                __m256 v = ADD(ember_load(pre + r * pre_stride + c, count, mask), _mm256_broadcast_ss(bias + r));
                hv[k] = v;
                if (relu) hv[k] = SELECT(_mm256_cmp_ps(v, zero, _CMP_LT_OQ), zero, v);
            }
            if (!relu) {
                if (tile_rows == 8) ember_tanh8(8, hv, hv);
                else
                    for (long k = 0; k < tile_rows; ++k) ember_tanh8(1, hv + k, hv + k);
            }
            ember_store_tile(hb, r0, c, tile_rows, count, hv);
        }
    }
}

EMBER_AVX2_ONLY void ember_add_block_avx2(long rows, long cols, const float *src, long src_row_stride,
                                          long src_col_stride, float *dst, long dst_row_stride) {
    ember_block sb = {(float *)src, src_row_stride, src_col_stride};
    for (long r0 = 0; r0 < rows; r0 += 8) {
        long tile_rows = rows - r0 < 8 ? rows - r0 : 8;
        for (long c = 0; c < cols; c += 8) {
            long count = cols - c < 8 ? cols - c : 8;
            __m256i mask = ember_lane_mask(count);
            __m256 v[8];
            ember_load_tile(sb, r0, c, tile_rows, count, v);
            for (long k = 0; k < tile_rows; ++k) {
                float *d = dst + (r0 + k) * dst_row_stride + c;
                ember_store(d, ADD(ember_load(d, count, mask), v[k]), count, mask);
            }
        }
    }
}

#else

#pragma clang diagnostic ignored "-Wunused-parameter"
#define EMBER_TRAP_STUB(signature) \
    signature { __builtin_trap(); }  // callers check ember_cpu_supports_path(EMBER_PATH_AVX2) first

EMBER_TRAP_STUB(void ember_sexp_avx2(long n, const float *x, float *y))
EMBER_TRAP_STUB(void ember_ssilu_avx2(long n, const float *x, float *y))
EMBER_TRAP_STUB(void ember_ssqrt_avx2(long n, const float *x, float *y))
EMBER_TRAP_STUB(void ember_slog_avx2(long n, const float *x, float *y))
EMBER_TRAP_STUB(void ember_srsqrt_avx2(long n, const float *x, float *y))
EMBER_TRAP_STUB(void ember_sgelu_avx2(long n, const float *x, float *y))
EMBER_TRAP_STUB(void ember_sgelu_tanh_avx2(long n, const float *x, float *y))
EMBER_TRAP_STUB(void ember_ssigmoid_avx2(long n, const float *x, float *y))
EMBER_TRAP_STUB(void ember_stanh_avx2(long n, const float *x, float *y))
EMBER_TRAP_STUB(void ember_lstm_forward_avx2(long rows, long cols, long gate_rows, const float *gates, long gate_stride,
                                             const float *bias, float *_Nullable activations, long activation_stride,
                                             const float *c_prev, float *c_out, float *tanh_c, long state_stride,
                                             float *h, long h_row_stride, long h_col_stride))
EMBER_TRAP_STUB(void ember_lstm_backward_avx2(long rows, long cols, long gate_rows, const float *gates,
                                              const float *c_prev, const float *tanh_c, const float *d_h, float *d_c,
                                              long stride, float *d_gates, long d_gate_stride))
EMBER_TRAP_STUB(void ember_gru_forward_avx2(long rows, long cols, long gate_rows, const float *gates, long gate_stride,
                                            const float *input_bias, const float *_Nullable hidden_gates,
                                            long hidden_gate_stride, const float *hidden_bias,
                                            const float *_Nullable h_prev, long h_prev_row_stride,
                                            long h_prev_col_stride, float *_Nullable activations,
                                            long activation_stride, float *hidden_new, long hidden_new_stride,
                                            float *h, long h_row_stride, long h_col_stride))
EMBER_TRAP_STUB(void ember_add_block_avx2(long rows, long cols, const float *src, long src_row_stride,
                                          long src_col_stride, float *dst, long dst_row_stride))
EMBER_TRAP_STUB(void ember_rnn_forward_avx2(long rows, long cols, const float *pre, long pre_stride, const float *bias,
                                            int relu, float *h, long h_row_stride, long h_col_stride))

#endif
