// ember-distributed-check: the multi-process checks of EmberDistributed, run by
// Tests/EmberTests/DistributedMPITests.swift as `mpirun -n 2 --oversubscribe ember-distributed-check <check>`
// (MPI trait). Each rank prints one `rank R: ...` line; the exit status says whether the check
// passed. Without the MPI trait it runs as one rank.
//
//   mlp       2 ranks x 8 samples with SyncBatchNorm + DistributedDataParallel against one process
//             on the 16 samples, 5 SGD steps: max differences of weights, buffers, losses (< 1e-5);
//             float32, float64, and float32 with dropout (per-rank masks positioned in one stream).
//   eval      collectives run by eval-mode, pinned-eval and training-mode forwards.
//   fail      rank 1 exits with status 3 before the first collective; rank 0 waits in an
//             all-reduce: mpirun must end it and report failure (no hang).
//   collectives  allReduce/broadcast/allGather/reduceScatter/barrier values across ranks.
//   checkpoint PATH  rank 0 alone writes a checkpoint mid-run; resuming from it on 2 ranks is
//             bitwise the uninterrupted run, on 1 rank within 1e-5.
//   bench     the data-parallel benchmark (Bench.swift; Tools/bench/ddp_bench.sh).
//   mismatch  with verifiesCalls, a broadcast of different shapes throws a mismatch on every rank.
import _EmberTestSupport
import Ember
import Foundation

/// Writes a line unbuffered, so a rank that is killed has still said what it did.
func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

let check = CommandLine.arguments.dropFirst().first ?? "mlp"
let group: ProcessGroup
do { group = try ProcessGroup.world() } catch {
    say("error: \(error)")
    exit(2)
}
let rank = group.rank
var passed = true

do {
    switch check {
    case "mlp":
        for dtype in [DType.float32, .float64] {
            let r = try DistributedScenarios.mlpEquality(group: group, dtype: dtype)
            let ok = r.parameters < 1e-5 && r.buffers < 1e-5 && r.losses < 1e-5
            passed = passed && ok
            say("rank \(rank): mlp \(dtype) world \(group.worldSize): max parameter difference \(r.parameters), max buffer difference \(r.buffers), max loss difference \(r.losses) \(ok ? "ok" : "FAILED")")
        }
        let d = try DistributedScenarios.mlpEquality(group: group, dtype: .float32, dropout: 0.3)
        let ok = d.parameters < 1e-5 && d.buffers < 1e-5 && d.losses < 1e-5
        passed = passed && ok
        say("rank \(rank): mlp+dropout torch.float32 world \(group.worldSize): max parameter difference \(d.parameters), max buffer difference \(d.buffers), max loss difference \(d.losses) \(ok ? "ok" : "FAILED")")
        // One parameter per bucket: fc2's buckets are in flight (on their own communicator) while
        // SyncBatchNorm's backward all-reduces on the world communicator.
        let o = try DistributedScenarios.mlpEquality(group: group, dtype: .float32, bucketCapMB: 0.00001)
        let overlapOK = o.parameters < 1e-5 && o.buffers < 1e-5 && o.losses < 1e-5 && o.buckets == 6 && o.startedDuringBackward == 6
        passed = passed && overlapOK
        say("rank \(rank): mlp+overlap torch.float32 world \(group.worldSize): max parameter difference \(o.parameters), max buffer difference \(o.buffers), buckets \(o.buckets), started during backward \(o.startedDuringBackward) \(overlapOK ? "ok" : "FAILED")")
    case "eval":
        let c = try DistributedScenarios.evalCollectives(group: group)
        passed = c.eval == 0 && c.pinned == 0 && c.training == 1 && c.synchronized == 3
        say("rank \(rank): eval collectives \(c.eval), pinned-eval collectives \(c.pinned), training collectives \(c.training) (noSync), \(c.synchronized) (with buffer broadcasts) \(passed ? "ok" : "FAILED")")
    case "fail":
        if rank == 1 {
            say("rank 1: failing on purpose")
            exit(3)
        }
        _ = try group.allReduce(Tensor([Float(1)]))
        say("rank \(rank): the all-reduce returned without its peer")
        passed = false
    case "collectives":
        let n = group.worldSize
        let x = Tensor([Double(rank + 1), Double(10 * (rank + 1))])
        let sum = try group.allReduce(x).scalars(as: Double.self)
        let expectedSum = [Double(n * (n + 1) / 2), Double(10 * n * (n + 1) / 2)]
        let maxValue = try group.allReduce(Tensor([Int64(rank)]), op: .max).scalars(as: Int64.self)
        let b = try group.broadcast(Tensor([Float(rank + 5)]), from: n - 1).scalars(as: Float.self)
        let gathered = try group.allGather(Tensor([Int64(rank)])).scalars(as: Int64.self)
        let scattered = try group.reduceScatter(Tensor((0..<(2 * n)).map { Float($0 + rank) }, shape: [2 * n])).scalars(as: Float.self)
        let expectedScatter = (0..<2).map { j in Float((0..<n).reduce(0) { $0 + 2 * rank + j + $1 }) }
        try group.barrier()
        passed = sum == expectedSum && maxValue == [Int64(n - 1)] && b == [Float(n + 4)]
            && gathered == (0..<n).map(Int64.init) && scattered == expectedScatter
        say("rank \(rank): collectives sum \(sum) max \(maxValue) broadcast \(b) gathered \(gathered) scattered \(scattered) count \(group.collectiveCount) \(passed ? "ok" : "FAILED")")
    case "checkpoint":
        // Rank 0 writes mid-run; resume on 2 ranks (bitwise) and on 1 (each rank alone, within 1e-5).
        let path = CommandLine.arguments.count > 2 ? CommandLine.arguments[2] : NSTemporaryDirectory() + "ember-ddp-check.safetensors"
        let run = try DistributedScenarios.checkpointRun(group: group, path: path)
        let two = try DistributedScenarios.resumeRun(group: group, path: path)
        let one = try DistributedScenarios.resumeRun(group: ProcessGroup.singleProcess(), path: path)
        let difference = zip(one.final, run.state).reduce(0.0) { max($0, abs($1.0 - $1.1)) }
        passed = run.wrote == (rank == 0) && two.final == run.state && two.restored == one.restored && difference < 1e-5
        _ = try group.onRankZero { try? FileManager.default.removeItem(atPath: path) }
        say("rank \(rank): checkpoint written by this rank: \(run.wrote); resumed on 2 ranks bitwise: \(two.final == run.state); resumed on 1 rank: max difference \(difference) \(passed ? "ok" : "FAILED")")
    case "mismatch":
        // With verifiesCalls, ranks that broadcast different shapes get a typed error, not garbage.
        let verified = try ProcessGroup.world(verifiesCalls: true)
        do {
            _ = try verified.broadcast(Tensor.zeros([rank + 1]))
            say("rank \(rank): the mismatched broadcast returned")
            passed = false
        } catch let error as DistributedError {
            guard case .mismatch = error else { throw error }
            say("rank \(rank): mismatch detected: \(error)")
        }
        // The group still works after a detected mismatch.
        let sum = try verified.allReduce(Tensor([Float(1)])).scalars(as: Float.self)
        passed = passed && sum == [Float(group.worldSize)]
        say("rank \(rank): after the mismatch an all-reduce gives \(sum) \(passed ? "ok" : "FAILED")")
        // Equal shapes, different buckets (rank 1 froze a bias): started bucket all-reduces would
        // mismatch, so wrapping fails on every rank.
        let layer = Linear(3, 2)
        layer.bias!.requiresGrad = rank == 0
        do {
            _ = try DistributedDataParallel(layer, processGroup: verified)
            say("rank \(rank): DistributedDataParallel over different buckets was built")
            passed = false
        } catch let error as DistributedError {
            guard case .mismatch = error else { throw error }
            say("rank \(rank): bucket layout refused: \(error)")
        }
    case "bench":
        passed = try DistributedBench.run(group: group, arguments: Array(CommandLine.arguments.dropFirst(2)))
    default:
        say("unknown check \(check); checks: mlp, eval, fail, collectives, mismatch, checkpoint, bench")
        exit(2)
    }
} catch {
    say("rank \(rank): error: \(error)")
    passed = false
}
group.finalize()
exit(passed ? 0 : 1)
