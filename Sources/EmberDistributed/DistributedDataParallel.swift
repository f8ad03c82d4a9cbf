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
/// Gradients travel in buckets of at most ``bucketCapMB`` megabytes (PyTorch's default, 25; the
/// first bucket at most 1 MB, as PyTorch's), parameters in reverse order (roughly the order
/// backward produces them), one all-reduce per bucket and dtype. With ``overlapsCommunication``
/// (the default, as in PyTorch), after a synchronized training-mode forward a bucket's all-reduce
/// starts from a post-accumulate hook as soon as backward has produced the last of its gradients
/// (and every earlier bucket has started), so it travels while backward computes the earlier
/// layers' gradients; ``backward(_:)`` (or ``synchronizeGradients()``) starts the rest and waits
/// for all. Without it, every bucket starts there. On 2 ranks sharing a 2-core machine
/// overlapping neither helped nor hurt the step (BENCHMARKS.md): Open MPI's non-blocking
/// all-reduce is slower than its blocking one there, and it moves data only while a rank is
/// inside MPI; it pays where ranks have spare cores or wait on a network.
///
/// A parameter without a gradient on this rank (unused in this forward) contributes zeros, so
/// every rank runs the same collectives (PyTorch's `find_unused_parameters=True`); its gradient
/// stays `nil` only when no rank produced one.
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
/// state dict keys carry the `module.` prefix as PyTorch's do. Differences: a backward whose
/// gradients are not averaged before the next synchronized forward (a plain `loss.backward()`
/// without ``synchronizeGradients()``) stops with a message, where PyTorch averages inside
/// `backward` itself. With MPI, started bucket all-reduces move on a duplicate of the world
/// communicator, so collectives during backward (SyncBatchNorm's) cannot be mismatched with them;
/// Open MPI moves their data whenever a rank is inside MPI (each hook lets it), without a
/// progress thread.
public final class DistributedDataParallel: Module {
    /// The wrapped model.
    public let module: Module
    /// The group whose ranks hold replicas.
    public let processGroup: ProcessGroup
    /// The largest bucket, in megabytes (2^20 bytes).
    public let bucketCapMB: Double
    /// Whether training-mode forwards broadcast the buffers from rank 0 first.
    public let broadcastBuffers: Bool
    /// Whether bucket all-reduces start during backward (see the type's notes).
    public let overlapsCommunication: Bool
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

    /// The overlap of bucket all-reduces with backward: per-step state and the hooks.
    private var overlap = Overlap()

    private struct Overlap: ModuleTreeLeaf {
        /// Whether a synchronized training forward armed the hooks for the coming backward.
        var armed = false
        /// Per bucket, per parameter: whether its gradient is final for this backward.
        var fired: [[Bool]] = []
        /// The started buckets' all-reduces, in bucket order.
        var started: [PendingAllReduce] = []
        /// Buckets started from a hook, before backward returned, this step.
        var startedEarly = 0
        /// A failure inside a hook (hooks cannot throw), thrown by the synchronization.
        var failure: (any Error)?
        /// Per bucket, per parameter: the graph node its hook is registered on, and the handle.
        var hooked: [[(node: ObjectIdentifier?, handle: RemovableHandle?)]] = []
    }

    /// Buckets whose all-reduce started while backward was running, in the last synchronized step
    /// (the rest started when it returned).
    public var bucketsStartedDuringBackward: Int { lastStartedEarly }
    private var lastStartedEarly = 0

    /// Wraps `module`, broadcasting its parameters and buffers from rank 0.
    ///
    /// - Parameters:
    ///   - processGroup: the group (``ProcessGroup/world(verifiesCalls:)`` for `mpirun`'s ranks).
    ///   - bucketCapMB: the bucket size cap in megabytes.
    ///   - broadcastBuffers: broadcast buffers from rank 0 at each training-mode forward.
    ///   - overlapsCommunication: start bucket all-reduces during backward.
    public init(_ module: Module, processGroup: ProcessGroup, bucketCapMB: Double = 25, broadcastBuffers: Bool = true,
                overlapsCommunication: Bool = true) throws {
        precondition(bucketCapMB > 0, "DistributedDataParallel: bucketCapMB must be positive, got \(bucketCapMB)")
        self.module = module
        self.processGroup = processGroup
        self.bucketCapMB = bucketCapMB
        self.broadcastBuffers = broadcastBuffers
        self.overlapsCommunication = overlapsCommunication
        super.init()
        lists.buckets = Self.makeBuckets(module.parameters(), capBytes: Int(bucketCapMB * 1024 * 1024),
                                         firstCapBytes: min(Int(bucketCapMB * 1024 * 1024), 1024 * 1024))
        overlap.hooked = lists.buckets.map { Array(repeating: (nil, nil), count: $0.count) }
        for b in module.buffers() {
            if let i = lists.buffers.firstIndex(where: { $0.dtype == b.value.dtype }) { lists.buffers[i].buffers.append(b) } else { lists.buffers.append((b.value.dtype, [b])) }
        }
        for p in module.parameters() {
            let wanted = p.requiresGrad
            p.value = try processGroup.broadcast(p.value, from: 0)
            p.requiresGrad = wanted
        }
        try synchronizeBuffers()
        // Started bucket all-reduces are not verified one by one: check the layout once.
        try processGroup.verify("DistributedDataParallel", lists.buckets.flatMap { bucket -> [Int64] in
            [Int64(bucket.reduce(0) { $0 + $1.count }), bucket[0].value.dtype == .float64 ? 1 : 0]
        }) { "gradient buckets (elements, float64) \($0)" }
    }

    deinit {
        for bucket in overlap.hooked { for entry in bucket { entry.handle?.remove() } }
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
        if isTraining && requiresGradientSync && processGroup.worldSize > 1 {
            if broadcastBuffers {
                do { try synchronizeBuffers() } catch {
                    fatalError("\(errorContext): broadcasting buffers failed on rank \(processGroup.rank): \(error)")
                }
            }
            if overlapsCommunication { arm() }
        }
        return module(input)
    }

    /// Prepares the hooks for the coming backward: every bucket's parameters not yet fired.
    private func arm() {
        precondition(overlap.started.isEmpty,
                     "\(errorContext): the previous backward's gradients were never averaged (its bucket all-reduces are in flight): call ddp.backward(loss), or ddp.synchronizeGradients() after loss.backward(), before the next forward")
        for (b, bucket) in lists.buckets.enumerated() {
            for (k, p) in bucket.enumerated() {
                guard let node = p.value.autograd, node.requiresGrad else { continue }
                let id = ObjectIdentifier(node)
                guard overlap.hooked[b][k].node != id else { continue }
                // First forward, or the parameter's value was replaced (a state dict load): hook
                // the current graph node.
                overlap.hooked[b][k].handle?.remove()
                let handle = p.value.registerPostAccumulateGradHook { [weak self] _ in self?.gradientReady(bucket: b, index: k) }
                overlap.hooked[b][k] = (id, handle)
            }
        }
        overlap.fired = lists.buckets.map { Array(repeating: false, count: $0.count) }
        overlap.startedEarly = 0
        overlap.failure = nil
        overlap.armed = true
    }

    /// A post-accumulate hook: the parameter's gradient is final for this backward. Starts every
    /// bucket that is now complete and whose predecessors have started, and lets the engine move
    /// the started ones.
    private func gradientReady(bucket b: Int, index k: Int) {
        guard overlap.armed, overlap.failure == nil else { return }
        precondition(!overlap.fired[b][k],
                     "\(errorContext): a parameter of shape \(lists.buckets[b][k].shape) received gradients from a second backward after one synchronized forward, after its bucket's all-reduce may have started (its new gradient would be lost); run extra backward passes inside ddp.noSync { }, or wrap with overlapsCommunication: false")
        overlap.fired[b][k] = true
        do {
            while overlap.started.count < lists.buckets.count, !overlap.fired[overlap.started.count].contains(false) {
                try startBucket(overlap.started.count)
                overlap.startedEarly += 1
            }
            for request in overlap.started { _ = try request.progress() }
        } catch {
            overlap.failure = error
        }
    }

    /// Starts the all-reduce of bucket `b`: its gradients flattened, with one flag per parameter
    /// after them (whether this rank had a gradient; a missing one counts as zeros).
    private func startBucket(_ b: Int) throws {
        let bucket = lists.buckets[b]
        let flat: Tensor
        switch bucket[0].value.dtype {
        case .float32: flat = Self.flatten(Float.self, bucket)
        case .float64: flat = Self.flatten(Double.self, bucket)
        case let dtype: throw DistributedError.unsupportedDType(operation: "DistributedDataParallel", dtype: dtype)
        }
        overlap.started.append(try processGroup.startAllReduce(flat))
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

    private static func makeBuckets(_ parameters: [Parameter], capBytes: Int, firstCapBytes: Int) -> [[Parameter]] {
        var result: [[Parameter]] = []
        var open: [DType: (params: [Parameter], bytes: Int)] = [:]
        var order: [DType] = []
        for p in parameters.reversed() where p.requiresGrad {
            let dtype = p.value.dtype, bytes = p.count * dtype.itemSize
            if var bucket = open[dtype] {
                if bucket.bytes + bytes > (result.isEmpty ? firstCapBytes : capBytes) {
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

    /// Averages every trainable parameter's gradient over the ranks, bucket by bucket: starts the
    /// buckets backward's hooks did not start, then waits for each and writes the averages.
    public func synchronizeGradients() throws {
        guard processGroup.worldSize > 1 else { return }
        defer {
            overlap.started = []
            overlap.armed = false
        }
        if let failure = overlap.failure { throw failure }
        lastStartedEarly = overlap.armed ? overlap.startedEarly : 0
        for b in overlap.started.count..<lists.buckets.count { try startBucket(b) }
        for (b, request) in overlap.started.enumerated() {
            let flat = try request.wait()
            switch flat.dtype {
            case .float32: Self.apply(Float.self, flat, to: lists.buckets[b], worldSize: processGroup.worldSize)
            default: Self.apply(Double.self, flat, to: lists.buckets[b], worldSize: processGroup.worldSize)
            }
        }
    }

    /// The bucket's gradients, flattened, then one flag per parameter: 1 where this rank had a
    /// gradient, 0 where it had none (its gradient counts as zeros).
    private static func flatten<T: TensorFloat>(_: T.Type, _ bucket: [Parameter]) -> Tensor {
        let total = bucket.reduce(0) { $0 + $1.count }
        let flat = Tensor(uninitializedShape: [total + bucket.count], dtype: T.dtype)
        let pf = flat.mutablePointer(as: T.self)
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
        return flat
    }

    /// Each gradient replaced by the average from the summed `flat`, in its own storage when it is
    /// not shared; a parameter no rank had a gradient for keeps `nil`.
    private static func apply<T: TensorFloat>(_: T.Type, _ flat: Tensor, to bucket: [Parameter], worldSize: Int) {
        let total = bucket.reduce(0) { $0 + $1.count }
        let pf = flat.pointer(as: T.self)
        let scale = 1 / T(worldSize)
        var offset = 0
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
