// AVX2 kernels outside the GEMM micro-kernels: a matrix-vector product for single-row products
// (batch-1 inference), packing of transposed B operands (a `Linear` layer's weight), and
// Philox4x32-10 over eight counters at once (dropout masks). Each
// function carries its own target attribute, so this file compiles with the default flags; the
// Swift callers check `ember_cpu_supports_path(EMBER_PATH_AVX2)` first.
#include "include/CEmberKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define EMBER_AVX2 __attribute__((target("avx2,fma")))

// Rows r[0..<8] of an 8 x 8 block become its columns: afterwards r[q][i] is the old r[i][q].
static inline __attribute__((always_inline)) EMBER_AVX2 void ember_transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

EMBER_AVX2 void ember_sgemv_rows_avx2(long n, long k, long kc, const float *x, const float *w, long ldw,
                                      float *y, int accumulate) {
    long j = 0;
    for (; j + 8 <= n; j += 8) {
        const float *wj = w + j * ldw;
        for (long p0 = 0; p0 < k; p0 += kc) {
            long pe = p0 + kc < k ? p0 + kc : k;
            __m256 acc = _mm256_setzero_ps();
            long p = p0;
            for (; p + 8 <= pe; p += 8) {
                __m256 r[8];
                for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(wj + i * ldw + p);
                ember_transpose8(r);
                // Element order within the block: p, p + 1, ... (the micro-kernel's order).
                for (int q = 0; q < 8; ++q) acc = _mm256_fmadd_ps(_mm256_broadcast_ss(x + p + q), r[q], acc);
            }
            for (; p < pe; ++p) {
                __m256 col = _mm256_setr_ps(wj[p], wj[ldw + p], wj[2 * ldw + p], wj[3 * ldw + p], wj[4 * ldw + p],
                                            wj[5 * ldw + p], wj[6 * ldw + p], wj[7 * ldw + p]);
                acc = _mm256_fmadd_ps(_mm256_broadcast_ss(x + p), col, acc);
            }
            __m256 out = (p0 == 0 && !accumulate) ? acc : _mm256_add_ps(_mm256_loadu_ps(y + j), acc);
            _mm256_storeu_ps(y + j, out);
        }
    }
    for (; j < n; ++j) {
        const float *wj = w + j * ldw;
        for (long p0 = 0; p0 < k; p0 += kc) {
            long pe = p0 + kc < k ? p0 + kc : k;
            float acc = 0;
            for (long p = p0; p < pe; ++p) acc = __builtin_fmaf(x[p], wj[p], acc);
            y[j] = (p0 == 0 && !accumulate) ? acc : y[j] + acc;
        }
    }
}

EMBER_AVX2 void ember_spack_b_columns_avx2(long k, long width, const float *b, long col_stride, float *dst,
                                           long nr) {
    long j = 0;
    for (; j + 8 <= width; j += 8) {
        const float *bj = b + j * col_stride;
        long p = 0;
        for (; p + 8 <= k; p += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(bj + i * col_stride + p);
            ember_transpose8(r);
            for (int q = 0; q < 8; ++q) _mm256_storeu_ps(dst + (p + q) * nr + j, r[q]);
        }
        for (; p < k; ++p)
            for (int i = 0; i < 8; ++i) dst[p * nr + j + i] = bj[i * col_stride + p];
    }
    for (; j < width; ++j)
        for (long p = 0; p < k; ++p) dst[p * nr + j] = b[j * col_stride + p];
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
        __m256i c2 = _mm256_set1_epi32((int)(uint32_t)stream), c3 = _mm256_set1_epi32((int)(uint32_t)(stream >> 32));
        uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
        for (int round = 0; round < 10; ++round) {
            if (round > 0) {
                k0 += 0x9E3779B9u;
                k1 += 0xBB67AE85u;
            }
            __m256i hi0, lo0, hi1, lo1;
            ember_mulhilo8(m0, c0, &hi0, &lo0);
            ember_mulhilo8(m1, c2, &hi1, &lo1);
            c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
            c1 = lo1;
            c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
            c3 = lo0;
        }
        // Lane l of c0..c3 is block b + l; write its four words contiguously.
        __m256i u0 = _mm256_unpacklo_epi32(c0, c1), u1 = _mm256_unpackhi_epi32(c0, c1);
        __m256i u2 = _mm256_unpacklo_epi32(c2, c3), u3 = _mm256_unpackhi_epi32(c2, c3);
        __m256i b04 = _mm256_unpacklo_epi64(u0, u2), b15 = _mm256_unpackhi_epi64(u0, u2);
        __m256i b26 = _mm256_unpacklo_epi64(u1, u3), b37 = _mm256_unpackhi_epi64(u1, u3);
        __m256i *dst = (__m256i *)(out + 4 * b);
        _mm256_storeu_si256(dst + 0, _mm256_permute2x128_si256(b04, b15, 0x20));
        _mm256_storeu_si256(dst + 1, _mm256_permute2x128_si256(b26, b37, 0x20));
        _mm256_storeu_si256(dst + 2, _mm256_permute2x128_si256(b04, b15, 0x31));
        _mm256_storeu_si256(dst + 3, _mm256_permute2x128_si256(b26, b37, 0x31));
    }
    for (; b < blocks; ++b) ember_philox_block(seed, index + (uint64_t)b, stream, out + 4 * b);
}

#else

void ember_sgemv_rows_avx2(long n, long k, long kc, const float *x, const float *w, long ldw, float *y,
                           int accumulate) {
    (void)n; (void)k; (void)kc; (void)x; (void)w; (void)ldw; (void)y; (void)accumulate;
    __builtin_trap();  // callers check ember_cpu_supports_path(EMBER_PATH_AVX2) first
}

void ember_spack_b_columns_avx2(long k, long width, const float *b, long col_stride, float *dst, long nr) {
    (void)k; (void)width; (void)b; (void)col_stride; (void)dst; (void)nr;
    __builtin_trap();  // callers check ember_cpu_supports_path(EMBER_PATH_AVX2) first
}

void ember_philox4x32_10_avx2(uint64_t seed, uint64_t index, uint64_t stream, long blocks, uint32_t *out) {
    (void)seed; (void)index; (void)stream; (void)blocks; (void)out;
    __builtin_trap();  // callers check ember_cpu_supports_path(EMBER_PATH_AVX2) first
}

#endif
