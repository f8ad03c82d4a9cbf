import Ember
import Foundation

// Whole-workload benchmarks beside PyTorch. See BENCHMARKS.md.
//
//   swift run -c release ember-workloads            # everything, 1 and 2 threads, with PyTorch
//   swift run -c release ember-workloads --only seed --threads 1 --no-torch

let options = Options(Array(CommandLine.arguments.dropFirst()))

if options.memoryRun {
    let result = emberMemoryRun(samples: options.samples, epochs: options.epochs)
    print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
    exit(0)
}

if let key = options.profileKey {
    guard let w = allWorkloads(sizes: options.sizes).first(where: { $0.key == key }) else {
        fail("no workload \(key); known: \(allWorkloads(sizes: options.sizes).map(\.key).joined(separator: ", "))")
    }
    Threading.withThreads(options.threads[0]) {
        let body = w.make()
        for _ in 0..<options.profileIterations { body() }
    }
    exit(0)
}

func log(_ message: String) {
    FileHandle.standardError.write((message + "\n").data(using: .utf8)!)
}

let started = nowNanoseconds()
let workloads = allWorkloads(sizes: options.sizes).filter { options.groups.contains($0.group) }
var results = RunResults(
    date: ISO8601DateFormatter().string(from: Date()), machine: machineDescription(),
    command: (["ember-workloads"] + CommandLine.arguments.dropFirst()).joined(separator: " "),
    threads: options.threads)

if let load = loadAverage() { results.loadAverages.append(load) }
let torch = TorchRunner(script: TorchRunner.defaultScript())
var useTorch = options.torch
if useTorch && !torch.isAvailable() {
    log("PyTorch not importable by python3: measuring Ember only")
    results.notes.append("PyTorch was not available; Ember only.")
    useTorch = false
}

for threads in options.threads {
    // Ember and PyTorch alternate on each workload (two rounds each, half the budget per round),
    // so both see the same machine load; PyTorch runs in its own process per thread count.
    var server: TorchServer?
    if useTorch && !workloads.isEmpty {
        do {
            server = try torch.server(threads: threads, sizes: options.sizes)
            results.torchVersion = server!.version
        } catch {
            log("PyTorch server failed to start: \(error)")
            results.notes.append("PyTorch with \(threads) threads failed to start: \(error)")
        }
    }
    var ember: [String: Timing] = [:], pytorch: [String: Timing] = [:]
    for w in workloads {
        let body = Threading.withThreads(threads) { w.make() }
        for _ in 0..<2 {
            let e = Threading.withThreads(threads) { measure(budget: options.budget / 2, body) }
            ember[w.key, default: Timing(iterations: e.iterations, seconds: [])].seconds += e.seconds
            if let s = server {
                do {
                    let t = try s.measure(w.key, budget: options.budget / 2)
                    pytorch[w.key, default: Timing(iterations: t.iterations, seconds: [])].seconds += t.seconds
                } catch {
                    log("\(error)")
                    results.notes.append("\(error)")
                    server = nil
                }
            }
        }
        log("\(threads)T \(w.key): Ember \(formatCell(ember[w.key], w.unit)), PyTorch \(formatCell(pytorch[w.key], w.unit)) \(w.unit.label)")
    }
    results.ember["\(threads)"] = ember
    if !pytorch.isEmpty { results.torch["\(threads)"] = pytorch }
}

if options.groups.contains("memory") {
    do {
        results.emberMemory = try emberMemoryRunInChild(samples: options.samples, epochs: options.epochs)
        log("ember   memory run: peak RSS \(results.emberMemory!.peak_rss_bytes / 1_048_576) MB in \(String(format: "%.1f", results.emberMemory!.seconds)) s")
        if useTorch {
            results.torchMemory = try torch.memoryRun(samples: options.samples, epochs: options.epochs)
            log("pytorch memory run: peak RSS \(results.torchMemory!.peak_rss_bytes / 1_048_576) MB in \(String(format: "%.1f", results.torchMemory!.seconds)) s")
        }
    } catch {
        log("memory run failed: \(error)")
        results.notes.append("memory run failed: \(error)")
    }
}

let elapsed = Double(nowNanoseconds() - started) * 1e-9
if let load = loadAverage() { results.loadAverages.append(load) }
let loadText = results.loadAverages.isEmpty ? "" :
    " · load average \(results.loadAverages.map { String(format: "%.2f", $0) }.joined(separator: " → "))"
print("""
    # ember-workloads

    \(results.date) · \(results.machine) · PyTorch \(results.torchVersion ?? "not run") · \(String(format: "%.0f", elapsed)) s\(loadText)
    Medians per workload, ± half the interquartile range of the timed samples. speedup = PyTorch's
    median time / Ember's (for throughputs: Ember's / PyTorch's); above 1 Ember is faster.

    \(renderTable(results, workloads: workloads))

    """)
if let e = results.emberMemory {
    let mb = { (b: Int) in String(format: "%.1f MB", Double(b) / 1_048_576) }
    var line = "Peak RSS, MLP training, \(options.epochs) epochs of \(options.samples) samples (batch 128): Ember \(mb(e.peak_rss_bytes)) (\(String(format: "%.1f", e.seconds)) s)"
    if let t = results.torchMemory { line += ", PyTorch \(mb(t.peak_rss_bytes)) (\(String(format: "%.1f", t.seconds)) s)" }
    print(line + "\n")
}
if useTorch {
    print("## Targets\n\n\(renderTargets(results))\n")
}
for note in results.notes { print("Note: \(note)") }

if let path = options.jsonPath {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(results).write(to: URL(fileURLWithPath: path))
}
