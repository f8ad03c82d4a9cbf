import Ember

/// A small convolutional classifier for square one-channel images (the 8x8 digits): two blocks
/// of `Conv2d(3x3, padding 1, no bias) -> BatchNorm2d -> ReLU -> Dropout2d -> MaxPool2d(2)`, then
/// global average pooling and a `Linear` head.
///
/// Both mode-dependent kinds of layer act per channel: `BatchNorm2d` normalises each channel with
/// the batch's statistics over `N x H x W` in training and with its running statistics in
/// evaluation; `Dropout2d` zeroes whole channels of a sample in training and nothing in evaluation.
///
/// PyTorch parity: the same `nn.Sequential`-free module with attributes `conv1`, `bn1`, `conv2`,
/// `bn2`, `head` has the same state-dict keys (`conv1.weight`, `bn1.running_mean`, ...,
/// `head.bias`).
public final class DigitCNN: Module {
    public let conv1: Conv2d
    public let bn1: BatchNorm2d
    public let conv2: Conv2d
    public let bn2: BatchNorm2d
    public let dropout: Dropout2d
    public let pool = MaxPool2d(2)
    public let globalPool = AdaptiveAvgPool2d(1)
    public let head: Linear
    /// The image side: inputs are `[N, side * side]` or `[N, 1, side, side]`.
    public let side: Int

    /// - Parameters:
    ///   - side: the image side (8 for the digits); at least 4, for the two 2x2 poolings.
    ///   - channels: the second block's channel count; the first block has half as many.
    public init(side: Int = 8, channels: Int = 32, classes: Int = 10, dropout: Double = 0.1) {
        precondition(side >= 4, "DigitCNN: the image side must be at least 4, got \(side)")
        let first = max(1, channels / 2)
        self.side = side
        conv1 = Conv2d(1, first, 3, padding: 1, bias: false)
        bn1 = BatchNorm2d(first)
        conv2 = Conv2d(first, channels, 3, padding: 1, bias: false)
        bn2 = BatchNorm2d(channels)
        self.dropout = Dropout2d(dropout)
        head = Linear(channels, classes)
        super.init()
    }

    /// `input`: `[N, side * side]` or `[N, 1, side, side]`; returns logits `[N, classes]`.
    public override func forward(_ input: Tensor) -> Tensor {
        var x = input.reshaped([input.shape[0], 1, side, side])
        x = pool(dropout(bn1(conv1(x)).relu()))
        x = pool(dropout(bn2(conv2(x)).relu()))
        return head(globalPool(x).flattened(startAxis: 1))
    }
}
