/// Command-line options of `ember-workloads`.
struct Options {
    var threads: [Int] = [1, 2]
    /// Seconds of timed samples per workload and framework.
    var budget: Double = 1.0
    var groups: [String] = ["seed", "mlp", "sgemm", "memory", "cnn", "conv", "fused", "transformer"]
    var sizes: [Int] = [64, 128, 256, 512, 1024, 2048]
    /// Peers left out with `--no-torch` / `--no-jax` (by `Peer.module`).
    var excludedPeers: Set<String> = []
    var jsonPath: String?
    var memoryRun = false
    /// The model a `--memory-run` child trains.
    var memoryModel = MemoryModel.mlp
    /// Samples of the MLP memory run (`--samples`; a `--memory-run` child trains on this many
    /// whatever its model).
    var samples = 10_000
    /// Samples of the LeNet memory run.
    var lenetSamples = 6_400
    var epochs = 3
    /// Runs one workload's body this many times, untimed (for `valgrind --tool=callgrind`).
    var profileKey: String?
    var profileIterations = 1000
    /// `--time`: like `--profile`, each call timed.
    var timesCalls = false

    static let usage = """
        usage: ember-workloads [options]
          --threads 1,2        thread counts to run (default 1,2)
          --budget S           seconds of timed samples per workload (default 1.0)
          --only G,...         groups: seed, mlp, sgemm, memory, cnn, conv, fused, transformer (default all)
          --sizes N,...        sgemm sizes (default 64,128,256,512,1024,2048)
          --no-torch           without PyTorch (Tools/bench/torch_workloads.py)
          --no-jax             without JAX (Tools/bench/jax_workloads.py)
          --json PATH          also write every sample as JSON
          --samples N          memory run: MLP samples in the synthetic dataset (default 10000)
          --lenet-samples N    memory run: LeNet samples (default 6400)
          --epochs N           memory run: epochs (default 3)
          --memory-run         (internal) train --model mlp|lenet on --samples and print peak RSS as JSON
          --profile KEY[:N]    run workload KEY (e.g. seed.train_step) N times (default 1000), untimed,
                               for valgrind --tool=callgrind; threads from --threads (first)
          --time KEY[:N]       run workload KEY N times (default 1000) after 3 untimed calls and print
                               the fastest, 10th-percentile and median call in ms (for A/B runs of two
                               builds: the fastest call is the least disturbed by other load)
        """

    init(_ arguments: [String]) {
        var args = arguments[...]
        func value(_ flag: String) -> String {
            guard let v = args.popFirst() else { fail("\(flag) needs a value") }
            return v
        }
        func ints(_ flag: String) -> [Int] {
            let list = value(flag).split(separator: ",").compactMap { Int($0) }
            if list.isEmpty { fail("\(flag) needs a comma-separated list of integers") }
            return list
        }
        while let arg = args.popFirst() {
            switch arg {
            case "--threads": threads = ints(arg)
            case "--budget":
                guard let b = Double(value(arg)), b > 0 else { fail("--budget needs a positive number of seconds") }
                budget = b
            case "--only": groups = value(arg).split(separator: ",").map(String.init)
            case "--sizes": sizes = ints(arg)
            case "--no-torch": excludedPeers.insert("torch")
            case "--no-jax": excludedPeers.insert("jax")
            case "--json": jsonPath = value(arg)
            case "--memory-run": memoryRun = true
            case "--samples": samples = ints(arg)[0]
            case "--lenet-samples": lenetSamples = ints(arg)[0]
            case "--model":
                guard let model = MemoryModel(rawValue: value(arg)) else { fail("--model needs mlp or lenet") }
                memoryModel = model
            case "--epochs": epochs = ints(arg)[0]
            case "--time":
                timesCalls = true
                fallthrough
            case "--profile":
                let parts = value(arg).split(separator: ":")
                profileKey = String(parts[0])
                if parts.count > 1 { profileIterations = Int(parts[1]) ?? profileIterations }
            case "-h", "--help":
                print(Options.usage)
                exit(0)
            default: fail("unknown option \(arg)")
            }
        }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(("ember-workloads: " + message + "\n" + Options.usage + "\n").data(using: .utf8)!)
    exit(2)
}

import Foundation
