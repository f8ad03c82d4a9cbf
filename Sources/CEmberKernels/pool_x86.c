// 2x2 max pooling with stride 2 over float32 planes (AVX2), the loops of EmberFunctional's
// `PoolKernel` for LeNet-style networks. Swift's SIMD types compile to SSE2 in the baseline
// build, where the even/odd splits and the int64 indices took most of the time.
//
// The rule is PyTorch's and the Swift loop's: the candidates of a window in the order top-left,
// top-right, bottom-left, bottom-right, a later one replacing the maximum when it is greater or
// NaN (so NaN propagates, the last NaN wins and ties keep the first); the index is the flat
// position within the input plane. So values and indices are bitwise the Swift loop's.
#include "include/CEmberKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define POOL_AVX2 __attribute__((target("avx2")))

// The even and the odd elements of the 16 floats at p, each in order.
static inline __attribute__((always_inline)) POOL_AVX2 void pool_split16(const float *p, __m256 *even, __m256 *odd) {
    __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));  // a0 a2 b0 b2 | a4 a6 b4 b6
    __m256 o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));  // a1 a3 b1 b3 | a5 a7 b5 b7
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
}

// Lanes where v replaces the running maximum: greater, or NaN.
static inline __attribute__((always_inline)) POOL_AVX2 __m256 pool_takes8(__m256 v, __m256 best) {
    return _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}
static inline __attribute__((always_inline)) POOL_AVX2 __m128 pool_takes4(__m128 v, __m128 best) {
    return _mm_or_ps(_mm_cmp_ps(v, best, _CMP_GT_OQ), _mm_cmp_ps(v, v, _CMP_UNORD_Q));
}

// One output row, columns [0, ow) with ow >= 8: eight at a time, the last eight overlapping.
static inline __attribute__((always_inline)) POOL_AVX2 void pool_row8(const float *src, long iw, long r, long ow,
                                                                         float *dst, int64_t *at) {
    const __m256i lanes = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    for (long c = 0; c < ow; c += 8) {
        if (c + 8 > ow) c = ow - 8;
        long top = 2 * r * iw + 2 * c, bottom = top + iw;
        __m256 ue, uo, le, lo;
        pool_split16(src + top, &ue, &uo);
        pool_split16(src + bottom, &le, &lo);
        __m256 best = ue, take;
        if (at) {
            __m256i pos = _mm256_add_epi32(lanes, _mm256_set1_epi32((int)top));
            take = pool_takes8(uo, best);
            best = _mm256_blendv_ps(best, uo, take);
            pos = _mm256_blendv_epi8(pos, _mm256_add_epi32(lanes, _mm256_set1_epi32((int)top + 1)), _mm256_castps_si256(take));
            take = pool_takes8(le, best);
            best = _mm256_blendv_ps(best, le, take);
            pos = _mm256_blendv_epi8(pos, _mm256_add_epi32(lanes, _mm256_set1_epi32((int)bottom)), _mm256_castps_si256(take));
            take = pool_takes8(lo, best);
            best = _mm256_blendv_ps(best, lo, take);
            pos = _mm256_blendv_epi8(pos, _mm256_add_epi32(lanes, _mm256_set1_epi32((int)bottom + 1)), _mm256_castps_si256(take));
            _mm256_storeu_si256((__m256i *)(at + c), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(pos)));
            _mm256_storeu_si256((__m256i *)(at + c + 4), _mm256_cvtepi32_epi64(_mm256_extracti128_si256(pos, 1)));
        } else {
            best = _mm256_blendv_ps(best, uo, pool_takes8(uo, best));
            best = _mm256_blendv_ps(best, le, pool_takes8(le, best));
            best = _mm256_blendv_ps(best, lo, pool_takes8(lo, best));
        }
        _mm256_storeu_ps(dst + c, best);
    }
}

// One output row with 4 <= ow < 8: four at a time, the last four overlapping.
static inline __attribute__((always_inline)) POOL_AVX2 void pool_row4(const float *src, long iw, long r, long ow,
                                                                         float *dst, int64_t *at) {
    const __m128i lanes = _mm_setr_epi32(0, 2, 4, 6);
    for (long c = 0; c < ow; c += 4) {
        if (c + 4 > ow) c = ow - 4;
        long top = 2 * r * iw + 2 * c, bottom = top + iw;
        __m128 a = _mm_loadu_ps(src + top), b = _mm_loadu_ps(src + top + 4);
        __m128 ue = _mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)), uo = _mm_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
        a = _mm_loadu_ps(src + bottom);
        b = _mm_loadu_ps(src + bottom + 4);
        __m128 le = _mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)), lo = _mm_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
        __m128 best = ue, take;
        __m128i pos = _mm_add_epi32(lanes, _mm_set1_epi32((int)top));
        take = pool_takes4(uo, best);
        best = _mm_blendv_ps(best, uo, take);
        pos = _mm_blendv_epi8(pos, _mm_add_epi32(lanes, _mm_set1_epi32((int)top + 1)), _mm_castps_si128(take));
        take = pool_takes4(le, best);
        best = _mm_blendv_ps(best, le, take);
        pos = _mm_blendv_epi8(pos, _mm_add_epi32(lanes, _mm_set1_epi32((int)bottom)), _mm_castps_si128(take));
        take = pool_takes4(lo, best);
        best = _mm_blendv_ps(best, lo, take);
        pos = _mm_blendv_epi8(pos, _mm_add_epi32(lanes, _mm_set1_epi32((int)bottom + 1)), _mm_castps_si128(take));
        if (at) _mm256_storeu_si256((__m256i *)(at + c), _mm256_cvtepi32_epi64(pos));
        _mm_storeu_ps(dst + c, best);
    }
}

// One output row with ow < 4, one window at a time.
static inline __attribute__((always_inline)) void pool_row1(const float *src, long iw, long r, long ow, float *dst, int64_t *at) {
    for (long c = 0; c < ow; ++c) {
        long top = 2 * r * iw + 2 * c;
        long cand[4] = {top, top + 1, top + iw, top + iw + 1};
        float best = src[top];
        long pos = top;
        for (int i = 1; i < 4; ++i) {
            float v = src[cand[i]];
            if (v > best || v != v) { best = v; pos = cand[i]; }
        }
        dst[c] = best;
        if (at) at[c] = pos;
    }
}

POOL_AVX2 void ember_smax_pool2x2_avx2(long planes, long ih, long iw, long oh, long ow, const float *x, float *y,
                                       int64_t *indices) {
    for (long p = 0; p < planes; ++p) {
        const float *src = x + p * ih * iw;
        for (long r = 0; r < oh; ++r) {
            float *dst = y + (p * oh + r) * ow;
            int64_t *at = indices ? indices + (p * oh + r) * ow : 0;
            if (ow >= 8) pool_row8(src, iw, r, ow, dst, at);
            else if (ow >= 4) pool_row4(src, iw, r, ow, dst, at);
            else pool_row1(src, iw, r, ow, dst, at);
        }
    }
}

// Eight windows' gradients (left-to-right) into the sixteen columns of their upper and lower
// input rows: `0 + g` where the window's index selects the element, +0 elsewhere.
static inline __attribute__((always_inline)) POOL_AVX2 void pool_back8(const float *g, const int64_t *ind, long top, long iw,
                                                                          float *upper, float *lower) {
    __m256i lo = _mm256_loadu_si256((const __m256i *)ind), hi = _mm256_loadu_si256((const __m256i *)(ind + 4));
    // The eight indices as int32 (positions within a plane fit; the caller checks).
    __m256i at = _mm256_permute4x64_epi64(
        _mm256_castps_si256(_mm256_shuffle_ps(_mm256_castsi256_ps(lo), _mm256_castsi256_ps(hi), _MM_SHUFFLE(2, 0, 2, 0))),
        _MM_SHUFFLE(3, 1, 2, 0));
    __m256i first = _mm256_add_epi32(_mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14), _mm256_set1_epi32((int)top));
    __m256 v = _mm256_add_ps(_mm256_setzero_ps(), _mm256_loadu_ps(g));
    __m256 tl = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(at, first)));
    __m256 tr = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(at, _mm256_add_epi32(first, _mm256_set1_epi32(1)))));
    __m256 bl = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(at, _mm256_add_epi32(first, _mm256_set1_epi32((int)iw)))));
    __m256 br = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(at, _mm256_add_epi32(first, _mm256_set1_epi32((int)iw + 1)))));
    // Interleave (left, right) pairs back into sixteen consecutive columns.
    __m256 u0 = _mm256_unpacklo_ps(tl, tr), u1 = _mm256_unpackhi_ps(tl, tr);
    __m256 l0 = _mm256_unpacklo_ps(bl, br), l1 = _mm256_unpackhi_ps(bl, br);
    _mm256_storeu_ps(upper, _mm256_permute2f128_ps(u0, u1, 0x20));
    _mm256_storeu_ps(upper + 8, _mm256_permute2f128_ps(u0, u1, 0x31));
    _mm256_storeu_ps(lower, _mm256_permute2f128_ps(l0, l1, 0x20));
    _mm256_storeu_ps(lower + 8, _mm256_permute2f128_ps(l0, l1, 0x31));
}

// pool_back8 for four windows (eight columns).
static inline __attribute__((always_inline)) POOL_AVX2 void pool_back4(const float *g, const int64_t *ind, long top, long iw,
                                                                          float *upper, float *lower) {
    __m256i all = _mm256_loadu_si256((const __m256i *)ind);
    __m128i at = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(all, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
    __m128i first = _mm_add_epi32(_mm_setr_epi32(0, 2, 4, 6), _mm_set1_epi32((int)top));
    __m128 v = _mm_add_ps(_mm_setzero_ps(), _mm_loadu_ps(g));
    __m128 tl = _mm_and_ps(v, _mm_castsi128_ps(_mm_cmpeq_epi32(at, first)));
    __m128 tr = _mm_and_ps(v, _mm_castsi128_ps(_mm_cmpeq_epi32(at, _mm_add_epi32(first, _mm_set1_epi32(1)))));
    __m128 bl = _mm_and_ps(v, _mm_castsi128_ps(_mm_cmpeq_epi32(at, _mm_add_epi32(first, _mm_set1_epi32((int)iw)))));
    __m128 br = _mm_and_ps(v, _mm_castsi128_ps(_mm_cmpeq_epi32(at, _mm_add_epi32(first, _mm_set1_epi32((int)iw + 1)))));
    _mm_storeu_ps(upper, _mm_unpacklo_ps(tl, tr));
    _mm_storeu_ps(upper + 4, _mm_unpackhi_ps(tl, tr));
    _mm_storeu_ps(lower, _mm_unpacklo_ps(bl, br));
    _mm_storeu_ps(lower + 4, _mm_unpackhi_ps(bl, br));
}

// The backward of ember_smax_pool2x2_avx2: dx = 0 + g at each window's selected position (so a
// -0 gradient becomes +0, as when added to zeros), +0 everywhere else, including the input rows
// and columns no window covers. Each window's four positions are compared with its index, so no
// scatter and no zero-fill pass. A window's sixteen columns depend on its own gradient and index
// alone, so the last group of eight (or four) may overlap the previous one.
POOL_AVX2 void ember_smax_pool2x2_backward_avx2(long planes, long ih, long iw, long oh, long ow, const float *g,
                                                const int64_t *indices, float *dx) {
    for (long p = 0; p < planes; ++p) {
        float *plane = dx + p * ih * iw;
        for (long r = 0; r < oh; ++r) {
            const float *gr = g + (p * oh + r) * ow;
            const int64_t *ir = indices + (p * oh + r) * ow;
            float *upper = plane + 2 * r * iw, *lower = upper + iw;
            if (ow >= 8) {
                for (long c = 0; c < ow; c += 8) {
                    if (c + 8 > ow) c = ow - 8;
                    pool_back8(gr + c, ir + c, 2 * r * iw + 2 * c, iw, upper + 2 * c, lower + 2 * c);
                }
            } else if (ow >= 4) {
                for (long c = 0; c < ow; c += 4) {
                    if (c + 4 > ow) c = ow - 4;
                    pool_back4(gr + c, ir + c, 2 * r * iw + 2 * c, iw, upper + 2 * c, lower + 2 * c);
                }
            } else {
                for (long c = 0; c < ow; ++c) {
                    long top = 2 * r * iw + 2 * c, at = (long)ir[c];
                    float v = 0.0f + gr[c];
                    upper[2 * c] = at == top ? v : 0.0f;
                    upper[2 * c + 1] = at == top + 1 ? v : 0.0f;
                    lower[2 * c] = at == top + iw ? v : 0.0f;
                    lower[2 * c + 1] = at == top + iw + 1 ? v : 0.0f;
                }
            }
            // Columns past the last window.
            for (long j = 2 * ow; j < iw; ++j) upper[j] = lower[j] = 0.0f;
        }
        // Rows past the last window.
        for (long j = 2 * oh * iw; j < ih * iw; ++j) plane[j] = 0.0f;
    }
}

// The same two kernels sixteen windows at a time with AVX-512F mask registers (the same values,
// indices and gradients); a row's last windows, or a row of fewer than sixteen, through masked
// loads and stores.
#define POOL_AVX512 __attribute__((target("avx512f")))

// Lanes where v replaces the running maximum: greater, or NaN.
static inline __attribute__((always_inline)) POOL_AVX512 __mmask16 pool_takes16(__m512 v, __m512 best) {
    return _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
}

// The first n lanes (none for n <= 0, all for n >= 16).
static inline __attribute__((always_inline)) __mmask16 pool_lanes(long n) {
    return (__mmask16)(n <= 0 ? 0 : n >= 16 ? 0xFFFF : (1u << n) - 1);
}

POOL_AVX512 void ember_smax_pool2x2_avx512(long planes, long ih, long iw, long oh, long ow, const float *x, float *y,
                                           int64_t *indices) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (long p = 0; p < planes; ++p) {
        const float *src = x + p * ih * iw;
        for (long r = 0; r < oh; ++r) {
            float *dst = y + (p * oh + r) * ow;
            int64_t *at = indices ? indices + (p * oh + r) * ow : 0;
            for (long c = 0; c < ow; c += 16) {
                long n = ow - c < 16 ? ow - c : 16;
                __mmask16 out = pool_lanes(n), in0 = pool_lanes(2 * n), in1 = pool_lanes(2 * n - 16);
                long top = 2 * r * iw + 2 * c, bottom = top + iw;
                __m512 a = _mm512_maskz_loadu_ps(in0, src + top), b = _mm512_maskz_loadu_ps(in1, src + top + 16);
                __m512 ue = _mm512_permutex2var_ps(a, even, b), uo = _mm512_permutex2var_ps(a, odd, b);
                a = _mm512_maskz_loadu_ps(in0, src + bottom);
                b = _mm512_maskz_loadu_ps(in1, src + bottom + 16);
                __m512 le = _mm512_permutex2var_ps(a, even, b), lo = _mm512_permutex2var_ps(a, odd, b);
                __m512 best = ue;
                __mmask16 k1 = pool_takes16(uo, best);
                best = _mm512_mask_mov_ps(best, k1, uo);
                __mmask16 k2 = pool_takes16(le, best);
                best = _mm512_mask_mov_ps(best, k2, le);
                __mmask16 k3 = pool_takes16(lo, best);
                best = _mm512_mask_mov_ps(best, k3, lo);
                _mm512_mask_storeu_ps(dst + c, out, best);
                if (at) {
                    __m512i pos = _mm512_add_epi32(even, _mm512_set1_epi32((int)top));
                    pos = _mm512_mask_mov_epi32(pos, k1, _mm512_add_epi32(even, _mm512_set1_epi32((int)top + 1)));
                    pos = _mm512_mask_mov_epi32(pos, k2, _mm512_add_epi32(even, _mm512_set1_epi32((int)bottom)));
                    pos = _mm512_mask_mov_epi32(pos, k3, _mm512_add_epi32(even, _mm512_set1_epi32((int)bottom + 1)));
                    _mm512_mask_storeu_epi64(at + c, (__mmask8)out, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(pos)));
                    _mm512_mask_storeu_epi64(at + c + 8, (__mmask8)(out >> 8), _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(pos, 1)));
                }
            }
        }
    }
}

POOL_AVX512 void ember_smax_pool2x2_backward_avx512(long planes, long ih, long iw, long oh, long ow, const float *g,
                                                    const int64_t *indices, float *dx) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    // Interleaving (left, right) lane pairs: lanes 0-7 of each, then lanes 8-15.
    const __m512i low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i high = _mm512_add_epi32(low, _mm512_set1_epi32(8));
    for (long p = 0; p < planes; ++p) {
        float *plane = dx + p * ih * iw;
        for (long r = 0; r < oh; ++r) {
            const float *gr = g + (p * oh + r) * ow;
            const int64_t *ir = indices + (p * oh + r) * ow;
            float *upper = plane + 2 * r * iw, *lower = upper + iw;
            for (long c = 0; c < ow; c += 16) {
                long n = ow - c < 16 ? ow - c : 16;
                __mmask16 in = pool_lanes(n), out0 = pool_lanes(2 * n), out1 = pool_lanes(2 * n - 16);
                __m512i at = _mm512_inserti64x4(
                    _mm512_castsi256_si512(_mm512_cvtepi64_epi32(_mm512_maskz_loadu_epi64((__mmask8)in, ir + c))),
                    _mm512_cvtepi64_epi32(_mm512_maskz_loadu_epi64((__mmask8)(in >> 8), ir + c + 8)), 1);
                __m512i first = _mm512_add_epi32(even, _mm512_set1_epi32((int)(2 * r * iw + 2 * c)));
                __m512 v = _mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(in, gr + c));
                __m512 tl = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, first), v);
                __m512 tr = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, _mm512_add_epi32(first, _mm512_set1_epi32(1))), v);
                __m512 bl = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, _mm512_add_epi32(first, _mm512_set1_epi32((int)iw))), v);
                __m512 br = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, _mm512_add_epi32(first, _mm512_set1_epi32((int)iw + 1))), v);
                _mm512_mask_storeu_ps(upper + 2 * c, out0, _mm512_permutex2var_ps(tl, low, tr));
                _mm512_mask_storeu_ps(upper + 2 * c + 16, out1, _mm512_permutex2var_ps(tl, high, tr));
                _mm512_mask_storeu_ps(lower + 2 * c, out0, _mm512_permutex2var_ps(bl, low, br));
                _mm512_mask_storeu_ps(lower + 2 * c + 16, out1, _mm512_permutex2var_ps(bl, high, br));
            }
            for (long j = 2 * ow; j < iw; ++j) upper[j] = lower[j] = 0.0f;
        }
        for (long j = 2 * oh * iw; j < ih * iw; ++j) plane[j] = 0.0f;
    }
}

#endif

// Row copies between strided planes (a convolution's padded buffer): one body compiled for
// AVX-512F, AVX2 and the baseline; clang vectorizes the row loop at each width.
static inline __attribute__((always_inline)) void copy_rows_body(long rows, long cols, const float *restrict src,
                                                                  long src_stride, float *restrict dst, long dst_stride) {
    for (long r = 0; r < rows; ++r) {
        const float *restrict s = src + r * src_stride;
        float *restrict d = dst + r * dst_stride;
        for (long j = 0; j < cols; ++j) d[j] = s[j];
    }
}
static void copy_rows_portable(long rows, long cols, const float *src, long ss, float *dst, long ds) {
    copy_rows_body(rows, cols, src, ss, dst, ds);
}
#if defined(__x86_64__)
__attribute__((target("avx2"))) static void copy_rows_avx2(long rows, long cols, const float *src, long ss, float *dst, long ds) {
    copy_rows_body(rows, cols, src, ss, dst, ds);
}
__attribute__((target("avx512f"))) static void copy_rows_avx512(long rows, long cols, const float *src, long ss, float *dst,
                                                                long ds) {
    copy_rows_body(rows, cols, src, ss, dst, ds);
}
#endif

// Full GEMM B strips from row-major B, row by row: each row of B is read once, front to back,
// its nr-wide pieces written to their strips. Strip by strip instead, the k rows of one strip
// are a page apart for a B a thousand columns wide (BENCHMARKS.md, seventeenth session, has what
// that cost).
static inline __attribute__((always_inline)) void pack_b_strips_body(long k, long strips, long nr, const float *restrict src,
                                                                      long src_stride, float *restrict dst) {
    for (long p = 0; p < k; ++p) {
        const float *restrict s = src + p * src_stride;
        float *restrict d = dst + p * nr;
        for (long t = 0; t < strips; ++t)
            for (long j = 0; j < nr; ++j) d[t * k * nr + j] = s[t * nr + j];
    }
}
static void pack_b_strips_portable(long k, long strips, long nr, const float *src, long ss, float *dst) {
    pack_b_strips_body(k, strips, nr, src, ss, dst);
}
#if defined(__x86_64__)
__attribute__((target("avx2"))) static void pack_b_strips_avx2(long k, long strips, long nr, const float *src, long ss, float *dst) {
    pack_b_strips_body(k, strips, nr, src, ss, dst);
}
__attribute__((target("avx512f"))) static void pack_b_strips_avx512(long k, long strips, long nr, const float *src, long ss,
                                                                    float *dst) {
    pack_b_strips_body(k, strips, nr, src, ss, dst);
}
#endif

void ember_pack_b_strips_f32(int path, long k, long strips, long nr, const float *src, long src_stride, float *dst) {
    switch (path) {
#if defined(__x86_64__)
    case EMBER_PATH_AVX512: pack_b_strips_avx512(k, strips, nr, src, src_stride, dst); return;
    case EMBER_PATH_AVX2: pack_b_strips_avx2(k, strips, nr, src, src_stride, dst); return;
#endif
    default: pack_b_strips_portable(k, strips, nr, src, src_stride, dst); return;
    }
}

void ember_copy_rows_f32(int path, long rows, long cols, const float *src, long src_stride, float *dst, long dst_stride) {
    switch (path) {
#if defined(__x86_64__)
    case EMBER_PATH_AVX512: copy_rows_avx512(rows, cols, src, src_stride, dst, dst_stride); return;
    case EMBER_PATH_AVX2: copy_rows_avx2(rows, cols, src, src_stride, dst, dst_stride); return;
#endif
    default: copy_rows_portable(rows, cols, src, src_stride, dst, dst_stride); return;
    }
}
