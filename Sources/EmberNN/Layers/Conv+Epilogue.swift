import EmberAutograd
import EmberFunctional
import EmberStorage
import EmberTensor

extension Conv2d {
    /// `relu?(norm(self(input)) + residual)`: the convolution, the BatchNorm after it, a residual
    /// sum and a ReLU, as a ResNet block writes them.
    ///
    /// ```swift
    /// let h = conv1(x, then: bn1, relu: true)          // relu(bn1(conv1(x)))
    /// return conv2(h, then: bn2, adding: x, relu: true) // relu(bn2(conv2(h)) + x)
    /// ```
    ///
    /// In eval mode without gradients (inference), the BatchNorm, the sum and the ReLU run on each
    /// sample's convolution output while it is in cache instead of as three passes over the whole
    /// output, with the same bits (``forwardEpilogue(_:norm:residual:relu:)``). Otherwise (training,
    /// gradients) the BatchNorm adds and rectifies as it normalises each plane, bitwise the
    /// separate calls with their statistics updates and gradients; with hooks or anomaly detection
    /// on, the separate calls run, so hooks and errors are exactly theirs.
    ///
    /// PyTorch parity: `relu(bn(conv(x)) + residual)` in eager mode. PyTorch's
    /// `torch.ao.nn.intrinsic.ConvBnReLU2d` groups the same three modules, but as a sequential
    /// container that runs them one after another until quantization replaces it
    /// (`torch/ao/nn/intrinsic/modules/fused.py`); here the grouping is a call, in float.
    public func callAsFunction(_ input: Tensor, then norm: BatchNorm2d, adding residual: Tensor? = nil,
                               relu: Bool = false) -> Tensor {
        if let y = forwardEpilogue(input, norm: norm, residual: residual, relu: relu) { return y }
        // Without hooks to observe either output, the convolution hands the BatchNorm its output
        // planes' moments when the BatchNorm normalises with batch statistics (no pass over the
        // output for them), and the BatchNorm adds and rectifies as it normalises (training,
        // gradients: bitwise the separate calls).
        if hookTable == nil && norm.hookTable == nil && !AnomalyDetection.isActive {
            let (y, moments) = forwardWithMoments(input, for: norm)
            return norm.forward(y, adding: residual, relu: relu, moments: moments)
        }
        let y = self(input)
        var z = norm(y)
        if let residual { z = z + residual }
        return relu ? z.relu() : z
    }

    /// This layer's forward and, when `norm` normalises with the batch's statistics, its output
    /// planes' moments for `norm` (EmberFunctional's `convolutionWithMoments`; `nil` otherwise,
    /// or where the convolution's path gives none). Hooks are the caller's business.
    func forwardWithMoments(_ input: Tensor, for norm: BatchNorm2d) -> (output: Tensor, moments: PlaneMoments?) {
        guard norm.normalizesWithBatchStatistics, input.dtype == .float32 else { return (forward(input), nil) }
        return convolutionWithMoments(input, weight: weight.value, bias: bias?.value, dims: 2, stride: SpatialSize(stride),
                                      padding: padding, dilation: SpatialSize(dilation), groups: groups, paddingMode: paddingMode,
                                      context: { self.errorContext })
    }

    /// This layer and, in this order, `norm` (eval mode), `+ residual` and a ReLU as one op
    /// (`convolutionWithEpilogue`), or `nil` where that does not apply: a gradient to record, a
    /// BatchNorm in training mode or without running statistics, hooks on either layer, anomaly
    /// detection, or an input the op does not take (the separate calls then run). A folded `norm`
    /// is the identity it stands for.
    func forwardEpilogue(_ input: Tensor, norm: BatchNorm2d?, residual: Tensor?, relu: Bool) -> Tensor? {
        guard hookTable == nil, !AnomalyDetection.isActive, input.rank == 4, !needsGradient(input, norm, residual) else { return nil }
        var epilogue = ConvolutionEpilogue(residual: residual, relu: relu)
        if let norm {
            if norm.isFolded {
                guard norm.hookTable == nil else { return nil }
            } else {
                let shape = Shape([input.shape[0], outChannels] + Array(input.shape.dropFirst(2)))
                guard let (scale, shift) = norm.evalScaleShift(inputShape: shape, dtype: input.dtype) else { return nil }
                (epilogue.scale, epilogue.shift) = (scale, shift)
            }
        }
        return convolutionWithEpilogue(input, weight: weight.value, bias: bias?.value, dims: 2, stride: SpatialSize(stride),
                                       padding: padding, dilation: SpatialSize(dilation), groups: groups, paddingMode: paddingMode,
                                       epilogue: epilogue, weightCache: weightCache, context: { self.errorContext })
    }

    /// This layer and what follows it at the start of `next` among a `BatchNorm2d` and a `ReLU`
    /// (in that order), for ``Sequential``: in eval mode without gradients as one op
    /// (``forwardEpilogue(_:norm:residual:relu:)``); where the BatchNorm normalises with batch
    /// statistics, the convolution hands it its output's moments
    /// (``forwardWithMoments(_:for:)``) and the BatchNorm applies the ReLU. Returns the output and
    /// how many layers of `next` it covered, or `nil`.
    func forwardFusing(_ input: Tensor, _ next: ArraySlice<Module>) -> (output: Tensor, covered: Int)? {
        guard var i = next.indices.first else { return nil }
        let norm = next[i] as? BatchNorm2d
        if norm != nil { i += 1 }
        let relu = i < next.endIndex && next[i] is ReLU && next[i].hookTable == nil
        if relu { i += 1 }
        guard i > next.startIndex else { return nil }
        if let y = forwardEpilogue(input, norm: norm, residual: nil, relu: relu) { return (y, i - next.startIndex) }
        guard let norm, norm.normalizesWithBatchStatistics, hookTable == nil, norm.hookTable == nil, !AnomalyDetection.isActive,
              input.rank == 4 else { return nil }
        let (y, moments) = forwardWithMoments(input, for: norm)
        return (norm.forward(y, adding: nil, relu: relu, moments: moments), i - next.startIndex)
    }

    /// Whether any input of this layer, `norm` or the residual records a gradient.
    private func needsGradient(_ input: Tensor, _ norm: BatchNorm2d?, _ residual: Tensor?) -> Bool {
        GradMode.isEnabled && ([input, weight.value, bias?.value, norm?.weight?.value, norm?.bias?.value, residual]
            .contains { $0?.requiresGrad ?? false })
    }
}
