// A float32 AVX2+FMA instance of ukernel_template.h: define UKR_NAME, UKR_MR and UKR_NR (a
// multiple of 8), then include this file. No include guard: each inclusion is one instance.
#define UKR_TARGET __attribute__((target("avx2,fma")))
#define UKR_T float
#define UKR_V __m256
#define UKR_VW 8
#define UKR_LOAD(p) _mm256_loadu_ps(p)
#define UKR_STORE(p, v) _mm256_storeu_ps(p, v)
#define UKR_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define UKR_MUL(a, b) _mm256_mul_ps(a, b)
#define UKR_BCAST(x) _mm256_set1_ps(x)
#define UKR_ZERO() _mm256_setzero_ps()
#define UKR_ADD(a, b) _mm256_add_ps(a, b)
// 0 where v <= 0 (ordered: NaN stays), else v.
#define UKR_RELU(v) _mm256_andnot_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LE_OQ), v)
#include "ukernel_template.h"
