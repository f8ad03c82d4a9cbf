#include "CEmberKernels.h"

int ember_cpu_simd_level(void) {
#if defined(__x86_64__) || defined(__i386__)
    if (ember_cpu_supports_path(EMBER_PATH_AVX512)) return EMBER_PATH_AVX512;
    if (ember_cpu_supports_path(EMBER_PATH_AVX2)) return EMBER_PATH_AVX2;
    return EMBER_PATH_PORTABLE;
#elif defined(__aarch64__)
    return EMBER_PATH_NEON;
#else
    return EMBER_PATH_PORTABLE;
#endif
}

int ember_cpu_supports_path(int path) {
    switch (path) {
    case EMBER_PATH_PORTABLE:
        return 1;
#if defined(__x86_64__)
    // __builtin_cpu_supports also checks that the OS saves the wider registers (XCR0).
    case EMBER_PATH_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case EMBER_PATH_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") != 0;
#endif
#if defined(__aarch64__)
    case EMBER_PATH_NEON:
        return 1;
#endif
    default:
        return 0;
    }
}
