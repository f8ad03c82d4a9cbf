// The GEMM epilogue: what a product does to a block of C once the block is final, while it is
// still in cache (a bias, an eval-mode BatchNorm's per-column affine map, ReLU), instead of
// separate passes over the whole output.
//
// One body, compiled three times: for AVX-512F and AVX2 through target attributes (clang
// vectorizes the column loop at that width) and for the baseline target. Contraction is off, so
// every step is one rounded operation, as the separate passes compute it, on every path.
#pragma clang fp contract(off)
#include "include/CEmberKernels.h"

// One row; the flags are constants after inlining, so each combination is its own loop. One
// vector per iteration: a tile row is 32 floats (AVX-512) or 16 (AVX2), which a loop unrolled
// four times would leave to its narrower remainder loop.
#define EMBER_EPILOGUE_ROW(T)                                                                   \
    static inline __attribute__((always_inline)) void T##_epilogue_row(                         \
        T *row, long n, const T *bias, const T *scale, const T *shift, int has_bias,            \
        int has_scale, int relu) {                                                              \
        _Pragma("clang loop interleave_count(1)")                                               \
        for (long j = 0; j < n; ++j) {                                                          \
            T v = row[j];                                                                       \
            if (has_bias) v = v + bias[j];                                                      \
            if (has_scale) v = v * scale[j] + shift[j];                                         \
            if (relu) v = v <= 0 ? 0 : v;                                                       \
            row[j] = v;                                                                         \
        }                                                                                       \
    }
EMBER_EPILOGUE_ROW(float)
EMBER_EPILOGUE_ROW(double)

#define EMBER_EPILOGUE_CASE(T, B, S, R)                                                         \
    case (B) * 4 + (S) * 2 + (R):                                                               \
        for (long i = 0; i < m; ++i) T##_epilogue_row(c + i * ldc, n, bias, scale, shift, B, S, R); \
        return;

#define EMBER_EPILOGUE_FN(name, T, attributes)                                                  \
    attributes static void name(T *c, long ldc, long m, long n, const T *bias, const T *scale,  \
                                const T *shift, int relu) {                                     \
        switch ((bias != 0) * 4 + (scale != 0) * 2 + (relu != 0)) {                             \
        EMBER_EPILOGUE_CASE(T, 0, 0, 1)                                                         \
        EMBER_EPILOGUE_CASE(T, 0, 1, 0)                                                         \
        EMBER_EPILOGUE_CASE(T, 0, 1, 1)                                                         \
        EMBER_EPILOGUE_CASE(T, 1, 0, 0)                                                         \
        EMBER_EPILOGUE_CASE(T, 1, 0, 1)                                                         \
        EMBER_EPILOGUE_CASE(T, 1, 1, 0)                                                         \
        EMBER_EPILOGUE_CASE(T, 1, 1, 1)                                                         \
        default: return;                                                                        \
        }                                                                                       \
    }

EMBER_EPILOGUE_FN(sepilogue_portable, float, )
EMBER_EPILOGUE_FN(depilogue_portable, double, )
#if defined(__x86_64__)
EMBER_EPILOGUE_FN(sepilogue_avx2, float, __attribute__((target("avx2"))))
EMBER_EPILOGUE_FN(depilogue_avx2, double, __attribute__((target("avx2"))))
EMBER_EPILOGUE_FN(sepilogue_avx512, float, __attribute__((target("avx512f"))))
EMBER_EPILOGUE_FN(depilogue_avx512, double, __attribute__((target("avx512f"))))
#endif

void ember_sgemm_epilogue(int path, float *c, long ldc, long m, long n, const float *bias, const float *scale,
                          const float *shift, int relu) {
    switch (path) {
#if defined(__x86_64__)
    case EMBER_PATH_AVX512: sepilogue_avx512(c, ldc, m, n, bias, scale, shift, relu); return;
    case EMBER_PATH_AVX2: sepilogue_avx2(c, ldc, m, n, bias, scale, shift, relu); return;
#endif
    default: sepilogue_portable(c, ldc, m, n, bias, scale, shift, relu); return;
    }
}

void ember_dgemm_epilogue(int path, double *c, long ldc, long m, long n, const double *bias, const double *scale,
                          const double *shift, int relu) {
    switch (path) {
#if defined(__x86_64__)
    case EMBER_PATH_AVX512: depilogue_avx512(c, ldc, m, n, bias, scale, shift, relu); return;
    case EMBER_PATH_AVX2: depilogue_avx2(c, ldc, m, n, bias, scale, shift, relu); return;
#endif
    default: depilogue_portable(c, ldc, m, n, bias, scale, shift, relu); return;
    }
}

// The channel epilogue of a convolution's output (one sample, `[channels, plane]`): the same
// steps as the GEMM epilogue with the scale and shift per row (channel), then a residual added.
// Each flag combination is its own loop after inlining.
static inline __attribute__((always_inline)) void channel_epilogue_plane(
    const float *x, float *y, long plane, float scale, float shift, const float *residual, int has_scale,
    int has_residual, int relu) {
    for (long j = 0; j < plane; ++j) {
        float v = x[j];
        if (has_scale) v = v * scale + shift;
        if (has_residual) v = v + residual[j];
        if (relu) v = v <= 0 ? 0 : v;
        y[j] = v;
    }
}

#define EMBER_CHANNEL_CASE(S, R, U)                                                              \
    case (S) * 4 + (R) * 2 + (U):                                                               \
        for (long i = 0; i < channels; ++i)                                                     \
            channel_epilogue_plane(x + i * plane, y + i * plane, plane, (S) ? scale[i] : 1,     \
                                   (S) ? shift[i] : 0, (R) ? residual + i * plane : 0, S, R, U); \
        return;

#define EMBER_CHANNEL_FN(name, attributes)                                                      \
    attributes static void name(const float *x, float *y, long channels, long plane, const float *scale, \
                                const float *shift, const float *residual, int relu) {          \
        switch ((scale != 0) * 4 + (residual != 0) * 2 + (relu != 0)) {                         \
        EMBER_CHANNEL_CASE(0, 0, 0)                                                             \
        EMBER_CHANNEL_CASE(0, 0, 1)                                                             \
        EMBER_CHANNEL_CASE(0, 1, 0)                                                             \
        EMBER_CHANNEL_CASE(0, 1, 1)                                                             \
        EMBER_CHANNEL_CASE(1, 0, 0)                                                             \
        EMBER_CHANNEL_CASE(1, 0, 1)                                                             \
        EMBER_CHANNEL_CASE(1, 1, 0)                                                             \
        EMBER_CHANNEL_CASE(1, 1, 1)                                                             \
        }                                                                                       \
    }

EMBER_CHANNEL_FN(channel_epilogue_portable, )
#if defined(__x86_64__)
EMBER_CHANNEL_FN(channel_epilogue_avx2, __attribute__((target("avx2"))))
EMBER_CHANNEL_FN(channel_epilogue_avx512, __attribute__((target("avx512f"))))
#endif

void ember_channel_epilogue_f32(int path, const float *x, float *y, long channels, long plane, const float *scale,
                                const float *shift, const float *residual, int relu) {
    switch (path) {
#if defined(__x86_64__)
    case EMBER_PATH_AVX512: channel_epilogue_avx512(x, y, channels, plane, scale, shift, residual, relu); return;
    case EMBER_PATH_AVX2: channel_epilogue_avx2(x, y, channels, plane, scale, shift, residual, relu); return;
#endif
    default: channel_epilogue_portable(x, y, channels, plane, scale, shift, residual, relu); return;
    }
}

// ReLU's backward: the gradient where the output is above 0 (or NaN), else 0.
static inline __attribute__((always_inline)) void relu_backward_body(long n, const float *g, const float *y, float *out) {
    for (long i = 0; i < n; ++i) out[i] = y[i] <= 0 ? 0 : g[i];
}
static void relu_backward_portable(long n, const float *g, const float *y, float *out) { relu_backward_body(n, g, y, out); }
#if defined(__x86_64__)
__attribute__((target("avx2"))) static void relu_backward_avx2(long n, const float *g, const float *y, float *out) {
    relu_backward_body(n, g, y, out);
}
__attribute__((target("avx512f"))) static void relu_backward_avx512(long n, const float *g, const float *y, float *out) {
    relu_backward_body(n, g, y, out);
}
#endif

void ember_relu_backward_f32(int path, long n, const float *g, const float *y, float *out) {
    switch (path) {
#if defined(__x86_64__)
    case EMBER_PATH_AVX512: relu_backward_avx512(n, g, y, out); return;
    case EMBER_PATH_AVX2: relu_backward_avx2(n, g, y, out); return;
#endif
    default: relu_backward_portable(n, g, y, out); return;
    }
}
