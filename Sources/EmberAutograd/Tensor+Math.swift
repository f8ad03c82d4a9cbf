import EmberTensor

// Element-wise math. Integer and bool inputs to float functions (exp, log, sqrt, tanh, ...) give
// float32, as PyTorch. Each op makes one allocation for its result; each backward one fused pass.

extension Tensor {
    /// Element-wise `|x|`.
    ///
    /// Gradient: `g * sgn(x)`, which is 0 at `x == 0` (PyTorch's choice at the kink).
    ///
    /// PyTorch parity: `torch.abs`; int64 stays int64; bool is refused ("abs_cpu" not implemented
    /// for 'Bool').
    public func abs() -> Tensor {
        let x = detached()
        return Kernels.abs(self).recorded("abs", self, twice: true) { g in
            [creatingGraph ? g.maskMap("absBackward") { Kernels.absBackward($0, x) } : Kernels.absBackward(g, x)]
        }
    }

    /// Element-wise `e^x`.
    ///
    /// Gradient: `g * e^x`. PyTorch parity: `torch.exp`.
    public func exp() -> Tensor {
        let y = Kernels.exp(self)
        return y.recorded("exp", self, twice: true) { [self] g in [creatingGraph ? g * self.exp() : Kernels.mul(g, y)] }
    }

    /// Element-wise natural logarithm (`-inf` at 0, NaN below).
    ///
    /// Gradient: `g / x`. PyTorch parity: `torch.log`.
    public func log() -> Tensor {
        let x = detached()
        return Kernels.log(self).recorded("log", self, twice: true) { [self] g in [creatingGraph ? g / self : Kernels.div(g, x)] }
    }

    /// Element-wise `log(1 + x)`, accurate for small `x`.
    ///
    /// Gradient: `g / (1 + x)`. PyTorch parity: `torch.log1p`.
    public func log1p() -> Tensor {
        let x = detached()
        return Kernels.log1p(self).recorded("log1p", self, twice: true) { [self] g in
            [creatingGraph ? g / (self + 1) : Kernels.log1pBackward(g, x)]
        }
    }

    /// Element-wise square root (NaN below 0).
    ///
    /// Gradient: `g / (2 sqrt(x))` (`inf` at 0, as PyTorch). PyTorch parity: `torch.sqrt`.
    public func sqrt() -> Tensor {
        let y = Kernels.sqrt(self)
        return y.recorded("sqrt", self, twice: true) { [self] g in
            [creatingGraph ? g / (self.sqrt() * 2) : Kernels.sqrtBackward(g, y)]
        }
    }

    /// Element-wise reciprocal square root `1 / sqrt(x)`.
    ///
    /// Gradient: `-g / (2 x^(3/2))`, computed as `-0.5 g y^3`. PyTorch parity: `torch.rsqrt`.
    public func rsqrt() -> Tensor {
        let y = Kernels.rsqrt(self)
        return y.recorded("rsqrt", self, twice: true) { [self] g in
            [creatingGraph ? g * self.rsqrt().pow(3) * -0.5 : Kernels.rsqrtBackward(g, y)]
        }
    }

    /// Element-wise hyperbolic tangent.
    ///
    /// Gradient: `g (1 - tanh(x)^2)`. PyTorch parity: `torch.tanh`.
    public func tanh() -> Tensor {
        let y = Kernels.tanh(self)
        return y.recorded("tanh", self, twice: true) { [self] g in
            [creatingGraph ? g * (1 - self.tanh().pow(2)) : Kernels.tanhBackward(g, y)]
        }
    }

    /// Element-wise power with a scalar exponent, `x^exponent`.
    ///
    /// Gradient: `g * exponent * x^(exponent - 1)`, and 0 everywhere when `exponent == 0`.
    ///
    /// - Parameter exponent: the power; 2, 3, 0.5, -0.5, -1 and -2 are computed exactly as
    ///   multiplications, square roots and reciprocals.
    ///
    /// PyTorch parity: `torch.pow(x, exponent)` / `x ** exponent`, including dtypes: an int64 (or
    /// bool) tensor with a whole exponent stays int64 ("Integers to negative integer powers are
    /// not allowed." for a negative one); a fractional exponent gives float32.
    public func pow(_ exponent: Double) -> Tensor {
        let x = detached()
        return Kernels.pow(self, exponent).recorded("pow", self, twice: true) { [self] g in
            guard creatingGraph else { return [Kernels.powScalarBackward(g, x, exponent: exponent)] }
            return [exponent == 0 ? g * 0 : g * self.pow(exponent - 1) * exponent]
        }
    }

    /// Element-wise power with a tensor exponent, `x^exponent`, broadcasting both.
    ///
    /// Gradients: for `x`, `g * e * x^(e - 1)` (0 where `e == 0`); for `e`, `g * x^e * log(x)`
    /// (0 where `x == 0` and `e >= 0`). Both are summed back over broadcast dimensions.
    ///
    /// PyTorch parity: `torch.pow(x, exponent)` with its type promotion and its gradient rules
    /// (a negative base gives a NaN exponent gradient).
    public func pow(_ exponent: Tensor) -> Tensor {
        let a = detached(), b = exponent.detached()
        let y = Kernels.pow(self, exponent)
        let aTracks = tracksGrad, bTracks = exponent.tracksGrad
        return y.recorded("pow", self, exponent, twice: true) { [self] g in
            if creatingGraph {
                // The same rules from recorded ops: 0 where the exponent is 0 (base gradient) and
                // where the base is 0 with a non-negative exponent (exponent gradient).
                let base = self.to(g.dtype), power = exponent.to(g.dtype)
                let zeroExponent = withNoGrad { power.eq(0) }
                let zeroBase = withNoGrad { base.eq(0).logicalAnd(power.ge(0)) }
                let safeBase = Tensor.where(zeroBase, base.scalarOperand(1), base)
                let da = Tensor.where(zeroExponent, g.scalarOperand(0), g * power * base.pow(power - 1))
                let db = Tensor.where(zeroBase, g.scalarOperand(0), g * safeBase.pow(power) * safeBase.log())
                return [aTracks ? da.summed(toShape: a.shape) : nil, bTracks ? db.summed(toShape: b.shape) : nil]
            }
            let a2 = a.dtype == g.dtype ? a : a.convertedRaw(to: g.dtype)
            let b2 = b.dtype == g.dtype ? b : b.convertedRaw(to: g.dtype)
            return [aTracks ? Kernels.sumToShape(Kernels.powBaseBackward(g, a2, b2), a.shape) : nil,
                    bTracks ? Kernels.sumToShape(Kernels.powExponentBackward(g, a2, b2, y), b.shape) : nil]
        }
    }

    /// Limits every element to `[min, max]`; either bound may be omitted, not both. When
    /// `min > max` every element becomes `max`. NaN stays NaN.
    ///
    /// Gradient: `g` strictly inside the bounds, 0 at a bound, outside it and at NaN.
    ///
    /// PyTorch parity: `torch.clamp(x, min, max)` with scalar bounds, its dtypes (an int64 tensor
    /// with a fractional bound gives float32) and its error "At least one of 'min' or 'max' must
    /// not be None". The gradient at a bound is 0 as in PyTorch 2.15 (checked against it; older
    /// releases gave `g` there).
    public func clamp(min: Double? = nil, max: Double? = nil) -> Tensor {
        let x = detached()
        return Kernels.clamp(self, min: min, max: max).recorded("clamp", self, twice: true) { g in
            [creatingGraph ? g.maskMap("clampBackward") { Kernels.clampBackward($0, x, min: min, max: max) }
                           : Kernels.clampBackward(g, x, min: min, max: max)]
        }
    }

    /// Element-wise maximum of two tensors, broadcasting; NaN propagates.
    ///
    /// Gradient: the larger operand gets `g`; on ties each operand gets `g / 2`.
    ///
    /// PyTorch parity: `torch.maximum` (type promotion; bool stays bool) and its tie rule.
    public func maximum(_ other: Tensor) -> Tensor { extremum(other, isMax: true) }

    /// Element-wise maximum with a scalar (in this tensor's float dtype), NaN propagating.
    ///
    /// Gradient: `g` where `x > value`, `g / 2` where `x == value`, else 0.
    ///
    /// PyTorch parity: `torch.maximum(x, torch.tensor(value))` (unlike `clamp(min:)`, whose
    /// gradient at the bound is 0).
    public func maximum(_ value: Double) -> Tensor { extremum(scalarOperand(value), isMax: true) }

    /// Element-wise minimum of two tensors, broadcasting; NaN propagates.
    ///
    /// Gradient: the smaller operand gets `g`; on ties each operand gets `g / 2`.
    ///
    /// PyTorch parity: `torch.minimum` (type promotion; bool stays bool) and its tie rule.
    public func minimum(_ other: Tensor) -> Tensor { extremum(other, isMax: false) }

    /// Element-wise minimum with a scalar (in this tensor's float dtype), NaN propagating.
    ///
    /// Gradient: `g` where `x < value`, `g / 2` where `x == value`, else 0.
    ///
    /// PyTorch parity: `torch.minimum(x, torch.tensor(value))`.
    public func minimum(_ value: Double) -> Tensor { extremum(scalarOperand(value), isMax: false) }

    private func extremum(_ other: Tensor, isMax: Bool) -> Tensor {
        let a = detached(), b = other.detached()
        let aTracks = tracksGrad, bTracks = other.tracksGrad
        let y = isMax ? Kernels.maximum(self, other) : Kernels.minimum(self, other)
        return y.recorded(isMax ? "maximum" : "minimum", [self, other], twice: true) { g in
            if creatingGraph {
                let ga = g.maskMap("extremumBackward") { Kernels.extremumBackward($0, a, b, isMax: isMax).0 }
                let gb = g.maskMap("extremumBackward") { Kernels.extremumBackward($0, a, b, isMax: isMax).1 }
                return [aTracks ? ga.summed(toShape: a.shape) : nil, bTracks ? gb.summed(toShape: b.shape) : nil]
            }
            let (ga, gb) = Kernels.extremumBackward(g, a, b, isMax: isMax)
            return [aTracks ? Kernels.sumToShape(ga, a.shape) : nil, bTracks ? Kernels.sumToShape(gb, b.shape) : nil]
        }
    }
}
