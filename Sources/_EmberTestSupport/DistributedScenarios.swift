import Ember

/// Multi-rank checks shared by the in-process tests (threads) and `ember-distributed-check`
/// (processes under `mpirun`): each rank calls the same function with its own group.
public enum DistributedScenarios {
    /// The MLP of the equality check: Linear(6, 8) - BatchNorm1d(8) - ReLU - [Dropout(p)] - Linear(8, 3).
    public final class MLP: Module {
        public let fc1: Linear
        public let bn: BatchNorm1d
        public let dropout: Dropout?
        public let fc2: Linear

        public init(seed: UInt64, dtype: DType, dropout p: Double? = nil) {
            let g = Generator(seed: seed)
            fc1 = Linear(6, 8, dtype: dtype, generator: g)
            bn = BatchNorm1d(8, dtype: dtype)
            dropout = p.map { Dropout($0, generator: Generator(seed: 99)) }
            fc2 = Linear(8, 3, dtype: dtype, generator: g)
            super.init()
        }

        public override func forward(_ input: Tensor) -> Tensor {
            var h = bn(fc1(input)).relu()
            if let dropout { h = dropout(h) }
            return fc2(h)
        }
    }

    /// What the equality check measured on one rank.
    public struct Equality: Sendable {
        /// The largest |difference| over every parameter element.
        public var parameters: Double
        /// The largest |difference| over the running statistics and the batch counter.
        public var buffers: Double
        /// The largest |difference| of the loss over the global batch at each step.
        public var losses: Double
        /// Gradient buckets, and how many started while the last step's backward ran.
        public var buckets = 0, startedDuringBackward = 0
    }

    /// Trains `steps` SGD steps (lr 0.1, momentum 0.9) data-parallel on `group` (every rank a
    /// shard of `perRank` samples, SyncBatchNorm, DistributedDataParallel; each rank's model
    /// initialised with a different seed, so only the broadcast from rank 0 makes them agree), and
    /// the same steps in one model on the concatenated global batch; returns the differences.
    ///
    /// With `dropout`, the model drops after the ReLU, and the masks come from a generator seeded
    /// alike on every rank (seed 99) and positioned per rank: Ember's draws are counter-based
    /// (element `i` of a draw uses Philox block `offset + i / 4`), so before step `k` rank `r` sets
    /// its dropout generator to offset `k * N * 8 / 4 + r * perRank * 8 / 4` (`N` the global batch,
    /// 8 the width) and draws exactly the rows of the one-process mask that its shard holds.
    public static func mlpEquality(group: ProcessGroup, perRank: Int = 8, steps: Int = 5, dtype: DType = .float32,
                                   dropout: Double? = nil, positionsDropout: Bool = true,
                                   bucketCapMB: Double = 25) throws -> Equality {
        let world = group.worldSize, total = world * perRank
        let data = Generator(seed: 7)
        // The same global batches on every rank.
        let inputs = (0..<steps).map { _ in Tensor.normal([total, 6], dtype: dtype, generator: data) }
        let targets = (0..<steps).map { _ in Tensor.normal([total, 3], dtype: dtype, generator: data) }

        let reference = MLP(seed: 100, dtype: dtype, dropout: dropout)
        let referenceOptimizer = SGD(reference.parameters(), lr: 0.1, momentum: 0.9)
        var referenceLosses: [Double] = []
        for k in 0..<steps {
            let loss = mseLoss(reference(inputs[k]), target: targets[k])
            referenceLosses.append(loss.to(.float64).item(as: Double.self))
            loss.backward()
            referenceOptimizer.step()
            referenceOptimizer.zeroGrad()
        }

        let local = MLP(seed: 100 + UInt64(group.rank), dtype: dtype, dropout: dropout)
        precondition(perRank * 8 % 4 == 0, "mlpEquality: the dropout shard must fill whole Philox blocks")
        local.convertSyncBatchNorm(processGroup: group)
        let ddp = try DistributedDataParallel(local, processGroup: group, bucketCapMB: bucketCapMB)
        let optimizer = SGD(ddp.parameters(), lr: 0.1, momentum: 0.9)
        var lossDifference = 0.0
        for k in 0..<steps {
            let rows = (group.rank * perRank)..<((group.rank + 1) * perRank)
            if positionsDropout, let generator = local.dropout?.generator {
                generator.state = Generator.State(seed: 99, offset: UInt64(k * total * 8 / 4 + group.rank * perRank * 8 / 4))
            }
            let x = shard(inputs[k], rows: rows), y = shard(targets[k], rows: rows)
            let loss = mseLoss(ddp(x), target: y)
            let globalLoss = try group.allReduce(loss.detached().to(.float64), op: .mean).item(as: Double.self)
            lossDifference = max(lossDifference, abs(globalLoss - referenceLosses[k]))
            try ddp.backward(loss)
            optimizer.step()
            optimizer.zeroGrad()
        }
        var result = Equality(parameters: 0, buffers: 0, losses: lossDifference, buckets: ddp.buckets().count,
                              startedDuringBackward: ddp.bucketsStartedDuringBackward)
        for (a, b) in zip(local.parameters(), reference.parameters()) {
            result.parameters = max(result.parameters, maxDifference(a.value, b.value))
        }
        for (a, b) in zip(local.buffers(), reference.buffers()) {
            result.buffers = max(result.buffers, maxDifference(a.value, b.value))
        }
        return result
    }

    /// Rows `rows` of a `[N, F]` tensor.
    public static func shard(_ t: Tensor, rows: Range<Int>) -> Tensor {
        let f = t.shape[1]
        switch t.dtype {
        case .float32: return Tensor(Array(t.scalars(as: Float.self)[(rows.lowerBound * f)..<(rows.upperBound * f)]), shape: [rows.count, f])
        default: return Tensor(Array(t.to(.float64).scalars(as: Double.self)[(rows.lowerBound * f)..<(rows.upperBound * f)]), shape: [rows.count, f])
        }
    }

    /// max |a - b| (shapes must match).
    public static func maxDifference(_ a: Tensor, _ b: Tensor) -> Double {
        precondition(a.shape == b.shape, "maxDifference: shapes \(a.shape) and \(b.shape)")
        let x = a.to(.float64).scalars(as: Double.self), y = b.to(.float64).scalars(as: Double.self)
        return zip(x, y).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    /// The collectives run by forwards of a SyncBatchNorm model wrapped in DDP: in eval mode
    /// (expected 0), with the BatchNorm pinned to eval inside a training-mode model (0, in
    /// `noSync`, where DDP broadcasts no buffers), in training mode in `noSync` (1: the
    /// statistics all-gather) and in training mode (3: DDP's buffer broadcasts, one per dtype, and the all-gather).
    public static func evalCollectives(group: ProcessGroup) throws -> (eval: Int, pinned: Int, training: Int, synchronized: Int) {
        let model = MLP(seed: 3, dtype: .float32)
        // Eval with untouched running statistics is deliberate here.
        for m in model.modules() { m.reportsModeMistakes = false }
        model.convertSyncBatchNorm(processGroup: group)
        let ddp = try DistributedDataParallel(model, processGroup: group)
        let x = Tensor.normal([4, 6], generator: Generator(seed: 5 + UInt64(group.rank)))
        func count(_ body: () -> Void) -> Int {
            let before = group.collectiveCount
            body()
            return group.collectiveCount - before
        }
        ddp.eval()
        let eval = count { _ = ddp(x) }
        ddp.train()
        model.bn.pin(.evaluation)
        let pinned = count { _ = ddp.noSync { ddp(x) } }
        model.bn.unpin()
        model.train()
        let training = count { _ = ddp.noSync { ddp(x) } }
        let synchronized = count { _ = ddp(x) }
        return (eval, pinned, training, synchronized)
    }

    // MARK: - Checkpoints

    /// The global batches of the checkpoint runs: the same on every rank and world size.
    static func globalBatches(steps: Int, globalBatch: Int) -> (inputs: [Tensor], targets: [Tensor]) {
        let data = Generator(seed: 17)
        let inputs = (0..<steps).map { _ in Tensor.normal([globalBatch, 6], generator: data) }
        let targets = (0..<steps).map { _ in Tensor.normal([globalBatch, 3], generator: data) }
        return (inputs, targets)
    }

    /// Every parameter and buffer value of `model`, in order, as float64.
    public static func flatState(_ model: Module) -> [Double] {
        model.stateDict().flatMap { $0.1.to(.float64).scalars(as: Double.self) }
    }

    /// Steps `range` of the checkpoint run: each rank takes its `globalBatch / worldSize` rows.
    static func train(_ ddp: DistributedDataParallel, _ optimizer: SGD, group: ProcessGroup, steps range: Range<Int>,
                      globalBatch: Int, batches: (inputs: [Tensor], targets: [Tensor])) throws {
        let perRank = globalBatch / group.worldSize
        let rows = (group.rank * perRank)..<((group.rank + 1) * perRank)
        for k in range {
            let loss = mseLoss(ddp(shard(batches.inputs[k], rows: rows)), target: shard(batches.targets[k], rows: rows))
            try ddp.backward(loss)
            optimizer.step()
            optimizer.zeroGrad()
        }
    }

    /// Trains `steps` steps data-parallel (SyncBatchNorm, DDP, SGD with momentum) on `group`;
    /// after `saveAfter` steps rank 0 alone writes a checkpoint (model, optimizer, modes) to
    /// `path` (atomically: Checkpoint writes a temporary file and renames it). Returns this rank's
    /// final state (``flatState(_:)``) and whether this rank wrote the file.
    public static func checkpointRun(group: ProcessGroup, path: String, globalBatch: Int = 16, steps: Int = 6,
                                     saveAfter: Int = 3) throws -> (state: [Double], wrote: Bool) {
        precondition(globalBatch % group.worldSize == 0, "checkpointRun: the world size must divide the global batch")
        let batches = globalBatches(steps: steps, globalBatch: globalBatch)
        let model = MLP(seed: 200 + UInt64(group.rank), dtype: .float32)
        model.convertSyncBatchNorm(processGroup: group)
        let ddp = try DistributedDataParallel(model, processGroup: group)
        let optimizer = SGD(model.parameters(), lr: 0.1, momentum: 0.9)
        try train(ddp, optimizer, group: group, steps: 0..<saveAfter, globalBatch: globalBatch, batches: batches)
        let wrote = try group.onRankZero {
            try Checkpoint(model: model, optimizer: optimizer, scheduler: nil as StepLR?, generator: nil, epoch: 0, step: saveAfter).write(to: path)
            return true
        } ?? false
        try train(ddp, optimizer, group: group, steps: saveAfter..<steps, globalBatch: globalBatch, batches: batches)
        return (flatState(model), wrote)
    }

    /// Resumes the run of ``checkpointRun(group:path:globalBatch:steps:saveAfter:)`` from `path`
    /// on `group` (any world size that divides the global batch): a fresh model (other seeds) and
    /// optimizer restored from the file, then the remaining steps. Returns the state right after
    /// the restore and the final state.
    public static func resumeRun(group: ProcessGroup, path: String, globalBatch: Int = 16, steps: Int = 6) throws -> (restored: [Double], final: [Double]) {
        precondition(globalBatch % group.worldSize == 0, "resumeRun: the world size must divide the global batch")
        let batches = globalBatches(steps: steps, globalBatch: globalBatch)
        let model = MLP(seed: 900 + UInt64(group.rank), dtype: .float32)
        model.convertSyncBatchNorm(processGroup: group)
        let optimizer = SGD(model.parameters(), lr: 0.1, momentum: 0.9)
        let checkpoint: Checkpoint
        do {
            checkpoint = try Checkpoint.read(from: path)
            try checkpoint.restore(model: model, optimizer: optimizer, scheduler: nil as StepLR?, generator: nil)
        } catch {
            throw DistributedError.invalidArgument(operation: "resumeRun", detail: "\(error)")
        }
        let ddp = try DistributedDataParallel(model, processGroup: group)
        let restored = flatState(model)
        try train(ddp, optimizer, group: group, steps: checkpoint.step..<steps, globalBatch: globalBatch, batches: batches)
        return (restored, flatState(model))
    }
}
