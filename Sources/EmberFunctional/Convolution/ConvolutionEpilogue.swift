import CEmberKernels
import EmberAutograd
import EmberStorage
import EmberTensor

/// What runs on a convolution's output before anything else reads it, channel by channel: an
/// eval-mode BatchNorm's `scale` and `shift` (`[C_out]`), then a `residual` of the output's shape
/// added, then ReLU. Each part is optional.
package struct ConvolutionEpilogue {
    package var scale: Tensor?, shift: Tensor?
    package var residual: Tensor?
    package var relu: Bool

    package init(scale: Tensor? = nil, shift: Tensor? = nil, residual: Tensor? = nil, relu: Bool = false) {
        precondition((scale == nil) == (shift == nil), "ConvolutionEpilogue: a scale and a shift come together")
        (self.scale, self.shift, self.residual, self.relu) = (scale, shift, residual, relu)
    }

    /// The epilogue of one sample: `[channels, plane]` values `x` into `y` (`scale`, `shift`
    /// `channels` values, `residual` the sample's `[channels, plane]`), on `path`'s vector width
    /// (`ember_channel_epilogue_f32`; every path gives the same bits).
    static func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, channels: Int, plane: Int,
                      scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?, residual: UnsafePointer<Float>?, relu: Bool,
                      path: GEMMKernelPath = .best) {
        ember_channel_epilogue_f32(Int32(path.rawValue), x, y, channels, plane, scale, shift, residual, relu ? 1 : 0)
    }
}

/// `relu?((convolution(input) * scale + shift) + residual)` per output channel, as one op that
/// records no gradient, or `nil` where it does not apply (the caller then runs the separate ops).
///
/// It applies to a batched float32 convolution on the stride-1 path (``PaddedColumns``) when no
/// input needs a gradient: each sample's output gets the epilogue on the thread that computed it,
/// while it is in cache (`ember_channel_epilogue_f32`), instead of one pass over the whole output
/// per op (BENCHMARKS.md, fifteenth session, has what the passes cost a ResNet block). Each step
/// is the rounded operation the separate op computes (BatchNorm's
/// `x * scale + shift`, the sum, `x <= 0 ? 0 : x`), so the result is bitwise theirs. Checks and
/// messages are the convolution's.
package func convolutionWithEpilogue(_ input: Tensor, weight: Tensor, bias: Tensor?, dims: Int, stride: SpatialSize,
                                     padding: ConvPadding, dilation: SpatialSize, groups: Int, paddingMode: PaddingMode,
                                     epilogue e: ConvolutionEpilogue, weightCache: ConvolutionWeightCache? = nil,
                                     context: () -> String) -> Tensor? {
    let operands = [input, weight] + [bias, e.scale, e.shift, e.residual].compactMap { $0 }
    guard input.rank == dims + 2, operands.allSatisfy({ $0.dtype == .float32 }), !shouldRecord(operands) else { return nil }
    let (_, x, g, outShape) = convolutionGeometry(input, weight: weight, bias: bias, dims: dims, stride: stride, padding: padding,
                                                  dilation: dilation, groups: groups, paddingMode: paddingMode, context: context)
    let channels = outShape[1]
    guard PaddedColumns.applies(g), !g.isPointwise, x.shape[0] > 0, weight.count > 0,
          e.scale.map({ $0.count == channels && $0.rank == 1 }) ?? true, e.shift.map({ $0.count == channels && $0.rank == 1 }) ?? true,
          e.residual.map({ $0.shape == outShape }) ?? true else { return nil }
    let sizes = ConvolutionKernel.Sizes(batch: x.shape[0], inChannels: x.shape[1], outChannels: channels, groups: groups)
    let out = Tensor(uninitializedShape: outShape, dtype: .float32)
    let xc = x.contiguousRaw, wc = weight.contiguousRaw, bc = bias?.contiguousRaw
    let sc = e.scale?.contiguousRaw, hc = e.shift?.contiguousRaw, rc = e.residual?.contiguousRaw
    let y = out.mutablePointer(as: Float.self), sample = channels * g.outputPlane
    let scale = sc?.pointer(as: Float.self), shift = hc?.pointer(as: Float.self), residual = rc?.pointer(as: Float.self)
    let packed = cachedWeights(weightCache, weight: weight, bias: bias, sizes: sizes, geometry: g)
    ConvolutionKernel.paddedForward(x: xc.pointer(as: Float.self), w: wc.pointer(as: Float.self), bias: bc?.pointer(as: Float.self),
                                    y: nil, sizes, g, packed: packed) { n, values in
        ConvolutionEpilogue.apply(values, y + n * sample, channels: channels, plane: g.outputPlane, scale: scale, shift: shift,
                                  residual: residual.map { $0 + n * sample }, relu: e.relu)
    }
    return out
}
