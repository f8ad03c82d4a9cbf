import Ember

/// The network from the classic explanation of `model.eval()`:
/// `Linear(10, 20) -> ReLU -> BatchNorm1d(20) -> Dropout(0.5) -> Linear(20, 2)`.
///
/// Two of its layers behave differently by mode: `BatchNorm1d` normalises with the batch's
/// statistics (and updates its running ones) in training mode and with its running statistics in
/// evaluation mode; `Dropout` zeroes half the activations in training mode and is the identity in
/// evaluation mode.
///
/// PyTorch parity: the state-dict keys are those of the equivalent PyTorch module with attributes
/// `fc1`, `relu`, `bn1`, `dropout`, `fc2`: `fc1.weight, fc1.bias, bn1.weight, bn1.bias,
/// bn1.running_mean, bn1.running_var, bn1.num_batches_tracked, fc2.weight, fc2.bias`.
public final class SeedNetwork: Module {
    public let fc1: Linear
    public let relu = ReLU()
    public let bn1: BatchNorm1d
    public let dropout: Dropout
    public let fc2: Linear

    /// - Parameters:
    ///   - inputs: input features (10 in the classic example).
    ///   - hidden: hidden width (20).
    ///   - outputs: classes (2).
    ///   - dropout: dropout probability (0.5).
    public init(inputs: Int = 10, hidden: Int = 20, outputs: Int = 2, dropout p: Double = 0.5) {
        fc1 = Linear(inputs, hidden)
        bn1 = BatchNorm1d(hidden)
        dropout = Dropout(p)
        fc2 = Linear(hidden, outputs)
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        fc2(dropout(bn1(relu(fc1(input)))))
    }
}
