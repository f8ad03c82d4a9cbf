// AVX2+FMA and AVX-512F micro-kernels. Each function carries its own target attribute, so this
// file compiles with the default (SSE2) flags; the dispatcher only hands a kernel out after
// checking the CPU (see cpu.c).
#include "gemm_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

// float32, AVX2: 6 x 16 tile, 12 ymm accumulators.
#define UKR_NAME ember_sgemm_avx2
#define UKR_MR 6
#define UKR_NR 16
#include "ukernel_f32_avx2.h"

// float32, AVX2: 4 x 16 tile, 8 ymm accumulators. Only its indirect kernel is used: with the
// 6-row one it tiles an even number of rows exactly (32 = 4 x 6 + 2 x 4), which a convolution's
// output channels usually are.
#define UKR_NAME ember_sgemm_avx2_m4
#define UKR_MR 4
#define UKR_NR 16
#include "ukernel_f32_avx2.h"

// float64, AVX2: 6 x 8 tile, 12 ymm accumulators.
#define UKR_NAME ember_dgemm_avx2
#define UKR_TARGET __attribute__((target("avx2,fma")))
#define UKR_T double
#define UKR_V __m256d
#define UKR_VW 4
#define UKR_MR 6
#define UKR_NR 8
#define UKR_LOAD(p) _mm256_loadu_pd(p)
#define UKR_STORE(p, v) _mm256_storeu_pd(p, v)
#define UKR_FMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define UKR_MUL(a, b) _mm256_mul_pd(a, b)
#define UKR_BCAST(x) _mm256_set1_pd(x)
#define UKR_ZERO() _mm256_setzero_pd()
#include "ukernel_template.h"

// float32, AVX-512F: 14 x 32 tile, 28 zmm accumulators.
#define UKR_NAME ember_sgemm_avx512
#define UKR_MR 14
#define UKR_NR 32
#include "ukernel_f32_avx512.h"

// float32, AVX-512F: 8 x 32 tile, 16 zmm accumulators. Only its indirect kernel is used: with the
// 14-row one it tiles a convolution's usual channel counts exactly (32 = 4 x 8, 64 = 4 x 14 + 8,
// 128 = 8 x 14 + 2 x 8), where 14-row strips alone would compute up to 10 zero rows.
#define UKR_NAME ember_sgemm_avx512_m8
#define UKR_MR 8
#define UKR_NR 32
#include "ukernel_f32_avx512.h"

// float64, AVX-512F: 14 x 16 tile, 28 zmm accumulators.
#define UKR_NAME ember_dgemm_avx512
#define UKR_TARGET __attribute__((target("avx512f")))
#define UKR_T double
#define UKR_V __m512d
#define UKR_VW 8
#define UKR_MR 14
#define UKR_NR 16
#define UKR_LOAD(p) _mm512_loadu_pd(p)
#define UKR_STORE(p, v) _mm512_storeu_pd(p, v)
#define UKR_FMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define UKR_MUL(a, b) _mm512_mul_pd(a, b)
#define UKR_BCAST(x) _mm512_set1_pd(x)
#define UKR_ZERO() _mm512_setzero_pd()
#include "ukernel_template.h"

#endif
