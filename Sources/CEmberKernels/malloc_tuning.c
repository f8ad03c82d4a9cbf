// glibc's mmap and trim thresholds (EmberStorage's MallocTuning.swift explains why).
#include "CEmberKernels.h"

#if defined(__GLIBC__)
#include <malloc.h>

int ember_set_malloc_thresholds(long mmap_threshold, long trim_threshold) {
    return mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, (int)trim_threshold) == 1;
}
#else
int ember_set_malloc_thresholds(long mmap_threshold, long trim_threshold) {
    (void)mmap_threshold;
    (void)trim_threshold;
    return 0;
}
#endif
