// Private declarations of the micro-kernel instances (see ukernel_template.h for their contract).
#ifndef CEMBER_GEMM_KERNELS_H
#define CEMBER_GEMM_KERNELS_H

#include "include/CEmberKernels.h"

#define EMBER_DECLARE_UKERNEL(name)                                                              \
    void name##_packed(long kc, const void *a, const void *b, void *c, long ldc, double alpha,   \
                       double beta, long m, long n);                                              \
    void name##_strided(long kc, const void *a, long rs_a, long cs_a, const void *b, void *c,     \
                        long ldc, double alpha, double beta, long m, long n);             \
    void name##_indirect(long kc, const void *a, const void *b, const long *b_off, long b_step,  \
                         void *c, long ldc, double alpha, double beta, long m, long n);           \
    void name##_rows(long kc, const void *a, const long *a_off, const void *b, void *c, long ldc, \
                     double alpha, double beta, long m, long n);

#define EMBER_DECLARE_PACKED_EPILOGUE(name)                                                      \
    void name##_packed_epilogue(long kc, const void *a, const void *b, void *c, long ldc, double alpha, \
                                double beta, long m, long n, const void *bias, const void *scale,   \
                                const void *shift, int relu);                                   \
    void name##_strided_epilogue(long kc, const void *a, long rs_a, long cs_a, const void *b, void *c, \
                                 long ldc, double alpha, double beta, long m, long n, const void *bias, \
                                 const void *scale, const void *shift, int relu);

EMBER_DECLARE_UKERNEL(ember_sgemm_portable)
EMBER_DECLARE_UKERNEL(ember_dgemm_portable)
#if defined(__x86_64__)
EMBER_DECLARE_UKERNEL(ember_sgemm_avx2)
EMBER_DECLARE_UKERNEL(ember_sgemm_avx2_m4)
EMBER_DECLARE_UKERNEL(ember_dgemm_avx2)
EMBER_DECLARE_UKERNEL(ember_sgemm_avx512)
EMBER_DECLARE_UKERNEL(ember_sgemm_avx512_m8)
EMBER_DECLARE_UKERNEL(ember_dgemm_avx512)
EMBER_DECLARE_PACKED_EPILOGUE(ember_sgemm_avx2)
EMBER_DECLARE_PACKED_EPILOGUE(ember_sgemm_avx512)
#endif
#if defined(__aarch64__)
EMBER_DECLARE_UKERNEL(ember_sgemm_neon)
EMBER_DECLARE_UKERNEL(ember_dgemm_neon)
#endif

#endif
