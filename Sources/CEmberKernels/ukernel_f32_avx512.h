// A float32 AVX-512F instance of ukernel_template.h: define UKR_NAME, UKR_MR and UKR_NR (a
// multiple of 16), then include this file. No include guard: each inclusion is one instance.
#define UKR_TARGET __attribute__((target("avx512f")))
#define UKR_T float
#define UKR_V __m512
#define UKR_VW 16
#define UKR_LOAD(p) _mm512_loadu_ps(p)
#define UKR_STORE(p, v) _mm512_storeu_ps(p, v)
#define UKR_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define UKR_MUL(a, b) _mm512_mul_ps(a, b)
#define UKR_BCAST(x) _mm512_set1_ps(x)
#define UKR_ZERO() _mm512_setzero_ps()
#define UKR_ADD(a, b) _mm512_add_ps(a, b)
// 0 where v <= 0 (ordered: NaN stays), else v.
#define UKR_RELU(v) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NLE_UQ), v)
#include "ukernel_template.h"
