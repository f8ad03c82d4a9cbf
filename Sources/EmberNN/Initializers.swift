import EmberAutograd
import EmberTensor
import EmberStorage

/// The nonlinearity an initializer's gain is computed for.
///
/// PyTorch parity: the `nonlinearity` strings of `torch.nn.init.calculate_gain`.
public enum Nonlinearity: Sendable, Equatable {
    case linear, conv1d, conv2d, conv3d, sigmoid, tanh, relu, selu
    /// Leaky ReLU with the given negative slope (PyTorch's default 0.01).
    case leakyRelu(negativeSlope: Double = 0.01)

    /// The recommended gain: 1 for linear, convolutions and sigmoid; 5/3 for tanh; sqrt(2) for
    /// ReLU; sqrt(2 / (1 + slope^2)) for leaky ReLU; 3/4 for SELU.
    ///
    /// PyTorch parity: `torch.nn.init.calculate_gain`.
    public var gain: Double {
        switch self {
        case .linear, .conv1d, .conv2d, .conv3d, .sigmoid: 1
        case .tanh: 5.0 / 3
        case .relu: 2.0.squareRoot()
        case .leakyRelu(let a): (2 / (1 + a * a)).squareRoot()
        case .selu: 0.75
        }
    }
}

/// Which fan a Kaiming initializer preserves.
public enum FanMode: Sendable { case fanIn, fanOut }

/// Weight initializers that fill a parameter in place from a seedable generator.
///
/// PyTorch parity: `torch.nn.init`, same names, gains and fan rules: for a weight of shape
/// `[out, in, k...]`, `fanIn = in * prod(k)` and `fanOut = out * prod(k)`. The random streams
/// differ from PyTorch's (see ``Generator``).
public enum Init {
    /// `(fanIn, fanOut)` of a weight shape; needs rank >= 2, as PyTorch requires.
    public static func fans(_ shape: Shape) -> (fanIn: Int, fanOut: Int) {
        precondition(shape.count >= 2, "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions (shape \(shape))")
        var receptive = 1
        for d in shape.dropFirst(2) { receptive *= d }
        return (shape[1] * receptive, shape[0] * receptive)
    }

    /// Fills with `U(low, high)`. PyTorch parity: `init.uniform_(t, a=0, b=1)`.
    public static func uniform(_ p: Parameter, low: Double = 0, high: Double = 1, generator: Generator = .default) {
        p.value = .uniform(p.shape, low: low, high: high, dtype: p.value.dtype, generator: generator)
    }

    /// Fills with `N(mean, std^2)`. PyTorch parity: `init.normal_(t, mean=0, std=1)`.
    public static func normal(_ p: Parameter, mean: Double = 0, std: Double = 1, generator: Generator = .default) {
        p.value = .normal(p.shape, mean: mean, std: std, dtype: p.value.dtype, generator: generator)
    }

    /// Fills with `value`. PyTorch parity: `init.constant_`.
    public static func constant(_ p: Parameter, _ value: Double) {
        p.value = .full(p.shape, value, dtype: p.value.dtype)
    }

    /// Fills with zeros. PyTorch parity: `init.zeros_`.
    public static func zeros(_ p: Parameter) { constant(p, 0) }

    /// Fills with ones. PyTorch parity: `init.ones_`.
    public static func ones(_ p: Parameter) { constant(p, 1) }

    /// `U(-b, b)` with `b = gain * sqrt(6 / (fanIn + fanOut))`. PyTorch parity: `init.xavier_uniform_`.
    public static func xavierUniform(_ p: Parameter, gain: Double = 1, generator: Generator = .default) {
        let (fi, fo) = fans(p.shape)
        let bound = gain * (6 / Double(fi + fo)).squareRoot()
        uniform(p, low: -bound, high: bound, generator: generator)
    }

    /// `N(0, std^2)` with `std = gain * sqrt(2 / (fanIn + fanOut))`. PyTorch parity: `init.xavier_normal_`.
    public static func xavierNormal(_ p: Parameter, gain: Double = 1, generator: Generator = .default) {
        let (fi, fo) = fans(p.shape)
        normal(p, std: gain * (2 / Double(fi + fo)).squareRoot(), generator: generator)
    }

    /// `U(-b, b)` with `b = gain * sqrt(3 / fan)`.
    ///
    /// PyTorch parity: `init.kaiming_uniform_(t, a=0, mode='fan_in', nonlinearity='leaky_relu')`;
    /// `a` is the leaky-ReLU slope used for the gain.
    public static func kaimingUniform(_ p: Parameter, a: Double = 0, mode: FanMode = .fanIn,
                                      nonlinearity: Nonlinearity? = nil, generator: Generator = .default) {
        let fan = selectFan(p.shape, mode)
        let gain = (nonlinearity ?? .leakyRelu(negativeSlope: a)).gain
        let bound = fan == 0 ? 0 : gain * (3 / Double(fan)).squareRoot()
        uniform(p, low: -bound, high: bound, generator: generator)
    }

    /// `N(0, std^2)` with `std = gain / sqrt(fan)`. PyTorch parity: `init.kaiming_normal_`.
    public static func kaimingNormal(_ p: Parameter, a: Double = 0, mode: FanMode = .fanIn,
                                     nonlinearity: Nonlinearity? = nil, generator: Generator = .default) {
        let fan = selectFan(p.shape, mode)
        let gain = (nonlinearity ?? .leakyRelu(negativeSlope: a)).gain
        normal(p, std: fan == 0 ? 0 : gain / Double(fan).squareRoot(), generator: generator)
    }

    private static func selectFan(_ shape: Shape, _ mode: FanMode) -> Int {
        let (fi, fo) = fans(shape)
        return mode == .fanIn ? fi : fo
    }
}
