import Testing
@testable import EmberWorkloads

// The comparison table: one column per framework, `vs best` against the faster peer, the roofline
// column from the run's references.

private func timing(_ seconds: Double) -> Timing { Timing(iterations: 1, seconds: [seconds]) }

private func sampleResults(peers: [String]) -> RunResults {
    var results = RunResults(date: "d", machine: "m", command: "c", threads: [1])
    results.frameworks += peers
    results.add(timing(1e-3), framework: "Ember", threads: 1, key: "k")
    if peers.contains("PyTorch") { results.add(timing(4e-3), framework: "PyTorch", threads: 1, key: "k") }
    if peers.contains("JAX") { results.add(timing(2e-3), framework: "JAX", threads: 1, key: "k") }
    results.rooflines["1"] = Roofline(sgemmFlopsPerSecond: 100e9, copyBytesPerSecond: 10e9)
    return results
}

private func sampleWorkload() -> Workload { Workload(key: "k", group: "g", title: "w", unit: .gflops(flops: 50e6)) { {} } }

@Test func tableComparesWithTheFasterPeerAndNamesIt() {
    let table = renderTable(sampleResults(peers: ["PyTorch", "JAX"]), workloads: [sampleWorkload()]).split(separator: "\n")
    #expect(table[0] == "| workload | unit | Ember 1T | PyTorch 1T | JAX 1T | vs best 1T | Ember % roof 1T |")
    #expect(table[1] == "| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    // 50 MFLOP in 1 ms = 50 GFLOP/s: half of the 100 GFLOP/s reference; JAX (2 ms) is the faster peer.
    #expect(table[2] == "| w | GFLOP/s | 50.0 ±0% | 12.5 ±0% | 25.0 ±0% | 2.00x JAX | 50% |")
}

@Test func tableWithOnePeerNamesNone() {
    let table = renderTable(sampleResults(peers: ["PyTorch"]), workloads: [sampleWorkload()]).split(separator: "\n")
    #expect(table[2] == "| w | GFLOP/s | 50.0 ±0% | 12.5 ±0% | 4.00x | 50% |")
}

@Test func tableWithoutPeersShowsDashes() {
    let table = renderTable(sampleResults(peers: []), workloads: [sampleWorkload()]).split(separator: "\n")
    #expect(table[2] == "| w | GFLOP/s | 50.0 ±0% | – | 50% |")
}

@Test func samplesOfRoundsArePooled() {
    var results = RunResults(date: "d", machine: "m", command: "c", threads: [1])
    results.add(Timing(iterations: 2, seconds: [1, 2]), framework: "JAX", threads: 1, key: "k")
    results.add(Timing(iterations: 5, seconds: [3]), framework: "JAX", threads: 1, key: "k")
    #expect(results.timing("JAX", threads: 1, key: "k") == Timing(iterations: 2, seconds: [1, 2, 3]))
}

@Test func memoryLineListsEveryFrameworkAndTheImportPeak() {
    var results = RunResults(date: "d", machine: "m", command: "c", threads: [1])
    results.frameworks += ["PyTorch"]
    results.memory["lenet"] = [
        "Ember": MemoryResult(peak_rss_bytes: 50 << 20, seconds: 2, final_loss: 2),
        "PyTorch": MemoryResult(peak_rss_bytes: 300 << 20, seconds: 1.5, final_loss: 2, import_rss_bytes: 225 << 20)]
    #expect(renderMemory(results, samples: [.lenet: 6400], epochs: 3) == [
        "Peak RSS, LeNet training, 3 epochs of 6400 samples (batch 64): Ember 50.0 MB (2.0 s), "
            + "PyTorch 300.0 MB (1.5 s; 225.0 MB after the import alone)"])
}
