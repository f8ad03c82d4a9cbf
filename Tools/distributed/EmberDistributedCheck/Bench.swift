import Ember
import Foundation

/// `ember-distributed-check bench [--budget S] [--warmup W] [--global-batch B]`: Ember's side of
/// the data-parallel benchmark (PyTorch's is Tools/bench/torch_ddp_bench.py; Tools/bench/ddp_bench.sh
/// runs both, interleaved). MLP 784-512-256-10 with BatchNorm1d, float32, cross entropy, SGD
/// (lr 0.01, momentum 0.9), one thread per rank; each rank trains on `B / worldSize` rows of a
/// global batch of `B`. With more than one rank, BatchNorms are SyncBatchNorms and the model is
/// wrapped in DistributedDataParallel; one rank trains the plain model. Rank 0 prints one JSON line.
///
/// The timed steps are split into 5 blocks; the figure is the median block's time per step. Rank 0
/// picks the step count from the warm-up and broadcasts it, so every rank runs the same steps.
enum DistributedBench {
    static func run(group: ProcessGroup, arguments: [String]) throws -> Bool {
        func value(_ flag: String, _ fallback: Double) throws -> Double {
            guard let i = arguments.firstIndex(of: flag) else { return fallback }
            guard i + 1 < arguments.count, let v = Double(arguments[i + 1]), v > 0 else {
                throw BenchError("\(flag) needs a positive number")
            }
            return v
        }
        let budget = try value("--budget", 3), warmup = Int(try value("--warmup", 5))
        let globalBatch = Int(try value("--global-batch", 256))
        guard globalBatch % group.worldSize == 0 else {
            throw BenchError("the world size \(group.worldSize) must divide the global batch \(globalBatch)")
        }
        let perRank = globalBatch / group.worldSize
        return try Threading.withThreads(1) {
            let g = Generator(seed: 0)
            let model = Sequential(
                Linear(784, 512, generator: g), BatchNorm1d(512), ReLU(),
                Linear(512, 256, generator: g), BatchNorm1d(256), ReLU(),
                Linear(256, 10, generator: g))
            let trained: Module
            let backward: (Tensor) throws -> Void
            if group.worldSize > 1 {
                model.convertSyncBatchNorm(processGroup: group)
                // EMBER_BENCH_OVERLAP=0: bucket all-reduces start after backward instead of during it.
                let overlaps = ProcessInfo.processInfo.environment["EMBER_BENCH_OVERLAP"] != "0"
                let ddp = try DistributedDataParallel(model, processGroup: group, overlapsCommunication: overlaps)
                trained = ddp
                backward = { try ddp.backward($0) }
            } else {
                trained = model
                backward = { $0.backward() }
            }
            let optimizer = SGD(trained.parameters(), lr: 0.01, momentum: 0.9)
            let data = Generator(seed: 1 + UInt64(group.rank))
            let x = Tensor.normal([perRank, 784], generator: data)
            let y = Tensor.randint(high: 10, shape: [perRank], generator: data)
            // EMBER_BENCH_PHASES=1: each rank also prints its mean time per phase.
            let phases = ProcessInfo.processInfo.environment["EMBER_BENCH_PHASES"] == "1"
            var phaseTime = [Double](repeating: 0, count: 4), phaseSteps = 0
            func step() throws {
                guard phases else {
                    optimizer.zeroGrad()
                    let loss = crossEntropy(trained(x), target: y)
                    try backward(loss)
                    optimizer.step()
                    return
                }
                var t = Date()
                func lap(_ k: Int) { let now = Date(); phaseTime[k] += now.timeIntervalSince(t); t = now }
                optimizer.zeroGrad()
                let loss = crossEntropy(trained(x), target: y)
                _ = loss.doubleValue
                lap(0)
                loss.backward()
                lap(1)
                if let ddp = trained as? DistributedDataParallel { try ddp.synchronizeGradients() }
                lap(2)
                optimizer.step()
                lap(3)
                phaseSteps += 1
            }
            try group.barrier()
            try step()  // the first step allocates and warms caches: not part of the plan
            var start = Date()
            for _ in 1..<max(warmup, 2) { try step() }
            let perStep = Date().timeIntervalSince(start) / Double(max(warmup, 2) - 1)
            let planned = Tensor([Float(max(10, (budget / max(perStep, 1e-6)).rounded()))])
            let blocks = 5, steps = (Int(try group.broadcast(planned, from: 0).item(as: Float.self)) + blocks - 1) / blocks * blocks
            var blockTimes: [Double] = []
            try group.barrier()
            for _ in 0..<blocks {
                start = Date()
                for _ in 0..<(steps / blocks) { try step() }
                blockTimes.append(Date().timeIntervalSince(start) / Double(steps / blocks))
            }
            let median = blockTimes.sorted()[blocks / 2]
            if phases {
                let ms = phaseTime.map { String(format: "%.2f", $0 / Double(max(phaseSteps, 1)) * 1000) }
                say("rank \(group.rank): ms per step: forward \(ms[0]), backward \(ms[1]), gradient all-reduce \(ms[2]), optimizer \(ms[3])")
            }
            if group.rank == 0 {
                let ms = (median * 1e6).rounded() / 1e3
                say(#"{"framework":"ember","ranks":\#(group.worldSize),"threads_per_rank":1,"global_batch":\#(globalBatch),"ms_per_step":\#(ms),"samples_per_s":\#((Double(globalBatch) / median).rounded()),"steps":\#(steps),"sync_batchnorm":\#(group.worldSize > 1),"engine":"\#(group.engine)"}"#)
            }
            return true
        }
    }

    struct BenchError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
