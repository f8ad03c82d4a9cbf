import Ember

/// Classifies an image read row by row: an `LSTM` over the rows (each row is one time step),
/// then a `Linear` layer on the last step's output.
///
/// For the 8x8 digits: 8 steps of 8 features. The mode changes only the dropout between the
/// stacked LSTM layers; the LSTM keeps no state between calls.
///
/// PyTorch parity: the equivalent module with attributes `lstm` (`nn.LSTM(..., batch_first=True)`)
/// and `head` has the same state-dict keys (`lstm.weight_ih_l0`, ..., `head.weight`, `head.bias`).
public final class RowLSTM: Module {
    public let lstm: LSTM
    public let head: Linear
    public let steps: Int
    public let features: Int

    public init(steps: Int = 8, features: Int = 8, hidden: Int = 64, classes: Int = 10, layers: Int = 2, dropout: Double = 0.2) {
        self.steps = steps
        self.features = features
        lstm = LSTM(features, hidden, numLayers: layers, batchFirst: true, dropout: layers > 1 ? dropout : 0)
        head = Linear(hidden, classes)
        super.init()
    }

    /// `input`: `[N, steps * features]` (or `[N, steps, features]`); returns logits `[N, classes]`.
    public override func forward(_ input: Tensor) -> Tensor {
        let sequence = input.reshaped([input.shape[0], steps, features])
        let (output, _) = lstm(sequence)
        return head(output.select(axis: 1, index: -1))
    }
}
