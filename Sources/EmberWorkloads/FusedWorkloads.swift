import Ember
import SeedNetwork

/// Eval-mode folding (`fusedForInference()`, issue #15 item 4): the benchmark MLP and the
/// ResNet stack with each BatchNorm folded into the layer before it and dropout removed, beside
/// the unfused `mlp.eval_b*` and `cnn.resnet_eval_b32` rows (same models, seeds and inputs).
/// `Tools/bench/torch_workloads.py` times PyTorch's `fuse_modules` on the same models.
func fusedWorkloads() -> [Workload] {
    var list = [1024, 1].map { mlpEvalWorkload(batch: $0, folded: true) }
    let resnetConv = convFlops(batch: 32, inChannels: 32, outChannels: 32, output: 32, kernel: 3)
    list.append(Workload(key: "fused.resnet_eval_b32", group: "fused", title: "ResNet 3 blocks x 32 ch folded: eval forward, batch 32",
                         unit: .gflops(flops: 6 * resnetConv)) {
        let g = Generator(seed: 0)
        let build = { Sequential(BasicBlock(32), BasicBlock(32), BasicBlock(32)) }
        let model = withGenerator(g) { build() }
        model.eval()
        let pairs = (0..<3).flatMap { i in [(layer: "\(i).conv1", batchNorm: "\(i).bn1"), (layer: "\(i).conv2", batchNorm: "\(i).bn2")] }
        let fused = model.fusedForInference(folding: pairs, rebuilding: build)
        let x = Tensor.normal([32, 32, 32, 32], generator: g)
        return { withNoGrad { consume(fused(x)) } }
    })
    return list
}
