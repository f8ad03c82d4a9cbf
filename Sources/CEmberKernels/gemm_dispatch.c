// The table of micro-kernels and their block sizes, one entry per (dtype, path).
//
// Block sizes: a B strip (kc x nr) stays in L1 while A strips (mr x kc) stream from an A block
// (mc x kc) held in L2; a B panel (kc x nc) lives in L3. The AVX2 float32 sizes were tuned on an
// AMD Zen 3 core (32 KiB L1d, 512 KiB L2): kc = 512 beat 256 by a few percent (fewer passes over
// C); mc from 72 to 144 made no difference for large products, and mc = 144 lets products up to
// 144 rows skip packing A (n = 112..144: 89-93 instead of 65-86 GFLOP/s). The AVX-512 float32
// sizes were checked on an Intel Xeon (family 6 model 207: 48 KiB L1d, 2 MiB L2): deeper or
// shallower panels and larger A blocks were no better (BENCHMARKS.md, "On an AVX-512 machine").
// There, reading a row-major A in place (no packing) beat packing it for C up to 768 columns wide
// (the packing pass is amortised over too few tiles); on the AVX2 kernels it was slower, so they
// always pack (BENCHMARKS.md, "Thirteenth session").
// The others follow the same rule and are not tuned (no arm64 machine was at hand).
#include "gemm_kernels.h"

#define EMBER_UKERNEL(name, MR, NR, VW, KC, MC, NC) \
    (ember_gemm_ukernel) { MR, NR, VW, KC, MC, NC, name##_packed, name##_strided, name##_indirect, 0, 0, name##_rows }

static const ember_gemm_ukernel ember_missing = {1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};

ember_gemm_ukernel ember_sgemm_ukernel(int path) {
    switch (path) {
    case EMBER_PATH_PORTABLE: return EMBER_UKERNEL(ember_sgemm_portable, 4, 8, 1, 256, 128, 4096);
#if defined(__x86_64__)
    case EMBER_PATH_AVX2: {
        ember_gemm_ukernel k = EMBER_UKERNEL(ember_sgemm_avx2, 6, 16, 8, 512, 144, 4096);
        k.mr_short = 4;
        k.indirect_short = ember_sgemm_avx2_m4_indirect;
        k.packed_epilogue = ember_sgemm_avx2_packed_epilogue;
        k.strided_epilogue = ember_sgemm_avx2_strided_epilogue;
        return k;
    }
    case EMBER_PATH_AVX512: {
        ember_gemm_ukernel k = EMBER_UKERNEL(ember_sgemm_avx512, 14, 32, 16, 256, 112, 4096);
        k.mr_short = 8;
        k.indirect_short = ember_sgemm_avx512_m8_indirect;
        k.packed_epilogue = ember_sgemm_avx512_packed_epilogue;
        k.strided_epilogue = ember_sgemm_avx512_strided_epilogue;
        k.a_in_place_n = 768;
        return k;
    }
#endif
#if defined(__aarch64__)
    case EMBER_PATH_NEON: return EMBER_UKERNEL(ember_sgemm_neon, 8, 12, 4, 256, 128, 4080);
#endif
    default: return ember_missing;
    }
}

ember_gemm_ukernel ember_dgemm_ukernel(int path) {
    switch (path) {
    case EMBER_PATH_PORTABLE: return EMBER_UKERNEL(ember_dgemm_portable, 4, 4, 1, 256, 64, 2048);
#if defined(__x86_64__)
    case EMBER_PATH_AVX2: return EMBER_UKERNEL(ember_dgemm_avx2, 6, 8, 4, 256, 96, 2048);
    case EMBER_PATH_AVX512: return EMBER_UKERNEL(ember_dgemm_avx512, 14, 16, 8, 256, 84, 2048);
#endif
#if defined(__aarch64__)
    case EMBER_PATH_NEON: return EMBER_UKERNEL(ember_dgemm_neon, 6, 8, 2, 256, 72, 2048);
#endif
    default: return ember_missing;
    }
}
