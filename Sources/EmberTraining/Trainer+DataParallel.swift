import EmberAutograd
import EmberData
import EmberDistributed
import EmberNN
import EmberTensor

extension Trainer {
    /// One data-parallel step: this rank's slice of the global batch `batch` (the same on every
    /// rank), forward, the global loss agreed by one all-reduce, backward, gradients averaged by
    /// `ddp`, and the optimizer step.
    ///
    /// - Slices: with `b` samples and `N` ranks, rank `r` takes rows `r·b/N ..< (r+1)·b/N` (integer
    ///   division), so any `b ≥ N` splits; a smaller batch throws (the CLI drops such a last batch).
    /// - Loss: each rank's loss is the mean over its `n_r` rows; the step backpropagates
    ///   `loss_r · n_r · N / b`, so that DistributedDataParallel's average is the gradient of the
    ///   global batch's mean, also for uneven slices. The returned loss is `Σ n_r loss_r / b`, the
    ///   same on every rank; when it is not finite every rank returns it without backward, so no
    ///   rank waits in a collective that the others skip.
    /// - Randomness: the forward runs under a generator seeded from the run's generator's state
    ///   (``Generator/default``, read, not advanced), the step count and the rank: each rank's
    ///   dropout masks differ from the others' (and from a single process's), while the run's
    ///   generator stays identical on every rank (rank 0's checkpoints fit every rank) and, with no
    ///   dropout, moves exactly as in a single process, so the data order is the same.
    func dataParallelStep(on batch: Batch, _ ddp: DistributedDataParallel) throws(FitError) -> Double {
        let group = ddp.processGroup
        let b = batch.labels.shape.first ?? 0, n = group.worldSize, r = group.rank
        let lo = r * b / n, hi = (r + 1) * b / n
        // The same decision on every rank (b is), so no rank goes on to a collective alone.
        guard b >= n else {
            throw .distributed("a batch of \(b) samples cannot give each of the \(n) ranks a sample; use batches of at least \(n)")
        }
        let inputs = batch.inputs.narrow(axis: 0, start: lo, length: hi - lo)
        let labels = batch.labels.narrow(axis: 0, start: lo, length: hi - lo)
        optimizer.zeroGrad()
        let run = Generator.default.state
        // One Philox block keyed like the run generator, in a stream of its own per (rank, step)
        // (the top bit keeps it apart from the rejection-sampling streams 1, 2, ...).
        let words = Philox.block(seed: run.seed, index: run.offset, stream: 1 << 63 | UInt64(r) << 40 | UInt64(steps))
        let seed = UInt64(words.0) << 32 | UInt64(words.1)
        let value = withGenerator(Generator(seed: seed)) {
            loss(ddp(inputs), labels)
        }
        let share = Double(hi - lo) / Double(b)
        let global: Double
        do {
            global = try group.allReduce(Tensor([value.doubleValue * share])).item(as: Double.self)
        } catch {
            throw .distributed("the loss all-reduce failed on rank \(r): \(error)")
        }
        guard global.isFinite else { return global }
        let factor = share * Double(n)
        (factor == 1 ? value : value * factor).backward()
        do { try ddp.synchronizeGradients() } catch {
            throw .distributed("averaging gradients failed on rank \(r): \(error)")
        }
        step()
        return global
    }

    /// Whether any rank asks to stop (one all-reduce), so that every rank stops at the same step.
    func agreedStop(_ local: Bool) throws(FitError) -> Bool {
        guard let group = distributed?.processGroup, group.worldSize > 1 else { return local }
        do {
            return try group.allReduce(Tensor([Int64(local ? 1 : 0)]), op: .max).item(as: Int64.self) != 0
        } catch {
            throw .distributed("agreeing on a stop failed on rank \(group.rank): \(error)")
        }
    }

    /// Writes `checkpoint` to `path` on rank 0 only (every rank when not data-parallel); every
    /// rank learns of a failure.
    func writeOnWritingRank(_ checkpoint: Checkpoint, to path: String) throws(FitError) {
        guard let group = distributed?.processGroup, group.worldSize > 1 else {
            do { try checkpoint.write(to: path) } catch { throw .checkpoint(error) }
            return
        }
        do {
            _ = try group.onRankZero { try checkpoint.write(to: path) }
        } catch let error as CheckpointError {
            throw .checkpoint(error)
        } catch {
            throw .distributed("rank \(group.rank): the checkpoint write on rank 0 failed: \(error)")
        }
    }
}
