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
    /// Builds the state (model, data, optimizer) and returns the timed body.
    var make: () -> () -> Void
}

/// The MLP of the benchmarks: 784 -> 512 -> 256 -> 10 with BatchNorm1d, ReLU and Dropout(0.2)
/// after each hidden Linear (`Tools/bench/torch_workloads.py` builds the same).
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
    func seed(_ key: String, _ title: String, training: Bool, body: @escaping (SeedNetwork, SGD, Tensor, Tensor) -> Void) {
        list.append(Workload(key: "seed." + key, group: "seed", title: title, unit: .microseconds) {
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
    seed("train_step", "seed net: training step", training: true) { m, o, x, y in consume(trainStep(m, o, x, y)) }

    // 2. The MLP.
    list.append(Workload(key: "mlp.train_step_b128", group: "mlp", title: "MLP: training step, batch 128",
                         unit: .samplesPerSecond(batch: 128)) {
        let g = Generator(seed: 0)
        let model = withGenerator(g) { makeMLP() }
        let optimizer = SGD(model.parameters(), lr: 0.01, momentum: 0.9)
        let x = Tensor.uniform([128, 784], generator: g)
        let y = Tensor.randint(high: 10, shape: [128], generator: g)
        return { consume(trainStep(model, optimizer, x, y)) }
    })
    for batch in [1024, 1] {
        list.append(Workload(key: "mlp.eval_b\(batch)", group: "mlp",
                             title: batch == 1 ? "MLP: eval forward, batch 1 (latency)" : "MLP: eval forward, batch \(batch)",
                             unit: batch == 1 ? .microseconds : .samplesPerSecond(batch: batch)) {
            let g = Generator(seed: 0)
            let model = withGenerator(g) { makeMLP() }
            model.eval()
            let x = Tensor.uniform([batch, 784], generator: g)
            return { withNoGrad { consume(model(x)) } }
        })
    }

    // 3. sgemm, C = A B for n x n row-major matrices.
    for n in sizes {
        list.append(Workload(key: "sgemm.\(n)", group: "sgemm", title: "sgemm n=\(n)",
                             unit: .gflops(flops: 2 * Double(n) * Double(n) * Double(n))) {
            let g = Generator(seed: 0)
            let a = Tensor.uniform([n, n], generator: g).floats, b = Tensor.uniform([n, n], generator: g).floats
            let c = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
            c.initialize(repeating: 0, count: n * n)
            return {
                a.withUnsafeBufferPointer { pa in
                    b.withUnsafeBufferPointer { pb in
                        GEMM.sgemm(m: n, n: n, k: n, alpha: 1, a: pa.baseAddress!, rowStrideA: n, colStrideA: 1,
                                   b: pb.baseAddress!, rowStrideB: n, colStrideB: 1, beta: 0, c: c, ldc: n)
                    }
                }
                consume(c)
            }
        })
    }
    list += convWorkloads()
    list += fusedWorkloads()
    return list
}
