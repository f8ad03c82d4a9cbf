import Ember

/// A ResNet basic block at `channels`: `conv3x3-BN-ReLU-conv3x3-BN`, plus the input, then ReLU
/// (the convolution benchmarks' ResNet stack and the folding tests use it).
///
/// The forward writes each convolution with what follows it (`conv1(x, then: bn1, relu: true)`):
/// the same values as `(bn2(conv2(bn1(conv1(x)).relu())) + x).relu()` in every mode, and in
/// inference the BatchNorms, the sum and the ReLUs run on each sample's convolution output while
/// it is in cache.
///
/// PyTorch parity: torchvision's `BasicBlock` without downsampling; state-dict keys `conv1.weight`,
/// `bn1.running_mean`, ...
public final class BasicBlock: Module {
    public let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d

    public init(_ channels: Int) {
        conv1 = Conv2d(channels, channels, 3, padding: 1, bias: false)
        bn1 = BatchNorm2d(channels)
        conv2 = Conv2d(channels, channels, 3, padding: 1, bias: false)
        bn2 = BatchNorm2d(channels)
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor {
        conv2(conv1(x, then: bn1, relu: true), then: bn2, adding: x, relu: true)
    }
}
