import EmberTensor

/// Which formula `gelu` uses.
///
/// PyTorch parity: the `approximate` argument of `torch.nn.functional.gelu` (`'none'`, `'tanh'`).
public enum GELUApproximation: String, Sendable, Hashable, CaseIterable {
    /// The exact form with the error function: `x * Phi(x)`.
    case none
    /// The tanh approximation: `0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))`.
    case tanh
}

extension Tensor {
    /// Rectified linear unit, `max(x, 0)` element-wise (NaN stays NaN).
    ///
    /// Gradient: `g` where `x > 0`, else 0 (so `relu'(0) = 0`, as PyTorch).
    ///
    /// PyTorch parity: `torch.relu` / `F.relu`; int64 stays int64; bool is refused ("Boolean
    /// inputs not supported for relu").
    public func relu() -> Tensor {
        let y = Kernels.relu(self)
        return y.recorded("relu", self, twice: true) { g in
            [creatingGraph ? g.maskMap("reluBackward") { Kernels.reluBackward($0, y) } : Kernels.reluBackward(g, y)]
        }
    }

    /// Leaky ReLU: `x` where `x > 0`, else `negativeSlope * x`.
    ///
    /// Gradient: `g` where `x > 0`, else `negativeSlope * g` (including at 0).
    ///
    /// - Parameter negativeSlope: the slope for negative inputs (PyTorch's default 0.01).
    ///
    /// PyTorch parity: `F.leaky_relu(x, negative_slope=0.01)`; float input only.
    public func leakyRelu(negativeSlope: Double = 0.01) -> Tensor {
        let x = detached()
        return Kernels.leakyRelu(self, negativeSlope: negativeSlope).recorded("leakyRelu", self, twice: true) { g in
            [creatingGraph ? g.maskMap("leakyReluBackward") { Kernels.leakyReluBackward($0, x, negativeSlope: negativeSlope) }
                           : Kernels.leakyReluBackward(g, x, negativeSlope: negativeSlope)]
        }
    }

    /// Logistic sigmoid `1 / (1 + e^-x)`, computed without overflow for any `x`.
    ///
    /// Gradient: `g * y * (1 - y)` with `y = sigmoid(x)`.
    ///
    /// PyTorch parity: `torch.sigmoid`; integer input gives float32.
    public func sigmoid() -> Tensor {
        let y = Kernels.sigmoid(self)
        return y.recorded("sigmoid", self, twice: true) { [self] g in
            guard creatingGraph else { return [Kernels.sigmoidBackward(g, y)] }
            let s = self.sigmoid()
            return [g * s * (1 - s)]
        }
    }

    /// Gaussian error linear unit, `x * Phi(x)` with `Phi` the standard normal CDF:
    /// `0.5 x (1 + erf(x / sqrt 2))`, or with `.tanh`,
    /// `0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))`.
    ///
    /// Gradient: `Phi(x) + x phi(x)` for the exact form, PyTorch's formula for the tanh form.
    ///
    /// - Parameter approximate: `.none` (exact, the default) or `.tanh`.
    ///
    /// PyTorch parity: `F.gelu(x, approximate='none')`; float input only.
    public func gelu(approximate: GELUApproximation = .none) -> Tensor {
        let x = detached()
        let useTanh = approximate == .tanh
        return Kernels.gelu(self, tanhApproximation: useTanh).recorded("gelu", self, twice: true) { [self] g in
            guard creatingGraph else { return [Kernels.geluBackward(g, x, tanhApproximation: useTanh)] }
            if useTanh {
                return recomputedGradients([self], g) { args in
                    let v = args[0]!
                    return v * 0.5 * (1 + ((v + v.pow(3) * 0.044715) * (2 / Double.pi).squareRoot()).tanh())
                }
            }
            // gelu'(x) = Phi(x) + x phi(x), recorded with its own derivative phi(x) (2 - x^2).
            let derivative = Kernels.geluBackward(Tensor.ones(x.shape, dtype: x.dtype), x, tanhApproximation: false)
                .recorded("geluDerivative", self, twice: true) { g2 in
                    [g2 * (self * self * -0.5).exp() * (2 - self * self) * (1 / (2 * Double.pi).squareRoot())]
                }
            return [g * derivative]
        }
    }

    /// Sigmoid linear unit (swish), `x * sigmoid(x)`, computed as `x / (1 + e^-x)`.
    ///
    /// Gradient: `g * s * (1 + x (1 - s))` with `s = sigmoid(x)`.
    ///
    /// PyTorch parity: `F.silu`; float input only.
    public func silu() -> Tensor {
        let x = detached()
        return Kernels.silu(self).recorded("silu", self, twice: true) { [self] g in
            guard creatingGraph else { return [Kernels.siluBackward(g, x)] }
            let s = self.sigmoid()
            return [g * s * (1 + self * (1 - s))]
        }
    }

    /// Softplus, `log(1 + e^(beta x)) / beta`, which is `x` itself once `beta x > threshold`.
    ///
    /// Gradient: `g * z / (z + 1)` with `z = e^(beta x)`, or `g` past the threshold.
    ///
    /// - Parameters:
    ///   - beta: sharpness (PyTorch's default 1).
    ///   - threshold: above `beta x > threshold` the function is linear (default 20).
    ///
    /// PyTorch parity: `F.softplus(x, beta=1, threshold=20)`, including its threshold rule;
    /// float input only.
    public func softplus(beta: Double = 1, threshold: Double = 20) -> Tensor {
        let x = detached()
        return Kernels.softplus(self, beta: beta, threshold: threshold).recorded("softplus", self, twice: true) { [self] g in
            guard creatingGraph else { return [Kernels.softplusBackward(g, x, beta: beta, threshold: threshold)] }
            // Past the threshold the function is x itself: gradient g; below, g * sigmoid(beta x).
            let linear = (x * beta).gt(threshold).to(x.dtype)
            return [g * ((self * beta).sigmoid() * (1 - linear) + linear)]
        }
    }

    /// Exponential linear unit: `x` where `x > 0`, else `alpha (e^x - 1)`.
    ///
    /// Gradient: `g` where `x > 0`, else `g alpha e^x` (so `alpha * g` at 0, as PyTorch).
    ///
    /// - Parameter alpha: the negative saturation value (PyTorch's default 1).
    ///
    /// PyTorch parity: `F.elu(x, alpha=1.0)`; float input only.
    public func elu(alpha: Double = 1) -> Tensor {
        let x = detached()
        return Kernels.elu(self, alpha: alpha).recorded("elu", self, twice: true) { [self] g in
            guard creatingGraph else { return [Kernels.eluBackward(g, x, alpha: alpha)] }
            let positive = x.gt(0).to(x.dtype)
            return [g * (positive + (1 - positive) * self.clamp(max: 0).exp() * alpha)]
        }
    }
}
