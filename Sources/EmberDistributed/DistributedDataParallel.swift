import EmberAutograd
import EmberNN
import EmberStorage
import EmberTensor

/// Data-parallel training of one model replicated on every rank of a process group.
///
/// At wrap time, every parameter and buffer is broadcast from rank 0, so all replicas start
/// equal. Each rank runs the forward and backward on its own shard of the global batch; then
/// ``synchronizeGradients()`` (or ``backward(_:)``, which calls it after `loss.backward()`)
/// averages the gradients over ranks, so that every rank's optimizer takes the same step. With
/// each rank's loss a mean over its `B` samples, the averaged gradient is the gradient of the
/// mean loss over the global batch of `worldSize * B` samples.
///
/// Gradients travel in buckets of at most ``bucketCapMB`` megabytes (PyTorch's default, 25),
/// parameters in reverse order (roughly the order backward produces them), one all-reduce per
/// bucket and dtype. A parameter without a gradient on this rank (unused in this forward)
/// contributes zeros, so every rank runs the same collectives (PyTorch's
/// `find_unused_parameters=True`); its gradient stays `nil` only when no rank produced one.
/// Frozen parameters (`requiresGrad == false`) are left out.
///
/// ``noSync(_:)`` runs its body without averaging: gradients accumulate locally, and the next
/// synchronized backward averages the accumulated sums (gradient accumulation).
///
/// In training mode, with ``broadcastBuffers`` (the default), each forward first broadcasts the
/// buffers (BatchNorm running statistics) from rank 0, as PyTorch does; evaluation-mode forwards
/// run no collective.
///
/// PyTorch parity: `torch.nn.parallel.DistributedDataParallel(module, process_group,
/// broadcast_buffers=True, bucket_cap_mb=25, find_unused_parameters=True)` with `no_sync()`; the
/// state dict keys carry the `module.` prefix as PyTorch's do. Differences: PyTorch averages
/// each bucket from autograd hooks while backward is still running (overlap); Ember averages
/// after backward, in ``backward(_:)`` or ``synchronizeGradients()``, so communication does not
/// overlap computation.
public final class DistributedDataParallel: Module {
    /// The wrapped model.
    public let module: Module
    /// The group whose ranks hold replicas.
    public let processGroup: ProcessGroup
    /// The largest bucket, in megabytes (2^20 bytes).
    public let bucketCapMB: Double
    /// Whether training-mode forwards broadcast the buffers from rank 0 first.
    public let broadcastBuffers: Bool
    /// `false` inside ``noSync(_:)``.
    public private(set) var requiresGradientSync = true
    /// The gradient buckets and the buffers, listed once at wrap time (as PyTorch fixes its
    /// buckets at construction): a per-step walk of the module tree would cost more than the
    /// collectives of a small model.
    private var lists = Lists()

    /// The wrap-time lists; a ``ModuleTreeLeaf``, so module discovery does not list these
    /// parameters and buffers a second time (they belong to ``module``).
    private struct Lists: ModuleTreeLeaf {
        var buckets: [[Parameter]] = []
        var buffers: [(dtype: DType, buffers: [Buffer])] = []
    }

    /// Wraps `module`, broadcasting its parameters and buffers from rank 0.
    ///
    /// - Parameters:
    ///   - processGroup: the group (``ProcessGroup/world(verifiesCalls:)`` for `mpirun`'s ranks).
    ///   - bucketCapMB: the bucket size cap in megabytes.
    ///   - broadcastBuffers: broadcast buffers from rank 0 at each training-mode forward.
    public init(_ module: Module, processGroup: ProcessGroup, bucketCapMB: Double = 25, broadcastBuffers: Bool = true) throws {
        precondition(bucketCapMB > 0, "DistributedDataParallel: bucketCapMB must be positive, got \(bucketCapMB)")
        self.module = module
        self.processGroup = processGroup
        self.bucketCapMB = bucketCapMB
        self.broadcastBuffers = broadcastBuffers
        super.init()
        lists.buckets = Self.makeBuckets(module.parameters(), capBytes: Int(bucketCapMB * 1024 * 1024))
        for b in module.buffers() {
            if let i = lists.buffers.firstIndex(where: { $0.dtype == b.value.dtype }) { lists.buffers[i].buffers.append(b) } else { lists.buffers.append((b.value.dtype, [b])) }
        }
        for p in module.parameters() {
            let wanted = p.requiresGrad
            p.value = try processGroup.broadcast(p.value, from: 0)
            p.requiresGrad = wanted
        }
        try synchronizeBuffers()
    }

    /// Broadcasts every buffer from rank 0: one broadcast per dtype, of the buffers flattened
    /// together (BatchNorm's float running statistics in one, its int64 batch counters in another).
    public func synchronizeBuffers() throws {
        for (dtype, buffers) in lists.buffers {
            guard buffers.count > 1 else {
                buffers[0].value = try processGroup.broadcast(buffers[0].value, from: 0)
                continue
            }
            let flat = try processGroup.broadcast(Tensor.cat(buffers.map { $0.value.detached().reshaped([-1]) }, axis: 0), from: 0)
            var offset = 0
            for b in buffers {
                let n = b.value.count
                b.value = flat[offset..<(offset + n)].reshaped(b.value.shape).contiguousRaw
                offset += n
            }
            precondition(offset == flat.count && flat.dtype == dtype)
        }
    }

    public override func forward(_ input: Tensor) -> Tensor {
        if isTraining && broadcastBuffers && requiresGradientSync && processGroup.worldSize > 1 {
            do { try synchronizeBuffers() } catch {
                fatalError("\(errorContext): broadcasting buffers failed on rank \(processGroup.rank): \(error)")
            }
        }
        return module(input)
    }

    /// Runs `body` without gradient averaging: backward passes inside accumulate locally.
    ///
    /// PyTorch parity: `with ddp.no_sync():`.
    public func noSync<R>(_ body: () throws -> R) rethrows -> R {
        let previous = requiresGradientSync
        requiresGradientSync = false
        defer { requiresGradientSync = previous }
        return try body()
    }

    /// `loss.backward()`, then, outside ``noSync(_:)``, ``synchronizeGradients()``.
    public func backward(_ loss: Tensor) throws {
        loss.backward()
        if requiresGradientSync { try synchronizeGradients() }
    }

    /// The buckets: the trainable parameters (listed at wrap time), reversed, each bucket of one
    /// dtype and at most ``bucketCapMB`` (a larger parameter gets a bucket of its own).
    public func buckets() -> [[Parameter]] { lists.buckets }

    private static func makeBuckets(_ parameters: [Parameter], capBytes cap: Int) -> [[Parameter]] {
        var result: [[Parameter]] = []
        var open: [DType: (params: [Parameter], bytes: Int)] = [:]
        var order: [DType] = []
        for p in parameters.reversed() where p.requiresGrad {
            let dtype = p.value.dtype, bytes = p.count * dtype.itemSize
            if var bucket = open[dtype] {
                if bucket.bytes + bytes > cap {
                    result.append(bucket.params)
                    open[dtype] = ([p], bytes)
                } else {
                    bucket.params.append(p); bucket.bytes += bytes
                    open[dtype] = bucket
                }
            } else {
                open[dtype] = ([p], bytes)
                order.append(dtype)
            }
        }
        for dtype in order { if let b = open[dtype] { result.append(b.params) } }
        return result
    }

    /// Averages every trainable parameter's gradient over the ranks, bucket by bucket.
    ///
    /// Each bucket is one all-reduce of the flattened gradients followed by one flag per
    /// parameter (whether this rank had a gradient); a missing gradient counts as zeros.
    public func synchronizeGradients() throws {
        guard processGroup.worldSize > 1 else { return }
        for bucket in lists.buckets {
            let dtype = bucket[0].value.dtype
            switch dtype {
            case .float32: try reduceBucket(Float.self, bucket)
            case .float64: try reduceBucket(Double.self, bucket)
            default: throw DistributedError.unsupportedDType(operation: "DistributedDataParallel", dtype: dtype)
            }
        }
    }

    /// One all-reduce of the bucket's gradients, flattened with one flag per parameter after
    /// them (whether this rank had a gradient), then each gradient replaced by the average, in
    /// its own storage when it is not shared.
    private func reduceBucket<T: TensorFloat>(_: T.Type, _ bucket: [Parameter]) throws {
        let total = bucket.reduce(0) { $0 + $1.count }
        var flat = Tensor(uninitializedShape: [total + bucket.count], dtype: T.dtype)
        var pf = flat.mutablePointer(as: T.self)
        var offset = 0
        for (k, p) in bucket.enumerated() {
            if let g = p.grad {
                let values = g.to(T.dtype).contiguousRaw
                precondition(values.count == p.count, "DistributedDataParallel: a gradient of shape \(g.shape) for a parameter of shape \(p.shape)")
                (pf + offset).update(from: values.pointer(as: T.self), count: p.count)
                pf[total + k] = 1
            } else {
                (pf + offset).update(repeating: 0, count: p.count)
                pf[total + k] = 0
            }
            offset += p.count
        }
        try processGroup.allReduce(inPlace: &flat)
        pf = flat.mutablePointer(as: T.self)
        let scale = 1 / T(processGroup.worldSize)
        offset = 0
        for (k, p) in bucket.enumerated() {
            defer { offset += p.count }
            guard pf[total + k] > 0 else { continue }  // no rank had a gradient
            var g = p.grad.flatMap { $0.dtype == T.dtype && $0.shape == p.shape ? $0 : nil } ?? Tensor(uninitializedShape: p.shape, dtype: T.dtype)
            p.grad = nil  // so that `g` is the only reference and is written in place
            g.makeUniqueContiguous()
            let pg = g.mutablePointer(as: T.self), source = pf + offset
            for i in 0..<p.count { pg[i] = source[i] * scale }
            p.grad = g
        }
    }
}
