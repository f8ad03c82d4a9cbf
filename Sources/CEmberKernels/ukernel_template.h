// One GEMM micro-kernel, instantiated by including this file after defining:
//
//   UKR_NAME         function name prefix (defines UKR_NAME##_packed, _strided, _indirect, _rows)
//   UKR_TARGET       function attributes, e.g. __attribute__((target("avx2,fma"))), or empty
//   UKR_T            scalar type (float or double)
//   UKR_V            vector type holding UKR_VW scalars (UKR_T itself when UKR_VW == 1)
//   UKR_VW           lanes per vector
//   UKR_MR, UKR_NR   tile rows and columns; UKR_NR is a multiple of UKR_VW
//   UKR_LOAD(p)      unaligned vector load, UKR_STORE(p, v) unaligned vector store
//   UKR_FMA(a, b, c) a * b + c, UKR_MUL(a, b) a * b
//   UKR_BCAST(x)     all lanes set to the scalar x, UKR_ZERO() all lanes zero
//
// No include guard on purpose; every parameter is #undef'd at the end.
//
// The accumulators are a small array indexed only by compile-time constants inside fully unrolled
// loops, so the compiler keeps them in registers (MR * NR / VW of them).

#define UKR_NV (UKR_NR / UKR_VW)
#define UKR_CAT2(a, b) a##b
#define UKR_CAT(a, b) UKR_CAT2(a, b)

// Prefetches the tile of C (m rows at c, c + ldc, ...) for writing during the last `UKR_C_LEAD`
// steps of the depth loop, one line per step: all at once before the loop, the lines fill the
// core's line-fill buffers for a memory latency (stalling the loads of A and B) and are evicted
// again by the streaming A strips before the tile is written.
#define UKR_C_LEAD 128
#define UKR_PREFETCH_C_STEP(p, kc, c, ldc, m)                                                        \
    do {                                                                                              \
        if (c) {                                                                                      \
            unsigned long q_ = (unsigned long)((p) - ((kc) > UKR_C_LEAD ? (kc) - UKR_C_LEAD : 0));     \
            if (q_ < 2 * (unsigned long)(m)) __builtin_prefetch((c) + (q_ >> 1) * (ldc) + (q_ & 1) * (UKR_NR - 1), 1); \
        }                                                                                             \
    } while (0)

// acc += A(MR x kc) * B(kc x NR). `packed`: A is a packed strip (element (i, p) at a[p * MR + i]);
// otherwise row i of A starts at a + row_off[i] and steps by cs_a. `c`, when not null, is the
// tile of C to prefetch (m rows).
static inline __attribute__((always_inline)) UKR_TARGET void UKR_CAT(UKR_NAME, _accumulate)(
    long kc, const UKR_T *restrict a, const long *restrict row_off, long cs_a, int packed,
    const UKR_T *restrict b, UKR_V acc[UKR_MR][UKR_NV], const UKR_T *c, long ldc, long m)
{
    for (long p = 0; p < kc; ++p) {
        UKR_PREFETCH_C_STEP(p, kc, c, ldc, m);
        UKR_V bv[UKR_NV];
#pragma clang loop unroll(full)
        for (int j = 0; j < UKR_NV; ++j) bv[j] = UKR_LOAD(b + j * UKR_VW);
#pragma clang loop unroll(full)
        for (int i = 0; i < UKR_MR; ++i) {
            UKR_V av = UKR_BCAST(packed ? a[i] : a[row_off[i]]);
#pragma clang loop unroll(full)
            for (int j = 0; j < UKR_NV; ++j) acc[i][j] = UKR_FMA(av, bv[j], acc[i][j]);
        }
        a += packed ? UKR_MR : cs_a;
        b += UKR_NR;
    }
}

// c = alpha * acc + beta * c on the valid m x n part of the tile; c is not read when beta == 0.
static inline __attribute__((always_inline)) UKR_TARGET void UKR_CAT(UKR_NAME, _write)(
    UKR_V acc[UKR_MR][UKR_NV], UKR_T *restrict c, long ldc, UKR_T alpha, UKR_T beta, long m, long n)
{
    if (m == UKR_MR && n == UKR_NR) {
        UKR_V va = UKR_BCAST(alpha);
        if (beta == 0) {
#pragma clang loop unroll(full)
            for (int i = 0; i < UKR_MR; ++i)
#pragma clang loop unroll(full)
                for (int j = 0; j < UKR_NV; ++j)
                    UKR_STORE(c + i * ldc + j * UKR_VW, UKR_MUL(va, acc[i][j]));
        } else {
            UKR_V vb = UKR_BCAST(beta);
#pragma clang loop unroll(full)
            for (int i = 0; i < UKR_MR; ++i)
#pragma clang loop unroll(full)
                for (int j = 0; j < UKR_NV; ++j) {
                    UKR_T *cp = c + i * ldc + j * UKR_VW;
                    UKR_STORE(cp, UKR_FMA(vb, UKR_LOAD(cp), UKR_MUL(va, acc[i][j])));
                }
        }
    } else {
        // Edge tile: spill the accumulators and write back only the valid part.
        UKR_T tile[UKR_MR * UKR_NR] __attribute__((aligned(64)));
#pragma clang loop unroll(full)
        for (int i = 0; i < UKR_MR; ++i)
#pragma clang loop unroll(full)
            for (int j = 0; j < UKR_NV; ++j) UKR_STORE(tile + i * UKR_NR + j * UKR_VW, acc[i][j]);
        for (long i = 0; i < m; ++i) {
            UKR_T *crow = c + i * ldc;
            const UKR_T *trow = tile + i * UKR_NR;
            if (beta == 0) {
                for (long j = 0; j < n; ++j) crow[j] = alpha * trow[j];
            } else {
                for (long j = 0; j < n; ++j) crow[j] = alpha * trow[j] + beta * crow[j];
            }
        }
    }
}

static inline __attribute__((always_inline)) UKR_TARGET void UKR_CAT(UKR_NAME, _zero)(UKR_V acc[UKR_MR][UKR_NV])
{
#pragma clang loop unroll(full)
    for (int i = 0; i < UKR_MR; ++i)
#pragma clang loop unroll(full)
        for (int j = 0; j < UKR_NV; ++j) acc[i][j] = UKR_ZERO();
}

// The tile's product for a packed A strip (element (i, p) at a[p * MR + i], rows m..<MR zero
// padded) into fresh accumulators, C's rows prefetched for the write.
static inline __attribute__((always_inline)) UKR_TARGET void UKR_CAT(UKR_NAME, _packed_product)(
    long kc, const void *a, const void *b, const UKR_T *c, long ldc, long m, UKR_V acc[UKR_MR][UKR_NV])
{
    UKR_CAT(UKR_NAME, _zero)(acc);
    UKR_CAT(UKR_NAME, _accumulate)(kc, (const UKR_T *)a, 0, 0, 1, (const UKR_T *)b, acc, c, ldc, m);
}

// The tile's product for A read in place (element (i, p) at a[i * rs_a + p * cs_a]; rows m..<MR
// are never read: they re-read row 0 and their results are discarded), C's rows prefetched.
static inline __attribute__((always_inline)) UKR_TARGET void UKR_CAT(UKR_NAME, _strided_product)(
    long kc, const void *a, long rs_a, long cs_a, const void *b, const UKR_T *c, long ldc, long m,
    UKR_V acc[UKR_MR][UKR_NV])
{
    UKR_CAT(UKR_NAME, _zero)(acc);
    long row_off[UKR_MR];
    for (int i = 0; i < UKR_MR; ++i) row_off[i] = i < m ? i * rs_a : 0;
    UKR_CAT(UKR_NAME, _accumulate)(kc, (const UKR_T *)a, row_off, cs_a, 0, (const UKR_T *)b, acc, c, ldc, m);
}

/// Packed A strip: element (i, p) at a[p * MR + i], rows m..<MR zero padded.
UKR_TARGET void UKR_CAT(UKR_NAME, _packed)(long kc, const void *a, const void *b, void *c, long ldc,
                                           double alpha, double beta, long m, long n)
{
    UKR_V acc[UKR_MR][UKR_NV];
    UKR_CAT(UKR_NAME, _packed_product)(kc, a, b, (const UKR_T *)c, ldc, m, acc);
    UKR_CAT(UKR_NAME, _write)(acc, (UKR_T *)c, ldc, (UKR_T)alpha, (UKR_T)beta, m, n);
}

/// Strided A: element (i, p) at a[i * rs_a + p * cs_a]; rows m..<MR are never read.
UKR_TARGET void UKR_CAT(UKR_NAME, _strided)(long kc, const void *a, long rs_a, long cs_a, const void *b,
                                            void *c, long ldc, double alpha, double beta, long m, long n)
{
    UKR_V acc[UKR_MR][UKR_NV];
    UKR_CAT(UKR_NAME, _strided_product)(kc, a, rs_a, cs_a, b, (const UKR_T *)c, ldc, m, acc);
    UKR_CAT(UKR_NAME, _write)(acc, (UKR_T *)c, ldc, (UKR_T)alpha, (UKR_T)beta, m, n);
}

/// Indirect B, packed A: vector j of row p of B starts at b + b_off[p] + j * b_step (b_step ==
/// VW: the NR contiguous elements; a convolution reads its zero-padded input image this way, one
/// offset per kernel tap, with no column matrix and no B packing, and with b_step a padded row
/// length one tile covers NR / VW output rows); columns n..<NR are read and discarded.
UKR_TARGET void UKR_CAT(UKR_NAME, _indirect)(long kc, const void *a_, const void *b_, const long *b_off, long b_step,
                                             void *c_, long ldc, double alpha, double beta, long m, long n)
{
    const UKR_T *a = (const UKR_T *)a_;
    const UKR_T *b = (const UKR_T *)b_;
    UKR_T *c = (UKR_T *)c_;
    UKR_V acc[UKR_MR][UKR_NV];
    UKR_CAT(UKR_NAME, _zero)(acc);
    for (long p = 0; p < kc; ++p) {
        UKR_PREFETCH_C_STEP(p, kc, c, ldc, m);
        const UKR_T *row = b + b_off[p];
        UKR_V bv[UKR_NV];
#pragma clang loop unroll(full)
        for (int j = 0; j < UKR_NV; ++j) bv[j] = UKR_LOAD(row + j * b_step);
#pragma clang loop unroll(full)
        for (int i = 0; i < UKR_MR; ++i) {
            UKR_V av = UKR_BCAST(a[i]);
#pragma clang loop unroll(full)
            for (int j = 0; j < UKR_NV; ++j) acc[i][j] = UKR_FMA(av, bv[j], acc[i][j]);
        }
        a += UKR_MR;
    }
    UKR_CAT(UKR_NAME, _write)(acc, c, ldc, (UKR_T)alpha, (UKR_T)beta, m, n);
}

/// Indirect A, packed B: row i of A is contiguous from a + a_off[i] (a convolution's column
/// matrix over its zero-padded input, for the weight gradient); rows m..<MR re-read row 0.
UKR_TARGET void UKR_CAT(UKR_NAME, _rows)(long kc, const void *a_, const long *a_off, const void *b_,
                                         void *c_, long ldc, double alpha, double beta, long m, long n)
{
    const UKR_T *a = (const UKR_T *)a_;
    const UKR_T *b = (const UKR_T *)b_;
    UKR_T *c = (UKR_T *)c_;
    long row_off[UKR_MR];
    for (int i = 0; i < UKR_MR; ++i) row_off[i] = i < m ? a_off[i] : a_off[0];
    UKR_V acc[UKR_MR][UKR_NV];
    UKR_CAT(UKR_NAME, _zero)(acc);
    UKR_CAT(UKR_NAME, _accumulate)(kc, a, row_off, 1, 0, b, acc, c, ldc, m);
    UKR_CAT(UKR_NAME, _write)(acc, c, ldc, (UKR_T)alpha, (UKR_T)beta, m, n);
}

#ifdef UKR_RELU
// The GEMM epilogue on a full tile in registers: the value `_write` would store (alpha * acc, plus
// beta * c), then `+ bias[j]`, `* scale[j] + shift[j]`, ReLU, each one rounded operation as in
// gemm_epilogue.c. The flags are constants after inlining: one unrolled body per combination.
static inline __attribute__((always_inline)) UKR_TARGET void UKR_CAT(UKR_NAME, _epilogue_full)(
    UKR_V acc[UKR_MR][UKR_NV], UKR_T *restrict c, long ldc, UKR_T alpha, UKR_T beta, const UKR_T *bias,
    const UKR_T *scale, const UKR_T *shift, const int has_bias, const int has_scale, const int relu)
{
    UKR_V va = UKR_BCAST(alpha), vb = UKR_BCAST(beta);
    UKR_V bv[UKR_NV], sv[UKR_NV], tv[UKR_NV];
#pragma clang loop unroll(full)
    for (int j = 0; j < UKR_NV; ++j) {
        bv[j] = has_bias ? UKR_LOAD(bias + j * UKR_VW) : UKR_ZERO();
        sv[j] = has_scale ? UKR_LOAD(scale + j * UKR_VW) : UKR_ZERO();
        tv[j] = has_scale ? UKR_LOAD(shift + j * UKR_VW) : UKR_ZERO();
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < UKR_MR; ++i)
#pragma clang loop unroll(full)
        for (int j = 0; j < UKR_NV; ++j) {
            UKR_T *cp = c + i * ldc + j * UKR_VW;
            UKR_V v = UKR_MUL(va, acc[i][j]);
            if (beta != 0) v = UKR_FMA(vb, UKR_LOAD(cp), v);
            if (has_bias) v = UKR_ADD(v, bv[j]);
            if (has_scale) v = UKR_ADD(UKR_MUL(v, sv[j]), tv[j]);
            if (relu) v = UKR_RELU(v);
            UKR_STORE(cp, v);
        }
}

// The tile's accumulators through the GEMM epilogue into C: in registers on a full tile; on an
// edge tile the stored values go through the same steps one by one.
static inline __attribute__((always_inline)) UKR_TARGET void UKR_CAT(UKR_NAME, _finish)(
    UKR_V acc[UKR_MR][UKR_NV], UKR_T *restrict c, long ldc, double alpha, double beta, long m, long n,
    const UKR_T *bias, const UKR_T *scale, const UKR_T *shift, int relu)
{
    if (m == UKR_MR && n == UKR_NR) {
        const UKR_T al = (UKR_T)alpha, be = (UKR_T)beta;
        switch ((bias != 0) * 4 + (scale != 0) * 2 + (relu != 0)) {
        case 1: UKR_CAT(UKR_NAME, _epilogue_full)(acc, c, ldc, al, be, bias, scale, shift, 0, 0, 1); return;
        case 2: UKR_CAT(UKR_NAME, _epilogue_full)(acc, c, ldc, al, be, bias, scale, shift, 0, 1, 0); return;
        case 3: UKR_CAT(UKR_NAME, _epilogue_full)(acc, c, ldc, al, be, bias, scale, shift, 0, 1, 1); return;
        case 4: UKR_CAT(UKR_NAME, _epilogue_full)(acc, c, ldc, al, be, bias, scale, shift, 1, 0, 0); return;
        case 5: UKR_CAT(UKR_NAME, _epilogue_full)(acc, c, ldc, al, be, bias, scale, shift, 1, 0, 1); return;
        case 6: UKR_CAT(UKR_NAME, _epilogue_full)(acc, c, ldc, al, be, bias, scale, shift, 1, 1, 0); return;
        case 7: UKR_CAT(UKR_NAME, _epilogue_full)(acc, c, ldc, al, be, bias, scale, shift, 1, 1, 1); return;
        default: UKR_CAT(UKR_NAME, _epilogue_full)(acc, c, ldc, al, be, bias, scale, shift, 0, 0, 0); return;
        }
    }
    UKR_CAT(UKR_NAME, _write)(acc, c, ldc, (UKR_T)alpha, (UKR_T)beta, m, n);
    // One loop per step, each behind its own test: a loop testing the pointers per element gets
    // if-converted into masked loads from NULL, which cost a microcode assist each.
    for (long i = 0; i < m; ++i) {
#pragma clang fp contract(off)
        UKR_T *row = c + i * ldc;
        if (bias)
            for (long j = 0; j < n; ++j) row[j] = row[j] + bias[j];
        if (scale)
            for (long j = 0; j < n; ++j) row[j] = row[j] * scale[j] + shift[j];
        if (relu)
            for (long j = 0; j < n; ++j) row[j] = row[j] <= 0 ? 0 : row[j];
    }
}

/// `_packed`, then the GEMM epilogue (`_finish`).
UKR_TARGET void UKR_CAT(UKR_NAME, _packed_epilogue)(long kc, const void *a, const void *b, void *c, long ldc,
                                                    double alpha, double beta, long m, long n, const void *bias,
                                                    const void *scale, const void *shift, int relu)
{
    UKR_V acc[UKR_MR][UKR_NV];
    UKR_CAT(UKR_NAME, _packed_product)(kc, a, b, (const UKR_T *)c, ldc, m, acc);
    UKR_CAT(UKR_NAME, _finish)(acc, (UKR_T *)c, ldc, alpha, beta, m, n, (const UKR_T *)bias, (const UKR_T *)scale,
                               (const UKR_T *)shift, relu);
}

/// `_strided` (A read in place), then the GEMM epilogue (`_finish`).
UKR_TARGET void UKR_CAT(UKR_NAME, _strided_epilogue)(long kc, const void *a, long rs_a, long cs_a, const void *b,
                                                     void *c, long ldc, double alpha, double beta, long m, long n,
                                                     const void *bias, const void *scale, const void *shift, int relu)
{
    UKR_V acc[UKR_MR][UKR_NV];
    UKR_CAT(UKR_NAME, _strided_product)(kc, a, rs_a, cs_a, b, (const UKR_T *)c, ldc, m, acc);
    UKR_CAT(UKR_NAME, _finish)(acc, (UKR_T *)c, ldc, alpha, beta, m, n, (const UKR_T *)bias, (const UKR_T *)scale,
                               (const UKR_T *)shift, relu);
}
#undef UKR_ADD
#undef UKR_RELU
#endif

#undef UKR_NV
#undef UKR_C_LEAD
#undef UKR_PREFETCH_C_STEP
#undef UKR_CAT2
#undef UKR_CAT
#undef UKR_NAME
#undef UKR_TARGET
#undef UKR_T
#undef UKR_V
#undef UKR_VW
#undef UKR_MR
#undef UKR_NR
#undef UKR_LOAD
#undef UKR_STORE
#undef UKR_FMA
#undef UKR_MUL
#undef UKR_BCAST
#undef UKR_ZERO
