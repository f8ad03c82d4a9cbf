import Foundation

/// Everything one run measured; `--json` writes it.
struct RunResults: Codable {
    var date: String
    var machine: String
    var command: String
    var torchVersion: String?
    var threads: [Int]
    /// `ember[threads][key]` and `torch[threads][key]`.
    var ember: [String: [String: Timing]] = [:]
    var torch: [String: [String: Timing]] = [:]
    var emberMemory: MemoryResult?
    var torchMemory: TorchRunner.MemoryRun?
    var notes: [String] = []
    /// One-minute load averages when the run started and ended (other processes compete for the
    /// cores; above about 0.5 the timings, two-thread ones above all, are disturbed).
    var loadAverages: [Double] = []
}

/// The one-minute load average (`/proc/loadavg`), `nil` where unavailable.
func loadAverage() -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return nil }
    return text.split(separator: " ").first.flatMap { Double($0) }
}

/// The CPU model and core count, from `/proc/cpuinfo` where it exists.
func machineDescription() -> String {
    var model = "unknown CPU"
    if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
       let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
       let name = line.split(separator: ":", maxSplits: 1).last
    {
        model = name.trimmingCharacters(in: .whitespaces)
    }
    let os = ProcessInfo.processInfo.operatingSystemVersionString
    return "\(model), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(os)"
}

/// Three significant digits, with k/M suffixes for large values.
func formatValue(_ v: Double) -> String {
    if !v.isFinite { return "n/a" }
    if v >= 1e6 { return String(format: "%.3gM", v / 1e6) }
    if v >= 1e4 { return String(format: "%.3gk", v / 1e3) }
    if v >= 100 { return String(format: "%.0f", v) }
    if v >= 10 { return String(format: "%.1f", v) }
    return String(format: "%.2f", v)
}

func formatCell(_ timing: Timing?, _ unit: Unit) -> String {
    guard let timing else { return "–" }
    return "\(formatValue(unit.value(timing.median))) ±\(String(format: "%.0f", timing.spread * 100))%"
}

/// PyTorch's median time over Ember's: how many times faster Ember is (for throughputs, the
/// ratio of Ember's to PyTorch's).
func speedup(_ ember: Timing?, _ torch: Timing?) -> Double? {
    guard let ember, let torch, ember.median > 0 else { return nil }
    return torch.median / ember.median
}

/// The Markdown table of medians, spreads and speedups.
func renderTable(_ results: RunResults, workloads: [Workload]) -> String {
    var header = "| workload | unit |"
    var rule = "| --- | --- |"
    for t in results.threads {
        header += " Ember \(t)T | PyTorch \(t)T | speedup \(t)T |"
        rule += " ---: | ---: | ---: |"
    }
    var lines = [header, rule]
    for w in workloads {
        var line = "| \(w.title) | \(w.unit.label) |"
        for t in results.threads {
            let e = results.ember["\(t)"]?[w.key], p = results.torch["\(t)"]?[w.key]
            let s = speedup(e, p).map { String(format: "%.2fx", $0) } ?? "–"
            line += " \(formatCell(e, w.unit)) | \(formatCell(p, w.unit)) | \(s) |"
        }
        lines.append(line)
    }
    return lines.joined(separator: "\n")
}

/// The issue's targets, each with its measured value and whether it is met.
func renderTargets(_ results: RunResults) -> String {
    var lines = ["| target | measured | met |", "| --- | --- | :---: |"]
    func check(_ title: String, _ key: String, threads: Int, atLeast: Double, strictly: Bool = false) {
        let s = speedup(results.ember["\(threads)"]?[key], results.torch["\(threads)"]?[key])
        let measured = s.map { String(format: "%.2fx", $0) } ?? "not measured"
        let met = s.map { strictly ? $0 > atLeast : $0 >= atLeast }.map { $0 ? "yes" : "**no**" } ?? "–"
        lines.append("| \(title) | \(measured) | \(met) |")
    }
    check("seed net training step >= 10x faster (1 thread)", "seed.train_step", threads: 1, atLeast: 10)
    check("seed net eval forward (recording) >= 10x faster (1 thread)", "seed.forward_eval_grad", threads: 1, atLeast: 10)
    check("seed net eval forward (no grad) >= 10x faster (1 thread)", "seed.forward_eval_nograd", threads: 1, atLeast: 10)
    check("MLP training step >= 2x throughput (1 thread)", "mlp.train_step_b128", threads: 1, atLeast: 2)
    check("MLP training step ahead (2 threads)", "mlp.train_step_b128", threads: 2, atLeast: 1, strictly: true)
    check("MLP eval batch 1024 >= 2x throughput (1 thread)", "mlp.eval_b1024", threads: 1, atLeast: 2)
    check("MLP eval batch 1 latency >= 2x lower (1 thread)", "mlp.eval_b1", threads: 1, atLeast: 2)
    if let e = results.emberMemory, let t = results.torchMemory {
        let mb = { (b: Int) in String(format: "%.0f MB", Double(b) / 1_048_576) }
        lines.append("| MLP 3-epoch training peak RSS <= PyTorch's | \(mb(e.peak_rss_bytes)) vs \(mb(t.peak_rss_bytes)) | \(e.peak_rss_bytes <= t.peak_rss_bytes ? "yes" : "**no**") |")
    } else {
        lines.append("| MLP 3-epoch training peak RSS <= PyTorch's | not measured | – |")
    }
    return lines.joined(separator: "\n")
}
