import EmberTensor

// Element-wise trigonometric, hyperbolic and error functions, rounding, remainders, clamping to
// tensor bounds and the NaN/infinity tests. Integer and bool inputs to the float functions give
// float32, as PyTorch. Each backward is written with recorded ops, so it runs as plain kernels in
// an ordinary backward pass and is itself differentiable under `createGraph` (double backward).

extension Tensor {
    /// A smooth element-wise function `f` whose derivative `fPrime(x)` is built from recorded ops.
    private func smooth(_ op: String, _ forward: (Tensor) -> Tensor, _ fPrime: @escaping (Tensor) -> Tensor) -> Tensor {
        forward(self).recorded(op, self, twice: true) { [self] g in [g * fPrime(self)] }
    }

    /// Element-wise sine (radians).
    ///
    /// Gradient: `g cos(x)`; differentiable twice. PyTorch parity: `torch.sin`.
    public func sin() -> Tensor { smooth("sin", Kernels.sin) { $0.cos() } }

    /// Element-wise cosine (radians).
    ///
    /// Gradient: `-g sin(x)`; differentiable twice. PyTorch parity: `torch.cos`.
    public func cos() -> Tensor { smooth("cos", Kernels.cos) { -$0.sin() } }

    /// Element-wise tangent (radians).
    ///
    /// Gradient: `g (1 + tan(x)^2)`. PyTorch parity: `torch.tan`.
    public func tan() -> Tensor { smooth("tan", Kernels.tan) { 1 + $0.tan().pow(2) } }

    /// Element-wise arcsine; NaN outside `[-1, 1]`.
    ///
    /// Gradient: `g / sqrt(1 - x^2)`. PyTorch parity: `torch.asin`.
    public func asin() -> Tensor { smooth("asin", Kernels.asin) { (1 - $0 * $0).rsqrt() } }

    /// Element-wise arccosine; NaN outside `[-1, 1]`.
    ///
    /// Gradient: `-g / sqrt(1 - x^2)`. PyTorch parity: `torch.acos`.
    public func acos() -> Tensor { smooth("acos", Kernels.acos) { -(1 - $0 * $0).rsqrt() } }

    /// Element-wise arctangent.
    ///
    /// Gradient: `g / (1 + x^2)`. PyTorch parity: `torch.atan`.
    public func atan() -> Tensor { smooth("atan", Kernels.atan) { 1 / ($0 * $0 + 1) } }

    /// Element-wise hyperbolic sine.
    ///
    /// Gradient: `g cosh(x)`. PyTorch parity: `torch.sinh`.
    public func sinh() -> Tensor { smooth("sinh", Kernels.sinh) { $0.cosh() } }

    /// Element-wise hyperbolic cosine.
    ///
    /// Gradient: `g sinh(x)`. PyTorch parity: `torch.cosh`.
    public func cosh() -> Tensor { smooth("cosh", Kernels.cosh) { $0.sinh() } }

    /// Element-wise error function `erf(x) = 2/sqrt(pi) * integral_0^x e^(-t^2) dt`.
    ///
    /// Gradient: `g 2/sqrt(pi) e^(-x^2)`; differentiable twice. PyTorch parity: `torch.erf`.
    public func erf() -> Tensor {
        smooth("erf", Kernels.erf) { x in (-(x * x)).exp() * 1.128_379_167_095_512_6 }
    }

    /// Element-wise `atan2(self, other)`: the angle in `(-pi, pi]` of the point `(other, self)`,
    /// broadcasting both (integers give float32).
    ///
    /// Gradients: `g x / (x^2 + y^2)` for `self` (`y`) and `-g y / (x^2 + y^2)` for `other` (`x`),
    /// each summed back over broadcast dimensions; both are 0 at the origin, as in PyTorch.
    ///
    /// PyTorch parity: `torch.atan2(input, other)`.
    public func atan2(_ other: Tensor) -> Tensor {
        let aTracks = tracksGrad, bTracks = other.tracksGrad
        let aShape = shape, bShape = other.shape
        return Kernels.atan2(self, other).recorded("atan2", self, other, twice: true) { [self] g in
            let y = self.to(g.dtype), x = other.to(g.dtype)
            // 0 at the origin, where PyTorch's gradient is 0 for both operands.
            let d = y * y + x * x
            let origin = withNoGrad { d.eq(0) }
            let recip = Tensor.where(origin, g.scalarOperand(0), 1 / Tensor.where(origin, g.scalarOperand(1), d))
            return [aTracks ? (g * x * recip).summed(toShape: aShape) : nil,
                    bTracks ? (g * -y * recip).summed(toShape: bShape) : nil]
        }
    }

    // MARK: Rounding

    /// A piecewise-constant op: its gradient is zero everywhere.
    private func stepwise(_ op: String, _ y: Tensor) -> Tensor {
        y.recorded(op, self, twice: true) { g in [Tensor.zeros(g.shape, dtype: g.dtype)] }
    }

    /// Element-wise largest integer not above `x`; int64 and bool are returned unchanged.
    ///
    /// Gradient: zero. PyTorch parity: `torch.floor`.
    public func floor() -> Tensor { stepwise("floor", Kernels.rounded(self, .down)) }

    /// Element-wise smallest integer not below `x`; int64 and bool are returned unchanged.
    ///
    /// Gradient: zero. PyTorch parity: `torch.ceil`.
    public func ceil() -> Tensor { stepwise("ceil", Kernels.rounded(self, .up)) }

    /// Element-wise rounding to the nearest integer, ties to even (`0.5 -> 0`, `1.5 -> 2`,
    /// `-2.5 -> -2`); int64 and bool are returned unchanged.
    ///
    /// Gradient: zero. PyTorch parity: `torch.round` (half to even, not half away from zero).
    public func round() -> Tensor { stepwise("round", Kernels.rounded(self, .toNearestOrEven)) }

    /// Element-wise rounding to `decimals` decimal places (negative: to tens, hundreds, ...),
    /// ties to even, computed as PyTorch does: `nearbyint(x * 10^d) / 10^d` in the tensor's dtype.
    ///
    /// Gradient: zero. PyTorch parity: `torch.round(x, decimals=d)`.
    public func round(decimals: Int) -> Tensor {
        if decimals == 0 { return round() }
        return stepwise("round", Kernels.rounded(self, decimals: decimals))
    }

    /// Element-wise rounding toward zero; int64 and bool are returned unchanged.
    ///
    /// Gradient: zero. PyTorch parity: `torch.trunc`.
    public func trunc() -> Tensor { stepwise("trunc", Kernels.rounded(self, .towardZero)) }

    /// Element-wise sign: -1, 0 or 1 in the tensor's dtype (0 for NaN and both zeros; bool
    /// unchanged).
    ///
    /// Gradient: zero. PyTorch parity: `torch.sign`.
    public func sign() -> Tensor { stepwise("sign", Kernels.sign(self)) }

    // MARK: Remainders

    /// Element-wise remainder with the sign of the divisor (Python's `%`): `a - b floor(a / b)`,
    /// broadcasting and promoting both.
    ///
    /// Gradients: `g` for `self`; `-g floor(a / b)` for the divisor (summed back over broadcast
    /// dimensions). Integer division by zero stops with "ZeroDivisionError"; a float one gives NaN.
    ///
    /// PyTorch parity: `torch.remainder(input, other)`, its float formula (`fmod`, then adding the
    /// divisor when the signs differ) and its gradients.
    public func remainder(_ other: Tensor) -> Tensor { remainderLike(other, python: true) }

    /// ``remainder(_:)`` with a scalar divisor (in this tensor's dtype when it is float).
    ///
    /// PyTorch parity: `torch.remainder(input, scalar)`.
    public func remainder(_ other: Double) -> Tensor { remainderLike(scalarOperand(other), python: true) }

    /// Element-wise remainder with the sign of the dividend (C's `fmod`): `a - b trunc(a / b)`,
    /// broadcasting and promoting both.
    ///
    /// Gradients: `g` for `self`; `-g trunc(a / b)` for the divisor.
    ///
    /// PyTorch parity: `torch.fmod(input, other)` and its gradients.
    public func fmod(_ other: Tensor) -> Tensor { remainderLike(other, python: false) }

    /// ``fmod(_:)`` with a scalar divisor. PyTorch parity: `torch.fmod(input, scalar)`.
    public func fmod(_ other: Double) -> Tensor { remainderLike(scalarOperand(other), python: false) }

    private func remainderLike(_ other: Tensor, python: Bool) -> Tensor {
        let a = detached(), b = other.detached()
        let aTracks = tracksGrad, bTracks = other.tracksGrad
        let y = python ? Kernels.remainder(self, other) : Kernels.fmod(self, other)
        return y.recorded(python ? "remainder" : "fmod", self, other, twice: true) { g in
            var bGrad: Tensor? = nil
            if bTracks {
                let a2 = a.dtype == g.dtype ? a : a.convertedRaw(to: g.dtype)
                let b2 = b.dtype == g.dtype ? b : b.convertedRaw(to: g.dtype)
                let factor = python ? Kernels.negatedFloorDivide(a2, b2) : Kernels.negatedTruncDivide(a2, b2)
                bGrad = (g * factor).summed(toShape: b.shape)
            }
            return [aTracks ? g.summed(toShape: a.shape) : nil, bGrad]
        }
    }

    // MARK: Clamp with tensor bounds

    /// Limits every element to `[min, max]` with tensor bounds that broadcast with `self`; either
    /// may be `nil`, not both. Where `min > max` the result is `max`. NaN (in any operand)
    /// propagates.
    ///
    /// Gradients, PyTorch's rules: `self` gets `g` where `min <= x <= max` (ties included); `min`
    /// gets `g` where `x < min` and `min < max`; `max` gets `g` where `x > max` or `max < min`.
    /// Each is summed back over broadcast dimensions; differentiable twice.
    ///
    /// `min` has no default so that `clamp()` stays the scalar overload's call (which stops);
    /// write `clamp(min: nil, max: bound)` for an upper bound alone.
    ///
    /// PyTorch parity: `torch.clamp(input, min=Tensor, max=Tensor)`, with its type promotion and its
    /// error "At least one of 'min' or 'max' must not be None".
    public func clamp(min lo: Tensor?, max hi: Tensor? = nil) -> Tensor {
        precondition(lo != nil || hi != nil, "clamp: At least one of 'min' or 'max' must not be None (shape \(shape))")
        var y = self.detached()
        if let lo { y = Kernels.maximum(y, lo) }
        if let hi { y = Kernels.minimum(y, hi) }
        var inputs = [self]
        if let lo { inputs.append(lo) }
        if let hi { inputs.append(hi) }
        let x = self.detached(), loD = lo?.detached(), hiD = hi?.detached()
        let tracks = (tracksGrad, lo?.tracksGrad ?? false, hi?.tracksGrad ?? false)
        return y.recorded("clamp", inputs, twice: true) { g in
            let zero = g.scalarOperand(0)
            var selfMask: Tensor? = nil
            if let loD { selfMask = x.ge(loD) }
            if let hiD { selfMask = selfMask.map { $0.logicalAnd(x.le(hiD)) } ?? x.le(hiD) }
            var grads: [Tensor?] = [tracks.0 ? Tensor.where(selfMask!, g, zero).summed(toShape: x.shape) : nil]
            if let loD {
                var mask = x.lt(loD)
                if let hiD { mask = mask.logicalAnd(loD.lt(hiD)) }
                grads.append(tracks.1 ? Tensor.where(mask, g, zero).summed(toShape: loD.shape) : nil)
            }
            if let hiD {
                var mask = x.gt(hiD)
                if let loD { mask = mask.logicalOr(hiD.lt(loD)) }
                grads.append(tracks.2 ? Tensor.where(mask, g, zero).summed(toShape: hiD.shape) : nil)
            }
            return grads
        }
    }

    // MARK: NaN and infinity

    /// Element-wise test for NaN, giving a bool tensor (all false for int64 and bool tensors).
    ///
    /// PyTorch parity: `torch.isnan`.
    public func isnan() -> Tensor { Kernels.floatTest(self, integerAnswer: false, f32: { $0.isNaN }, f64: { $0.isNaN }) }

    /// Element-wise test for `+inf` or `-inf`, giving a bool tensor.
    ///
    /// PyTorch parity: `torch.isinf`.
    public func isinf() -> Tensor {
        Kernels.floatTest(self, integerAnswer: false, f32: { $0.isInfinite }, f64: { $0.isInfinite })
    }

    /// Element-wise test for a finite value (neither NaN nor infinite), giving a bool tensor (all
    /// true for int64 and bool tensors).
    ///
    /// PyTorch parity: `torch.isfinite`.
    public func isfinite() -> Tensor {
        Kernels.floatTest(self, integerAnswer: true, f32: { $0.isFinite }, f64: { $0.isFinite })
    }

    /// Replaces NaN by `nan`, `+inf` by `posinf` and `-inf` by `neginf`; the infinities default
    /// to the largest finite value of the dtype and its negation. int64 and bool are unchanged.
    ///
    /// Gradient: `g` where `x` is finite, 0 elsewhere.
    ///
    /// PyTorch parity: `torch.nan_to_num(input, nan=0.0, posinf=None, neginf=None)`.
    public func nanToNum(nan: Double = 0, posinf: Double? = nil, neginf: Double? = nil) -> Tensor {
        let finite = isfinite()
        return Kernels.nanToNum(self, nan: nan, posinf: posinf, neginf: neginf).recorded("nanToNum", self, twice: true) { g in
            [g.maskMap("nanToNumBackward") { Kernels.maskedGradient($0, finite, keep: true) }]
        }
    }
}
