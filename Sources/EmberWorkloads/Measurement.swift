import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Monotonic time in nanoseconds.
@inline(__always)
func nowNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Keeps a value alive and opaque to the optimizer, so a benchmarked result is never discarded.
@inline(never)
func consume<T>(_ value: T) {
    withExtendedLifetime(value) {}
}

/// Per-iteration times of one workload: one entry per timed sample of `iterations` calls.
struct Timing: Codable, Equatable {
    var iterations: Int
    var seconds: [Double]

    /// The median per-iteration time.
    var median: Double { quantile(0.5) }

    /// Half the interquartile range relative to the median: the `±` shown in tables.
    var spread: Double {
        let m = median
        return m > 0 ? (quantile(0.75) - quantile(0.25)) / 2 / m : 0
    }

    /// Linear-interpolated quantile `q` of the samples.
    func quantile(_ q: Double) -> Double {
        let s = seconds.sorted()
        guard !s.isEmpty else { return .nan }
        let pos = q * Double(s.count - 1)
        let lo = Int(pos), hi = Swift.min(lo + 1, s.count - 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - Double(lo))
    }
}

/// Times `body` the same way `Tools/bench/peer_protocol.py` does: a warm-up of at least three
/// calls (about a tenth of the budget), then samples of several calls, each about
/// `sampleSeconds` long, until `budget` seconds are used (at least `minSamples`, at most
/// `maxSamples` samples).
func measure(budget: Double, sampleSeconds: Double = 0.02, minSamples: Int = 5, maxSamples: Int = 40,
             _ body: () -> Void) -> Timing {
    let start = nowNanoseconds()
    var calls = 0
    while calls < 3 || (Double(nowNanoseconds() - start) * 1e-9 < budget * 0.1 && calls < 1000) {
        body()
        calls += 1
    }
    let one = Double(nowNanoseconds() - start) * 1e-9 / Double(calls)
    let iterations = Swift.max(1, Int(sampleSeconds / Swift.max(one, 1e-9)))
    var seconds: [Double] = []
    let begin = nowNanoseconds()
    while seconds.count < maxSamples
        && (seconds.count < minSamples || Double(nowNanoseconds() - begin) * 1e-9 < budget)
    {
        let t0 = nowNanoseconds()
        for _ in 0..<iterations { body() }
        seconds.append(Double(nowNanoseconds() - t0) * 1e-9 / Double(iterations))
    }
    return Timing(iterations: iterations, seconds: seconds)
}

/// Peak resident set size of this process in bytes (`VmHWM` in `/proc/self/status`), or
/// `getrusage`'s `ru_maxrss` where `/proc` is missing.
func peakResidentBytes() -> Int {
    if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
            if let kb { return kb * 1024 }
        }
    }
    var usage = rusage()
    #if canImport(Glibc)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    #if canImport(Darwin)
    return Int(usage.ru_maxrss)  // bytes on Darwin
    #else
    return Int(usage.ru_maxrss) * 1024  // kilobytes on Linux
    #endif
}
