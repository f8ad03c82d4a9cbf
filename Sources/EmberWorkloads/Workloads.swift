import Ember
import SeedNetwork

/// How a workload's per-iteration time is shown.
enum Unit {
    /// Microseconds per iteration.
    case microseconds
    /// Samples per second, `batch` samples per iteration.
    case samplesPerSecond(batch: Int)
    /// GFLOP/s, `flops` floating-point operations per iteration.
    case gflops(flops: Double)

    var label: String {
        switch self {
        case .microseconds: "µs"
        case .samplesPerSecond: "samples/s"
        case .gflops: "GFLOP/s"
        }
    }

    /// The displayed value for a per-iteration time (higher is better except for µs).
    func value(_ seconds: Double) -> Double {
        switch self {
        case .microseconds: seconds * 1e6
        case .samplesPerSecond(let batch): Double(batch) / seconds
        case .gflops(let flops): flops / seconds / 1e9
        }
    }
}

/// One benchmarked workload. The key matches the PyTorch script's.
struct Workload {
    var key: String
    var group: String
    var title: String
    var unit: Unit
    /// What one call must do at least, for the roofline column; GFLOP/s workloads count their
    /// FLOP without it.
    var work: Work?
    /// Builds the state (model, data, optimizer) and returns the timed body.
    var make: () -> () -> Void

    /// The work compared with the roofline: `work`, else the FLOP of a GFLOP/s unit.
    var roofWork: Work? {
        if let work { return work }
        if case .gflops(let flops) = unit { return .flops(flops) }
        return nil
    }
}

/// The MLP of the benchmarks: 784 -> 512 -> 256 -> 10 with BatchNorm1d, ReLU and Dropout(0.2)
/// after each hidden Linear (`Tools/bench/torch_workloads.py` and `jax_workloads.py` build the same).
func makeMLP() -> Sequential {
    Sequential(
        Linear(784, 512), BatchNorm1d(512), ReLU(), Dropout(0.2),
        Linear(512, 256), BatchNorm1d(256), ReLU(), Dropout(0.2),
        Linear(256, 10))
}

/// One SGD training step: clear gradients, forward, cross entropy, backward, update.
@inline(__always)
func trainStep(_ model: Module, _ optimizer: SGD, _ x: Tensor, _ y: Tensor) -> Tensor {
    optimizer.zeroGrad()
    let loss = crossEntropy(model(x), target: y)
    loss.backward()
    optimizer.step()
    return loss
}

/// Every timed workload, in table order. `sizes` are the sgemm sizes.
func allWorkloads(sizes: [Int]) -> [Workload] {
    var list: [Workload] = []

    // 1. The seed network, batch 32.
    func seed(_ key: String, _ title: String, training: Bool, step: Bool = false,
              body: @escaping (SeedNetwork, SGD, Tensor, Tensor) -> Void) {
        list.append(Workload(key: "seed." + key, group: "seed", title: title, unit: .microseconds,
                             work: .flops(denseFlops(batch: 32, layers: seedLayers, training: step))) {
            let g = Generator(seed: 0)
            let model = withGenerator(g) { SeedNetwork() }
            let optimizer = SGD(model.parameters(), lr: 0.01, momentum: 0.9)
            let x = Tensor.normal([32, 10], generator: g)
            let y = Tensor.randint(high: 2, shape: [32], generator: g)
            model.train(training)
            return { body(model, optimizer, x, y) }
        })
    }
    seed("forward_train", "seed net: forward, training mode", training: true) { m, _, x, _ in consume(m(x)) }
    seed("forward_eval_grad", "seed net: forward, eval mode, recording", training: false) { m, _, x, _ in consume(m(x)) }
    seed("forward_eval_nograd", "seed net: forward, eval mode, no grad", training: false) { m, _, x, _ in
        withNoGrad { consume(m(x)) }
    }
    seed("train_step", "seed net: training step", training: true, step: true) { m, o, x, y in consume(trainStep(m, o, x, y)) }

    // 2. The MLP.
    list.append(Workload(key: "mlp.train_step_b128", group: "mlp", title: "MLP: training step, batch 128",
                         unit: .samplesPerSecond(batch: 128),
                         work: .flops(denseFlops(batch: 128, layers: mlpLayers, training: true))) {
        let g = Generator(seed: 0)
        let model = withGenerator(g) { makeMLP() }
        let optimizer = SGD(model.parameters(), lr: 0.01, momentum: 0.9)
        let x = Tensor.uniform([128, 784], generator: g)
        let y = Tensor.randint(high: 10, shape: [128], generator: g)
        return { consume(trainStep(model, optimizer, x, y)) }
    })
    list += [1024, 1].map { mlpEvalWorkload(batch: $0, folded: false) }

    // 3. sgemm, C = A B for n x n row-major matrices.
    list += sizes.map { sgemmWorkload(n: $0) }
    list += convWorkloads()
    list += fusedWorkloads()
    list += transformerWorkloads()
    return list
}

/// The MLP's eval forward without gradient at `batch`, on the model itself or, `folded`, on its
/// `fusedForInference()` copy (the `fused` group, issue #15). Same seed, weights and input either way.
func mlpEvalWorkload(batch: Int, folded: Bool) -> Workload {
    let name = folded ? "MLP folded" : "MLP"
    return Workload(key: folded ? "fused.mlp_eval_b\(batch)" : "mlp.eval_b\(batch)", group: folded ? "fused" : "mlp",
                    title: batch == 1 ? "\(name): eval forward, batch 1 (latency)" : "\(name): eval forward, batch \(batch)",
                    unit: batch == 1 ? .microseconds : .samplesPerSecond(batch: batch),
                    // Batch 1 is bound by reading the weights, not by arithmetic.
                    work: batch == 1 ? .bytes(mlpForwardBytes(batch: 1))
                        : .flops(denseFlops(batch: batch, layers: mlpLayers, training: false))) {
        let g = Generator(seed: 0)
        let model = withGenerator(g) { makeMLP() }
        model.eval()
        let run: Module = folded ? model.fusedForInference() : model
        let x = Tensor.uniform([batch, 784], generator: g)
        return { withNoGrad { consume(run(x)) } }
    }
}
