import EmberAutograd
import EmberTensor
import EmberStorage

/// `max(0, x)`. PyTorch parity: `torch.nn.ReLU`.
public final class ReLU: Module {
    public override init() { super.init() }
    public override func forward(_ input: Tensor) -> Tensor { input.relu() }
}

/// `x` for `x >= 0`, else `negativeSlope * x`. PyTorch parity: `torch.nn.LeakyReLU(negative_slope=0.01)`.
public final class LeakyReLU: Module {
    public let negativeSlope: Double
    public init(_ negativeSlope: Double = 0.01) { self.negativeSlope = negativeSlope; super.init() }
    public override func forward(_ input: Tensor) -> Tensor { input.leakyRelu(negativeSlope: negativeSlope) }
    public override var extraDescription: String { "negative_slope=\(negativeSlope)" }
}

/// Gaussian error linear unit, exact (`x Φ(x)`) or with the tanh approximation.
/// PyTorch parity: `torch.nn.GELU(approximate='none')`.
public final class GELU: Module {
    public let approximate: GELUApproximation
    public init(approximate: GELUApproximation = .none) { self.approximate = approximate; super.init() }
    public override func forward(_ input: Tensor) -> Tensor { input.gelu(approximate: approximate) }
    public override var extraDescription: String { "approximate='\(approximate.rawValue)'" }
}

/// `x * sigmoid(x)`. PyTorch parity: `torch.nn.SiLU`.
public final class SiLU: Module {
    public override init() { super.init() }
    public override func forward(_ input: Tensor) -> Tensor { input.silu() }
}

/// `x` for `x > 0`, else `alpha (exp(x) - 1)`. PyTorch parity: `torch.nn.ELU(alpha=1.0)`.
public final class ELU: Module {
    public let alpha: Double
    public init(_ alpha: Double = 1) { self.alpha = alpha; super.init() }
    public override func forward(_ input: Tensor) -> Tensor { input.elu(alpha: alpha) }
    public override var extraDescription: String { "alpha=\(alpha)" }
}

/// Hyperbolic tangent. PyTorch parity: `torch.nn.Tanh`.
public final class Tanh: Module {
    public override init() { super.init() }
    public override func forward(_ input: Tensor) -> Tensor { input.tanh() }
}

/// Logistic sigmoid. PyTorch parity: `torch.nn.Sigmoid`.
public final class Sigmoid: Module {
    public override init() { super.init() }
    public override func forward(_ input: Tensor) -> Tensor { input.sigmoid() }
}

/// Softmax along `axis`. PyTorch parity: `torch.nn.Softmax(dim)`; Ember requires the axis
/// (PyTorch's implicit-dim choice is deprecated there).
public final class Softmax: Module {
    public let axis: Int
    public init(axis: Int) { self.axis = axis; super.init() }
    public override func forward(_ input: Tensor) -> Tensor { input.softmax(axis: axis) }
    public override var extraDescription: String { "dim=\(axis)" }
}

/// Log-softmax along `axis`. PyTorch parity: `torch.nn.LogSoftmax(dim)`.
public final class LogSoftmax: Module {
    public let axis: Int
    public init(axis: Int) { self.axis = axis; super.init() }
    public override func forward(_ input: Tensor) -> Tensor { input.logSoftmax(axis: axis) }
    public override var extraDescription: String { "dim=\(axis)" }
}
