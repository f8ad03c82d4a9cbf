// ember-bench: Ember's sgemm throughput and per-op overhead, side by side with PyTorch.
//
// Run: swift run -c release ember-bench
// The PyTorch figures come from Tools/bench/torch_bench.py, run in the same process tree when
// `python3 -c 'import torch'` works; otherwise only Ember's figures are printed.

import Ember
import Foundation

// `ember-bench --profile add:N` (or `matmul:N`; `add1m:N` for 2^20 floats) runs one per-op
// figure's operation N times and exits, untimed, for `valgrind --tool=callgrind` (instructions per
// op). `--profile ops:N[:name]` prints milliseconds per call of common ops on 2^20 floats
// (compare `python3 Tools/bench/torch_ops.py N`); `--profile mlpgemm:N` the GFLOP/s of the MLP
// training step's five products alone.
if let i = CommandLine.arguments.firstIndex(of: "--profile"), i + 1 < CommandLine.arguments.count {
    let parts = CommandLine.arguments[i + 1].split(separator: ":")
    guard let count = parts.count > 1 ? Int(parts[1]) : 100_000, count > 0 else {
        FileHandle.standardError.write(Data("ember-bench: --profile KEY:N needs a positive count N, got '\(parts[1])'\n".utf8))
        exit(1)
    }
    let x = Tensor(randomFloats(20, seed: 3), shape: [20]), y = Tensor(randomFloats(20, seed: 4), shape: [20])
    let a = Tensor(randomFloats(320, seed: 5), shape: [32, 10]), w = Tensor(randomFloats(200, seed: 6), shape: [10, 20])
    switch parts.first {
    case "add": for _ in 0..<count { _ = x + y }
    case "matmul": for _ in 0..<count { _ = a.matmul(w) }
    case "add1m":
        let u = Tensor.ones([1 << 20]), v = Tensor.ones([1 << 20])
        for _ in 0..<count { _ = u + v }
    case "ops":
        // Milliseconds per call of common ops on 2^20 floats ([1024, 1024]), one thread: finds
        // kernels that fall off their fast paths (compare: Tools/bench/torch_ops.py).
        let u = Tensor.uniform([1024, 1024], low: 0.5, high: 2), v = Tensor.uniform([1024, 1024], low: 0.5, high: 2)
        let row = Tensor.uniform([1024], low: 0.5, high: 2)
        let ops: [(String, () -> Tensor)] = [
            ("add", { u + v }), ("mul", { u * v }), ("div", { u / v }), ("add_scalar", { u + 1.5 }),
            ("mul_scalar", { u * 1.5 }), ("add_row_broadcast", { u + row }), ("neg", { -u }), ("abs", { u.abs() }),
            ("exp", { u.exp() }), ("log", { u.log() }), ("sqrt", { u.sqrt() }), ("tanh", { u.tanh() }),
            ("sigmoid", { u.sigmoid() }), ("relu", { u.relu() }), ("gelu", { u.gelu() }), ("silu", { u.silu() }),
            ("pow2", { u.pow(2) }), ("clamp", { u.clamp(min: 0.8, max: 1.5) }), ("maximum", { u.maximum(v) }),
            ("gt", { u .> v }), ("sum", { u.sum() }), ("sum_axis0", { u.sum(axis: 0) }),
            ("sum_axis1", { u.sum(axis: 1) }), ("mean", { u.mean() }), ("max", { u.max() }),
            ("softmax", { u.softmax(axis: 1) }), ("log_softmax", { u.logSoftmax(axis: 1) }),
            ("transpose_contiguous", { u.transposed(0, 1).contiguous() }),
        ]
        Threading.withThreads(1) {
            let only = parts.count > 2 ? String(parts[2]) : nil
            for (name, op) in ops where only == nil || only == name {
                _ = op()
                let start = now()
                for _ in 0..<count { _ = op() }
                print(name, String(format: "%.3f", (now() - start) / Double(count) * 1e3))
            }
        }
    case "mlpgemm":
        // GFLOP/s of the MLP training step's products (batch 128), one thread: forward x W^T,
        // weight gradients g^T x (depth 128), input gradients g W.
        let x = Tensor.uniform([128, 784]), h1 = Tensor.uniform([128, 512]), h2 = Tensor.uniform([128, 256])
        let w1 = Tensor.uniform([512, 784]), w2 = Tensor.uniform([256, 512])
        let cases: [(String, Tensor, Tensor)] = [
            ("fwd 128x784 @ (512x784)^T", x, w1.transposed(0, 1)), ("fwd 128x512 @ (256x512)^T", h1, w2.transposed(0, 1)),
            ("dW (128x512)^T @ 128x784", h1.transposed(0, 1), x), ("dW (128x256)^T @ 128x512", h2.transposed(0, 1), h1),
            ("dX 128x256 @ 256x512", h2, w2),
        ]
        Threading.withThreads(1) {
            for (name, a, b) in cases {
                _ = withNoGrad { a.matmul(b) }
                let start = now()
                for _ in 0..<count { _ = withNoGrad { a.matmul(b) } }
                let seconds = (now() - start) / Double(count)
                let flops = 2.0 * Double(a.shape[0] * a.shape[1] * b.shape[1])
                print(name, String(format: "%.1f GFLOP/s", flops / seconds / 1e9))
            }
        }
    default:
        FileHandle.standardError.write(Data("ember-bench: --profile takes add:N, add1m:N, ops:N or matmul:N\n".utf8))
        exit(1)
    }
    exit(0)
}

let sizes = [64, 128, 256, 512, 1024, 2048]
let threadCounts = [1, 2]
/// Timed samples per figure (the median is reported) and the least duration of one sample.
let samples = 7
let minSampleSeconds = 0.05

/// Seconds since an arbitrary origin, from a monotonic clock.
func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

/// Median seconds per call of each op, after a warm-up.
///
/// Each op first gets a repetition count that makes one sample last at least `minSampleSeconds`;
/// then `samples` rounds each take one sample of every op in turn, so a passing disturbance on the
/// machine skews one sample of several figures rather than every sample of one.
func medianSecondsPerOp(_ ops: [() -> Void]) -> [Double] {
    let reps = ops.map { op -> Int in
        op()
        var reps = 1
        while true {
            let start = now()
            for _ in 0..<reps { op() }
            let elapsed = now() - start
            if elapsed >= minSampleSeconds { return reps }
            reps *= elapsed < minSampleSeconds / 4 ? 2 : max(2, Int(minSampleSeconds / elapsed) + 1)
        }
    }
    var times = [[Double]](repeating: [], count: ops.count)
    for _ in 0..<samples {
        for (i, op) in ops.enumerated() {
            let start = now()
            for _ in 0..<reps[i] { op() }
            times[i].append((now() - start) / Double(reps[i]))
        }
    }
    return times.map { $0.sorted()[$0.count / 2] }
}

/// Deterministic values in [-1, 1).
func randomFloats(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Float(Int32(truncatingIfNeeded: state >> 32)) / Float(1 << 31)
    }
}

/// sgemm GFLOP/s for `n x n x n` products, for each `n` in `sizes`, on `threads` threads.
func sgemmRates(threads: Int) -> [Int: Double] {
    let operands = sizes.map { n -> (a: UnsafeMutableBufferPointer<Float>, b: UnsafeMutableBufferPointer<Float>,
                                     c: UnsafeMutableBufferPointer<Float>) in
        let (a, b) = (UnsafeMutableBufferPointer<Float>.allocate(capacity: n * n),
                      UnsafeMutableBufferPointer<Float>.allocate(capacity: n * n))
        _ = a.initialize(from: randomFloats(n * n, seed: 1))
        _ = b.initialize(from: randomFloats(n * n, seed: 2))
        let c = UnsafeMutableBufferPointer<Float>.allocate(capacity: n * n)
        c.initialize(repeating: 0)
        return (a, b, c)
    }
    defer { for o in operands { o.a.deallocate(); o.b.deallocate(); o.c.deallocate() } }
    let ops = zip(sizes, operands).map { n, o in
        {
            GEMM.sgemm(m: n, n: n, k: n, alpha: 1, a: o.a.baseAddress!, rowStrideA: n, colStrideA: 1,
                       b: o.b.baseAddress!, rowStrideB: n, colStrideB: 1, beta: 0, c: o.c.baseAddress!, ldc: n)
        }
    }
    let seconds = Threading.withThreads(threads) { medianSecondsPerOp(ops) }
    return Dictionary(uniqueKeysWithValues: zip(sizes, seconds).map { n, s in (n, 2 * Double(n * n * n) / s / 1e9) })
}

/// The PyTorch figures, decoded from torch_bench.py's JSON.
struct TorchFigures: Decodable {
    let version: String
    let sgemm: [String: [String: Double]]
    let add_ns: Double
    let matmul_small_ns: Double
}

/// Runs Tools/bench/torch_bench.py; nil (with the reason) when python3 or torch is missing.
func runTorch() -> (TorchFigures?, String) {
    let script = ["Tools/bench/torch_bench.py",
                  URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                      .appendingPathComponent("../../Tools/bench/torch_bench.py").path]
        .first { FileManager.default.fileExists(atPath: $0) }
    guard let script else { return (nil, "Tools/bench/torch_bench.py not found") }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", script, String(samples), String(minSampleSeconds)] + sizes.map(String.init)
    // One pipe for both streams, read to the end before waiting: no deadlock on a full pipe.
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    do { try process.run() } catch { return (nil, "PyTorch not found (python3 could not be started: \(error))") }
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    let lines = output.split(separator: "\n")
    guard process.terminationStatus == 0 else {
        if process.terminationStatus == 127 { return (nil, "PyTorch not found (no python3)") }
        if output.contains("No module named 'torch'") { return (nil, "PyTorch not found (python3 cannot import torch)") }
        return (nil, "torch_bench.py failed: \(lines.last ?? "")")
    }
    guard let json = lines.last(where: { $0.hasPrefix("{") }) else {
        return (nil, "torch_bench.py printed no JSON")
    }
    do { return (try JSONDecoder().decode(TorchFigures.self, from: Data(json.utf8)), "") }
    catch { return (nil, "could not read torch_bench.py output (\(error))") }
}

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
}
func fmt(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }

/// CPU seconds spent so far by all processes on the machine (Linux `/proc/stat`; nil elsewhere).
func machineBusySeconds() -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
          let line = text.split(separator: "\n").first, line.hasPrefix("cpu ") else { return nil }
    // user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait.
    let fields = line.split(separator: " ").dropFirst().compactMap { Double($0) }
    guard fields.count >= 8 else { return nil }
    let busy = fields.enumerated().filter { $0.offset != 3 && $0.offset != 4 && $0.offset < 8 }.map(\.element)
    return busy.reduce(0, +) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// CPU seconds used by this process and its finished children (the PyTorch script).
func ownCPUSeconds() -> Double {
    #if os(Linux)
    let whom = [RUSAGE_SELF.rawValue, RUSAGE_CHILDREN.rawValue]
    #else
    let whom = [RUSAGE_SELF, RUSAGE_CHILDREN]
    #endif
    var total = 0.0
    for who in whom {
        var usage = rusage()
        getrusage(who, &usage)
        for t in [usage.ru_utime, usage.ru_stime] { total += Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
    }
    return total
}

// Ember.
let (busyBefore, ownBefore) = (machineBusySeconds(), ownCPUSeconds())
let started = now()
var emberRates: [Int: [Int: Double]] = [:]
for threads in threadCounts { emberRates[threads] = sgemmRates(threads: threads) }
let x = Tensor(randomFloats(20, seed: 3), shape: [20]), y = Tensor(randomFloats(20, seed: 4), shape: [20])
let a = Tensor(randomFloats(320, seed: 5), shape: [32, 10]), w = Tensor(randomFloats(200, seed: 6), shape: [10, 20])
let perOp = medianSecondsPerOp([{ _ = x + y }, { _ = a.matmul(w) }])
let (addNs, matmulNs) = (perOp[0] * 1e9, perOp[1] * 1e9)

// PyTorch.
let (torch, torchMissing) = runTorch()

print("ember-bench: sgemm (n x n x n, float32, GFLOP/s, higher is better) and per-op time (ns, lower is better)")
print("kernel path: \(GEMMKernelPath.best), \(ProcessInfo.processInfo.activeProcessorCount) cores; "
      + "each figure is the median of \(samples) samples (taken in rounds over the sizes) after a warm-up")
if let torch {
    print("PyTorch \(torch.version), same machine, same run")
} else {
    print("\(torchMissing): printing Ember's figures only")
}
print("")
var header = pad("op", 28) + pad("Ember 1T", 10) + pad("Ember 2T", 10)
if torch != nil { header += pad("Torch 1T", 10) + pad("Torch 2T", 10) + pad("ratio 1T", 10) + pad("ratio 2T", 10) }
print(header)
for n in sizes {
    var line = pad("sgemm n=\(n) GFLOP/s", 28)
    let e1 = emberRates[1]![n]!, e2 = emberRates[2]![n]!
    line += pad(fmt(e1), 10) + pad(fmt(e2), 10)
    if let torch, let t1 = torch.sgemm["1"]?[String(n)], let t2 = torch.sgemm["2"]?[String(n)] {
        line += pad(fmt(t1), 10) + pad(fmt(t2), 10) + pad(fmt(e1 / t1, 2), 10) + pad(fmt(e2 / t2, 2), 10)
    }
    print(line)
}
for (name, ember, torchValue) in [("a + b, 20 floats, ns/op", addNs, torch?.add_ns),
                                  ("32x10 @ 10x20 matmul, ns/op", matmulNs, torch?.matmul_small_ns)] {
    var line = pad(name, 28) + pad(fmt(ember, 0), 10) + pad("", 10)
    if let t = torchValue { line += pad(fmt(t, 0), 10) + pad("", 10) + pad(fmt(ember / t, 2), 10) }
    print(line)
}
print("")
print("ratio = Ember / PyTorch (GFLOP/s: above 1 means Ember is faster; ns/op: below 1 means Ember is faster).")
print("Per-op times go through the public Tensor API (Ember) and the Python API (PyTorch), one thread.")
let wall = now() - started
print("Total time: \(fmt(wall)) s")
if let busyBefore, let busyAfter = machineBusySeconds() {
    // CPU time the rest of the machine used while this ran: it competes with the measurements.
    let others = max(0, (busyAfter - busyBefore) - (ownCPUSeconds() - ownBefore))
    let share = others / (wall * Double(ProcessInfo.processInfo.activeProcessorCount))
    print("Other processes used \(fmt(100 * share))% of the machine's CPU time during the run"
          + (share > 0.05 ? ": the figures (2-thread ones most) are skewed; rerun on an idle machine." : "."))
}
