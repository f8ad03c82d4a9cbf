import Ember
import Foundation
import Synchronization
import Testing
import _EmberTestSupport

/// A thread-safe record of which batches a collate function has built.
private final class BuildLog: Sendable {
    private let built = Mutex<[Int64]>([])

    func record(_ first: Int64) { built.withLock { $0.append(first) } }
    var entries: [Int64] { built.withLock { $0 } }

    /// Waits up to `seconds` for `condition` on the entries.
    func wait(seconds: Double, until condition: ([Int64]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition(entries) { return true }
            Thread.sleep(forTimeInterval: 0.002)
        }
        return condition(entries)
    }
}

/// A collated batch handed over as it is (`Element == Self`).
private struct IndexBatch: CollatedBatch, Equatable {
    var labels: [Int64]
    var inputSum: Float
}

/// Samples of different shapes, to check the default collation's error.
private struct RaggedDataset: Dataset {
    var count: Int { 2 }
    subscript(index: Int) -> Example {
        Example(input: HostTensor([Float](repeating: 1, count: index + 1)), label: HostTensor([Int64(index)], shape: []))
    }
}

@Suite struct DataLoaderTests {
    // MARK: Batching

    /// (samples, batch size, dropLast, batches as `len(DataLoader(...))` gives them in PyTorch).
    static let countCases: [(Int, Int, Bool, Int)] = [
        (10, 4, false, 3), (10, 4, true, 2), (8, 4, false, 2), (8, 4, true, 2),
        (3, 5, false, 1), (3, 5, true, 0), (0, 3, false, 0), (0, 3, true, 0), (7, 1, false, 7), (7, 7, true, 1),
    ]

    @Test(arguments: countCases)
    func batchCountsAndShapesFollowPyTorch(samples: Int, batchSize: Int, dropLast: Bool, batches: Int) {
        let loader = DataLoader(indexDataset(samples), batchSize: batchSize, dropLast: dropLast)
        #expect(loader.count == batches)
        #expect(loader.underestimatedCount == batches)
        var seen = 0
        for (k, batch) in loader.enumerated() {
            let size = dropLast ? batchSize : Swift.min(batchSize, samples - k * batchSize)
            #expect(batch.inputs.shape == [size, 3], "batch \(k)")
            #expect(batch.labels.shape == [size], "batch \(k)")
            #expect(batch.inputs.dtype == .float32)
            #expect(batch.labels.dtype == .int64)
            seen += 1
        }
        #expect(seen == batches)
    }

    @Test func unshuffledBatchesHoldConsecutiveSamplesInOrder() {
        let loader = DataLoader(indexDataset(7), batchSize: 3)
        #expect(labelBatches(loader) == [[0, 1, 2], [3, 4, 5], [6]])
        let batch = Array(loader)[1]
        expectBitwiseEqual(batch.inputs, Tensor([3, 3.5, 3.25, 4, 4.5, 4.25, 5, 5.5, 5.25] as [Float], shape: [3, 3]))
        // Without shuffle every epoch is the same.
        #expect(labelBatches(loader) == labelBatches(loader))
    }

    @Test func batchSizeDefaultsToOneAsInPyTorch() {
        let loader = DataLoader(indexDataset(3))
        #expect(loader.batchSize == 1 && !loader.shuffle && !loader.dropLast)
        #expect(labelBatches(loader) == [[0], [1], [2]])
    }

    @Test func imageShapedInputsKeepTheirShape() {
        let data = TensorDataset(features: (0..<(5 * 4)).map { Float($0) }, featureShape: [1, 2, 2], labels: [0, 1, 2, 3, 4])
        let batches = Array(DataLoader(data, batchSize: 2))
        #expect(batches.map(\.inputs.shape) == [[2, 1, 2, 2], [2, 1, 2, 2], [1, 1, 2, 2]])
    }

    // MARK: Shuffling

    @Test func everySampleAppearsOncePerEpochAndEpochsDiffer() {
        let n = 53
        let loader = DataLoader(indexDataset(n), batchSize: 8, shuffle: true, generator: Generator(seed: 3))
        var orders: [[Int64]] = []
        for _ in 0..<4 {
            let batches = labelBatches(loader)
            #expect(batches.map(\.count) == [8, 8, 8, 8, 8, 8, 5])
            let order = batches.flatMap { $0 }
            #expect(order.sorted() == (0..<Int64(n)).map { $0 }, "each sample exactly once")
            orders.append(order)
        }
        #expect(Set(orders).count == 4, "each epoch draws a new permutation")
        #expect(!orders.contains((0..<Int64(n)).map { $0 }), "shuffled")
    }

    @Test func sameSeedGivesSameBatchesAndDifferentSeedsDiffer() {
        func epochs(seed: UInt64) -> [[[Int64]]] {
            let loader = DataLoader(indexDataset(40), batchSize: 6, shuffle: true, generator: Generator(seed: seed))
            return (0..<3).map { _ in labelBatches(loader) }
        }
        #expect(epochs(seed: 11) == epochs(seed: 11))
        #expect(epochs(seed: 11) != epochs(seed: 12))
    }

    @Test func defaultGeneratorIsTheTaskDefaultWhenTheLoaderIsMade() {
        let a = withGenerator(Generator(seed: 9)) { labelBatches(DataLoader(indexDataset(20), batchSize: 5, shuffle: true)) }
        let b = withGenerator(Generator(seed: 9)) { labelBatches(DataLoader(indexDataset(20), batchSize: 5, shuffle: true)) }
        #expect(a == b)
    }

    @Test func dropLastDropsTheShortBatchOfEachShuffledEpoch() {
        let loader = DataLoader(indexDataset(10), batchSize: 4, shuffle: true, dropLast: true, generator: Generator(seed: 1))
        for _ in 0..<3 {
            let batches = labelBatches(loader)
            #expect(batches.map(\.count) == [4, 4])
            #expect(Set(batches.flatMap { $0 }).count == 8)
        }
    }

    // MARK: Collation

    @Test func customCollationCanReturnItsOwnType() {
        let loader = DataLoader(indexDataset(5), batchSize: 2) { (examples: [Example]) in
            IndexBatch(labels: examples.map { $0.label.int64s[0] }, inputSum: examples.reduce(0) { $0 + $1.input.floats[0] })
        }
        let batches = Array(loader)
        #expect(batches == [IndexBatch(labels: [0, 1], inputSum: 1), IndexBatch(labels: [2, 3], inputSum: 5), IndexBatch(labels: [4], inputSum: 4)])
    }

    @Test func customCollationToAHostBatchYieldsTensors() {
        // One-hot labels, built on the loader's thread.
        let loader = DataLoader(indexDataset(4), batchSize: 2) { (examples: [Example]) -> HostBatch in
            var onehot = [Float](repeating: 0, count: examples.count * 4)
            for (r, e) in examples.enumerated() { onehot[r * 4 + Int(e.label.int64s[0])] = 1 }
            return HostBatch(inputs: HostTensor.stacked(examples.map(\.input)), labels: HostTensor(onehot, shape: [examples.count, 4]))
        }
        let batches = Array(loader)
        expectBitwiseEqual(batches[1].labels, Tensor([0, 0, 1, 0, 0, 0, 0, 1] as [Float], shape: [2, 4]))
        #expect(batches[1].inputs.shape == [2, 3])
    }

    @Test func collationGetsSamplesInBatchOrder() {
        let loader = DataLoader(indexDataset(12), batchSize: 5, shuffle: true, generator: Generator(seed: 4)) { (examples: [Example]) in
            HostTensor(examples.map { $0.label.int64s[0] })
        }
        var iterator = loader.makeIterator()
        let plan = iterator.batchIndices
        var got: [[Int64]] = []
        while let t = iterator.next() { got.append(t.scalars(as: Int64.self)) }
        #expect(got == plan.map { $0.map { Int64($0) } })
    }

    @Test func defaultCollationRefusesSamplesOfDifferentShapes() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Array(DataLoader(RaggedDataset(), batchSize: 2, prefetch: 0))
        }
        #expect(standardErrorText(r).contains("stack expects each tensor to be equal size, but got [1] at entry 0 and [2] at entry 1"))
    }

    @Test func batchSizeBelowOneIsRefusedWithPyTorchsMessage() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = DataLoader(indexDataset(3), batchSize: 0)
        }
        #expect(standardErrorText(r).contains("batch_size should be a positive integer value, but got batch_size=0"))
    }

    // MARK: Epochs and early exit

    @Test func breakingEarlyThenIteratingAgainStartsAFullEpoch() {
        let loader = DataLoader(indexDataset(30), batchSize: 4, shuffle: true, generator: Generator(seed: 2))
        for round in 0..<20 {
            for (k, _) in loader.enumerated() where k == round % 3 { break }
        }
        let batches = labelBatches(loader)
        #expect(batches.count == 8)
        #expect(batches.flatMap { $0 }.sorted() == (0..<30).map { Int64($0) })
    }

    @Test func anEarlyExitStopsThePrefetchingThread() {
        let loader = DataLoader(indexDataset(100), batchSize: 2, prefetch: 2)
        var channel: PrefetchChannel<HostBatch>?
        do {
            var iterator = loader.makeIterator()
            channel = iterator.prefetchChannel
            _ = iterator.next()
            // Let the producer fill the buffer and block waiting for a free slot.
            let deadline = Date().addingTimeInterval(10)
            while channel?.readyCount != 2 && Date() < deadline { Thread.sleep(forTimeInterval: 0.002) }
            Thread.sleep(forTimeInterval: 0.02)
            #expect(channel?.readyCount == 2 && channel?.producerExited == false)
        }  // the iterator is dropped here, with 49 batches left
        #expect(channel != nil)
        #expect(channel?.waitForProducerExit(seconds: 10) == true, "the producer must not stay blocked on a full buffer")
    }

    @Test func theThreadEndsAfterAFullEpochToo() {
        let loader = DataLoader(indexDataset(9), batchSize: 2, prefetch: 1)
        var iterator = loader.makeIterator()
        let channel = iterator.prefetchChannel
        while iterator.next() != nil {}
        #expect(channel?.waitForProducerExit(seconds: 10) == true)
        #expect(iterator.next() == nil, "an ended epoch stays ended")
    }

    @Test func noThreadWithoutPrefetchOrForAnEmptyEpoch() {
        #expect(DataLoader(indexDataset(9), batchSize: 2, prefetch: 0).makeIterator().prefetchChannel == nil)
        #expect(DataLoader(indexDataset(3), batchSize: 4, dropLast: true).makeIterator().prefetchChannel == nil)
    }

    // MARK: Prefetching

    @Test func prefetchingPreparesTheNextBatchesWhileTheLoopWorks() {
        let log = BuildLog()
        let loader = DataLoader(indexDataset(40), batchSize: 4, prefetch: 2) { (examples: [Example]) -> HostBatch in
            log.record(examples[0].label.int64s[0] / 4)
            return defaultCollate(examples)
        }
        var iterator = loader.makeIterator()
        let first = iterator.next()
        #expect(first?.labels.scalars(as: Int64.self) == [0, 1, 2, 3])
        // The loop now "trains" on batch 0; batches 1 and 2 get built meanwhile, without asking.
        #expect(log.wait(seconds: 10) { $0.count >= 3 }, "built: \(log.entries)")
        Thread.sleep(forTimeInterval: 0.05)
        #expect(log.entries == [0, 1, 2], "at most `prefetch` batches ahead of the loop")
        _ = iterator.next()
        #expect(log.wait(seconds: 10) { $0.count >= 4 })
        #expect(log.entries == [0, 1, 2, 3])
    }

    @Test(arguments: [1, 2, 5])
    func prefetchedBatchesEqualThoseBuiltOnTheLoopsThread(prefetch: Int) {
        // Random augmentation in the collate function draws from the per-batch generator, and
        // random delays on both sides vary the timing; the batches must not change.
        func augmenting(delayed: Bool) -> @Sendable ([Example]) -> HostBatch {
            { examples in
                if delayed { Thread.sleep(forTimeInterval: Double.random(in: 0..<0.002)) }
                var batch = defaultCollate(examples)
                let noise = Tensor.uniform([batch.inputs.count]).scalars(as: Float.self)
                batch.inputs = HostTensor(zip(batch.inputs.floats, noise).map { $0 + $1 }, shape: batch.inputs.shape)
                return batch
            }
        }
        func epochs(prefetch: Int) -> [[HostTensor]] {
            let loader = DataLoader(indexDataset(37), batchSize: 5, shuffle: true, prefetch: prefetch,
                                    generator: Generator(seed: 21), collate: augmenting(delayed: prefetch > 0))
            return (0..<3).map { _ in
                loader.map { batch in
                    Thread.sleep(forTimeInterval: Double.random(in: 0..<0.001))
                    return HostTensor(batch.inputs)
                }
            }
        }
        let reference = epochs(prefetch: 0)
        #expect(reference.count == 3 && reference.allSatisfy { $0.count == 8 })
        #expect(reference[0] != reference[1], "a new shuffle and new noise each epoch")
        #expect(epochs(prefetch: prefetch) == reference)
    }

    @Test func loadersWorkFromManyConcurrentTasks() async {
        // Each task blocks its thread while waiting for its producer; producers are threads of
        // their own, so this cannot starve the cooperative pool.
        let sums = await withTaskGroup(of: Int64.self) { group in
            for seed in 0..<8 {
                group.addTask {
                    let loader = DataLoader(indexDataset(50), batchSize: 7, shuffle: true, generator: Generator(seed: UInt64(seed)))
                    return loader.reduce(0) { $0 + $1.labels.scalars(as: Int64.self).reduce(0, +) }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(sums == [Int64](repeating: 49 * 50 / 2, count: 8))
    }
}
