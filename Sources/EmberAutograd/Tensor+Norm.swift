import EmberTensor
import EmberStorage

/// The order of a vector norm: `.p(x)` for any real `x` (`2` and `1.5` are literals for it),
/// `.inf` / `.negInf` (also `.infinity` and `-.infinity`) for the largest / smallest magnitude,
/// and `.fro` for the Frobenius norm (the 2-norm of all reduced elements).
///
/// PyTorch parity: the `ord` of `torch.linalg.vector_norm` (`2`, `1`, `0`, `float('inf')`,
/// `-float('inf')`, any real) and the `p='fro'` of `torch.norm`.
public enum NormOrder: Sendable, Hashable, ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral {
    /// `(sum |x|^p)^(1/p)`; `p = 0` counts the non-zero elements, `p = +-inf` is the largest or
    /// smallest magnitude.
    case p(Double)
    /// The Frobenius norm: the 2-norm of the reduced elements (at most two axes).
    case fro

    /// The largest magnitude, `max |x|`.
    public static var inf: NormOrder { .p(.infinity) }
    /// The smallest magnitude, `min |x|`.
    public static var negInf: NormOrder { .p(-.infinity) }
    /// The same as ``inf``, so `norm(p: .infinity)` and `norm(p: -.infinity)` read as in PyTorch.
    public static var infinity: NormOrder { .p(.infinity) }

    /// `.p(value)`, so `norm(p: 1.5)` reads as `torch.norm(x, p=1.5)`.
    public init(floatLiteral value: Double) { self = .p(value) }
    /// `.p(value)`, so `norm(p: 2)` reads as `torch.norm(x, p=2)`.
    public init(integerLiteral value: Int) { self = .p(Double(value)) }

    /// The negated order (`-.infinity` is ``negInf``); `.fro` has none.
    public static prefix func - (order: NormOrder) -> NormOrder {
        guard case .p(let v) = order else { preconditionFailure("norm: the Frobenius order 'fro' cannot be negated") }
        return .p(-v)
    }

    /// The numeric order (`fro` is 2).
    var value: Double {
        switch self {
        case .p(let v): v
        case .fro: 2
        }
    }
}

extension Tensor {
    /// The vector `p`-norm over `axes` (all when empty): `(sum |x|^p)^(1/p)`, with `p = 0` the
    /// number of non-zero elements, `p = inf` the largest and `p = -inf` the smallest magnitude,
    /// and `.fro` the 2-norm (over at most two axes).
    ///
    /// Gradients, PyTorch's `norm_backward`: 0 for `p = 0`; `g sign(x)` for `p = 1`;
    /// `g x / ||x||` for `p = 2`, and 0 (not NaN) where the norm is 0; for `+-inf` `g sign(x)`
    /// shared equally between the elements that attain the extreme magnitude; for other `p`,
    /// `g sign(x) |x|^(p-1) / ||x||^(p-1)` (0 where the norm is 0, and where `x` is 0 for `p < 1`).
    /// Differentiable twice.
    ///
    /// - Parameters:
    ///   - p: the order (default 2).
    ///   - axes: the dimensions to reduce (negative counts from the end); empty means all.
    ///   - keepDim: keep reduced dimensions as size 1.
    ///
    /// PyTorch parity: `torch.linalg.vector_norm(x, ord, dim, keepdim)` and `torch.norm(x, p, dim,
    /// keepdim)` (including `p='fro'`), with the error "linalg.vector_norm: Expected a floating point
    /// or complex tensor as input. Got Long". float32 and float64 only.
    public func norm(p: NormOrder = 2, axes: [Int] = [], keepDim: Bool = false) -> Tensor {
        precondition(dtype.isFloatingPoint,
                     "norm: linalg.vector_norm: Expected a floating point or complex tensor as input. Got \(pyTorchTypeName(dtype)) (shape \(shape))")
        if case .fro = p {
            precondition(axes.count <= 2, "norm: linalg.matrix_norm: dim must be a 2-tuple. Got \(axes.map(String.init).joined(separator: " "))")
        }
        let ax = Kernels.reductionAxes(axes, rank: rank, op: "norm")
        let order = p.value
        let kept = Kernels.reducedShape(shape, axes: ax, keepDim: true)
        let y = withNoGrad { detached().normValue(order, ax, keepDim: keepDim) }
        return y.recorded("norm", self, twice: true) { [self] g in
            let x = self
            let gk = keepDim ? g : g.reshaped(kept)
            let n = creatingGraph ? x.norm(p: p, axes: axes, keepDim: true) : y.reshapedRaw(kept)
            let zero = g.scalarOperand(0)
            switch order {
            case 0:
                return [Tensor.zeros(x.shape, dtype: g.dtype)]
            case 1:
                return [gk * x.sign()]
            case 2:
                return [x * Tensor.where(n.eq(0), zero, gk / n)]
            case .infinity, -.infinity:
                let mask = withNoGrad { x.abs().eq(n).to(g.dtype) }
                let count = withNoGrad { mask.sum(axes: ax, keepDim: true) }
                return [x.sign() * (gk / count) * mask]
            default:
                if order < 1 {
                    let scaled = x.sign() * Tensor.where(x.eq(0), zero, x.abs().pow(order - 1))
                    return [scaled * gk * n.pow(1 - order)]
                }
                let scaled = order < 2 ? x.sign() * x.abs().pow(order - 1) : x * x.abs().pow(order - 2)
                return [scaled * Tensor.where(n.eq(0), zero, gk / n.pow(order - 1))]
            }
        }
    }

    /// The norm's value from recorded-free ops (called under no-grad).
    private func normValue(_ order: Double, _ ax: [Int], keepDim: Bool) -> Tensor {
        let a = self.abs()
        switch order {
        case 0: return a.ne(0).to(dtype).sum(axes: ax, keepDim: keepDim)
        case 1: return a.sum(axes: ax, keepDim: keepDim)
        case 2: return (self * self).sum(axes: ax, keepDim: keepDim).sqrt()
        case .infinity: return a.amax(axes: ax, keepDim: keepDim)
        case -.infinity: return a.amin(axes: ax, keepDim: keepDim)
        default: return a.pow(order).sum(axes: ax, keepDim: keepDim).pow(1 / order)
        }
    }
}
