// NEON micro-kernels for arm64 (NEON is part of the baseline there; no target attribute needed).
#include "gemm_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

// float32: 8 x 12 tile, 24 q-register accumulators.
#define UKR_NAME ember_sgemm_neon
#define UKR_TARGET
#define UKR_T float
#define UKR_V float32x4_t
#define UKR_VW 4
#define UKR_MR 8
#define UKR_NR 12
#define UKR_LOAD(p) vld1q_f32(p)
#define UKR_STORE(p, v) vst1q_f32(p, v)
#define UKR_FMA(a, b, c) vfmaq_f32(c, a, b)
#define UKR_MUL(a, b) vmulq_f32(a, b)
#define UKR_BCAST(x) vdupq_n_f32(x)
#define UKR_ZERO() vdupq_n_f32(0)
#include "ukernel_template.h"

// float64: 6 x 8 tile, 24 q-register accumulators.
#define UKR_NAME ember_dgemm_neon
#define UKR_TARGET
#define UKR_T double
#define UKR_V float64x2_t
#define UKR_VW 2
#define UKR_MR 6
#define UKR_NR 8
#define UKR_LOAD(p) vld1q_f64(p)
#define UKR_STORE(p, v) vst1q_f64(p, v)
#define UKR_FMA(a, b, c) vfmaq_f64(c, a, b)
#define UKR_MUL(a, b) vmulq_f64(a, b)
#define UKR_BCAST(x) vdupq_n_f64(x)
#define UKR_ZERO() vdupq_n_f64(0)
#include "ukernel_template.h"

#endif
