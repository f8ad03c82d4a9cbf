import Ember
import Foundation

// Whole-workload benchmarks beside PyTorch and JAX. See BENCHMARKS.md.
//
//   swift run -c release ember-workloads            # everything, 1 and 2 threads, with the peers
//   swift run -c release ember-workloads --only seed --threads 1 --no-torch --no-jax

let options = Options(Array(CommandLine.arguments.dropFirst()))

if options.memoryRun {
    let result = emberMemoryRun(model: options.memoryModel, samples: options.samples, epochs: options.epochs)
    print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
    exit(0)
}

if let key = options.profileKey {
    guard let w = allWorkloads(sizes: options.sizes).first(where: { $0.key == key }) else {
        fail("no workload \(key); known: \(allWorkloads(sizes: options.sizes).map(\.key).joined(separator: ", "))")
    }
    Threading.withThreads(options.threads[0]) {
        let body = w.make()
        guard options.timesCalls else {
            for _ in 0..<options.profileIterations { body() }
            return
        }
        for _ in 0..<3 { body() }
        var times: [Double] = []
        for _ in 0..<max(1, options.profileIterations) {
            let start = nowNanoseconds()
            body()
            times.append(Double(nowNanoseconds() - start) / 1e6)
        }
        times.sort()
        let at = { (q: Double) in times[min(times.count - 1, Int(q * Double(times.count)))] }
        print(String(format: "%@ min %.3f p10 %.3f median %.3f ms (%d calls)", key, times[0], at(0.1), at(0.5), times.count))
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
// The peers that can run: one line for each that cannot, then the run goes on without it.
let peers = [Peer.pytorch, Peer.jax].filter { peer in
    guard !options.excludedPeers.contains(peer.module) else { return false }
    guard peer.isAvailable() else {
        log("\(peer.name): python3 -c 'import \(peer.module)' failed: measuring without \(peer.name)")
        results.notes.append("\(peer.name) was not available (python3 cannot import \(peer.module)).")
        return false
    }
    return true
}
results.frameworks += peers.map(\.name)

/// Records a workload a peer cannot run, printing the reason the first time.
@MainActor func noteSkipped(_ framework: String, _ key: String, _ reason: String) {
    guard results.skipped[framework]?[key] == nil else { return }
    results.skipped[framework, default: [:]][key] = reason
    log("\(framework) skips \(key): \(reason)")
}

for threads in options.threads {
    // Ember and each peer alternate on each workload (two rounds each, half the budget per round),
    // so all see the same machine load; each peer runs in its own process per thread count.
    var servers: [PeerServer] = []
    if !workloads.isEmpty {
        for peer in peers {
            do {
                let server = try peer.server(threads: threads, sizes: options.sizes)
                results.versions[peer.name] = server.version
                servers.append(server)
            } catch {
                log("\(peer.name) server failed to start: \(error)")
                results.notes.append("\(peer.name) with \(threads) threads failed to start: \(error)")
            }
        }
    }
    for w in workloads {
        let body = Threading.withThreads(threads) { w.make() }
        for _ in 0..<2 {
            let e = Threading.withThreads(threads) { measure(budget: options.budget / 2, body) }
            results.add(e, framework: "Ember", threads: threads, key: w.key)
            for server in servers where results.skipped[server.peer.name]?[w.key] == nil {
                do {
                    switch try server.measure(w.key, budget: options.budget / 2) {
                    case .timing(let t): results.add(t, framework: server.peer.name, threads: threads, key: w.key)
                    case .skipped(let reason): noteSkipped(server.peer.name, w.key, reason)
                    }
                } catch {
                    log("\(error)")
                    results.notes.append("\(error)")
                    servers.removeAll { $0 === server }
                }
            }
        }
        let cells = results.frameworks.map { "\($0) \(formatCell(results.timing($0, threads: threads, key: w.key), w.unit))" }
        log("\(threads)T \(w.key): \(cells.joined(separator: ", ")) \(w.unit.label)")
    }
    // The roofline references, at this thread count: sgemm n=1024 from the run when it was timed.
    guard !workloads.isEmpty else { continue }
    let sgemm = results.timing("Ember", threads: threads, key: "sgemm.\(Roofline.sgemmSize)")
    let roofline = Roofline.measure(threads: threads, budget: min(options.budget / 2, 0.5), sgemm: sgemm)
    results.rooflines["\(threads)"] = roofline
    log(renderRooflines(results))
}

let memorySamples: [MemoryModel: Int] = [.mlp: options.samples, .lenet: options.lenetSamples]
if options.groups.contains("memory") {
    for model in MemoryModel.allCases {
        let samples = memorySamples[model]!
        var runs: [(String, () throws -> MemoryResult)] = [
            ("Ember", { try emberMemoryRunInChild(model: model, samples: samples, epochs: options.epochs) })]
        for peer in peers {
            runs.append((peer.name, { try peer.memoryRun(model: model, samples: samples, epochs: options.epochs) }))
        }
        for (name, run) in runs {
            do {
                let result = try run()
                results.memory[model.rawValue, default: [:]][name] = result
                if let version = result.version, results.versions[name] == nil { results.versions[name] = version }
                log("\(name) \(model.rawValue) memory run: peak RSS \(result.peak_rss_bytes / 1_048_576) MB in \(String(format: "%.1f", result.seconds)) s")
            } catch {
                log("\(name) \(model.rawValue) memory run failed: \(error)")
                results.notes.append("\(name) \(model.rawValue) memory run failed: \(error)")
            }
        }
    }
}

let elapsed = Double(nowNanoseconds() - started) * 1e-9
if let load = loadAverage() { results.loadAverages.append(load) }
let loadText = results.loadAverages.isEmpty ? "" :
    " · load average \(results.loadAverages.map { String(format: "%.2f", $0) }.joined(separator: " → "))"
let versions = results.peers.map { "\($0) \(results.versions[$0] ?? "not run")" }.joined(separator: " · ")
print("""
    # ember-workloads

    \(results.date) · \(results.machine)\(versions.isEmpty ? "" : " · " + versions) · \(String(format: "%.0f", elapsed)) s\(loadText)
    Medians per workload, ± half the interquartile range of the timed samples. vs best = the faster
    peer's median time / Ember's (for throughputs: Ember's / the peer's); above 1 Ember is faster.
    Ember % roof = Ember's FLOP/s over its sgemm n=1024 rate at the same thread count in this run,
    or for the batch-1 MLP forward, bytes moved per second over a 64 MB memcpy's bandwidth.

    """)
if !workloads.isEmpty { print(renderTable(results, workloads: workloads) + "\n\n" + renderRooflines(results) + "\n") }
for line in renderMemory(results, samples: memorySamples, epochs: options.epochs) { print(line + "\n") }
// The targets concern the seed network, the MLP and its memory run only.
if results.peers.contains("PyTorch") && !Set(options.groups).isDisjoint(with: ["seed", "mlp", "memory"]) {
    print("## Targets (against PyTorch)\n\n\(renderTargets(results))\n")
}
for (framework, keys) in results.skipped.sorted(by: { $0.key < $1.key }) {
    for (key, reason) in keys.sorted(by: { $0.key < $1.key }) { print("Not run by \(framework): \(key) (\(reason))") }
}
for note in results.notes { print("Note: \(note)") }

if let path = options.jsonPath {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(results).write(to: URL(fileURLWithPath: path))
}
