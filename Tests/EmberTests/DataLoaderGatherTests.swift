import Ember
import Synchronization
import Testing

/// The default collation gathers each batch straight from the dataset's tensors (`BatchGathering`):
/// the same batches as copying out each sample and stacking, and no per-sample reads.
@Suite struct DataLoaderGatherTests {
    static let dataset = TensorDataset(
        inputs: HostTensor((0..<60).map { Float($0) * 0.5 }, shape: [20, 3]),
        labels: HostTensor((0..<20).map { Int64($0 % 4) }, shape: [20]))

    static func batches<S: Dataset>(_ loader: DataLoader<S, HostBatch>) -> [([Float], Shape, [Int64], Shape)] {
        loader.map { ($0.inputs.scalars(as: Float.self), $0.inputs.shape, $0.labels.scalars(as: Int64.self), $0.labels.shape) }
    }

    @Test(arguments: [false, true])
    func gatheredBatchesEqualStackedSamples(shuffle: Bool) {
        let subset = Subset(Self.dataset, indices: [19, 3, 3, 7, 0, 12, 5])
        for prefetch in [0, 2] {
            let gathered = Self.batches(DataLoader(Self.dataset, batchSize: 6, shuffle: shuffle, prefetch: prefetch, generator: Generator(seed: 4)))
            let stacked = Self.batches(DataLoader(Self.dataset, batchSize: 6, shuffle: shuffle, prefetch: prefetch, generator: Generator(seed: 4),
                                                  collate: { defaultCollate($0) }))
            #expect(gathered.count == 4 && gathered.elementsEqual(stacked) { $0.0 == $1.0 && $0.1 == $1.1 && $0.2 == $1.2 && $0.3 == $1.3 })
            let fromSubset = Self.batches(DataLoader(subset, batchSize: 3, shuffle: shuffle, prefetch: prefetch, generator: Generator(seed: 5)))
            let subsetStacked = Self.batches(DataLoader(subset, batchSize: 3, shuffle: shuffle, prefetch: prefetch, generator: Generator(seed: 5),
                                                        collate: { defaultCollate($0) }))
            #expect(fromSubset.elementsEqual(subsetStacked) { $0.0 == $1.0 && $0.1 == $1.1 && $0.2 == $1.2 && $0.3 == $1.3 })
        }
    }

    /// A dataset that counts how it is read.
    final class Counting: BatchGathering, @unchecked Sendable {
        let samples = Atomic<Int>(0), gathers = Atomic<Int>(0)
        var count: Int { 10 }
        subscript(index: Int) -> Example {
            samples.add(1, ordering: .relaxed)
            return DataLoaderGatherTests.dataset[index]
        }
        func gather(_ indices: ArraySlice<Int>) -> HostBatch {
            gathers.add(1, ordering: .relaxed)
            return DataLoaderGatherTests.dataset.gather(indices)
        }
    }

    @Test func theDefaultCollationReadsEachBatchInOneGather() {
        let data = Counting()
        let loader = DataLoader(data, batchSize: 4, shuffle: true, prefetch: 0)
        #expect(Array(loader).count == 3)
        #expect(data.gathers.load(ordering: .relaxed) == 3 && data.samples.load(ordering: .relaxed) == 0)
    }
}
