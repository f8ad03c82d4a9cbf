// AVX2 kernels outside the GEMM micro-kernels: matrix-vector products for single-row products
// (batch-1 inference: on a weight as it lies, and on one packed once), packing of transposed B
// operands (a `Linear` layer's weight), Philox4x32-10 over eight counters at once (dropout
// masks), and `1 / sqrt(v + eps)` four at a time (batch normalization's inverse deviations). Each
// function carries its own target attribute, so this file compiles with the default flags; the
// Swift callers check `ember_cpu_supports_path(EMBER_PATH_AVX2)` first.
#include "include/CEmberKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define EMBER_AVX2 __attribute__((target("avx2,fma")))

// Elements p..p+7 of eight rows (`rows[i] + p`): afterwards c[q] holds element p + q of rows
// 0..7. Rows i and i + 4 share a register from the start (128-bit halves loaded straight into
// each lane), so only in-lane 4 x 4 transposes remain: 16 shuffles and no cross-lane permutes,
// against 24 (8 of them slow cross-lane) for a transpose of full rows.
static inline __attribute__((always_inline)) EMBER_AVX2 void ember_load_columns8_rows(const float *const rows[8],
                                                                                     long p, __m256 c[8]) {
    for (int h = 0; h < 2; ++h) {
        __m256 r[4];
        for (int i = 0; i < 4; ++i)
            r[i] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(rows[i] + p + 4 * h)),
                                        _mm_loadu_ps(rows[i + 4] + p + 4 * h), 1);
        __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
        __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
        c[4 * h + 0] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
        c[4 * h + 1] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
        c[4 * h + 2] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
        c[4 * h + 3] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    }
}

// The same for eight consecutive rows `ldw` apart starting at `w`.
static inline __attribute__((always_inline)) EMBER_AVX2 void ember_load_columns8(const float *w, long ldw,
                                                                                __m256 c[8]) {
    const float *rows[8];
    for (int i = 0; i < 8; ++i) rows[i] = w + i * ldw;
    ember_load_columns8_rows(rows, 0, c);
}

// y[j..j + width) for the last width < 8 columns, as one group whose missing rows re-read row j
// (their results are computed and dropped, as the micro-kernels do for missing rows).
static inline __attribute__((always_inline)) EMBER_AVX2 void ember_sgemv_tail(
    long width, long j, long k, long kc, const float *x, const float *w, long ldw, float *y, int accumulate) {
    const float *rows[8];
    for (int i = 0; i < 8; ++i) rows[i] = w + (j + (i < width ? i : 0)) * ldw;
    for (long p0 = 0; p0 < k; p0 += kc) {
        long pe = p0 + kc < k ? p0 + kc : k;
        __m256 acc = _mm256_setzero_ps();
        long p = p0;
        for (; p + 8 <= pe; p += 8) {
            __m256 c[8];
            ember_load_columns8_rows(rows, p, c);
            for (int q = 0; q < 8; ++q) acc = _mm256_fmadd_ps(_mm256_broadcast_ss(x + p + q), c[q], acc);
        }
        for (; p < pe; ++p) {
            __m256 col = _mm256_setr_ps(rows[0][p], rows[1][p], rows[2][p], rows[3][p], rows[4][p], rows[5][p],
                                        rows[6][p], rows[7][p]);
            acc = _mm256_fmadd_ps(_mm256_broadcast_ss(x + p), col, acc);
        }
        float lanes[8];
        _mm256_storeu_ps(lanes, acc);
        for (long i = 0; i < width; ++i) y[j + i] = (p0 == 0 && !accumulate) ? lanes[i] : y[j + i] + lanes[i];
    }
}

// Columns j..j + 8 * G of y, for G groups of eight rows of w. Each output's multiply-adds form
// one dependent chain (4 cycles per step), so G independent chains run interleaved to keep the
// FMA units busy: one group alone was latency-bound at 0.5 cycles per multiply-add.
static inline __attribute__((always_inline)) EMBER_AVX2 void ember_sgemv_groups(
    int groups, long j, long k, long kc, const float *x, const float *w, long ldw, float *y, int accumulate) {
    for (long p0 = 0; p0 < k; p0 += kc) {
        long pe = p0 + kc < k ? p0 + kc : k;
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        long p = p0;
        for (; p + 8 <= pe; p += 8) {
            for (int g = 0; g < groups; ++g) {
                __m256 c[8];
                ember_load_columns8(w + (j + 8 * g) * ldw + p, ldw, c);
                for (int q = 0; q < 8; ++q) acc[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(x + p + q), c[q], acc[g]);
            }
        }
        for (; p < pe; ++p) {
            for (int g = 0; g < groups; ++g) {
                const float *wg = w + (j + 8 * g) * ldw + p;
                __m256 col = _mm256_setr_ps(wg[0], wg[ldw], wg[2 * ldw], wg[3 * ldw], wg[4 * ldw], wg[5 * ldw],
                                            wg[6 * ldw], wg[7 * ldw]);
                acc[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(x + p), col, acc[g]);
            }
        }
        for (int g = 0; g < groups; ++g) {
            float *yg = y + j + 8 * g;
            __m256 out = (p0 == 0 && !accumulate) ? acc[g] : _mm256_add_ps(_mm256_loadu_ps(yg), acc[g]);
            _mm256_storeu_ps(yg, out);
        }
    }
}

EMBER_AVX2 void ember_sgemv_rows_avx2(long n, long k, long kc, const float *x, const float *w, long ldw,
                                      float *y, int accumulate) {
    long j = 0;
    // Rows a multiple of 1 KiB apart fall into few L1 sets: 32 of them at once evict each other
    // before their lines are used up, 16 still fit (2 sets x 8 ways at 2 KiB).
    if ((ldw * (long)sizeof(float)) % 1024 != 0)
        for (; j + 32 <= n; j += 32) ember_sgemv_groups(4, j, k, kc, x, w, ldw, y, accumulate);
    for (; j + 16 <= n; j += 16) ember_sgemv_groups(2, j, k, kc, x, w, ldw, y, accumulate);
    for (; j + 8 <= n; j += 8) ember_sgemv_groups(1, j, k, kc, x, w, ldw, y, accumulate);
    if (j < n) ember_sgemv_tail(n - j, j, k, kc, x, w, ldw, y, accumulate);
}

// y[j..j + 32) from one packed strip (`[k][32]`, columns past `width` zero): four chains of
// eight columns, each the micro-kernels' fused multiply-add chain over `p`, restarted per panel.
static inline __attribute__((always_inline)) EMBER_AVX2 void ember_sgemv_strip(
    long width, long k, long kc, const float *x, const float *s, float *y, int accumulate) {
    for (long p0 = 0; p0 < k; p0 += kc) {
        long pe = p0 + kc < k ? p0 + kc : k;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (long p = p0; p < pe; ++p) {
            __m256 xb = _mm256_broadcast_ss(x + p);
            const float *r = s + p * 32;
            a0 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(r), a0);
            a1 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(r + 8), a1);
            a2 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(r + 16), a2);
            a3 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(r + 24), a3);
        }
        int first = p0 == 0 && !accumulate;
        if (width == 32) {
            __m256 acc[4] = {a0, a1, a2, a3};
            for (int g = 0; g < 4; ++g) {
                __m256 out = first ? acc[g] : _mm256_add_ps(_mm256_loadu_ps(y + 8 * g), acc[g]);
                _mm256_storeu_ps(y + 8 * g, out);
            }
        } else {
            float lanes[32];
            _mm256_storeu_ps(lanes, a0);
            _mm256_storeu_ps(lanes + 8, a1);
            _mm256_storeu_ps(lanes + 16, a2);
            _mm256_storeu_ps(lanes + 24, a3);
            for (long i = 0; i < width; ++i) y[i] = first ? lanes[i] : y[i] + lanes[i];
        }
    }
}

EMBER_AVX2 void ember_sgemv_packed_avx2(long n, long k, long kc, const float *x, const float *packed, float *y,
                                        int accumulate) {
    for (long j = 0; j < n; j += 32)
        ember_sgemv_strip(n - j < 32 ? n - j : 32, k, kc, x, packed + j * k, y + j, accumulate);
}

// Stores lanes 0..<n (1 <= n < 8) of v at d with plain 16-, 8- and 4-byte stores: AMD's Zen
// cores run the masked store (VMASKMOVPS) as microcode, many times slower.
static inline __attribute__((always_inline)) EMBER_AVX2 void ember_store_first(float *d, __m256 v, long n) {
    __m128 part = _mm256_castps256_ps128(v);
    if (n >= 4) {
        _mm_storeu_ps(d, part);
        part = _mm256_extractf128_ps(v, 1);
        d += 4;
        n -= 4;
    }
    if (n >= 2) {
        _mm_storel_pi((__m64 *)d, part);
        part = _mm_movehl_ps(part, part);
        d += 2;
        n -= 2;
    }
    if (n) _mm_store_ss(d, part);
}

EMBER_AVX2 void ember_spack_b_columns_avx2(long k, long width, const float *b, long col_stride, float *dst,
                                           long nr) {
    long j = 0;
    for (; j + 8 <= width; j += 8) {
        const float *bj = b + j * col_stride;
        long p = 0;
        for (; p + 8 <= k; p += 8) {
            __m256 r[8];
            ember_load_columns8(bj + p, col_stride, r);
            for (int q = 0; q < 8; ++q) _mm256_storeu_ps(dst + (p + q) * nr + j, r[q]);
        }
        for (; p < k; ++p)
            for (int i = 0; i < 8; ++i) dst[p * nr + j + i] = bj[i * col_stride + p];
    }
    if (j < width) {
        // The last width - j < 8 columns: one transpose whose missing rows re-read column j, each
        // row's first `rest` lanes stored (a GEMM strip of 14 or 6, and every A strip of 6 rows,
        // is mostly such a tail).
        long rest = width - j;
        const float *rows[8];
        for (int i = 0; i < 8; ++i) rows[i] = b + (j + (i < rest ? i : 0)) * col_stride;
        long p = 0;
        for (; p + 8 <= k; p += 8) {
            __m256 r[8];
            ember_load_columns8_rows(rows, p, r);
            for (int q = 0; q < 8; ++q) ember_store_first(dst + (p + q) * nr + j, r[q], rest);
        }
        for (; p < k; ++p)
            for (long i = 0; i < rest; ++i) dst[p * nr + j + i] = rows[i][p];
    }
}

EMBER_AVX2 void ember_inverse_sqrt_plus_avx2(double *v, long count, double eps) {
    const __m256d one = _mm256_set1_pd(1.0), e = _mm256_set1_pd(eps);
    long i = 0;
    for (; i + 4 <= count; i += 4)
        _mm256_storeu_pd(v + i, _mm256_div_pd(one, _mm256_sqrt_pd(_mm256_add_pd(_mm256_loadu_pd(v + i), e))));
    for (; i < count; ++i) {
        __m128d x = _mm_set_sd(v[i] + eps);
        v[i] = 1.0 / _mm_cvtsd_f64(_mm_sqrt_sd(x, x));  // no libm call (errno), same rounding
    }
}

// (hi, lo) halves of the 64-bit products m * c for the eight 32-bit lanes of c.
static inline __attribute__((always_inline)) EMBER_AVX2 void ember_mulhilo8(__m256i m, __m256i c, __m256i *hi,
                                                                            __m256i *lo) {
    __m256i even = _mm256_mul_epu32(c, m);                         // lanes 0, 2, 4, 6
    __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(c, 32), m);    // lanes 1, 3, 5, 7
    *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

static void ember_philox_block(uint64_t seed, uint64_t index, uint64_t stream, uint32_t *out) {
    uint32_t c0 = (uint32_t)index, c1 = (uint32_t)(index >> 32), c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

// Philox4x32-10 on lanes of blocks whose counter words c0, c1 are set (c2, c3 come from `stream`,
// the key from `seed`), for a vector type V with its mulhilo, xor, broadcast and unpacks. Leaves
// blk0..blk3: within each 128-bit lane j, blkN holds the four words of the lane's block 4j + N.
#define EMBER_PHILOX_BLOCKS(V, mulhilo, xor_, set1, unpacklo32, unpackhi32, unpacklo64, unpackhi64)  \
    V c2 = set1((int)(uint32_t)stream), c3 = set1((int)(uint32_t)(stream >> 32));                   \
    do {                                                                                           \
        uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);                                 \
        for (int round = 0; round < 10; ++round) {                                                 \
            if (round > 0) {                                                                       \
                k0 += 0x9E3779B9u;                                                                 \
                k1 += 0xBB67AE85u;                                                                 \
            }                                                                                      \
            V hi0, lo0, hi1, lo1;                                                                  \
            mulhilo(m0, c0, &hi0, &lo0);                                                           \
            mulhilo(m1, c2, &hi1, &lo1);                                                           \
            c0 = xor_(xor_(hi1, c1), set1((int)k0));                                               \
            c1 = lo1;                                                                              \
            c2 = xor_(xor_(hi0, c3), set1((int)k1));                                               \
            c3 = lo0;                                                                              \
        }                                                                                          \
    } while (0);                                                                                   \
    V u0 = unpacklo32(c0, c1), u1 = unpackhi32(c0, c1), u2 = unpacklo32(c2, c3), u3 = unpackhi32(c2, c3); \
    V blk0 = unpacklo64(u0, u2), blk1 = unpackhi64(u0, u2), blk2 = unpacklo64(u1, u3), blk3 = unpackhi64(u1, u3)

EMBER_AVX2 void ember_philox4x32_10_avx2(uint64_t seed, uint64_t index, uint64_t stream, long blocks,
                                         uint32_t *out) {
    const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
    const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
    long b = 0;
    for (; b + 8 <= blocks; b += 8) {
        // 64-bit counters index + b + 0..7: low words to c0, high words to c1.
        __m256i lo4 = _mm256_add_epi64(_mm256_set1_epi64x((long long)(index + (uint64_t)b)), lane);
        __m256i hi4 = _mm256_add_epi64(_mm256_set1_epi64x((long long)(index + (uint64_t)b + 4)), lane);
        // Gather the even (low) and odd (high) 32-bit halves of the eight counters, in lane order.
        const __m256i pick = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
        __m256i a = _mm256_permutevar8x32_epi32(lo4, pick), c = _mm256_permutevar8x32_epi32(hi4, pick);
        __m256i c0 = _mm256_permute2x128_si256(a, c, 0x20), c1 = _mm256_permute2x128_si256(a, c, 0x31);
        EMBER_PHILOX_BLOCKS(__m256i, ember_mulhilo8, _mm256_xor_si256, _mm256_set1_epi32, _mm256_unpacklo_epi32,
                            _mm256_unpackhi_epi32, _mm256_unpacklo_epi64, _mm256_unpackhi_epi64);
        // blkN holds blocks N and 4 + N: write each block's four words contiguously.
        __m256i *dst = (__m256i *)(out + 4 * b);
        _mm256_storeu_si256(dst + 0, _mm256_permute2x128_si256(blk0, blk1, 0x20));
        _mm256_storeu_si256(dst + 1, _mm256_permute2x128_si256(blk2, blk3, 0x20));
        _mm256_storeu_si256(dst + 2, _mm256_permute2x128_si256(blk0, blk1, 0x31));
        _mm256_storeu_si256(dst + 3, _mm256_permute2x128_si256(blk2, blk3, 0x31));
    }
    for (; b < blocks; ++b) ember_philox_block(seed, index + (uint64_t)b, stream, out + 4 * b);
}

// (hi, lo) halves of the 64-bit products m * c for the sixteen 32-bit lanes of c.
static inline __attribute__((always_inline)) __attribute__((target("avx512f"))) void ember_mulhilo16(
    __m512i m, __m512i c, __m512i *hi, __m512i *lo) {
    __m512i even = _mm512_mul_epu32(c, m);                          // lanes 0, 2, ..., 14
    __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(c, 32), m);    // lanes 1, 3, ..., 15
    *lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
    *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}

__attribute__((target("avx512f"))) void ember_philox4x32_10_avx512(uint64_t seed, uint64_t index, uint64_t stream,
                                                                   long blocks, uint32_t *out) {
    const __m512i m0 = _mm512_set1_epi32((int)0xD2511F53u), m1 = _mm512_set1_epi32((int)0xCD9E8D57u);
    const __m512i lane = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    long b = 0;
    for (; b + 16 <= blocks; b += 16) {
        // 64-bit counters index + b + 0..15: low words to c0, high words to c1, in lane order.
        __m512i lo8 = _mm512_add_epi64(_mm512_set1_epi64((long long)(index + (uint64_t)b)), lane);
        __m512i hi8 = _mm512_add_epi64(_mm512_set1_epi64((long long)(index + (uint64_t)b + 8)), lane);
        __m512i c0 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(lo8)), _mm512_cvtepi64_epi32(hi8), 1);
        __m512i c1 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(_mm512_srli_epi64(lo8, 32))),
                                        _mm512_cvtepi64_epi32(_mm512_srli_epi64(hi8, 32)), 1);
        EMBER_PHILOX_BLOCKS(__m512i, ember_mulhilo16, _mm512_xor_si512, _mm512_set1_epi32, _mm512_unpacklo_epi32,
                            _mm512_unpackhi_epi32, _mm512_unpacklo_epi64, _mm512_unpackhi_epi64);
        // blkN holds blocks N, 4 + N, 8 + N, 12 + N. Blocks [0, 8, 1, 9], [2, 10, 3, 11],
        // [4, 12, 5, 13], [6, 14, 7, 15], then in order.
        __m512i x = _mm512_shuffle_i32x4(blk0, blk1, _MM_SHUFFLE(2, 0, 2, 0));
        __m512i y = _mm512_shuffle_i32x4(blk2, blk3, _MM_SHUFFLE(2, 0, 2, 0));
        __m512i z = _mm512_shuffle_i32x4(blk0, blk1, _MM_SHUFFLE(3, 1, 3, 1));
        __m512i w = _mm512_shuffle_i32x4(blk2, blk3, _MM_SHUFFLE(3, 1, 3, 1));
        uint32_t *dst = out + 4 * b;
        _mm512_storeu_si512(dst + 0, _mm512_shuffle_i32x4(x, y, _MM_SHUFFLE(2, 0, 2, 0)));   // 0..3
        _mm512_storeu_si512(dst + 16, _mm512_shuffle_i32x4(z, w, _MM_SHUFFLE(2, 0, 2, 0)));  // 4..7
        _mm512_storeu_si512(dst + 32, _mm512_shuffle_i32x4(x, y, _MM_SHUFFLE(3, 1, 3, 1)));  // 8..11
        _mm512_storeu_si512(dst + 48, _mm512_shuffle_i32x4(z, w, _MM_SHUFFLE(3, 1, 3, 1)));  // 12..15
    }
    if (b < blocks) ember_philox4x32_10_avx2(seed, index + (uint64_t)b, stream, blocks - b, out + 4 * b);
}

#else

void ember_philox4x32_10_avx512(uint64_t seed, uint64_t index, uint64_t stream, long blocks, uint32_t *out) {
    (void)seed; (void)index; (void)stream; (void)blocks; (void)out;
    __builtin_trap();  // callers check the dispatched GEMM path first
}

void ember_sgemv_rows_avx2(long n, long k, long kc, const float *x, const float *w, long ldw, float *y,
                           int accumulate) {
    (void)n; (void)k; (void)kc; (void)x; (void)w; (void)ldw; (void)y; (void)accumulate;
    __builtin_trap();  // callers check ember_cpu_supports_path(EMBER_PATH_AVX2) first
}

void ember_sgemv_packed_avx2(long n, long k, long kc, const float *x, const float *packed, float *y,
                             int accumulate) {
    (void)n; (void)k; (void)kc; (void)x; (void)packed; (void)y; (void)accumulate;
    __builtin_trap();  // callers check ember_cpu_supports_path(EMBER_PATH_AVX2) first
}

void ember_spack_b_columns_avx2(long k, long width, const float *b, long col_stride, float *dst, long nr) {
    (void)k; (void)width; (void)b; (void)col_stride; (void)dst; (void)nr;
    __builtin_trap();  // callers check ember_cpu_supports_path(EMBER_PATH_AVX2) first
}

void ember_inverse_sqrt_plus_avx2(double *v, long count, double eps) {
    (void)v; (void)count; (void)eps;
    __builtin_trap();  // callers check ember_cpu_supports_path(EMBER_PATH_AVX2) first
}

void ember_philox4x32_10_avx2(uint64_t seed, uint64_t index, uint64_t stream, long blocks, uint32_t *out) {
    (void)seed; (void)index; (void)stream; (void)blocks; (void)out;
    __builtin_trap();  // callers check ember_cpu_supports_path(EMBER_PATH_AVX2) first
}

#endif
