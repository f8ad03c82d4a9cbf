import Foundation

/// Everything one run measured; `--json` writes it.
struct RunResults: Codable {
    var date: String
    var machine: String
    var command: String
    var threads: [Int]
    /// Column order: "Ember", then each peer that was started.
    var frameworks: [String] = ["Ember"]
    /// Each peer's version, from its greeting.
    var versions: [String: String] = [:]
    /// `timings[framework][threads][key]`, every sample.
    var timings: [String: [String: [String: Timing]]] = [:]
    /// The roofline references of each thread count (`"1"`, `"2"`).
    var rooflines: [String: Roofline] = [:]
    /// `memory[model][framework]` (models: `MemoryModel.rawValue`).
    var memory: [String: [String: MemoryResult]] = [:]
    /// `skipped[framework][key]`: workloads a peer cannot run, with its reason.
    var skipped: [String: [String: String]] = [:]
    var notes: [String] = []
    /// One-minute load averages when the run started and ended (other processes compete for the
    /// cores; above about 0.5 the timings, two-thread ones above all, are disturbed).
    var loadAverages: [Double] = []

    /// The peers in column order.
    var peers: [String] { Array(frameworks.dropFirst()) }

    func timing(_ framework: String, threads: Int, key: String) -> Timing? {
        timings[framework]?["\(threads)"]?[key]
    }

    /// Pools `timing`'s samples with those already recorded (the rounds of one workload).
    mutating func add(_ timing: Timing, framework: String, threads: Int, key: String) {
        timings[framework, default: [:]]["\(threads)", default: [:]][key, default: Timing(iterations: timing.iterations, seconds: [])]
            .seconds += timing.seconds
    }

    /// The peer with the lowest median time on `key`, and its timing.
    func bestPeer(threads: Int, key: String) -> (name: String, timing: Timing)? {
        peers.compactMap { name in timing(name, threads: threads, key: key).map { (name, $0) } }
            .min { $0.1.median < $1.1.median }
    }
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

/// A peer's median time over Ember's: how many times faster Ember is (for throughputs, the ratio
/// of Ember's to the peer's).
func speedup(_ ember: Timing?, _ peer: Timing?) -> Double? {
    guard let ember, let peer, ember.median > 0 else { return nil }
    return peer.median / ember.median
}

/// A fraction as a percentage with two significant digits at least ("93%", "4.1%", "0.17%").
func formatPercent(_ fraction: Double?) -> String {
    guard let fraction, fraction.isFinite else { return "–" }
    let percent = fraction * 100
    if percent >= 10 { return String(format: "%.0f%%", percent) }
    if percent >= 1 { return String(format: "%.1f%%", percent) }
    return String(format: "%.2f%%", percent)
}

/// The Markdown table: per thread count, each framework's median and spread, Ember's ratio to the
/// better peer (`vs best`, naming it when there are two) and Ember's fraction of the roofline.
func renderTable(_ results: RunResults, workloads: [Workload]) -> String {
    var header = "| workload | unit |"
    var rule = "| --- | --- |"
    for t in results.threads {
        for name in results.frameworks { header += " \(name) \(t)T |" }
        header += " vs best \(t)T | Ember % roof \(t)T |"
        rule += String(repeating: " ---: |", count: results.frameworks.count + 2)
    }
    var lines = [header, rule]
    for w in workloads {
        var line = "| \(w.title) | \(w.unit.label) |"
        for t in results.threads {
            let ember = results.timing("Ember", threads: t, key: w.key)
            for name in results.frameworks {
                line += " \(formatCell(results.timing(name, threads: t, key: w.key), w.unit)) |"
            }
            let best = results.bestPeer(threads: t, key: w.key)
            var ratio = speedup(ember, best?.timing).map { String(format: "%.2fx", $0) } ?? "–"
            if let best, results.peers.count > 1, ratio != "–" { ratio += " \(best.name)" }
            var roof: Double?
            if let work = w.roofWork, let ember, let reference = results.rooflines["\(t)"] {
                roof = reference.fraction(of: work, seconds: ember.median)
            }
            line += " \(ratio) | \(formatPercent(roof)) |"
        }
        lines.append(line)
    }
    return lines.joined(separator: "\n")
}

/// The roofline references of each thread count, one line.
func renderRooflines(_ results: RunResults) -> String {
    let parts = results.threads.compactMap { t in
        results.rooflines["\(t)"].map {
            String(format: "%dT: sgemm n=1024 %.1f GFLOP/s, copy %.1f GB/s", t, $0.sgemmFlopsPerSecond / 1e9, $0.copyBytesPerSecond / 1e9)
        }
    }
    return "Roofline references (Ember, this run): " + parts.joined(separator: "; ")
}

/// One line per memory run: each framework's peak RSS and time, and a peer's peak after its import.
func renderMemory(_ results: RunResults, samples: [MemoryModel: Int], epochs: Int) -> [String] {
    MemoryModel.allCases.compactMap { model in
        guard let runs = results.memory[model.rawValue], !runs.isEmpty else { return nil }
        let mb = { (b: Int) in String(format: "%.1f MB", Double(b) / 1_048_576) }
        let parts = results.frameworks.compactMap { name in
            runs[name].map { r in
                "\(name) \(mb(r.peak_rss_bytes)) (\(String(format: "%.1f", r.seconds)) s"
                    + (r.import_rss_bytes.map { "; \(mb($0)) after the import alone" } ?? "") + ")"
            }
        }
        return "Peak RSS, \(model.title) training, \(epochs) epochs of \(samples[model] ?? 0) samples (batch \(model.batch)): "
            + parts.joined(separator: ", ")
    }
}

/// The issue's targets (against PyTorch), each with its measured value and whether it is met.
func renderTargets(_ results: RunResults) -> String {
    var lines = ["| target | measured | met |", "| --- | --- | :---: |"]
    func check(_ title: String, _ key: String, threads: Int, atLeast: Double, strictly: Bool = false) {
        let s = speedup(results.timing("Ember", threads: threads, key: key), results.timing("PyTorch", threads: threads, key: key))
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
    if let e = results.memory["mlp"]?["Ember"], let t = results.memory["mlp"]?["PyTorch"] {
        let mb = { (b: Int) in String(format: "%.0f MB", Double(b) / 1_048_576) }
        lines.append("| MLP 3-epoch training peak RSS <= PyTorch's | \(mb(e.peak_rss_bytes)) vs \(mb(t.peak_rss_bytes)) | \(e.peak_rss_bytes <= t.peak_rss_bytes ? "yes" : "**no**") |")
    } else {
        lines.append("| MLP 3-epoch training peak RSS <= PyTorch's | not measured | – |")
    }
    return lines.joined(separator: "\n")
}
