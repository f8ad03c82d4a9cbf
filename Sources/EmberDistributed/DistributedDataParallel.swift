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
        for p in module.parameters() {
            let wanted = p.requiresGrad
            p.value = try processGroup.broadcast(p.value, from: 0)
            p.requiresGrad = wanted
        }
        try synchronizeBuffers()
    }

    /// Broadcasts every buffer from rank 0.
    public func synchronizeBuffers() throws {
        for b in module.buffers() { b.value = try processGroup.broadcast(b.value, from: 0) }
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

    /// The buckets: indices into `parameters` (the trainable ones, reversed), each of one dtype
    /// and at most ``bucketCapMB`` (a larger parameter gets a bucket of its own).
    public func buckets() -> [[Parameter]] {
        let cap = Int(bucketCapMB * 1024 * 1024)
        var result: [[Parameter]] = []
        var open: [DType: (params: [Parameter], bytes: Int)] = [:]
        var order: [DType] = []
        for p in module.parameters().reversed() where p.requiresGrad {
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
        for bucket in buckets() {
            let dtype = bucket[0].value.dtype
            switch dtype {
            case .float32: try reduceBucket(Float.self, bucket)
            case .float64: try reduceBucket(Double.self, bucket)
            default: throw DistributedError.unsupportedDType(operation: "DistributedDataParallel", dtype: dtype)
            }
        }
    }

    private func reduceBucket<T: TensorFloat>(_: T.Type, _ bucket: [Parameter]) throws {
        let total = bucket.reduce(0) { $0 + $1.count }
        var flat = [T](repeating: 0, count: total + bucket.count)
        var offset = 0
        for (k, p) in bucket.enumerated() {
            if let g = p.grad {
                let values = g.to(T.dtype).contiguousRaw.scalars(as: T.self)
                precondition(values.count == p.count, "DistributedDataParallel: a gradient of shape \(g.shape) for a parameter of shape \(p.shape)")
                for i in 0..<values.count { flat[offset + i] = values[i] }
                flat[total + k] = 1
            }
            offset += p.count
        }
        let reduced = try processGroup.allReduce(Tensor(flat, shape: [flat.count])).scalars(as: T.self)
        let n = T(processGroup.worldSize)
        offset = 0
        for (k, p) in bucket.enumerated() {
            defer { offset += p.count }
            guard reduced[total + k] > 0 else { continue }  // no rank had a gradient
            let averaged = reduced[offset..<(offset + p.count)].map { $0 / n }
            p.grad = Tensor(Array(averaged), shape: p.shape)
        }
    }
}
