import Ember
import SeedNetwork

/// The LeNet-style network of the convolution benchmarks (issue #19); `Tools/bench/torch_workloads.py`
/// and `jax_workloads.py` build the same: `Conv2d(1,32,3) ReLU MaxPool2d(2) Conv2d(32,64,3) ReLU MaxPool2d(2) Flatten
/// Linear(1600,128) ReLU Linear(128,10)` on 28x28 images.
func makeLeNet() -> Sequential {
    Sequential(Conv2d(1, 32, 3), ReLU(), MaxPool2d(2), Conv2d(32, 64, 3), ReLU(), MaxPool2d(2), Flatten(),
               Linear(1600, 128), ReLU(), Linear(128, 10))
}

/// Multiply-adds times two of a convolution: `2 N C_out outPlane (C_in / groups) kernelVolume`.
func convFlops(batch: Int, inChannels: Int, outChannels: Int, output: Int, kernel: Int) -> Double {
    2 * Double(batch * outChannels * output * output) * Double(inChannels * kernel * kernel)
}

/// The convolution workloads. FLOP counts are those of the products: a training step counts each
/// layer's forward, its weight gradient, and its input gradient except for the first layer (whose
/// input needs none).
func convWorkloads() -> [Workload] {
    var list: [Workload] = []
    let lenetForward = convFlops(batch: 64, inChannels: 1, outChannels: 32, output: 26, kernel: 3)
        + convFlops(batch: 64, inChannels: 32, outChannels: 64, output: 11, kernel: 3)
        + 2 * 64 * (1600 * 128 + 128 * 10)
    let lenetTrain = 2 * convFlops(batch: 64, inChannels: 1, outChannels: 32, output: 26, kernel: 3)
        + 3 * convFlops(batch: 64, inChannels: 32, outChannels: 64, output: 11, kernel: 3)
        + 3 * 2 * 64 * (1600 * 128 + 128 * 10)
    list.append(Workload(key: "cnn.lenet_train_b64", group: "cnn", title: "LeNet: training step, batch 64",
                         unit: .gflops(flops: lenetTrain)) {
        let g = Generator(seed: 0)
        let model = withGenerator(g) { makeLeNet() }
        let optimizer = SGD(model.parameters(), lr: 0.01, momentum: 0.9)
        let x = Tensor.uniform([64, 1, 28, 28], generator: g)
        let y = Tensor.randint(high: 10, shape: [64], generator: g)
        return { consume(trainStep(model, optimizer, x, y)) }
    })
    list.append(Workload(key: "cnn.lenet_eval_b64", group: "cnn", title: "LeNet: eval forward, batch 64",
                         unit: .gflops(flops: lenetForward)) {
        let g = Generator(seed: 0)
        let model = withGenerator(g) { makeLeNet() }
        model.eval()
        let x = Tensor.uniform([64, 1, 28, 28], generator: g)
        return { withNoGrad { consume(model(x)) } }
    })
    let resnetConv = convFlops(batch: 32, inChannels: 32, outChannels: 32, output: 32, kernel: 3)
    list.append(Workload(key: "cnn.resnet_train_b32", group: "cnn", title: "ResNet 3 blocks x 32 ch: training step, batch 32",
                         unit: .gflops(flops: 17 * resnetConv)) {
        let g = Generator(seed: 0)
        let model = withGenerator(g) { Sequential(BasicBlock(32), BasicBlock(32), BasicBlock(32)) }
        let optimizer = SGD(model.parameters(), lr: 0.01, momentum: 0.9)
        let x = Tensor.normal([32, 32, 32, 32], generator: g)
        let target = Tensor.normal([32, 32, 32, 32], generator: g)
        return {
            optimizer.zeroGrad()
            let loss = mseLoss(model(x), target: target)
            loss.backward()
            optimizer.step()
            consume(loss)
        }
    })
    list.append(Workload(key: "cnn.resnet_eval_b32", group: "cnn", title: "ResNet 3 blocks x 32 ch: eval forward, batch 32",
                         unit: .gflops(flops: 6 * resnetConv)) {
        let g = Generator(seed: 0)
        let model = withGenerator(g) { Sequential(BasicBlock(32), BasicBlock(32), BasicBlock(32)) }
        model.eval()
        // Untrained statistics on purpose (PyTorch's side is untrained too): no report.
        for module in model.modules() { module.reportsModeMistakes = false }
        let x = Tensor.normal([32, 32, 32, 32], generator: g)
        return { withNoGrad { consume(model(x)) } }
    })
    // Conv2d alone (forward, no grad), 3x3 with padding 1.
    for (batch, cin, cout, side) in [(32, 32, 32, 32), (32, 64, 64, 16), (8, 128, 128, 16), (64, 1, 32, 28)] {
        list.append(Workload(key: "conv.\(cin)x\(cout)_\(side)_b\(batch)", group: "conv",
                             title: "Conv2d \(cin)->\(cout) 3x3 pad 1, \(side)x\(side), batch \(batch)",
                             unit: .gflops(flops: convFlops(batch: batch, inChannels: cin, outChannels: cout, output: side, kernel: 3))) {
            let g = Generator(seed: 0)
            let conv = withGenerator(g) { Conv2d(cin, cout, 3, padding: 1) }
            let x = Tensor.uniform([batch, cin, side, side], generator: g)
            return { withNoGrad { consume(conv(x)) } }
        })
    }
    return list
}
