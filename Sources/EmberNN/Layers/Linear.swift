import EmberAutograd
import EmberFunctional
import EmberTensor
import EmberStorage

/// A fully connected layer: `y = x W^T + b`.
///
/// - `weight`: `[outFeatures, inFeatures]`, initialised `U(-1/sqrt(in), 1/sqrt(in))` (PyTorch's
///   `kaiming_uniform_(a=sqrt(5))`).
/// - `bias`: `[outFeatures]`, initialised `U(-1/sqrt(in), 1/sqrt(in))`; `nil` when `bias: false`.
///
/// Input `[*, inFeatures]`, output `[*, outFeatures]`. The product and the bias run as one fused
/// op (one allocation), with a fused backward.
///
/// Batch-1 inference: in eval mode, a one-sample forward keeps a packed copy of a float32 weight
/// (up to 8M elements; on CPUs with AVX2) and reuses it while the weight is unchanged, which
/// makes repeated single-sample calls faster with bitwise the same output. The copy
/// costs the weight's size again in memory; a training-mode forward drops it.
///
/// PyTorch parity: `torch.nn.Linear(in_features, out_features, bias=True)`: same shapes, init
/// bounds, state-dict keys (`weight`, `bias`) and the same shape error.
public final class Linear: Module {
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: Parameter
    /// `nil` without a bias; set (internally) when a BatchNorm is folded into a bias-less layer.
    public internal(set) var bias: Parameter?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, dtype: DType = .float32,
                generator: Generator = .default) {
        precondition(inFeatures >= 0 && outFeatures >= 0, "Linear: feature counts must be non-negative, got \(inFeatures) -> \(outFeatures)")
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        let bound = inFeatures > 0 ? 1 / Double(inFeatures).squareRoot() : 0
        weight = Parameter(.uniform([outFeatures, inFeatures], low: -bound, high: bound, dtype: dtype, generator: generator))
        self.bias = bias ? Parameter(.uniform([outFeatures], low: -bound, high: bound, dtype: dtype, generator: generator)) : nil
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor { product(input, relu: false) }

    /// `self(input).relu()` as one op (the ReLU applied to each block of the product while it is in
    /// cache: the same values, one pass over the output fewer) when nothing can observe the output
    /// in between: no hooks on this module and no anomaly detection. Otherwise exactly that
    /// composition.
    package func forwardReLU(_ input: Tensor) -> Tensor {
        guard hookTable == nil && !AnomalyDetection.isActive else { return self(input).relu() }
        return product(input, relu: true)
    }

    /// Runs this layer and takes over the layers after it that its product's epilogue can apply,
    /// when nothing can observe the values in between (no hooks, no anomaly detection): an
    /// eval-mode `BatchNorm1d` (its running statistics as a per-feature scale and shift; only
    /// when nothing needs gradients and the input is `[N, in]`), then a `ReLU`. Only those final
    /// classes: a subclass of `BatchNormBase` may override `forward`, which fusing would skip. Returns the output
    /// and how many layers of `next` it covered, or `nil` when it covers none. The values are
    /// bitwise those of running the layers one by one.
    package func forwardFusing(_ input: Tensor, _ next: ArraySlice<Module>) -> (output: Tensor, covered: Int)? {
        guard hookTable == nil, !AnomalyDetection.isActive, var i = next.indices.first else { return nil }
        var affine: (scale: Tensor, shift: Tensor)?
        if let norm = next[i] as? BatchNorm1d, input.rank == 2, !needsGradient(input, norm) {
            affine = norm.evalScaleShift(inputShape: [input.shape[0], outFeatures], dtype: input.dtype)
            if affine != nil { i += 1 }
        }
        let relu = i < next.endIndex && next[i] is ReLU && next[i].hookTable == nil
        if relu { i += 1 }
        let covered = i - next.startIndex
        if covered == 0 { return nil }
        guard let affine else { return (product(input, relu: true), covered) }
        let (_, out, _) = linearProduct(checked(input), weight: weight.value, bias: bias?.value,
                                        packedWeight: packedWeight(for: input), affine: affine, relu: relu)
        return (out, covered)
    }

    /// Whether any input of this layer followed by `norm` records a gradient.
    private func needsGradient(_ input: Tensor, _ norm: BatchNorm1d) -> Bool {
        GradMode.isEnabled && ([input, weight.value, bias?.value, norm.weight?.value, norm.bias?.value]
            .contains { $0?.requiresGrad ?? false })
    }

    private func product(_ input: Tensor, relu: Bool) -> Tensor {
        linear(checked(input), weight: weight.value, bias: bias?.value, packedWeight: packedWeight(for: input), relu: relu)
    }

    /// `input`, after the shape check with this module's path in the message.
    private func checked(_ input: Tensor) -> Tensor {
        precondition(input.rank >= 1 && input.shape[input.rank - 1] == inFeatures,
                     "\(errorContext): mat1 and mat2 shapes cannot be multiplied (\(input.rank >= 1 ? input.count / max(input.shape[input.rank - 1], 1) : 1)x\(input.rank >= 1 ? input.shape[input.rank - 1] : 0) and \(inFeatures)x\(outFeatures)); input shape \(input.shape), expected [*, \(inFeatures)]")
        return input
    }

    /// Batch-1 inference: a packed copy of the weight, kept while the weight's storage is
    /// unchanged (bitwise the same result, about half the time). Never while training, where the
    /// weight changes every step and a kept reference would make each step copy it.
    private func packedWeight(for input: Tensor) -> RowVectorPackedWeight? {
        if isTraining {
            packedWeightCache.clear()
            return nil
        }
        return input.count == inFeatures ? packedWeightCache.packed(for: weight.value) : nil
    }

    /// The packed weight of batch-1 inference; discovery does not look inside it.
    private let packedWeightCache = PackedWeightCache()

    public override var extraDescription: String {
        "in_features=\(inFeatures), out_features=\(outFeatures), bias=\(bias != nil ? "True" : "False")"
    }
}
