import Ember
import Foundation

/// The work one call of a workload does, for its fraction of the roofline.
enum Work: Equatable {
    /// Floating-point operations of the counted products (twice their multiply-adds), compared
    /// with the run's sgemm rate.
    case flops(Double)
    /// Bytes a bandwidth-bound call must move at least, compared with the run's copy bandwidth.
    case bytes(Double)
}

/// The same run's reference rates at one thread count: what a workload's achieved rate is divided
/// by in the `% roof` column.
struct Roofline: Codable, Equatable {
    /// Ember's sgemm at n = 1024, FLOP per second.
    var sgemmFlopsPerSecond: Double
    /// A large `memcpy`, bytes read plus bytes written per second.
    var copyBytesPerSecond: Double

    /// `work` done in `seconds` as a fraction of the matching reference rate.
    func fraction(of work: Work, seconds: Double) -> Double {
        switch work {
        case .flops(let flops): flops / seconds / sgemmFlopsPerSecond
        case .bytes(let bytes): bytes / seconds / copyBytesPerSecond
        }
    }

    /// The size of the reference sgemm.
    static let sgemmSize = 1024
    /// The bytes of each of the copy's source and destination (far beyond the last-level cache).
    static let copyBytes = 64 << 20

    /// Times the references under `threads` threads: the sgemm unless `sgemm` (Ember's timing of
    /// `sgemm.1024` in this run) is given, and the copy.
    static func measure(threads: Int, budget: Double, sgemm: Timing?) -> Roofline {
        let n = Double(sgemmSize)
        let sgemmTiming = sgemm ?? Threading.withThreads(threads) {
            EmberWorkloads.measure(budget: budget, sgemmWorkload(n: sgemmSize).make())
        }
        let source = UnsafeMutableRawPointer.allocate(byteCount: copyBytes, alignment: 64)
        let destination = UnsafeMutableRawPointer.allocate(byteCount: copyBytes, alignment: 64)
        defer { source.deallocate(); destination.deallocate() }
        memset(source, 1, copyBytes)
        memset(destination, 0, copyBytes)
        let copy = EmberWorkloads.measure(budget: budget, sampleSeconds: 0.05, minSamples: 3) {
            memcpy(destination, source, copyBytes)
            consume(destination)
        }
        return Roofline(sgemmFlopsPerSecond: 2 * n * n * n / sgemmTiming.median,
                        copyBytesPerSecond: 2 * Double(copyBytes) / copy.median)
    }
}

/// FLOP of a stack of fully connected layers (`layers[i]` = (inputs, outputs)) on `batch` rows:
/// the forward products, and for a training step also each layer's weight gradient and the input
/// gradient of every layer but the first (whose input needs none): `2 batch in out` each.
/// Biases, normalisation and activations are not counted.
func denseFlops(batch: Int, layers: [(Int, Int)], training: Bool) -> Double {
    let products = layers.map { 2 * Double(batch) * Double($0.0 * $0.1) }
    let forward = products.reduce(0, +)
    guard training else { return forward }
    return 2 * forward + products.dropFirst().reduce(0, +)
}

/// The benchmark MLP's Linear layers.
let mlpLayers = [(784, 512), (512, 256), (256, 10)]
/// The seed network's Linear layers.
let seedLayers = [(10, 20), (20, 2)]

/// The least a forward pass of the MLP at `batch` must move: every parameter and BatchNorm
/// statistic read once, plus the input and each layer's output written (Linear, BatchNorm and ReLU;
/// Dropout is the identity in eval mode), all float32.
func mlpForwardBytes(batch: Int) -> Double {
    let weights = mlpLayers.reduce(0) { $0 + $1.0 * $1.1 + $1.1 }
    let batchNorm = mlpLayers.dropLast().reduce(0) { $0 + 4 * $1.1 }  // weight, bias, mean, variance
    let activations = 784 + mlpLayers.dropLast().reduce(0) { $0 + 3 * $1.1 } + 10
    return 4 * Double(weights + batchNorm + batch * activations)
}

/// The sgemm workload `C = A B` for n x n row-major matrices.
func sgemmWorkload(n: Int) -> Workload {
    Workload(key: "sgemm.\(n)", group: "sgemm", title: "sgemm n=\(n)",
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
    }
}
