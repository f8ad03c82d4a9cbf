import CEmberKernels
import EmberAutograd
import EmberTensor
import EmberStorage

/// Normalises groups of contiguous elements: the input is viewed as `[rows, groupSize]` and each
/// row is normalised by its own mean and biased variance; then an affine map is applied per
/// `channel`, where element `j` of row `r` belongs to channel `channelOf(r, j)`.
/// Shared by layer normalization (one row per sample position) and group normalization (one row per
/// sample and group).
package enum GroupedNormKernel {
    /// `sum f(j)` over `j < n` in eight interleaved chains combined in a fixed order, then the
    /// tail: deterministic and per row, but not bitwise the one-chain sum. One chain of dependent
    /// additions was bound by the adder's latency (BENCHMARKS.md, eleventh session).
    @inline(__always)
    static func laneSum(_ n: Int, _ f: (Int) -> Double) -> Double {
        var lanes = SIMD8<Double>(repeating: 0)
        var j = 0
        while j + 8 <= n {
            lanes += SIMD8<Double>(f(j), f(j + 1), f(j + 2), f(j + 3), f(j + 4), f(j + 5), f(j + 6), f(j + 7))
            j += 8
        }
        var total = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
        while j < n { total += f(j); j += 1 }
        return total
    }

    /// Forward. Returns per-row mean and inverse standard deviation for the backward.
    ///
    /// `affineIndex == nil` means element `j` of every row uses affine entry `j` (layer
    /// normalization): the loops then index directly instead of calling a closure per element,
    /// with the same arithmetic in the same order, so the results are bitwise the same.
    /// Float32 layer normalization runs in C (`ember_layer_norm_f32`, the same arithmetic at the
    /// CPU's vector width: bitwise this loop's results).
    static func forward<T: TensorFloat>(
        _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, rows: Int, size: Int, eps: Double,
        affineIndex: ((Int, Int) -> Int)?, gamma: UnsafePointer<T>?, beta: UnsafePointer<T>?
    ) -> (mean: [Double], invstd: [Double]) {
        if T.self == Float.self && affineIndex == nil && size > 0 {
            func f(_ p: UnsafePointer<T>?) -> UnsafePointer<Float>? { UnsafeRawPointer(p)?.assumingMemoryBound(to: Float.self) }
            return layerNorm(path: .best, f(x)!, UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self), rows: rows,
                             size: size, eps: eps, gamma: f(gamma), beta: f(beta))
        }
        return forwardRows(x, y, rows: rows, size: size, eps: eps, affineIndex: affineIndex, gamma: gamma, beta: beta)
    }

    /// Float32 layer normalization (`size > 0`) on `path`'s vector width, of `x`'s rows or, with
    /// `adding`, of the float32 sums `x + adding` (bitwise normalising the sum tensor).
    package static func layerNorm(
        path: GEMMKernelPath, _ x: UnsafePointer<Float>, adding x2: UnsafePointer<Float>? = nil, _ y: UnsafeMutablePointer<Float>,
        rows: Int, size: Int, eps: Double, gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?
    ) -> (mean: [Double], invstd: [Double]) {
        var means = [Double](repeating: 0, count: rows), invstds = [Double](repeating: 0, count: rows)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: x2 == nil ? 0 : size) { scratch in
            means.withUnsafeMutableBufferPointer { m in
                invstds.withUnsafeMutableBufferPointer { v in
                    ember_layer_norm_f32(Int32(path.rawValue), x, x2, scratch.baseAddress, y, rows, size, eps, gamma, beta,
                                         m.baseAddress!, v.baseAddress!)
                }
            }
        }
        return (means, invstds)
    }

    /// The forward as Swift loops (any dtype, any affine indexing).
    package static func forwardRows<T: TensorFloat>(
        _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, rows: Int, size: Int, eps: Double,
        affineIndex: ((Int, Int) -> Int)?, gamma: UnsafePointer<T>?, beta: UnsafePointer<T>?
    ) -> (mean: [Double], invstd: [Double]) {
        var means = [Double](repeating: 0, count: rows), invstds = [Double](repeating: 0, count: rows)
        for r in 0..<rows {
            let p = x + r * size
            let mu = laneSum(size) { Double(p[$0]) } / Double(size)
            let sq = laneSum(size) { let d = Double(p[$0]) - mu; return d * d }
            let inv = 1 / (sq / Double(size) + eps).squareRoot()
            means[r] = mu; invstds[r] = inv
            let q = y + r * size
            guard let affineIndex else {
                switch (gamma, beta) {
                case let (gamma?, beta?): for j in 0..<size { q[j] = T((Double(p[j]) - mu) * inv * Double(gamma[j]) + Double(beta[j])) }
                case let (gamma?, nil): for j in 0..<size { q[j] = T((Double(p[j]) - mu) * inv * Double(gamma[j])) }
                case let (nil, beta?): for j in 0..<size { q[j] = T((Double(p[j]) - mu) * inv + Double(beta[j])) }
                case (nil, nil): for j in 0..<size { q[j] = T((Double(p[j]) - mu) * inv) }
                }
                continue
            }
            for j in 0..<size {
                var v = (Double(p[j]) - mu) * inv
                let a = affineIndex(r, j)
                if let gamma { v *= Double(gamma[a]) }
                if let beta { v += Double(beta[a]) }
                q[j] = T(v)
            }
        }
        return (means, invstds)
    }

    /// Backward: with `h = g * gamma`, `dx = invstd / n * (n h - sum h - xhat sum(h xhat))` per row;
    /// `dgamma[a] += g xhat`, `dbeta[a] += g`.
    static func backward<T: TensorFloat>(
        x: UnsafePointer<T>, g: UnsafePointer<T>, rows: Int, size: Int, mean: [Double], invstd: [Double],
        affineIndex: ((Int, Int) -> Int)?, gamma: UnsafePointer<T>?, affineCount: Int,
        dx: UnsafeMutablePointer<T>?, dgamma: UnsafeMutablePointer<T>?, dbeta: UnsafeMutablePointer<T>?
    ) {
        var dg = [Double](repeating: 0, count: affineCount), db = [Double](repeating: 0, count: affineCount)
        let n = Double(size)
        if affineIndex == nil {
            perColumnBackward(x: x, g: g, rows: rows, size: size, mean: mean, invstd: invstd, gamma: gamma, dx: dx, dg: &dg, db: &db)
        }
        for r in 0..<rows where affineIndex != nil {
            let affineIndex = affineIndex!
            let p = x + r * size, q = g + r * size
            let mu = mean[r], inv = invstd[r]
            @inline(__always) func h(_ j: Int) -> Double {
                let gv = Double(q[j])
                return gamma.map { gv * Double($0[affineIndex(r, j)]) } ?? gv
            }
            let sumH = laneSum(size) { h($0) }
            let sumHX = laneSum(size) { h($0) * ((Double(p[$0]) - mu) * inv) }
            for j in 0..<size {
                let a = affineIndex(r, j)
                let gv = Double(q[j])
                let xhat = (Double(p[j]) - mu) * inv
                dg[a] += gv * xhat; db[a] += gv
            }
            if let dx {
                let o = dx + r * size
                for j in 0..<size {
                    let a = affineIndex(r, j)
                    let gv = Double(q[j])
                    let h = gamma.map { gv * Double($0[a]) } ?? gv
                    let xhat = (Double(p[j]) - mu) * inv
                    o[j] = T(inv / n * (n * h - sumH - xhat * sumHX))
                }
            }
        }
        if let dgamma { for a in 0..<affineCount { dgamma[a] = T(dg[a]) } }
        if let dbeta { for a in 0..<affineCount { dbeta[a] = T(db[a]) } }
    }

    /// ``backward`` when element `j` uses affine entry `j`: the same sums in the same order.
    private static func perColumnBackward<T: TensorFloat>(
        x: UnsafePointer<T>, g: UnsafePointer<T>, rows: Int, size: Int, mean: [Double], invstd: [Double],
        gamma: UnsafePointer<T>?, dx: UnsafeMutablePointer<T>?, dg: inout [Double], db: inout [Double]
    ) {
        let n = Double(size)
        dg.withUnsafeMutableBufferPointer { dgp in db.withUnsafeMutableBufferPointer { dbp in
            let dg = dgp.baseAddress!, db = dbp.baseAddress!
            for r in 0..<rows {
                let p = x + r * size, q = g + r * size
                let mu = mean[r], inv = invstd[r]
                let sumH: Double, sumHX: Double
                if let gamma {
                    sumH = laneSum(size) { Double(q[$0]) * Double(gamma[$0]) }
                    sumHX = laneSum(size) { Double(q[$0]) * Double(gamma[$0]) * ((Double(p[$0]) - mu) * inv) }
                } else {
                    sumH = laneSum(size) { Double(q[$0]) }
                    sumHX = laneSum(size) { Double(q[$0]) * ((Double(p[$0]) - mu) * inv) }
                }
                // The affine gradients accumulate per column: a loop of its own, so it vectorizes.
                for j in 0..<size {
                    let gv = Double(q[j]), xhat = (Double(p[j]) - mu) * inv
                    dg[j] += gv * xhat; db[j] += gv
                }
                guard let dx else { continue }
                let o = dx + r * size
                if let gamma {
                    for j in 0..<size {
                        let h = Double(q[j]) * Double(gamma[j]), xhat = (Double(p[j]) - mu) * inv
                        o[j] = T(inv / n * (n * h - sumH - xhat * sumHX))
                    }
                } else {
                    for j in 0..<size {
                        let h = Double(q[j]), xhat = (Double(p[j]) - mu) * inv
                        o[j] = T(inv / n * (n * h - sumH - xhat * sumHX))
                    }
                }
            }
        } }
    }

    /// Runs the fused op on `input` with optional affine tensors and records its backward.
    static func apply(
        _ input: Tensor, rows: Int, size: Int, eps: Double, weight: Tensor?, bias: Tensor?,
        affineCount: Int, opName: String, affineIndex: ((Int, Int) -> Int)?
    ) -> Tensor {
        switch input.dtype {
        case .float32: return typed(Float.self, input, rows, size, eps, weight, bias, affineCount, opName, affineIndex)
        case .float64: return typed(Double.self, input, rows, size, eps, weight, bias, affineCount, opName, affineIndex)
        default: preconditionFailure("\(opName): expected a float32 or float64 input, got \(input.dtype)")
        }
    }

    private static func typed<T: TensorFloat>(
        _: T.Type, _ input: Tensor, _ rows: Int, _ size: Int, _ eps: Double, _ weight: Tensor?, _ bias: Tensor?,
        _ affineCount: Int, _ opName: String, _ affineIndex: ((Int, Int) -> Int)?
    ) -> Tensor {
        let x = input.contiguousRaw
        let w = weight?.to(T.dtype).contiguousRaw, b = bias?.to(T.dtype).contiguousRaw
        let out = Tensor(uninitializedShape: x.shape, dtype: T.dtype)
        let (mean, invstd) = forward(x.pointer(as: T.self), out.mutablePointer(as: T.self), rows: rows, size: size, eps: eps,
                                     affineIndex: affineIndex, gamma: w?.pointer(as: T.self), beta: b?.pointer(as: T.self))
        var inputs = [input]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        let needX = input.requiresGrad, needW = weight?.requiresGrad ?? false, needB = bias?.requiresGrad ?? false
        return out.recorded(opName, inputs, twice: true) { g in
            if creatingGraph {
                // The same normalization from recorded ops, differentiated again: rows of
                // `size`, and each element's affine entry picked by index.
                var index = [Int64](repeating: 0, count: rows * size)
                for r in 0..<rows { for j in 0..<size { index[r * size + j] = Int64(affineIndex?(r, j) ?? j) } }
                let picks = Tensor(index, shape: [rows * size])
                let grads = recomputedGradients([input, weight, bias], g) { args in
                    let x = args[0]!.reshaped([rows, size])
                    let centered = x - x.mean(axes: [1], keepDim: true)
                    var y = centered / (centered.pow(2).mean(axes: [1], keepDim: true) + eps).sqrt()
                    if let w = args[1] { y = y * w.reshaped([affineCount]).indexSelect(axis: 0, index: picks).reshaped([rows, size]) }
                    if let b = args[2] { y = y + b.reshaped([affineCount]).indexSelect(axis: 0, index: picks).reshaped([rows, size]) }
                    return y.reshaped(input.shape)
                }
                return [grads[0]] + (weight != nil ? [grads[1]] : []) + (bias != nil ? [grads[2]] : [])
            }
            let gc = g.contiguousRaw
            let dx = needX ? Tensor(uninitializedShape: x.shape, dtype: T.dtype) : nil
            let dw = needW ? Tensor(uninitializedShape: [affineCount], dtype: T.dtype) : nil
            let db = needB ? Tensor(uninitializedShape: [affineCount], dtype: T.dtype) : nil
            backward(x: x.pointer(as: T.self), g: gc.pointer(as: T.self), rows: rows, size: size, mean: mean, invstd: invstd,
                     affineIndex: affineIndex, gamma: w?.pointer(as: T.self), affineCount: affineCount,
                     dx: dx?.mutablePointer(as: T.self), dgamma: dw?.mutablePointer(as: T.self), dbeta: db?.mutablePointer(as: T.self))
            var grads: [Tensor?] = [dx]
            if let weight { grads.append(dw.map { $0.reshaped(weight.shape).to(weight.dtype) }) }
            if let bias { grads.append(db.map { $0.reshaped(bias.shape).to(bias.dtype) }) }
            return grads
        }
    }
}

/// Layer normalization over the trailing dimensions `normalizedShape`:
/// `y = (x - mean) / sqrt(var + eps) * weight + bias`, statistics per sample (biased variance).
///
/// PyTorch parity: `torch.nn.functional.layer_norm`; the mode never matters.
public func layerNorm(_ input: Tensor, normalizedShape: Shape, weight: Tensor?, bias: Tensor?, eps: Double = 1e-5,
                      context: String = "layer_norm") -> Tensor {
    let k = normalizedShape.count
    precondition(k >= 1 && input.rank >= k && Array(input.shape.suffix(k)) == normalizedShape.array,
                 "\(context): Given normalized_shape=\(normalizedShape), expected input with shape [*, \(normalizedShape.map(String.init).joined(separator: ", "))], but got input of size \(input.shape)")
    let size = normalizedShape.elementCount
    let rows = size == 0 ? 0 : input.count / size
    return GroupedNormKernel.apply(input, rows: rows, size: size, eps: eps, weight: weight, bias: bias,
                                   affineCount: size, opName: "layer_norm", affineIndex: nil)
}

/// `layerNorm(a + b, ...)` for float32 `a` and `b` of one shape, the sum never stored: the rows
/// are summed one at a time inside the normalization (the same bits as normalising `a + b`).
/// Nothing is recorded: for callers that checked no gradient is needed. Other dtypes, shapes or
/// layouts take the two-step path.
package func layerNormOfSum(_ a: Tensor, _ b: Tensor, normalizedShape: Shape, weight: Tensor?, bias: Tensor?, eps: Double,
                            context: String) -> Tensor {
    guard a.dtype == .float32, b.dtype == .float32, a.shape == b.shape, a.isContiguous, b.isContiguous,
          normalizedShape.count == 1, a.rank >= 1, a.shape[a.rank - 1] == normalizedShape[0], normalizedShape[0] > 0,
          weight.map({ $0.dtype == .float32 && $0.shape == normalizedShape }) ?? true,
          bias.map({ $0.dtype == .float32 && $0.shape == normalizedShape }) ?? true
    else { return layerNorm(a + b, normalizedShape: normalizedShape, weight: weight, bias: bias, eps: eps, context: context) }
    let size = normalizedShape[0], rows = a.count / size
    let out = Tensor(uninitializedShape: a.shape, dtype: .float32)
    let w = weight?.contiguousRaw, c = bias?.contiguousRaw
    _ = GroupedNormKernel.layerNorm(path: .best, a.pointer(as: Float.self), adding: b.pointer(as: Float.self),
                                    out.mutablePointer(as: Float.self), rows: rows, size: size, eps: eps,
                                    gamma: w?.pointer(as: Float.self), beta: c?.pointer(as: Float.self))
    return out
}

/// Group normalization: channels (dimension 1) are split into `numGroups` groups, and each sample's
/// group is normalised by its own statistics; then a per-channel affine map.
///
/// PyTorch parity: `torch.nn.functional.group_norm`; works with batch size 1; the mode never matters.
public func groupNorm(_ input: Tensor, numGroups: Int, weight: Tensor?, bias: Tensor?, eps: Double = 1e-5,
                      context: String = "group_norm") -> Tensor {
    precondition(input.rank >= 2, "\(context): Expected at least 2 dimensions for input tensor but received \(input.rank)")
    let n = input.shape[0], c = input.shape[1]
    precondition(c % numGroups == 0,
                 "\(context): Expected number of channels in input to be divisible by num_groups, but got input of shape \(input.shape) and num_groups=\(numGroups)")
    let spatial = input.count / max(n * c, 1)
    let perGroup = c / numGroups
    let size = perGroup * spatial
    return GroupedNormKernel.apply(input, rows: n * numGroups, size: size, eps: eps, weight: weight, bias: bias,
                                   affineCount: c, opName: "group_norm") { r, j in
        (r % numGroups) * perGroup + j / spatial
    }
}
