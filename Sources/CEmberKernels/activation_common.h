// Macros shared by the activation kernels (activation_x86.c, activation_avx512.c). Private to
// CEmberKernels (not in include/, so not part of the module map).
#ifndef EMBER_ACTIVATION_COMMON_H
#define EMBER_ACTIVATION_COMMON_H
#include <stdint.h>

// Swift's float literals in `expVector`/`tanhVector`, as the bit patterns Swift gives them.
#define EMBER_F32(bits) (__extension__({ union { uint32_t u; float f; } e_ = {bits}; e_.f; }))

// Each function works on K independent vectors in lock step (K a constant after inlining): every
// step is written for all K before the next, so the long dependent chains of the polynomials
// (about 90 cycles for tanh) overlap in program order instead of relying on the out-of-order
// window alone. Lanes never mix, so K changes no value.
#define FOR_K for (int k = 0; k < K; ++k)
#define KMAX 8

#endif
