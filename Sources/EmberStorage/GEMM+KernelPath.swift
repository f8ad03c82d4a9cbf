import CEmberKernels
import Foundation

/// Which micro-kernel family a matrix multiply runs on.
///
/// The public `GEMM` entry points use ``best``, chosen once per process. Tests pass each
/// ``supported`` path explicitly to check that every SIMD kernel agrees with the portable one.
package enum GEMMKernelPath: Int, CaseIterable, Sendable, CustomStringConvertible {
    /// Plain C, any CPU.
    case portable = 0
    /// x86-64 with AVX2 and FMA.
    case avx2 = 1
    /// x86-64 with AVX-512F.
    case avx512 = 2
    /// arm64 NEON.
    case neon = 3

    /// The path the public entry points use: the fastest this CPU supports. The environment
    /// variable `EMBER_DISABLE_AVX512=1` keeps an AVX-512 CPU on the AVX2 kernels (for A/B
    /// measurements, or if a new AVX-512 part misbehaves). The AVX-512 kernels have run the whole
    /// test suite as the dispatched path on an Intel Xeon (family 6, model 207, 2026-12-07); until
    /// then they were opt-in.
    package static let best = dispatched(fastest: GEMMKernelPath(rawValue: Int(ember_cpu_simd_level())) ?? .portable,
                                         avx512OptedOut: avx512OptedOut)

    /// The rule behind ``best``: the fastest path, except AVX-512 when opted out.
    package static func dispatched(fastest: GEMMKernelPath, avx512OptedOut: Bool) -> GEMMKernelPath {
        fastest == .avx512 && avx512OptedOut ? .avx2 : fastest
    }

    /// Whether `EMBER_DISABLE_AVX512=1` is set.
    package static var avx512OptedOut: Bool { ProcessInfo.processInfo.environment["EMBER_DISABLE_AVX512"] == "1" }

    /// Every path this CPU can run, portable first.
    package static var supported: [GEMMKernelPath] { allCases.filter(\.isSupported) }

    /// Whether this CPU can run the path and it is compiled in for this architecture.
    package var isSupported: Bool { ember_cpu_supports_path(Int32(rawValue)) != 0 }

    package var description: String {
        switch self {
        case .portable: "portable"
        case .avx2: "avx2"
        case .avx512: "avx512"
        case .neon: "neon"
        }
    }
}

extension GEMM {
    /// Rows of C one micro-kernel call computes on the dispatched path (14 for float32 on AVX-512,
    /// 6 on AVX2): a caller that picks its own row blocks wastes nothing with a multiple of it.
    package static func tileRows(double: Bool) -> Int {
        double ? Double.microKernel(for: GEMMKernelPath.best).mr : Float.microKernel(for: GEMMKernelPath.best).mr
    }
}

/// A scalar type with GEMM micro-kernels: `Float` and `Double`.
protocol GEMMScalar: BinaryFloatingPoint {
    /// The C micro-kernel table entry for `path`.
    static func microKernel(for path: GEMMKernelPath) -> MicroKernel
}

extension Float: GEMMScalar {
    static func microKernel(for path: GEMMKernelPath) -> MicroKernel {
        MicroKernel(ember_sgemm_ukernel(Int32(path.rawValue)), path: path)
    }
}

extension Double: GEMMScalar {
    static func microKernel(for path: GEMMKernelPath) -> MicroKernel {
        MicroKernel(ember_dgemm_ukernel(Int32(path.rawValue)), path: path)
    }
}

/// One C micro-kernel (an `mr x nr` tile of C per call) with the block sizes it is tuned for.
struct MicroKernel {
    /// Tile rows and columns, and the lanes of one vector (`nr` is a multiple of `vw`).
    let mr: Int, nr: Int, vw: Int
    /// Depth of a packed panel, rows of a packed A block (a multiple of `mr`), columns of a packed
    /// B panel (a multiple of `nr`).
    let kc: Int, mc: Int, nc: Int
    /// Tile kernel reading a packed A strip.
    let packed: ember_gemm_packed_fn
    /// Tile kernel reading A in place through its strides.
    let strided: ember_gemm_strided_fn
    /// Tile kernel reading a packed A strip and rows of B at offsets from a base.
    let indirect: ember_gemm_indirect_fn
    /// The same with `mrShort` rows, or `nil`.
    let mrShort: Int
    let indirectShort: ember_gemm_indirect_fn?
    /// Tile kernel reading rows of A at offsets from a base and a packed B strip.
    let rows: ember_gemm_rows_fn
    /// `packed` with the GEMM epilogue applied in registers (float32 AVX2 and AVX-512), or `nil`.
    let packedEpilogue: ember_gemm_packed_epilogue_fn?
    /// `strided` with the GEMM epilogue applied in registers, or `nil` (where `packedEpilogue` is).
    let stridedEpilogue: ember_gemm_strided_epilogue_fn?
    /// Widest block of C for which a row-major A spanning several blocks is read in place (0: never).
    let aInPlaceWidth: Int

    init(_ entry: ember_gemm_ukernel, path: GEMMKernelPath) {
        guard let packed = entry.packed, let strided = entry.strided, let indirect = entry.indirect,
              let rows = entry.rows else {
            preconditionFailure("GEMM: kernel path \(path) is not compiled in for this architecture")
        }
        precondition(path.isSupported, "GEMM: this CPU does not support kernel path \(path)")
        (mr, nr, vw, kc, mc, nc) = (entry.mr, entry.nr, entry.vw, entry.kc, entry.mc, entry.nc)
        self.packed = packed
        self.strided = strided
        self.indirect = indirect
        (mrShort, indirectShort) = (entry.mr_short, entry.indirect_short)
        self.rows = rows
        packedEpilogue = entry.packed_epilogue
        stridedEpilogue = entry.strided_epilogue
        aInPlaceWidth = entry.a_in_place_n
    }
}
