import CEmberKernels
#if canImport(Glibc)
import Glibc
#endif

/// glibc's malloc settings for tensor-sized blocks, applied once, at the first large allocation.
///
/// By default glibc serves blocks above its mmap threshold (128 KiB, raised dynamically up to
/// 32 MiB) with fresh `mmap`s and returns free memory at the top of the heap to the system above
/// its trim threshold. A training step frees and reallocates the same 0.1-10 MB activations and
/// gradients every step, so each step would pay page faults and the kernel's zero-filling of every
/// page again (BENCHMARKS.md, "Data-parallel training", measures it). Raising the mmap threshold to
/// 32 MiB (glibc's largest on 64-bit) and the trim threshold to 256 MiB lets freed blocks be
/// reused from the heap, as the caching allocators of other frameworks do (PyTorch's CPU users are
/// told to preload jemalloc or tcmalloc for the same reason). The price: up to 256 MiB of freed
/// memory may stay with the process.
///
/// It is skipped when `EMBER_MALLOC_TUNING=0`, when `GLIBC_TUNABLES` already sets malloc
/// parameters (the user's choice wins), and off glibc (other allocators were not measured).
@usableFromInline
enum MallocTuning {
    /// Allocations of at least this many bytes apply the settings first.
    @usableFromInline static let largeBlockBytes = 128 << 10

    /// Applies the settings the first time it is called.
    @usableFromInline @inline(never) static func ensureApplied() {
        if !applied { return }  // reading `applied` runs its initializer once
    }

    /// Whether the settings were applied (evaluated once).
    static let applied: Bool = {
        #if canImport(Glibc)
        if let flag = getenv("EMBER_MALLOC_TUNING"), String(cString: flag) == "0" { return false }
        if let tunables = getenv("GLIBC_TUNABLES"), String(cString: tunables).contains("glibc.malloc.") { return false }
        return ember_set_malloc_thresholds(32 << 20, 256 << 20) == 1
        #else
        return false
        #endif
    }()
}
