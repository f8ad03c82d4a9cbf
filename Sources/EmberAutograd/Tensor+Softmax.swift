import EmberTensor

extension Tensor {
    /// Softmax along `axis`: `exp(x - max) / sum(exp(x - max))`, stable for any magnitude.
    ///
    /// Gradient: `y * (g - sum(g * y))` along `axis`, with `y` the output (one fused pass).
    ///
    /// - Parameter axis: the dimension that sums to 1 (negative counts from the end).
    ///
    /// PyTorch parity: `torch.softmax(x, dim)`: a line containing NaN, or only `-inf`, gives NaN;
    /// float input only. PyTorch's implicit-dimension form is deprecated, so `axis` is required.
    public func softmax(axis: Int) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "softmax")
        let y = Kernels.softmax(self, axis: a)
        return y.recorded("softmax", self, twice: true) { [self] g in
            guard creatingGraph else { return [Kernels.softmaxBackward(g, y, axis: a)] }
            let s = self.softmax(axis: a)
            return [s * (g - (g * s).sum(axis: a, keepDim: true))]
        }
    }

    /// Log-softmax along `axis`: `x - max - log(sum(exp(x - max)))`, stable for any magnitude.
    ///
    /// Gradient: `g - exp(y) * sum(g)` along `axis`, with `y` the output (one fused pass).
    ///
    /// - Parameter axis: the dimension to normalise over (negative counts from the end).
    ///
    /// PyTorch parity: `torch.log_softmax(x, dim)`; a line of only `-inf` gives NaN; float input
    /// only.
    public func logSoftmax(axis: Int) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "logSoftmax")
        let y = Kernels.logSoftmax(self, axis: a)
        return y.recorded("logSoftmax", self, twice: true) { [self] g in
            guard creatingGraph else { return [Kernels.logSoftmaxBackward(g, y, axis: a)] }
            return [g - self.softmax(axis: a) * g.sum(axis: a, keepDim: true)]
        }
    }
}
