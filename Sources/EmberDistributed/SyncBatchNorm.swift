import EmberAutograd
import EmberFunctional
import EmberNN
import EmberStorage
import EmberTensor

/// Batch normalization whose training-mode statistics are those of the global batch: the
/// batches of all ranks of a process group together.
///
/// Training mode, per channel `c`, over all ranks' samples (uneven shard sizes, and ranks with
/// an empty batch, included): each rank computes its count `n_r`, mean and sum of squared
/// deviations `M2_r`; one all-gather shares them; every rank combines them the same way
/// (`n = Σ n_r`, `mean = Σ n_r mean_r / n`, `M2 = Σ M2_r + n_r (mean_r - mean)²`, in float64)
/// and normalizes with `mean` and the biased variance `M2 / n`. Running statistics move by the
/// global mean and the unbiased variance `M2 / (n - 1)`, so they stay identical on every rank.
/// Backward all-reduces the two per-channel sums `Σ dy` and `Σ dy (x - mean)` (one collective)
/// and forms the input gradient from the global sums; the weight and bias gradients are this
/// rank's (DistributedDataParallel averages them), as in PyTorch.
///
/// Evaluation mode, and a module pinned to eval, normalize with the running statistics and run
/// no collective at all. Without running statistics, eval uses this rank's batch statistics (as
/// PyTorch's SyncBatchNorm does: it synchronizes only in training mode). A group of one process
/// gives BatchNorm's numbers.
///
/// PyTorch parity: `torch.nn.SyncBatchNorm(num_features, eps, momentum, affine,
/// track_running_stats, process_group)`, the same state-dict keys and the same gradients. PyTorch
/// all-gathers mean, inverse standard deviation and count; Ember all-gathers mean, `M2` and count
/// (the same statistics, combined without the round trip through `invstd`). Not twice
/// differentiable.
public final class SyncBatchNorm: BatchNormBase {
    /// The group whose ranks' batches form the global batch.
    public var processGroup: ProcessGroup { (synchronizer as! GroupBatchNormSynchronizer).group }

    /// - Parameter processGroup: the group (PyTorch's default: the world group).
    public init(_ numFeatures: Int, eps: Double = 1e-5, momentum: Double? = 0.1, affine: Bool = true,
                trackRunningStats: Bool = true, processGroup: ProcessGroup, dtype: DType = .float32) {
        super.init(numFeatures, eps: eps, momentum: momentum, affine: affine, trackRunningStats: trackRunningStats, dtype: dtype)
        synchronizer = GroupBatchNormSynchronizer(group: processGroup)
    }

    public override var acceptedRanks: Set<Int> { Set(2...16) }
    public override var rankDescription: String { "at least 2D" }
}

extension Module {
    /// Makes every BatchNorm (1d, 2d, 3d, or any ``BatchNormBase``) in this tree normalize in
    /// training mode with the global batch of `processGroup` (see ``SyncBatchNorm``), and returns
    /// `self`.
    ///
    /// It reaches every BatchNorm that module discovery reaches, however it is stored (fields,
    /// arrays, dictionaries, optionals, tuples, structs, enums), and converts it in place: the
    /// modules keep their identity, so parameters, buffers, modes, pins, hooks and optimizers
    /// that hold their parameters stay valid. ``BatchNormBase/isSynchronized`` then reports
    /// `true`.
    ///
    /// PyTorch parity: `torch.nn.SyncBatchNorm.convert_sync_batchnorm(module, process_group)`,
    /// except that PyTorch builds new `SyncBatchNorm` modules (copying weights, buffers and the
    /// training flag) and returns a new tree; Ember converts the existing modules, which keep
    /// their class name in listings (`BatchNorm1d`), because a module held in a `let` property
    /// cannot be replaced.
    @discardableResult
    public func convertSyncBatchNorm(processGroup: ProcessGroup) -> Self {
        for module in modules() {
            guard let bn = module as? BatchNormBase else { continue }
            bn.synchronizer = GroupBatchNormSynchronizer(group: processGroup)
        }
        return self
    }
}

/// The free-function spelling of ``Module/convertSyncBatchNorm(processGroup:)``.
///
/// PyTorch parity: `torch.nn.SyncBatchNorm.convert_sync_batchnorm(module, process_group)`.
@discardableResult
public func convertSyncBatchNorm<M: Module>(_ model: M, processGroup: ProcessGroup) -> M {
    model.convertSyncBatchNorm(processGroup: processGroup)
}

/// The distributed statistics of a ``SyncBatchNorm`` and of converted BatchNorms.
final class GroupBatchNormSynchronizer: BatchNormSynchronizer {
    let group: ProcessGroup

    init(group: ProcessGroup) { self.group = group }

    func batchNorm(_ input: Tensor, runningMean: inout Tensor?, runningVar: inout Tensor?, weight: Tensor?, bias: Tensor?,
                   momentum: Double, eps: Double, context: () -> String) -> Tensor {
        precondition(input.rank >= 2, "\(context()): expected input with at least 2 dimensions [N, C, ...], got shape \(input.shape)")
        precondition(input.dtype.isFloatingPoint, "\(context()): expected a float32 or float64 input, got \(input.dtype)")
        precondition(eps > 0, "\(context()): batch_norm eps must be positive during training, but got \(eps)")
        let c = input.shape[1]
        if let w = weight {
            precondition(w.count == c, "\(context()): weight should contain \(c) elements not \(w.count) (input shape \(input.shape))")
        }
        switch input.dtype {
        case .float32: return syncBatchNorm(Float.self, input, &runningMean, &runningVar, weight, bias, momentum, eps, context)
        default: return syncBatchNorm(Double.self, input, &runningMean, &runningVar, weight, bias, momentum, eps, context)
        }
    }

    /// Runs a collective; a failure here (inside a forward or backward, which cannot throw) stops
    /// this rank, and `mpirun` then ends the others.
    private func collective(_ context: () -> String, _ body: () throws -> Tensor) -> Tensor {
        do { return try body() } catch {
            fatalError("\(context()): SyncBatchNorm collective failed on rank \(group.rank) of \(group.worldSize): \(error)")
        }
    }

    private func syncBatchNorm<T: TensorFloat>(
        _: T.Type, _ input: Tensor, _ runningMean: inout Tensor?, _ runningVar: inout Tensor?,
        _ weight: Tensor?, _ bias: Tensor?, _ momentum: Double, _ eps: Double, _ context: () -> String
    ) -> Tensor {
        let group = self.group
        let n = input.shape[0], c = input.shape[1]
        let s = input.count / max(n * c, 1)
        let x = input.contiguousRaw
        let px = x.pointer(as: T.self)
        // This rank's count, means and M2 (sums of squared deviations), in float64.
        // Rows outer and channels inner when each channel has one value per sample ([N, C]), so
        // the loops stream memory in order and vectorize; otherwise each (sample, channel) plane.
        var local = [Double](repeating: 0, count: 2 * c + 1)
        let m = n * s
        local[0] = Double(m)
        if m > 0 {
            local.withUnsafeMutableBufferPointer { l in
                let sum = l.baseAddress! + 1, m2 = sum + c
                for i in 0..<n {
                    let row = px + i * c * s
                    if s == 1 {
                        for ch in 0..<c { sum[ch] += Double(row[ch]) }
                    } else {
                        for ch in 0..<c { let base = row + ch * s; var acc = 0.0; for j in 0..<s { acc += Double(base[j]) }; sum[ch] += acc }
                    }
                }
                for ch in 0..<c { sum[ch] /= Double(m) }
                for i in 0..<n {
                    let row = px + i * c * s
                    if s == 1 {
                        for ch in 0..<c { let d = Double(row[ch]) - sum[ch]; m2[ch] += d * d }
                    } else {
                        for ch in 0..<c {
                            let base = row + ch * s, mu = sum[ch]
                            var acc = 0.0
                            for j in 0..<s { let d = Double(base[j]) - mu; acc += d * d }
                            m2[ch] += acc
                        }
                    }
                }
            }
        }
        let gathered = collective(context) { try group.allGather(Tensor(local, shape: [2 * c + 1])) }.scalars(as: Double.self)
        let width = 2 * c + 1
        let total = (0..<group.worldSize).reduce(0.0) { $0 + gathered[$1 * width] }
        precondition(total > 1, "\(context()): Expected more than 1 value per channel when training, got \(Int(total)) values per channel over all \(group.worldSize) ranks (input size torch.Size(\(input.shape)) on this rank)")
        var mean = [Double](repeating: 0, count: c), invstd = [Double](repeating: 0, count: c), variance = [Double](repeating: 0, count: c)
        for ch in 0..<c {
            var sum = 0.0
            for r in 0..<group.worldSize { sum += gathered[r * width] * gathered[r * width + 1 + ch] }
            let mu = sum / total
            var m2 = 0.0
            for r in 0..<group.worldSize {
                let count = gathered[r * width], d = gathered[r * width + 1 + ch] - mu
                m2 += gathered[r * width + 1 + c + ch] + count * d * d
            }
            mean[ch] = mu
            variance[ch] = m2 / total
            invstd[ch] = 1 / (variance[ch] + eps).squareRoot()
        }
        if var rm = runningMean, var rv = runningVar {
            runningMean = nil; runningVar = nil  // so the copies are unique and update in place
            rm.makeUniqueContiguous(); rv.makeUniqueContiguous()
            let pm = rm.mutablePointer(as: T.self), pv = rv.mutablePointer(as: T.self)
            let f = T(momentum)
            for ch in 0..<c {
                pm[ch] = (1 - f) * pm[ch] + f * T(mean[ch])
                pv[ch] = (1 - f) * pv[ch] + f * T(variance[ch] * total / (total - 1))
            }
            runningMean = rm; runningVar = rv
        }
        let w = weight?.to(T.dtype).contiguousRaw.scalars(as: T.self).map(Double.init)
        let b = bias?.to(T.dtype).contiguousRaw.scalars(as: T.self).map(Double.init)
        // Per channel: y = (x - mean) * scale + shift, with scale = invstd * weight.
        // The statistics are float64; the element-wise transform runs in the input's precision
        // (as PyTorch's does), so that it vectorizes at full width.
        let scale = (0..<c).map { invstd[$0] * (w?[$0] ?? 1) }
        let meanT = mean.map { T($0) }, scaleT = scale.map { T($0) }, shiftT = (0..<c).map { T(b?[$0] ?? 0) }
        let out = Tensor(uninitializedShape: x.shape, dtype: T.dtype)
        let po = out.mutablePointer(as: T.self)
        meanT.withUnsafeBufferPointer { mu in scaleT.withUnsafeBufferPointer { sc in shiftT.withUnsafeBufferPointer { sh in
            for i in 0..<n {
                let row = i * c * s
                if s == 1 {
                    for ch in 0..<c { po[row + ch] = (px[row + ch] - mu[ch]) * sc[ch] + sh[ch] }
                } else {
                    for ch in 0..<c {
                        let base = row + ch * s, k = sc[ch], t = sh[ch], u = mu[ch]
                        for j in 0..<s { po[base + j] = (px[base + j] - u) * k + t }
                    }
                }
            }
        } } }
        let needX = input.requiresGrad, needW = weight?.requiresGrad ?? false, needB = bias?.requiresGrad ?? false
        let backwardContext = context() + " (backward)"
        let backward = { (g: Tensor) -> [Tensor?] in
            let gc = g.contiguousRaw
            let pg = gc.pointer(as: T.self), px = x.pointer(as: T.self)
            // Σ dy and Σ dy (x - mean) per channel, on this rank.
            var sums = [Double](repeating: 0, count: 2 * c)
            sums.withUnsafeMutableBufferPointer { sp in mean.withUnsafeBufferPointer { mu in
                let sdy = sp.baseAddress!, sdyx = sdy + c
                for i in 0..<n {
                    let row = i * c * s
                    if s == 1 {
                        for ch in 0..<c {
                            let dy = Double(pg[row + ch])
                            sdy[ch] += dy
                            sdyx[ch] += dy * (Double(px[row + ch]) - mu[ch])
                        }
                    } else {
                        for ch in 0..<c {
                            let base = row + ch * s, u = mu[ch]
                            var a = 0.0, b = 0.0
                            for j in 0..<s { let dy = Double(pg[base + j]); a += dy; b += dy * (Double(px[base + j]) - u) }
                            sdy[ch] += a
                            sdyx[ch] += b
                        }
                    }
                }
            } }
            var dx: Tensor?
            if needX {
                let global = self.collective({ backwardContext }) { try group.allReduce(Tensor(sums, shape: [2 * c])) }.scalars(as: Double.self)
                // dx = (dy - meanDy - (x - mean) * k) * scale, k = invstd² · mean(dy (x - mean)).
                let meanDy = (0..<c).map { T(global[$0] / total) }
                let k = (0..<c).map { T(invstd[$0] * invstd[$0] * global[c + $0] / total) }
                let result = Tensor(uninitializedShape: x.shape, dtype: T.dtype)
                let pd = result.mutablePointer(as: T.self)
                meanT.withUnsafeBufferPointer { mu in scaleT.withUnsafeBufferPointer { sc in
                    meanDy.withUnsafeBufferPointer { md in k.withUnsafeBufferPointer { kk in
                        for i in 0..<n {
                            let row = i * c * s
                            if s == 1 {
                                for ch in 0..<c { pd[row + ch] = (pg[row + ch] - md[ch] - (px[row + ch] - mu[ch]) * kk[ch]) * sc[ch] }
                            } else {
                                for ch in 0..<c {
                                    let base = row + ch * s, u = mu[ch], d = md[ch], q = kk[ch], f = sc[ch]
                                    for j in 0..<s { pd[base + j] = (pg[base + j] - d - (px[base + j] - u) * q) * f }
                                }
                            }
                        }
                    } }
                } }
                dx = result
            }
            var grads: [Tensor?] = [dx]
            if let weight {
                grads.append(needW ? Tensor((0..<c).map { T(sums[c + $0] * invstd[$0]) }, shape: [c]).to(weight.dtype) : nil)
            }
            if let bias {
                grads.append(needB ? Tensor((0..<c).map { T(sums[$0]) }, shape: [c]).to(bias.dtype) : nil)
            }
            return grads
        }
        var inputs = [input]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        return out.recorded("sync_batch_norm", inputs, backward: backward)
    }
}
