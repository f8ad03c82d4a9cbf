import EmberAutograd
import EmberFunctional
import EmberTensor
import EmberStorage

/// Zeroes elements with probability `p` in training mode and scales the kept ones by `1/(1-p)`;
/// the identity in evaluation mode.
///
/// PyTorch parity: `torch.nn.Dropout(p=0.5)`: the same validation message, inverted scaling, the
/// input returned unchanged in eval (no random numbers drawn). Draws come from `generator`, or the
/// task's default generator when `nil`.
public class Dropout: Module {
    public let p: Double
    /// This layer's own random source; `nil` uses ``Generator/default``.
    public var generator: Generator?

    public init(_ p: Double = 0.5, generator: Generator? = nil) {
        validateDropout(p, "Dropout")
        self.p = p
        self.generator = generator
        super.init()
    }

    /// The shape of one independent keep/drop decision for `input`.
    func maskShape(for input: Tensor) -> Shape { input.shape }

    public override func forward(_ input: Tensor) -> Tensor {
        checkTrainingWithoutGrad()
        return noteEvalModeOutput(dropout(input, p: p, training: isTraining, maskShape: maskShape(for: input), generator: generator ?? .default))
    }

    /// Dropout with `p > 0` drops in training mode only.
    public override var isModeDependent: Bool { p > 0 }

    public override var extraDescription: String { "p=\(formatPythonShort(p)), inplace=False" }
}

/// Zeroes whole channels (`x[n, c, :]`) of `[N, C, L]` or `[C, L]` input.
///
/// PyTorch parity: `torch.nn.Dropout1d`, including its rank error.
public final class Dropout1d: Dropout {
    override func maskShape(for input: Tensor) -> Shape {
        precondition(input.rank == 2 || input.rank == 3,
                     "\(errorContext): dropout1d: Expected 2D or 3D input, but received a \(input.rank)D input. Note that dropout1d exists to provide channel-wise dropout on inputs with 1 spatial dimension, a channel dimension, and an optional batch dimension (i.e. 2D or 3D inputs).")
        var s = input.shape
        s[input.rank - 1] = 1
        return s
    }
}

/// Zeroes whole channels (`x[n, c, :, :]`) of `[N, C, H, W]` or `[C, H, W]` input.
///
/// PyTorch parity: `torch.nn.Dropout2d` for 4-D input. Ember differs on purpose for 3-D input:
/// PyTorch treats it as `[N, C, L]` with a deprecation warning; Ember treats it as unbatched
/// `[C, H, W]`, the documented meaning PyTorch is moving to.
public final class Dropout2d: Dropout {
    override func maskShape(for input: Tensor) -> Shape {
        precondition(input.rank == 3 || input.rank == 4,
                     "\(errorContext): dropout2d: Expected 3D or 4D input, but received a \(input.rank)D input (shape \(input.shape))")
        var s = input.shape
        s[input.rank - 1] = 1
        s[input.rank - 2] = 1
        return s
    }
}

/// Zeroes whole channels (`x[n, c, :, :, :]`) of `[N, C, D, H, W]` or `[C, D, H, W]` input.
///
/// PyTorch parity: `torch.nn.Dropout3d`.
public final class Dropout3d: Dropout {
    override func maskShape(for input: Tensor) -> Shape {
        precondition(input.rank == 4 || input.rank == 5,
                     "\(errorContext): dropout3d: Expected 4D or 5D input, but received a \(input.rank)D input (shape \(input.shape))")
        var s = input.shape
        for axis in (input.rank - 3)..<input.rank { s[axis] = 1 }
        return s
    }
}

/// Dropout for self-normalising (SELU) networks: keeps mean 0 and variance 1.
///
/// With keep mask `m` (probability `1 - p`), `alpha' = -1.7580993408473766`,
/// `a = ((1 - p)(1 + p alpha'^2))^(-1/2)`, `b = -a alpha' p`: `y = a (m x + (1 - m) alpha') + b`.
/// The identity in evaluation mode.
///
/// PyTorch parity: `torch.nn.AlphaDropout(p=0.5)`.
public final class AlphaDropout: Dropout {
    public override func forward(_ input: Tensor) -> Tensor {
        checkTrainingWithoutGrad()
        guard isTraining, p > 0 else { return noteEvalModeOutput(input) }
        if p == 1 { return input * Tensor.zeros(input.shape, dtype: input.dtype) }
        let alpha = -1.7580993408473766
        let a = 1 / ((1 - p) * (1 + p * alpha * alpha)).squareRoot()
        let b = -a * alpha * p
        let keep = Tensor.bernoulli(input.shape, p: 1 - p, dtype: input.dtype, generator: generator ?? .default)
        // y = a * (m x + (1 - m) alpha') + b = (a m) x + (a alpha' (1 - m) + b)
        let scale = Kernels.scale(keep, a)
        let shift = Kernels.add(Kernels.scale(keep, -a * alpha), Tensor.full([], a * alpha + b, dtype: input.dtype))
        return input * scale + shift
    }
}
