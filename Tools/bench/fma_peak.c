// One core's float32 FMA peak: 16 independent AVX-512 (or 12 AVX2) fused multiply-add chains,
// enough to keep both FMA units busy through their latency. The yardstick for "the hardware's
// limit" in BENCHMARKS.md.
//   clang -O2 Tools/bench/fma_peak.c -o fma_peak && ./fma_peak   (the chains must stay in registers)
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

__attribute__((target("avx512f"))) static double avx512(long n) {
    __m512 a[16], b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 16; i++) a[i] = _mm512_set1_ps((float)i);
    double t = now();
    for (long k = 0; k < n; k++)
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    t = now() - t;
    float s = 0;
    for (int i = 0; i < 16; i++) s += _mm512_reduce_add_ps(a[i]);
    if (s == 1.2345f) printf(" ");  // keeps the chains live
    return n * 16.0 * 32 / t / 1e9;
}

__attribute__((target("avx2,fma"))) static double avx2(long n) {
    __m256 a[12], b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    double t = now();
    for (long k = 0; k < n; k++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    t = now() - t;
    float s = 0, l[8];
    for (int i = 0; i < 12; i++) {
        _mm256_storeu_ps(l, a[i]);
        for (int j = 0; j < 8; j++) s += l[j];
    }
    if (s == 1.2345f) printf(" ");
    return n * 12.0 * 16 / t / 1e9;
}

int main(void) {
    __builtin_cpu_init();
    for (int r = 0; r < 3; r++) {
        if (__builtin_cpu_supports("avx512f")) printf("avx512 %.1f GFLOP/s  ", avx512(200000000));
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) printf("avx2 %.1f GFLOP/s", avx2(200000000));
        printf("\n");
    }
    return 0;
}
