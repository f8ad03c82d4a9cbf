import EmberTensor
import EmberStorage

// Helpers that let a backward closure stay differentiable when the engine runs it with recording
// on (`createGraph`). In an ordinary backward, recording is off and each helper is the raw kernel
// it wraps (recording checks one flag and records nothing).

extension Tensor {
    /// `Kernels.sumToShape` as a recorded op: sums broadcast dimensions away so the result has
    /// `target`'s shape; its own gradient broadcasts back.
    package func summed(toShape target: Shape) -> Tensor {
        if shape == target { return self }
        let source = shape
        return Kernels.sumToShape(self, target).recorded("sumToShape", self, twice: true) { g in
            [g.broadcast(to: source)]
        }
    }

    /// Applies `apply`, a linear map that depends on nothing that requires a gradient (a
    /// backward's scatter, embedding into zeros, a mask), recorded with `adjoint` (its transpose,
    /// built from recorded ops) as its backward.
    package func linearMap(_ op: String, _ apply: (Tensor) -> Tensor,
                           adjoint: @escaping (Tensor) -> Tensor) -> Tensor {
        apply(self).recorded(op, self, twice: true) { g in [adjoint(g)] }
    }

    /// Applies `apply`, a self-adjoint linear map that depends on nothing that requires a gradient
    /// (multiplication by a fixed mask: the backward of relu, clamp, dropout), recorded with
    /// itself as its backward.
    package func maskMap(_ op: String, _ apply: @escaping (Tensor) -> Tensor) -> Tensor {
        apply(self).recorded(op, self, twice: true) { g in [g.maskMap(op, apply)] }
    }
}
