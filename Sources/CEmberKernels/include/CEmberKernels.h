#ifndef CEMBER_KERNELS_H
#define CEMBER_KERNELS_H

/// Which SIMD path the CPU supports: 0 portable, 1 AVX2+FMA, 2 AVX-512F, 3 NEON.
int ember_cpu_simd_level(void);

#endif
