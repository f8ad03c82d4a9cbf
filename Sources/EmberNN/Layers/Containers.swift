import EmberAutograd
import EmberTensor
import EmberStorage

/// Runs its layers in order, each on the previous one's output.
///
/// ```swift
/// let model = Sequential(Linear(10, 20), ReLU(), BatchNorm1d(20), Dropout(0.5), Linear(20, 2))
/// ```
///
/// PyTorch parity: `torch.nn.Sequential`; children are named `"0"`, `"1"`, ... so state-dict keys
/// (`0.weight`, `4.bias`) match PyTorch's.
public final class Sequential: Module {
    /// The layers, in order.
    @Flattened public var layers: [Module]

    public init(_ layers: [Module]) {
        self.layers = layers
        super.init()
    }

    public convenience init(_ layers: Module...) { self.init(layers) }

    /// Runs the layers in order. A `Linear` followed by an eval-mode `BatchNorm1d` and/or a `ReLU`
    /// runs them in its product's epilogue when nothing observes the values in between
    /// (``Linear/forwardFusing(_:_:)``): the same bits, fewer passes over the activations. A
    /// `ReLU` followed by a max pooling runs after the pooling instead (``reluCommutes(at:_:)``):
    /// the same values and gradients, on a quarter of the elements for 2x2 windows. A `Conv2d`
    /// followed by a 2x2 `MaxPool2d` (a `ReLU` between or not) pools each sample's convolution
    /// output while it is in cache (``Conv2d/forwardPooling(_:_:)``), the same bits again;
    /// otherwise, without gradients, a `Conv2d` followed by an eval-mode `BatchNorm2d` and/or a
    /// `ReLU` applies them to each sample's output in cache (``Conv2d/forwardFusing(_:_:)``). A
    /// BatchNorm followed by a `ReLU` applies it as it normalises, in any mode.
    public override func forward(_ input: Tensor) -> Tensor {
        var x = input
        var i = 0
        while i < layers.count {
            if let linear = layers[i] as? Linear, let (y, covered) = linear.forwardFusing(x, layers[(i + 1)...]) {
                x = y
                i += 1 + covered
            } else if let conv = layers[i] as? Conv2d,
                      let (y, covered) = conv.forwardPooling(x, layers[(i + 1)...]) ?? conv.forwardFusing(x, layers[(i + 1)...]) {
                x = y
                i += 1 + covered
            } else if let norm = normalizesWithReLU(at: i) {
                x = norm.forward(x, adding: nil, relu: true)
                i += 2
            } else if reluCommutes(at: i, x) {
                x = layers[i](layers[i + 1](x))
                i += 2
            } else {
                x = layers[i](x)
                i += 1
            }
        }
        return x
    }

    /// The BatchNorm at `i` when layer `i + 1` is a `ReLU` it can apply as it normalises (any
    /// mode; bitwise the two layers, gradients included): `BatchNorm1d/2d/3d` themselves (a
    /// subclass may override `forward`), no hooks on either, no anomaly detection.
    private func normalizesWithReLU(at i: Int) -> BatchNormBase? {
        guard i + 1 < layers.count, layers[i + 1] is ReLU, let norm = layers[i] as? BatchNormBase,
              norm is BatchNorm1d || norm is BatchNorm2d || norm is BatchNorm3d,
              norm.hookTable == nil, layers[i + 1].hookTable == nil, !AnomalyDetection.isActive else { return nil }
        return norm
    }

    /// Whether layers `i` and `i + 1` are a `ReLU` and a max pooling that may run in the other
    /// order. ReLU is non-decreasing, so the maximum of the rectified window is the rectified
    /// maximum, taken at the same element (ties keep the first, NaN wins, as before; a window
    /// whose elements are all at most 0 gives 0 and a zero gradient either way). Not when hooks
    /// or anomaly detection would see the value in between, nor for integer or Boolean inputs
    /// (whose errors would come from the other layer first).
    private func reluCommutes(at i: Int, _ x: Tensor) -> Bool {
        guard i + 1 < layers.count, layers[i] is ReLU, x.dtype.isFloatingPoint,
              layers[i + 1] is MaxPool1d || layers[i + 1] is MaxPool2d || layers[i + 1] is MaxPool3d,
              layers[i].hookTable == nil, layers[i + 1].hookTable == nil, !AnomalyDetection.isActive else { return false }
        return true
    }

    /// The layer at `index`.
    public subscript(index: Int) -> Module { layers[index] }

    /// Number of layers.
    public var count: Int { layers.count }

    /// Appends a layer. PyTorch parity: `Sequential.append`.
    public func append(_ layer: Module) { layers.append(layer) }
}

/// Returns its input unchanged. PyTorch parity: `torch.nn.Identity`.
public final class Identity: Module {
    public override init() { super.init() }
    public override func forward(_ input: Tensor) -> Tensor { input }
}

/// Flattens dimensions `startAxis...endAxis` into one.
///
/// PyTorch parity: `torch.nn.Flatten(start_dim=1, end_dim=-1)`.
public final class Flatten: Module {
    public let startAxis: Int
    public let endAxis: Int

    public init(startAxis: Int = 1, endAxis: Int = -1) {
        self.startAxis = startAxis
        self.endAxis = endAxis
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        let r = max(input.rank, 1)
        let s = startAxis < 0 ? startAxis + r : startAxis, e = endAxis < 0 ? endAxis + r : endAxis
        precondition(s >= 0 && e < r && s <= e || input.rank == 0,
                     "\(errorContext): cannot flatten dimensions \(startAxis)...\(endAxis) of a tensor with shape \(input.shape)")
        if input.rank == 0 { return input.reshaped([1]) }
        var shape = Shape(input.shape.prefix(s))
        shape.append(input.shape[s...e].reduce(1, *))
        for d in input.shape.suffix(from: e + 1) { shape.append(d) }
        return input.reshaped(shape)
    }

    public override var extraDescription: String { "start_dim=\(startAxis), end_dim=\(endAxis)" }
}

/// Splits dimension `axis` into `sizes`.
///
/// PyTorch parity: `torch.nn.Unflatten(dim, unflattened_size)`.
public final class Unflatten: Module {
    public let axis: Int
    public let sizes: [Int]

    public init(_ axis: Int, _ sizes: [Int]) {
        self.axis = axis
        self.sizes = sizes
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        let a = axis < 0 ? axis + input.rank : axis
        precondition(a >= 0 && a < input.rank, "\(errorContext): dimension \(axis) out of range for shape \(input.shape)")
        var known = 1
        for s in sizes where s != -1 { known *= s }
        precondition(sizes.filter { $0 == -1 }.count <= 1 && (sizes.contains(-1) ? input.shape[a] % max(known, 1) == 0 : known == input.shape[a]),
                     "\(errorContext): unflattened_size \(sizes) does not match dimension \(axis) of size \(input.shape[a]) in shape \(input.shape)")
        var shape = Shape(input.shape.prefix(a))
        for s in sizes { shape.append(s == -1 ? input.shape[a] / known : s) }
        for d in input.shape.suffix(from: a + 1) { shape.append(d) }
        return input.reshaped(shape)
    }

    public override var extraDescription: String { "dim=\(axis), unflattened_size=(\(sizes.map(String.init).joined(separator: ", ")))" }
}
