// Portable micro-kernels in plain C: the fallback for any CPU, and the reference the SIMD paths
// are tested against. Scalar accumulators; the compiler may vectorize them for the baseline ISA.
#include "gemm_kernels.h"

// float32: 4 x 8 tile.
#define UKR_NAME ember_sgemm_portable
#define UKR_TARGET
#define UKR_T float
#define UKR_V float
#define UKR_VW 1
#define UKR_MR 4
#define UKR_NR 8
#define UKR_LOAD(p) (*(p))
#define UKR_STORE(p, v) (*(p) = (v))
#define UKR_FMA(a, b, c) ((a) * (b) + (c))
#define UKR_MUL(a, b) ((a) * (b))
#define UKR_BCAST(x) (x)
#define UKR_ZERO() 0.0f
#include "ukernel_template.h"

// float64: 4 x 4 tile.
#define UKR_NAME ember_dgemm_portable
#define UKR_TARGET
#define UKR_T double
#define UKR_V double
#define UKR_VW 1
#define UKR_MR 4
#define UKR_NR 4
#define UKR_LOAD(p) (*(p))
#define UKR_STORE(p, v) (*(p) = (v))
#define UKR_FMA(a, b, c) ((a) * (b) + (c))
#define UKR_MUL(a, b) ((a) * (b))
#define UKR_BCAST(x) (x)
#define UKR_ZERO() 0.0
#include "ukernel_template.h"
