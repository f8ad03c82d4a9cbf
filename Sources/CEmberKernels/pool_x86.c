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

#endif
