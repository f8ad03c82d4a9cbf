import _EmberTestSupport
import Ember
import Foundation
import Synchronization
import Testing

/// Runs `body` once per rank of `groups`, each on its own thread, and returns each rank's result.
func runRanks<R: Sendable>(_ groups: [ProcessGroup], _ body: @escaping @Sendable (ProcessGroup) throws -> R) -> [Result<R, DistributedError>] {
    let results = Mutex<[Result<R, DistributedError>?]>(Array(repeating: nil, count: groups.count))
    let done = DispatchGroup()
    for group in groups {
        done.enter()
        let thread = Thread {
            let r: Result<R, DistributedError>
            do { r = .success(try body(group)) } catch let e as DistributedError { r = .failure(e) } catch {
                r = .failure(.invalidArgument(operation: "test", detail: "\(error)"))
            }
            results.withLock { $0[group.rank] = r }
            done.leave()
        }
        thread.stackSize = 16 << 20
        thread.start()
    }
    done.wait()
    return results.withLock { $0.map { $0! } }
}

/// The successful values, recording an issue for each failure.
func values<R>(_ results: [Result<R, DistributedError>], sourceLocation: SourceLocation = #_sourceLocation) -> [R] {
    results.compactMap { r in
        switch r {
        case .success(let v): return v
        case .failure(let e):
            Issue.record("a rank failed: \(e)", sourceLocation: sourceLocation)
            return nil
        }
    }
}

@Suite("Distributed collectives")
struct DistributedCollectiveTests {
    @Test("allReduce sum, mean, max, min over 3 ranks, float32, float64 and int64")
    func allReduce() {
        let results = values(runRanks(ProcessGroup.inProcess(worldSize: 3)) { g in
            let r = Double(g.rank)
            let x = Tensor([r, -r, r * r], shape: [3])
            let sum = try g.allReduce(x).scalars(as: Double.self)
            let mean = try g.allReduce(x.to(.float32), op: .mean).scalars(as: Float.self)
            let max = try g.allReduce(Tensor([Int64(g.rank), Int64(-g.rank)]), op: .max).scalars(as: Int64.self)
            let min = try g.allReduce(Tensor([Int64(g.rank), Int64(-g.rank)]), op: .min).scalars(as: Int64.self)
            // A transposed (non-contiguous) input, reduced in its logical order.
            let t = Tensor([1.0, 2, 3, 4, 5, 6].map { $0 * (r + 1) }, shape: [2, 3]).transposed(0, 1)
            let tSum = try g.allReduce(t)
            return (sum, mean, max, min, tSum.shape, tSum.scalars(as: Double.self), g.collectiveCount)
        })
        #expect(results.count == 3)
        for r in results {
            #expect(r.0 == [3, -3, 5])
            #expect(r.1 == [1, -1, Float(5) / 3])
            #expect(r.2 == [2, 0])
            #expect(r.3 == [0, -2])
            #expect(r.4 == [3, 2])
            #expect(r.5 == [6, 24, 12, 30, 18, 36])
            #expect(r.6 == 5)
        }
    }

    @Test("broadcast, allGather (0-d and 2-d), reduceScatter (sum, mean) and barrier")
    func otherCollectives() {
        let results = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            let b = try g.broadcast(Tensor([Float(g.rank + 10), 7]), from: 1).scalars(as: Float.self)
            let scalar = try g.allGather(Tensor(Int64(g.rank * 5)))
            let matrix = try g.allGather(Tensor([Double(g.rank), 1, 2, 3], shape: [2, 2]))
            let input = Tensor((0..<4).map { Float($0 * (g.rank + 1)) }, shape: [4])
            let rs = try g.reduceScatter(input).scalars(as: Float.self)
            let rsMean = try g.reduceScatter(input.reshaped([2, 2]), op: .mean)
            try g.barrier()
            return (b, scalar.shape, scalar.scalars(as: Int64.self), matrix.shape, matrix.scalars(as: Double.self), rs,
                    rsMean.shape, rsMean.scalars(as: Float.self), g.rank)
        })
        #expect(results.count == 2)
        for r in results {
            #expect(r.0 == [11, 7])
            #expect(r.1 == [2])
            #expect(r.2 == [0, 5])
            #expect(r.3 == [4, 2])
            #expect(r.4 == [0, 1, 2, 3, 1, 1, 2, 3])
            // Sum of [0,1,2,3] and [0,2,4,6] is [0,3,6,9]: rank 0 gets [0,3], rank 1 [6,9].
            #expect(r.5 == (r.8 == 0 ? [0, 3] : [6, 9]))
            #expect(r.6 == [1, 2])
            #expect(r.7 == (r.8 == 0 ? [0, 1.5] : [3, 4.5]))
        }
    }

    @Test("local argument errors are typed and run no collective")
    func localErrors() {
        let g = ProcessGroup.singleProcess()
        #expect(throws: DistributedError.unsupportedDType(operation: "allReduce", dtype: .bool)) {
            try g.allReduce(Tensor([true, false]))
        }
        #expect(throws: DistributedError.unsupportedDType(operation: "allReduce(mean)", dtype: .int64)) {
            try g.allReduce(Tensor([Int64(1)]), op: .mean)
        }
        #expect(throws: DistributedError.self) { try g.broadcast(Tensor([Float(1)]), from: 1) }
        let groups = ProcessGroup.inProcess(worldSize: 2)
        #expect(throws: DistributedError.self) { try groups[0].reduceScatter(Tensor([Float(1), 2, 3])) }
        #expect(throws: DistributedError.self) { try groups[0].reduceScatter(Tensor(Float(1))) }
        #expect(g.collectiveCount == 0 && groups[0].collectiveCount == 0)
        // A single-process group returns its input.
        #expect((try? g.allReduce(Tensor([Float(2)]), op: .mean).scalars(as: Float.self)) == [2])
        #expect((try? g.allGather(Tensor([Float(2), 3])).scalars(as: Float.self)) == [2, 3])
    }

    @Test("ranks that disagree get a mismatch error on every rank; a missing rank a timeout")
    func mismatchAndTimeout() {
        let results = runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            try g.allReduce(Tensor.zeros([g.rank + 1])).count
        }
        for r in results {
            guard case .failure(.mismatch(let op, let detail)) = r else { Issue.record("expected a mismatch, got \(r)"); continue }
            #expect(op == "allReduce")
            #expect(detail.contains("count: 1") && detail.contains("count: 2"))
        }
        let dtypes = runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            try g.broadcast(g.rank == 0 ? Tensor([Float(1)]) : Tensor([Double(1)])).count
        }
        #expect(dtypes.allSatisfy { if case .failure(.mismatch) = $0 { true } else { false } })
        let start = Date()
        let groups = ProcessGroup.inProcess(worldSize: 2, timeout: 0.3)
        #expect(throws: DistributedError.timeout(operation: "allReduce", seconds: 0.3)) {
            try groups[0].allReduce(Tensor([Float(1)]))
        }
        #expect(Date().timeIntervalSince(start) < 10)
    }

    @Test("world(): one process without mpirun, or MPI with the trait")
    func world() throws {
        let launcher = ProcessGroup.launcherWorldSize
        if launcher == 1 && !ProcessGroup.isMPIAvailable {
            let g = try ProcessGroup.world()
            #expect(g.worldSize == 1 && g.rank == 0 && g.engine == "single process")
        }
        #expect(DistributedError.mpiUnavailable(worldSize: 2).description.contains("--traits MPI"))
    }
}

@Suite("DistributedSampler")
struct DistributedSamplerTests {
    @Test("each rank's indices equal PyTorch's DistributedSampler, shuffled or not, padded or dropped")
    func matchesPyTorch() throws {
        let fixture = try Fixture("distributed")
        let cases = try JSONSerialization.jsonObject(with: Data(fixture.metadata["sampler_cases"]!.utf8)) as! [[Any]]
        #expect(cases.count == 11)
        for (i, c) in cases.enumerated() {
            let count = c[0] as! Int, replicas = c[1] as! Int, shuffle = c[2] as! Bool
            let seed = UInt64(c[3] as! Int), dropLast = c[4] as! Bool, epoch = c[5] as! Int
            for rank in 0..<replicas {
                var sampler = DistributedSampler(count: count, numReplicas: replicas, rank: rank, shuffle: shuffle, seed: seed, dropLast: dropLast)
                sampler.setEpoch(epoch)
                let expected = fixture["sampler\(i)_rank\(rank)"].scalars(as: Int64.self).map(Int.init)
                #expect(sampler.indices() == expected, "case \(i) \(c), rank \(rank)")
                #expect(Array(sampler) == expected)
                #expect(sampler.numSamples == expected.count)
            }
        }
    }

    @Test("setEpoch reshuffles; the same epoch gives the same order; shards are disjoint and cover the data")
    func epochs() {
        var a = DistributedSampler(count: 20, numReplicas: 2, rank: 0)
        let first = a.indices()
        a.setEpoch(1)
        #expect(a.indices() != first)
        a.setEpoch(0)
        #expect(a.indices() == first)
        let other = DistributedSampler(count: 20, numReplicas: 2, rank: 1)
        #expect(Set(first).isDisjoint(with: other.indices()))
        #expect(Set(first).union(other.indices()) == Set(0..<20))
        let group = ProcessGroup.singleProcess()
        #expect(DistributedSampler(count: 5, group: group, shuffle: false).indices() == [0, 1, 2, 3, 4])
    }
}

@Suite("SyncBatchNorm")
struct SyncBatchNormTests {
    /// Rows `rows` of an `[N, ...]` tensor.
    static func rows(_ t: Tensor, _ rows: Range<Int>) -> Tensor {
        let per = t.count / max(t.shape[0], 1)
        var shape = t.shape
        shape[0] = rows.count
        let all = t.to(.float64).scalars(as: Double.self)
        return Tensor(Array(all[(rows.lowerBound * per)..<(rows.upperBound * per)]), shape: shape).to(t.dtype)
    }

    @Test("training over 2 ranks with uneven shards gives PyTorch's BatchNorm of the global batch: outputs, running statistics, gradients",
          arguments: ["bn1d", "bn2d", "bn1d3"])
    func globalBatch(name: String) throws {
        let fixture = try Fixture("distributed")
        let cases = try JSONSerialization.jsonObject(with: Data(fixture.metadata["bn_cases"]!.utf8)) as! [[String: Any]]
        let spec = cases.first { $0["name"] as? String == name }!
        let splits = spec["splits"] as! [Int], batches = spec["batches"] as! Int
        let momentum = spec["momentum"] as? Double
        struct RankResult: Sendable {
            var range: Range<Int>
            var outputs: [[Double]] = [], inputGrads: [[Double]] = [], weightGrads: [[Double]] = [], biasGrads: [[Double]] = []
            var runningMean: [Double] = [], runningVar: [Double] = []
            var tracked: Int64 = 0
            var collectives = 0
        }
        let results = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            let fixture = try! Fixture("distributed")
            let weight = fixture["\(name)_weight"], bias = fixture["\(name)_bias"]
            let start = g.rank == 0 ? 0 : splits[0]
            var result = RankResult(range: start..<(start + splits[g.rank]))
            let bn = SyncBatchNorm(weight.count, momentum: momentum, processGroup: g, dtype: weight.dtype)
            bn.weight!.value = weight
            bn.bias!.value = bias
            func doubles(_ t: Tensor) -> [Double] { t.to(.float64).scalars(as: Double.self) }
            for b in 0..<batches {
                bn.weight!.grad = nil
                bn.bias!.grad = nil
                let x = Self.rows(fixture["\(name)_x\(b)"], result.range).requiringGrad()
                let out = bn(x)
                (out * Self.rows(fixture["\(name)_g\(b)"], result.range)).sum().backward()
                result.outputs.append(doubles(out.detached()))
                result.inputGrads.append(doubles(x.grad!))
                result.weightGrads.append(doubles(try g.allReduce(bn.weight!.grad!)))
                result.biasGrads.append(doubles(try g.allReduce(bn.bias!.grad!)))
            }
            result.runningMean = doubles(bn.runningMean!.value)
            result.runningVar = doubles(bn.runningVar!.value)
            result.tracked = bn.numBatchesTracked!.value.item(as: Int64.self)
            result.collectives = g.collectiveCount
            return result
        })
        #expect(results.count == 2)
        let dtype = fixture["\(name)_weight"].dtype
        let tol = dtype == .float64 ? 1e-10 : 1e-5
        func tensor(_ values: [Double], like t: Tensor) -> Tensor { Tensor(values, shape: t.shape).to(t.dtype) }
        for r in results {
            for b in 0..<batches {
                let out = Self.rows(fixture["\(name)_out\(b)"], r.range), dx = Self.rows(fixture["\(name)_dx\(b)"], r.range)
                expectClose(tensor(r.outputs[b], like: out), out, atol: tol, rtol: tol, "\(name) out \(b)")
                expectClose(tensor(r.inputGrads[b], like: dx), dx, atol: tol, rtol: tol, "\(name) dx \(b)")
                // Each rank's weight and bias gradients are its own; their sum is the global batch's.
                let dw = fixture["\(name)_dw\(b)"], db = fixture["\(name)_db\(b)"]
                expectClose(tensor(r.weightGrads[b], like: dw), dw, atol: tol, rtol: tol, "\(name) dw \(b)")
                expectClose(tensor(r.biasGrads[b], like: db), db, atol: tol, rtol: tol, "\(name) db \(b)")
            }
            let rm = fixture["\(name)_running_mean"], rv = fixture["\(name)_running_var"]
            expectClose(tensor(r.runningMean, like: rm), rm, atol: tol, rtol: tol, "\(name) running_mean")
            expectClose(tensor(r.runningVar, like: rv), rv, atol: tol, rtol: tol, "\(name) running_var")
            #expect(r.tracked == fixture["\(name)_num_batches_tracked"].item(as: Int64.self))
            // Per batch: the statistics all-gather, the backward all-reduce, and the test's two.
            #expect(r.collectives == 4 * batches)
        }
    }

    @Test("a rank with an empty batch still joins and gets the other ranks' statistics")
    func emptyShard() {
        let results = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            let bn = SyncBatchNorm(2, processGroup: g)
            let x = g.rank == 0 ? Tensor([1, 2, 3, 6] as [Float], shape: [2, 2]) : Tensor.zeros([0, 2])
            let out = bn(x)
            return (out.shape, bn.runningMean!.value.scalars(as: Float.self))
        })
        for r in results {
            #expect(r.1 == [0.2, 0.4])
        }
        #expect(results[0].0 == [2, 2] && results[1].0 == [0, 2])
    }

    @Test("with one process SyncBatchNorm gives BatchNorm's numbers")
    func singleProcess() {
        let g = ProcessGroup.singleProcess()
        let sync = SyncBatchNorm(3, processGroup: g, dtype: .float64), plain = BatchNorm1d(3, dtype: .float64)
        let x = Tensor.normal([5, 3, 2], dtype: .float64, generator: Generator(seed: 1))
        let a = x.requiringGrad(), b = x.requiringGrad()
        let ya = sync(a), yb = plain(b)
        expectClose(ya, yb, atol: 1e-12, rtol: 1e-12)
        (ya * ya).sum().backward()
        (yb * yb).sum().backward()
        expectClose(a.grad!, b.grad!, atol: 1e-10, rtol: 1e-10)
        expectClose(sync.weight!.grad!, plain.weight!.grad!, atol: 1e-10, rtol: 1e-10)
        expectClose(sync.runningVar!.value, plain.runningVar!.value, atol: 1e-12, rtol: 1e-12)
        #expect(sync.stateDict().keys == plain.stateDict().keys)
        #expect(sync.extraDescription == plain.extraDescription)
    }

    @Test("eval mode and pinned eval run no collective; training runs one forward and one backward")
    func evalRunsNoCollective() {
        let results = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            try DistributedScenarios.evalCollectives(group: g)
        })
        #expect(results.count == 2)
        for r in results {
            #expect(r.eval == 0)
            #expect(r.pinned == 0)
            #expect(r.training == 1)  // the statistics all-gather
            #expect(r.synchronized == 3)  // and DDP's buffer broadcasts: one per dtype (float32, int64)
        }
        let g = ProcessGroup.singleProcess()
        let bn = SyncBatchNorm(2, processGroup: g)
        bn.eval()
        _ = bn(Tensor.normal([4, 2]))
        #expect(g.collectiveCount == 0)
        bn.train()
        _ = bn(Tensor.normal([4, 2]))
        #expect(g.collectiveCount == 1)
    }

    @Test("convertSyncBatchNorm reaches BatchNorms in arrays, dictionaries and optionals, keeping identity, modes and pins")
    func convert() {
        final class Zoo: Module {
            let list = [BatchNorm1d(2), BatchNorm1d(3)]
            let map: [String: Module] = ["a": BatchNorm2d(4), "b": Linear(2, 2)]
            let maybe: BatchNorm3d? = BatchNorm3d(1)
            let seq = Sequential(Linear(2, 2), BatchNorm1d(2))
        }
        let zoo = Zoo()
        zoo.list[1].pin(.evaluation)
        zoo.eval()
        let before = zoo.parameters().map(ObjectIdentifier.init)
        let description = zoo.description
        let g = ProcessGroup.singleProcess()
        #expect(convertSyncBatchNorm(zoo, processGroup: g) === zoo)
        let bns = zoo.modules().compactMap { $0 as? BatchNormBase }
        #expect(bns.count == 5)
        #expect(bns.allSatisfy { $0.isSynchronized })
        #expect(zoo.parameters().map(ObjectIdentifier.init) == before)
        #expect(zoo.list[1].pinnedMode == .evaluation && !zoo.list[0].isTraining)
        #expect(zoo.description == description)
        #expect(!BatchNorm1d(2).isSynchronized)
    }
}

@Suite("DistributedDataParallel")
struct DistributedDataParallelTests {
    @Test("2 ranks x B samples train like one process on the 2B batch (MLP with BatchNorm1d), float32 and float64",
          arguments: [DType.float32, .float64])
    func equality(dtype: DType) {
        let results = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            [try DistributedScenarios.mlpEquality(group: g, dtype: dtype),
             // One parameter per bucket: every bucket starts from a hook during backward.
             try DistributedScenarios.mlpEquality(group: g, dtype: dtype, bucketCapMB: 0.00001)]
        }).flatMap { $0 }
        #expect(results.count == 4)
        #expect(results.map(\.buckets) == [1, 6, 1, 6] && results.map(\.startedDuringBackward) == [1, 6, 1, 6])
        let tol = dtype == .float64 ? 1e-12 : 1e-5
        for r in results {
            print("in-process 2 ranks, \(dtype): max parameter difference \(r.parameters), buffers \(r.buffers), losses \(r.losses)")
            #expect(r.parameters < tol, "max parameter difference \(r.parameters)")
            #expect(r.buffers < tol, "max buffer difference \(r.buffers)")
            #expect(r.losses < tol, "max loss difference \(r.losses)")
        }
    }

    @Test("with dropout (masks drawn per rank from one seeded stream, positioned at the shard) 2 ranks train like one process")
    func equalityWithDropout() {
        let results = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            try DistributedScenarios.mlpEquality(group: g, dtype: .float32, dropout: 0.3)
        })
        #expect(results.count == 2)
        for r in results {
            print("in-process 2 ranks with dropout: max parameter difference \(r.parameters), buffers \(r.buffers), losses \(r.losses)")
            #expect(r.parameters < 1e-5 && r.buffers < 1e-5 && r.losses < 1e-5, "\(r)")
        }
        // Without the positioning every rank draws the first rows' mask, and the runs part.
        let unpositioned = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            try DistributedScenarios.mlpEquality(group: g, dtype: .float32, dropout: 0.3, positionsDropout: false)
        })
        #expect(unpositioned.count == 2 && unpositioned.allSatisfy { $0.parameters > 1e-3 })
    }

    @Test("wrapping broadcasts rank 0's parameters and buffers; state dict keys carry module.")
    func broadcastAtWrap() {
        let results = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            let model = DistributedScenarios.MLP(seed: 50 + UInt64(g.rank), dtype: .float32)
            model.bn.runningMean!.value = Tensor.full([8], Double(g.rank + 1))
            let ddp = try DistributedDataParallel(model, processGroup: g)
            return (model.fc1.weight.value.scalars(as: Float.self), model.bn.runningMean!.value.scalars(as: Float.self),
                    ddp.stateDict().keys.first ?? "", model.fc1.weight.requiresGrad)
        })
        let reference = DistributedScenarios.MLP(seed: 50, dtype: .float32)
        for r in results {
            #expect(r.0 == reference.fc1.weight.value.scalars(as: Float.self))
            #expect(r.1 == Array(repeating: 1, count: 8))
            #expect(r.2 == "module.fc1.weight")
            #expect(r.3)
        }
    }

    @Test("buckets: reverse parameter order, capped by size; one all-reduce each")
    func buckets() throws {
        let g = ProcessGroup.singleProcess()
        let model = Sequential(Linear(100, 100), Linear(100, 10))  // 40 000 + 400 + 4000 + 40 bytes
        let ddp = try DistributedDataParallel(model, processGroup: g, bucketCapMB: 0.02)  // 20 971 bytes
        let buckets = ddp.buckets()
        #expect(buckets.map { $0.map(\.count) } == [[10, 1000, 100], [10000]])
        #expect(try DistributedDataParallel(model, processGroup: g).buckets().count == 1)
        // The first bucket holds at most 1 MB (PyTorch's first bucket), the rest up to the cap.
        let wide = Sequential(Linear(600, 600), Linear(600, 10))  // 1.44 MB of first-layer weight
        #expect(try DistributedDataParallel(wide, processGroup: g).buckets().map { $0.map(\.count) } == [[10, 6000, 600], [360000]])
        let results = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            let model = Sequential(Linear(100, 100), Linear(100, 10))
            let ddp = try DistributedDataParallel(model, processGroup: g, bucketCapMB: 0.02)
            let before = g.collectiveCount
            try ddp.backward(ddp(Tensor.normal([3, 100])).sum())
            return g.collectiveCount - before
        })
        #expect(results == [2, 2])
    }

    @Test("bucket all-reduces start from hooks while backward runs, in bucket order; unused parameters hold theirs back")
    func bucketsStartDuringBackward() {
        let results = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            let model = Sequential(Linear(100, 100, generator: Generator(seed: 1)), ReLU(), Linear(100, 10, generator: Generator(seed: 2)))
            let ddp = try DistributedDataParallel(model, processGroup: g, bucketCapMB: 0.02)
            let x = Tensor.normal([3, 100], generator: Generator(seed: UInt64(10 + g.rank)))
            try ddp.backward(ddp(x).sum())
            let early = ddp.bucketsStartedDuringBackward
            let overlapped = model.parameters().map { $0.grad!.scalars(as: Float.self) }
            // The same step without overlap: every bucket starts after backward.
            let reference = Sequential(Linear(100, 100, generator: Generator(seed: 1)), ReLU(), Linear(100, 10, generator: Generator(seed: 2)))
            let plain = try DistributedDataParallel(reference, processGroup: g, bucketCapMB: 0.02, overlapsCommunication: false)
            try plain.backward(plain(x).sum())
            let notOverlapped = plain.bucketsStartedDuringBackward
            return (early, notOverlapped, overlapped == reference.parameters().map { $0.grad!.scalars(as: Float.self) })
        })
        #expect(results.count == 2)
        for r in results {
            #expect(r.0 == 2)  // both buckets started before backward returned
            #expect(r.1 == 0)
            #expect(r.2)
        }
        // A parameter unused on one rank holds its bucket (and every later one) until the end there.
        let unused = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            final class TwoHeads: Module {
                let head = Linear(4, 4)
                let spare = Linear(4, 4)
                var useSpare = true
                override func forward(_ input: Tensor) -> Tensor { useSpare ? spare(head(input)) : head(input) }
            }
            let model = TwoHeads()
            model.useSpare = g.rank == 0
            let ddp = try DistributedDataParallel(model, processGroup: g, bucketCapMB: 0.00005)  // 52 bytes: one parameter per bucket
            try ddp.backward(ddp(Tensor.ones([2, 4])).sum())
            return (ddp.buckets().count, ddp.bucketsStartedDuringBackward)
        })
        #expect(unused.map(\.0) == [4, 4])
        // Buckets run in reverse parameter order (spare's bias first): rank 1 never fires spare's.
        #expect(unused.map(\.1) == [4, 0])
    }

    @Test("with verifiesCalls, ranks whose gradient buckets differ (equal shapes, one bias frozen) are refused at wrap time")
    func differentBucketsAreRefused() {
        let results = runRanks(ProcessGroup.inProcess(worldSize: 2, verifiesCalls: true)) { g in
            let layer = Linear(3, 2)
            layer.bias!.requiresGrad = g.rank == 0
            return try DistributedDataParallel(layer, processGroup: g).buckets().count
        }
        for r in results {
            guard case .failure(.mismatch(let operation, let detail)) = r else {
                Issue.record("expected a mismatch, got \(r)")
                continue
            }
            #expect(operation == "DistributedDataParallel" && detail.contains("gradient buckets"))
        }
        // Alike models pass the check.
        #expect(values(runRanks(ProcessGroup.inProcess(worldSize: 2, verifiesCalls: true)) { g in
            try DistributedDataParallel(Linear(3, 2), processGroup: g).buckets().count
        }) == [1, 1])
    }

    @Test func aBackwardLeftUnaveragedStopsTheNextForward() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let groups = ProcessGroup.inProcess(worldSize: 2)
            _ = values(runRanks(groups) { g in
                let ddp = try DistributedDataParallel(Linear(3, 2), processGroup: g)
                ddp(Tensor.ones([1, 3])).sum().backward()  // hooks start the bucket; nothing waits for it
                _ = ddp(Tensor.ones([1, 3]))
                return 0
            })
        }
        #expect(standardErrorText(result).contains("the previous backward's gradients were never averaged"))
    }

    @Test func aSecondBackwardAfterOneForwardStops() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
                let ddp = try DistributedDataParallel(Linear(3, 2), processGroup: g)
                let loss = ddp(Tensor.ones([1, 3])).sum()
                loss.backward(retainGraph: true)
                loss.backward()  // its gradients would miss the buckets already started
                try ddp.synchronizeGradients()
                return 0
            })
        }
        #expect(standardErrorText(result).contains("received gradients from a second backward after one synchronized forward"))
        // Without overlap the two passes accumulate and are averaged together.
        let sums = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            let layer = Linear(3, 2, generator: Generator(seed: 4))
            let ddp = try DistributedDataParallel(layer, processGroup: g, overlapsCommunication: false)
            let loss = ddp(Tensor.full([1, 3], Double(g.rank + 1))).sum()
            loss.backward(retainGraph: true)
            loss.backward()
            try ddp.synchronizeGradients()
            return layer.weight.grad!.scalars(as: Float.self)
        })
        // Each rank's weight gradient is 2 * its input (1 or 2): the average is 3.
        #expect(sums.count == 2 && sums.allSatisfy { $0 == Array(repeating: 3, count: 6) })
    }

    @Test("noSync accumulates locally; the next synchronized backward averages the sums")
    func noSync() {
        let results = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            let p = Parameter(Tensor([1.0, 2.0]))
            final class Holder: Module {
                let p: Parameter
                init(_ p: Parameter) { self.p = p }
                override func forward(_ input: Tensor) -> Tensor { input * p.value }
            }
            let ddp = try DistributedDataParallel(Holder(p), processGroup: g)
            let scale = Double(g.rank + 1)
            let before = g.collectiveCount
            try ddp.noSync { try ddp.backward(ddp(Tensor([scale, scale])).sum()) }
            let local = p.grad!.scalars(as: Double.self)
            let during = g.collectiveCount - before
            try ddp.backward(ddp(Tensor([10 * scale, 10 * scale])).sum())
            return (local, during, p.grad!.scalars(as: Double.self))
        })
        #expect(results.count == 2)
        #expect(results[0].0 == [1, 1] && results[1].0 == [2, 2])
        // Rank 0 accumulated 1 + 10, rank 1 2 + 20: the average is 16.5.
        for r in results {
            #expect(r.1 == 0)
            #expect(r.2 == [16.5, 16.5])
        }
    }

    @Test("a parameter unused on one rank counts as zeros there; unused on all ranks keeps a nil gradient")
    func unusedParameters() {
        let results = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            final class TwoHeads: Module {
                let a = Parameter(Tensor([1.0, 1.0]))
                let b = Parameter(Tensor([1.0, 1.0]))
                let never = Parameter(Tensor([1.0]))
                var useB = true
                override func forward(_ input: Tensor) -> Tensor { useB ? input * a.value * b.value : input * a.value }
            }
            let model = TwoHeads()
            model.useB = g.rank == 0
            let ddp = try DistributedDataParallel(model, processGroup: g)
            try ddp.backward(ddp(Tensor([4.0, 4.0])).sum())
            return (model.a.grad?.scalars(as: Double.self), model.b.grad?.scalars(as: Double.self), model.never.grad == nil)
        })
        for r in results {
            #expect(r.0 == [4, 4])
            #expect(r.1 == [2, 2])
            #expect(r.2)
        }
    }
}

@Suite("Distributed training loop")
struct DistributedTrainingLoopTests {
    @Test("DistributedSampler + Subset + DataLoader + DDP + SyncBatchNorm on the digits: ranks read disjoint shards and stay bit-identical")
    func digitsLoop() throws {
        let results = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            let digits = try! Digits.dataset()
            let data = Subset(digits, indices: Array(0..<250))
            let model = Sequential(Linear(64, 32, generator: Generator(seed: UInt64(g.rank))), BatchNorm1d(32), ReLU(), Linear(32, 10))
            let ddp = try DistributedDataParallel(convertSyncBatchNorm(model, processGroup: g), processGroup: g)
            let optimizer = SGD(ddp.parameters(), lr: 0.1, momentum: 0.9)
            var sampler = DistributedSampler(count: data.count, group: g, seed: 3)
            var seen: [Int] = []
            var losses: [Double] = []
            for epoch in 0..<2 {
                sampler.setEpoch(epoch)
                let indices = sampler.indices()
                if epoch == 0 { seen = indices.map { data.indices[$0] } }
                for batch in DataLoader(Subset(data, indices: indices), batchSize: 25, prefetch: 0) {
                    let loss = crossEntropy(ddp(batch.inputs), target: batch.labels)
                    losses.append(try g.allReduce(loss.detached(), op: .mean).item(as: Float.self).doubleValue)
                    try ddp.backward(loss)
                    optimizer.step()
                    optimizer.zeroGrad()
                }
            }
            let state = ddp.stateDict().map { ($0.0, $0.1.to(.float64).scalars(as: Double.self)) }
            return (seen, losses, state.map(\.0), state.map(\.1))
        })
        #expect(results.count == 2)
        guard results.count == 2 else { return }
        #expect(Set(results[0].0).isDisjoint(with: results[1].0))
        #expect(Set(results[0].0).union(results[1].0) == Set(0..<250))
        #expect(results[0].2 == results[1].2)
        #expect(results[0].2.contains("module.1.running_mean"))
        #expect(results[0].3 == results[1].3, "the replicas drifted apart")
        let losses = results[0].1
        #expect(losses.count == 10)
        #expect(losses.last! < losses.first! * 0.8, "\(losses)")
    }
}

@Suite("Distributed checkpoints")
struct DistributedCheckpointTests {
    @Test("rank 0 alone writes the checkpoint; resuming on 2 ranks continues bitwise, on 1 and 4 ranks within 1e-5, from bit-identical restored states")
    func resumeOnOtherWorldSizes() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ember-ddp-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let runs = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in
            try DistributedScenarios.checkpointRun(group: g, path: path)
        })
        #expect(runs.count == 2)
        guard runs.count == 2 else { return }
        #expect(runs.map(\.wrote) == [true, false])
        #expect(runs[0].state == runs[1].state)
        let uninterrupted = runs[0].state
        let two = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in try DistributedScenarios.resumeRun(group: g, path: path) })
        let one = values(runRanks([ProcessGroup.singleProcess()]) { g in try DistributedScenarios.resumeRun(group: g, path: path) })
        let four = values(runRanks(ProcessGroup.inProcess(worldSize: 4)) { g in try DistributedScenarios.resumeRun(group: g, path: path) })
        #expect(two.count == 2 && one.count == 1 && four.count == 4)
        let restored = two.first?.restored ?? []
        #expect(!restored.isEmpty)
        for r in two + one + four { #expect(r.restored == restored, "a restored state differs") }
        for r in two { #expect(r.final == uninterrupted, "resuming on the same world size is not bitwise") }
        for r in one + four {
            let difference = zip(r.final, uninterrupted).reduce(0.0) { max($0, abs($1.0 - $1.1)) }
            #expect(r.final.count == uninterrupted.count && difference < 1e-5, "max difference \(difference)")
        }
    }

    @Test("onRankZero: the result on rank 0 only; a failure there fails every rank")
    func onRankZero() {
        struct Boom: Error {}
        let ok = values(runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in try g.onRankZero { 42 } })
        #expect(ok == [42, nil])
        let failed = runRanks(ProcessGroup.inProcess(worldSize: 2)) { g in try g.onRankZero { () throws -> Int in throw Boom() } }
        if case .failure(.invalidArgument(_, let detail)) = failed[0] { #expect(detail.contains("Boom")) } else { Issue.record("rank 0: \(failed[0])") }
        #expect({ if case .failure(.peerFailed(operation: "onRankZero", rank: 0)) = failed[1] { true } else { false } }())
    }
}
