import EmberAutograd
import EmberTensor
import EmberStorage

/// Batch normalization of a contiguous-or-not `[N, C, *]` input as a differentiable op.
///
/// - Parameters:
///   - input: `[N, C]` or `[N, C, ...]`; statistics are per channel `C` (dimension 1).
///   - runningMean, runningVar: running statistics (same dtype, `[C]`); required unless
///     `training`. Updated in place when `training` (momentum weights the new batch; the running
///     variance uses the unbiased batch variance).
///   - weight, bias: optional affine parameters `[C]`.
///   - training: normalise with the batch's statistics (and update the running ones), else with
///     the running statistics.
///   - momentum: the update factor `f` (`running = (1 - f) running + f batch`).
///   - eps: added to the variance.
///   - context: module path and name for error messages.
///
/// PyTorch parity: `torch.nn.functional.batch_norm`, except that `training` has no default: the
/// caller must say which mode it means (PyTorch's default `False` is a known footgun).
public func batchNorm(
    _ input: Tensor, runningMean: inout Tensor?, runningVar: inout Tensor?,
    weight: Tensor?, bias: Tensor?, training: Bool, momentum: Double, eps: Double, context: String = "batch_norm"
) -> Tensor {
    batchNorm(input, runningMean: &runningMean, runningVar: &runningVar, weight: weight, bias: bias,
              training: training, momentum: momentum, eps: eps, context: { context })
}

/// ``batchNorm(_:runningMean:runningVar:weight:bias:training:momentum:eps:context:)`` with the
/// error context built only when a check fails (a module's path and type name cost more to format
/// than a small batch costs to normalise).
package func batchNorm(
    _ input: Tensor, runningMean: inout Tensor?, runningVar: inout Tensor?,
    weight: Tensor?, bias: Tensor?, training: Bool, momentum: Double, eps: Double, context: () -> String
) -> Tensor {
    batchNorm(input, runningMean: &runningMean, runningVar: &runningVar, weight: weight, bias: bias, training: training,
              momentum: momentum, eps: eps, adding: nil, relu: false, moments: nil, context: context)
}

/// `relu?(batchNorm(input, ...) + residual)` as one op (`batch_norm_add_relu` when it adds or
/// rectifies): the sum and the ReLU are applied to each plane right after it is normalised
/// instead of as two more passes over the output, and the backward masks the gradient by the
/// output before the BatchNorm's backward, as the separate ops' backwards do. Values, statistics
/// updates and gradients are bitwise those of the separate ops. `residual` has `input`'s shape and
/// dtype (the caller broadcasts otherwise).
///
/// `moments`, when given, are `input`'s plane moments (``PlaneMoments``, from
/// ``convolutionWithMoments(_:weight:bias:dims:stride:padding:dilation:groups:paddingMode:context:)``
/// on the op that produced `input`): batch statistics of float32 planes then come from them, the
/// same bits as from a pass over `input`. Moments of another shape are ignored.
package func batchNorm(
    _ input: Tensor, runningMean: inout Tensor?, runningVar: inout Tensor?,
    weight: Tensor?, bias: Tensor?, training: Bool, momentum: Double, eps: Double, adding residual: Tensor?, relu: Bool,
    moments: PlaneMoments? = nil, context: () -> String
) -> Tensor {
    precondition(input.rank >= 2, "\(context()): expected input with at least 2 dimensions [N, C, ...], got shape \(input.shape)")
    precondition(input.dtype.isFloatingPoint, "\(context()): expected a float32 or float64 input, got \(input.dtype)")
    let n = input.shape[0], c = input.shape[1]
    let s = input.count / max(n * c, 1)
    if let rm = runningMean {
        precondition(rm.count == c, "\(context()): running_mean should contain \(c) elements not \(rm.count) (input shape \(input.shape))")
    }
    if let w = weight {
        precondition(w.count == c, "\(context()): weight should contain \(c) elements not \(w.count) (input shape \(input.shape))")
    }
    let useBatchStats = training || runningMean == nil || runningVar == nil
    if useBatchStats {
        precondition(n * s > 1, "\(context()): Expected more than 1 value per channel when training, got input size torch.Size(\(input.shape)). Fixes: drop the last partial batch (DataLoader dropLast), run this module in eval mode, or use GroupNorm/LayerNorm, which normalise each sample on its own.")
        precondition(!training || eps > 0, "\(context()): batch_norm eps must be positive during training, but got \(eps)")
    }
    precondition(eps >= 0, "\(context()): batch_norm eps must be non-negative, but got \(eps)")
    if let residual {
        precondition(residual.shape == input.shape && residual.dtype == input.dtype,
                     "\(context()): the residual \(residual.shape) (\(residual.dtype)) must match the input \(input.shape) (\(input.dtype))")
    }
    let after = (residual, relu)
    switch input.dtype {
    case .float32:
        let given = moments.flatMap { $0.batch == n && $0.channels == c && $0.plane == s && s > 1 ? $0 : nil }
        return batchNormTyped(Float.self, input, &runningMean, &runningVar, weight, bias, training, useBatchStats, momentum, eps, n, c, s, after,
                              moments: given)
    default:
        return batchNormTyped(Double.self, input, &runningMean, &runningVar, weight, bias, training, useBatchStats, momentum, eps, n, c, s, after)
    }
}

/// An eval-mode batch normalization with these running statistics as a per-channel `scale` and
/// `shift` (`[C]`, `dtype`, contiguous): `x * scale + shift` is bitwise what ``batchNorm`` computes
/// in eval mode (it folds the statistics the same way), so a product's epilogue can apply it.
package func batchNormEvalScaleShift(runningMean: Tensor, runningVar: Tensor, weight: Tensor?, bias: Tensor?, eps: Double,
                                     dtype: DType) -> (scale: Tensor, shift: Tensor) {
    func typed<T: TensorFloat>(_: T.Type) -> (scale: Tensor, shift: Tensor) {
        let c = runningMean.count
        let w = weight?.to(T.dtype).contiguousRaw, b = bias?.to(T.dtype).contiguousRaw
        let scale = Tensor(uninitializedShape: [c], dtype: T.dtype), shift = Tensor(uninitializedShape: [c], dtype: T.dtype)
        var stats = [Double](repeating: 0, count: 2 * c)
        stats.withUnsafeMutableBufferPointer { buffer in
            let mean = buffer.baseAddress!, invstd = mean + c
            copyAsDoubles(runningMean, into: mean, count: c)
            copyAsDoubles(runningVar, into: invstd, count: c)
            BatchNormKernel.invertStandardDeviation(invstd, count: c, eps: eps)
            BatchNormKernel.scaleShift(mean: mean, invstd: invstd, c: c, gamma: w?.pointer(as: T.self),
                                       beta: b?.pointer(as: T.self), scale: scale.mutablePointer(as: T.self),
                                       shift: shift.mutablePointer(as: T.self))
        }
        return (scale, shift)
    }
    return dtype == .float32 ? typed(Float.self) : typed(Double.self)
}

private func batchNormTyped<T: TensorFloat>(
    _: T.Type, _ input: Tensor, _ runningMean: inout Tensor?, _ runningVar: inout Tensor?,
    _ weight: Tensor?, _ bias: Tensor?, _ training: Bool, _ useBatchStats: Bool,
    _ momentum: Double, _ eps: Double, _ n: Int, _ c: Int, _ s: Int, _ after: (residual: Tensor?, relu: Bool),
    moments: PlaneMoments? = nil
) -> Tensor {
    let x = input.contiguousRaw
    let residual = after.residual, relu = after.relu, r = residual?.contiguousRaw
    let w = weight?.to(T.dtype).contiguousRaw, b = bias?.to(T.dtype).contiguousRaw
    // mean in [0, c), invstd in [c, 2c): one allocation, kept by the backward closure.
    var stats = [Double](unsafeUninitializedCapacity: 2 * c) { _, count in count = 2 * c }  // all written below
    stats.withUnsafeMutableBufferPointer { buffer in
        let mean = buffer.baseAddress!, invstd = mean + c
        if useBatchStats {
            // The biased variance goes into `invstd` and is inverted below.
            if let moments {
                moments.values.withUnsafeBufferPointer { v in
                    BatchNormPlanes.combine(sums: v.baseAddress!, deviations: v.baseAddress! + n * c, n: n, c: c, s: s, mean: mean, variance: invstd)
                }
            } else {
                BatchNormKernel.statistics(x.pointer(as: T.self), n: n, c: c, s: s, mean: mean, variance: invstd)
            }
            if training, var rm = runningMean, var rv = runningVar {
                runningMean = nil; runningVar = nil  // so the copies above are unique and update in place
                let m = Double(n * s)
                rm.makeUniqueContiguous(); rv.makeUniqueContiguous()
                let pm = rm.mutablePointer(as: T.self), pv = rv.mutablePointer(as: T.self)
                let f = T(momentum)
                for ch in 0..<c {
                    pm[ch] = (1 - f) * pm[ch] + f * T(mean[ch])
                    pv[ch] = (1 - f) * pv[ch] + f * T(invstd[ch] * m / (m - 1))
                }
                runningMean = rm; runningVar = rv
            }
        } else {
            copyAsDoubles(runningMean!, into: mean, count: c)
            copyAsDoubles(runningVar!, into: invstd, count: c)
        }
        BatchNormKernel.invertStandardDeviation(invstd, count: c, eps: eps)
    }
    let out = Tensor(uninitializedShape: x.shape, dtype: T.dtype)
    // A recorded ReLU on float32 planes with batch statistics keeps its mask as bits for the
    // backward (`recordedWithSum`), taken as the forward writes each plane.
    let records = (residual != nil || relu) && shouldRecord([input, weight, bias, residual].compactMap { $0 })
    var maskBits: [UInt16]? = records && relu && T.self == Float.self && s > 1 && useBatchStats
        ? [UInt16](repeating: 0, count: n * c * BatchNormPlanes.maskWords(s: s)) : nil
    stats.withUnsafeBufferPointer { buffer in
        func run(_ bits: UnsafeMutablePointer<UInt16>?) {
            BatchNormKernel.normalize(x.pointer(as: T.self), out.mutablePointer(as: T.self), n: n, c: c, s: s,
                                      mean: buffer.baseAddress!, invstd: buffer.baseAddress! + c,
                                      gamma: w?.pointer(as: T.self), beta: b?.pointer(as: T.self),
                                      residual: r?.pointer(as: T.self), relu: relu, maskBits: bits)
        }
        if maskBits != nil { maskBits!.withUnsafeMutableBufferPointer { run($0.baseAddress!) } } else { run(nil) }
    }
    if residual != nil || relu {
        guard records else { return out }
        return recordedWithSum(T.self, input, weight, bias, residual, relu: relu, output: out, stats: stats, x: x, w: w, n, c, s,
                               useBatchStats, eps, maskBits: maskBits)
    }
    let needs = (x: input.requiresGrad, weight: weight?.requiresGrad ?? false, bias: bias?.requiresGrad ?? false)
    let backward = { (g: Tensor) -> (dx: Tensor?, dw: Tensor?, db: Tensor?) in
        batchNormGradients(T.self, g, x: x, w: w, weight: weight, bias: bias, stats: stats, n, c, s, useBatchStats, needs)
    }
    // With createGraph: the same normalization from recorded ops, differentiated again (built
    // only then: a closure made here would cost an allocation on every call).
    func composite(_ args: [Tensor?]) -> Tensor {
        batchNormComposite(args[0]!, args[1], args[2], stats: stats, c: c, useBatchStats: useBatchStats, eps: eps)
    }
    if let weight, let bias {
        return out.recorded("batch_norm", input, weight, bias, twice: true) { g in
            if creatingGraph { return recomputedGradients([input, weight, bias], g, composite) }
            let (dx, dw, db) = backward(g)
            return [dx, dw, db]
        }
    }
    var inputs = [input]
    if let weight { inputs.append(weight) }
    if let bias { inputs.append(bias) }
    return out.recorded("batch_norm", inputs, twice: true) { g in
        if creatingGraph {
            let grads = recomputedGradients([input, weight, bias], g, composite)
            return [grads[0]] + (weight != nil ? [grads[1]] : []) + (bias != nil ? [grads[2]] : [])
        }
        let (dx, dw, db) = backward(g)
        var grads: [Tensor?] = [dx]
        if weight != nil { grads.append(dw) }
        if bias != nil { grads.append(db) }
        return grads
    }
}

/// The recording of ``batchNorm(_:runningMean:runningVar:weight:bias:training:momentum:eps:adding:relu:context:)``
/// with a residual or a ReLU: inputs `input`, then those of `weight`, `bias` and `residual` that
/// are given. The backward masks the gradient by the output (the ReLU's backward), hands it to the
/// residual unchanged (the sum's) and to the BatchNorm's backward; under `createGraph` it
/// differentiates the same computation built from recorded ops.
private func recordedWithSum<T: TensorFloat>(
    _: T.Type, _ input: Tensor, _ weight: Tensor?, _ bias: Tensor?, _ residual: Tensor?, relu: Bool, output out: Tensor,
    stats: [Double], x: Tensor, w: Tensor?, _ n: Int, _ c: Int, _ s: Int, _ useBatchStats: Bool, _ eps: Double,
    maskBits: [UInt16]?
) -> Tensor {
    let inputs = [input, weight, bias, residual].compactMap { $0 }
    let needs = (x: input.requiresGrad, weight: weight?.requiresGrad ?? false, bias: bias?.requiresGrad ?? false)
    func composite(_ args: [Tensor?]) -> Tensor {
        var y = batchNormComposite(args[0]!, args[1], args[2], stats: stats, c: c, useBatchStats: useBatchStats, eps: eps)
        if let r = args[3] { y = y + r }
        return relu ? y.relu() : y
    }
    return out.recorded("batch_norm_add_relu", inputs, twice: true) { gOut in
        let all: [Tensor?]
        if creatingGraph {
            all = recomputedGradients([input, weight, bias, residual], gOut, composite)
        } else if let maskBits {
            // ReLU's backward within BatchNorm's passes (its mask applied as they read the
            // gradient; written out only for the residual).
            let keep = residual?.requiresGrad == true ? Tensor(uninitializedShape: out.shape, dtype: T.dtype) : nil
            let (dx, dw, db) = batchNormGradients(T.self, gOut, x: x, w: w, weight: weight, bias: bias, stats: stats, n, c, s,
                                                  useBatchStats, needs, maskBits: maskBits, maskedGradient: keep)
            all = [dx, dw, db, keep]
        } else {
            let g = relu ? Kernels.reluBackward(gOut, out) : gOut
            let (dx, dw, db) = batchNormGradients(T.self, g, x: x, w: w, weight: weight, bias: bias, stats: stats, n, c, s,
                                                  useBatchStats, needs)
            all = [dx, dw, db, residual?.requiresGrad == true ? g : nil]
        }
        return zip(all, [input, weight, bias, residual]).compactMap { grad, x in x == nil ? nil : .some(grad) }
    }
}

/// The gradients of input, weight and bias (those `needs` asks for) from the output's gradient
/// `g`, with the statistics the forward saved (`x` and `w` its contiguous input and weight).
private func batchNormGradients<T: TensorFloat>(
    _: T.Type, _ g: Tensor, x: Tensor, w: Tensor?, weight: Tensor?, bias: Tensor?, stats: [Double], _ n: Int, _ c: Int, _ s: Int,
    _ useBatchStats: Bool, _ needs: (x: Bool, weight: Bool, bias: Bool), maskBits: [UInt16]? = nil, maskedGradient: Tensor? = nil
) -> (dx: Tensor?, dw: Tensor?, db: Tensor?) {
    let gc = g.contiguousRaw
    let dx = needs.x ? Tensor(uninitializedShape: x.shape, dtype: T.dtype) : nil
    let dw = needs.weight ? Tensor(uninitializedShape: [c], dtype: T.dtype) : nil
    let db = needs.bias ? Tensor(uninitializedShape: [c], dtype: T.dtype) : nil
    func run(_ bits: UnsafePointer<UInt16>?) {
        stats.withUnsafeBufferPointer { buffer in
            BatchNormKernel.backward(x: x.pointer(as: T.self), g: gc.pointer(as: T.self), n: n, c: c, s: s,
                                     mean: buffer.baseAddress!, invstd: buffer.baseAddress! + c,
                                     gamma: w?.pointer(as: T.self), usedBatchStats: useBatchStats,
                                     dx: dx?.mutablePointer(as: T.self), dgamma: dw?.mutablePointer(as: T.self),
                                     dbeta: db?.mutablePointer(as: T.self), maskBits: bits,
                                     maskedGradient: maskedGradient?.mutablePointer(as: T.self))
        }
    }
    if let maskBits { maskBits.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
    return (dx, dw.map { $0.to(weight!.dtype) }, db.map { $0.to(bias!.dtype) })
}

/// Batch normalization of `x` built from recorded ops, for `createGraph`: with the batch's
/// statistics recomputed (so they are differentiated too), or with the fixed ones in `stats`
/// (means, then inverse standard deviations), then the affine parameters.
private func batchNormComposite(_ x: Tensor, _ weight: Tensor?, _ bias: Tensor?, stats: [Double], c: Int, useBatchStats: Bool,
                                eps: Double) -> Tensor {
    var shape = Shape(repeating: 1, count: x.rank)
    shape[1] = c
    let axes = [0] + Array(2..<x.rank)
    var y: Tensor
    if useBatchStats {
        let centered = x - x.mean(axes: axes, keepDim: true)
        y = centered / (centered.pow(2).mean(axes: axes, keepDim: true) + eps).sqrt()
    } else {
        let mean = Tensor(Array(stats[0..<c]), shape: shape).to(x.dtype)
        let invstd = Tensor(Array(stats[c..<(2 * c)]), shape: shape).to(x.dtype)
        y = (x - mean) * invstd
    }
    if let weight { y = y * weight.reshaped(shape) }
    if let bias { y = y + bias.reshaped(shape) }
    return y
}

/// Reads the `count` elements of a 1-D float tensor as Doubles.
private func copyAsDoubles(_ t: Tensor, into out: UnsafeMutablePointer<Double>, count: Int) {
    switch t.dtype {
    case .float32 where t.isContiguous:
        let p = t.pointer(as: Float.self)
        for i in 0..<count { out[i] = Double(p[i]) }
    case .float64 where t.isContiguous:
        out.update(from: t.pointer(as: Double.self), count: count)
    default:
        let d = t.to(.float64).contiguousRaw.pointer(as: Double.self)
        out.update(from: d, count: count)
    }
}
