import EmberAutograd
import EmberTensor
import EmberStorage

/// Batches of samples from a dataset, one epoch per iteration: optionally shuffled, collated on a
/// background thread while the model trains on the previous batch.
///
/// ```swift
/// let loader = DataLoader(try Digits.dataset(), batchSize: 64, shuffle: true,
///                         generator: Generator(seed: 0))
/// for epoch in 0..<10 {
///     for batch in loader {           // a new shuffle every epoch
///         let logits = model(batch.inputs)    // batch.inputs: [64, 64] float32
///         ...                                 // batch.labels: [64] int64
///     }
/// }
/// ```
///
/// Each `for` loop (each ``makeIterator()``) is one epoch. When it starts, the loader draws from
/// its generator, on the calling thread: the epoch's permutation of the dataset (when `shuffle`)
/// and a seed for the epoch's batch generators. Batch `k` then holds the samples at positions
/// `k * batchSize ..< (k + 1) * batchSize` of that order (the last batch is smaller unless
/// `dropLast`), and is collated with ``Generator/default`` bound to a generator derived from the
/// epoch seed and `k`, so random augmentation in the dataset or `collate` is reproducible too.
///
/// Prefetching: with `prefetch > 0` a dedicated thread reads and collates batches in order, up to
/// `prefetch` batches ahead of the loop; the loop receives them in order and turns each into its
/// element (``CollatedBatch/materialized()``, e.g. tensors) on its own thread. The batches are the
/// same as with `prefetch: 0` (everything on the calling thread) whatever the timing. `next()`
/// waits (blocking the calling thread) only when the loop is faster than the data. Leaving the
/// loop early (`break`, `throw`) drops the iterator, which stops the thread; a new loop starts a
/// new epoch.
///
/// PyTorch parity: `torch.utils.data.DataLoader(dataset, batch_size=1, shuffle=False,
/// drop_last=False, generator=None, collate_fn=None)`: the same batch size default, batch count
/// (``count``, `len(loader)`), epoch semantics (a fresh permutation from the generator on each
/// `iter()`), and last-batch rule. Prefetching is a single background thread (PyTorch's
/// `num_workers=1` with `prefetch_factor`), not a pool of processes. The permutations differ from
/// PyTorch's (a different random stream).
public struct DataLoader<Source: Dataset, Collated: CollatedBatch>: Sequence, Sendable {
    /// The dataset batches are drawn from.
    public let dataset: Source
    /// Samples per batch (the last batch may have fewer unless ``dropLast``).
    public let batchSize: Int
    /// Whether each epoch visits the samples in a new random order.
    public let shuffle: Bool
    /// Whether to drop the last batch when it would be smaller than ``batchSize``.
    public let dropLast: Bool
    /// How many batches the background thread may prepare ahead (0: no thread).
    public let prefetch: Int
    /// The source of the shuffles and of the per-batch generators.
    public let generator: Generator
    /// Turns the samples of a batch into a host batch; runs on the prefetching thread.
    public let collate: @Sendable ([Source.Sample]) -> Collated
    /// Reads and collates the samples at the given indices: `collate` over the samples, or one
    /// gather straight from the dataset's tensors (``BatchGathering``) with the default collation.
    var gatherBatch: @Sendable (ArraySlice<Int>) -> Collated

    /// A loader with a custom collation.
    ///
    /// - Parameters:
    ///   - dataset: the samples.
    ///   - batchSize: samples per batch (`>= 1`; default 1, as PyTorch).
    ///   - shuffle: draw a new random order every epoch (default `false`).
    ///   - dropLast: drop a final batch smaller than `batchSize` (default `false`).
    ///   - prefetch: batches prepared ahead on a background thread (default 2; 0 disables the
    ///     thread and collates each batch when the loop asks for it).
    ///   - generator: the random source for shuffles and per-batch generators; defaults to the
    ///     task's ``Generator/default`` at the time the loader is created.
    ///   - collate: builds a batch from its samples (a non-empty array, in order); it runs on the
    ///     background thread, so it must be `@Sendable` and return a `Sendable` value.
    ///
    /// PyTorch parity: `DataLoader(dataset, batch_size, shuffle, drop_last=..., collate_fn=...,
    /// generator=...)`, with its error for a batch size below 1.
    public init(
        _ dataset: Source, batchSize: Int = 1, shuffle: Bool = false, dropLast: Bool = false,
        prefetch: Int = 2, generator: Generator = .default,
        collate: @escaping @Sendable ([Source.Sample]) -> Collated
    ) {
        precondition(batchSize >= 1, "DataLoader: batch_size should be a positive integer value, but got batch_size=\(batchSize)")
        precondition(prefetch >= 0, "DataLoader: prefetch must be non-negative, but got prefetch=\(prefetch)")
        self.dataset = dataset
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.prefetch = prefetch
        self.generator = generator
        self.collate = collate
        self.gatherBatch = { [dataset] indices in collate(indices.map { dataset[$0] }) }
    }

    /// The number of batches in an epoch: `count / batchSize` rounded up, or down with
    /// ``dropLast``.
    ///
    /// PyTorch parity: `len(loader)`.
    public var count: Int {
        dropLast ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize
    }

    /// The number of batches in an epoch (``count``).
    public var underestimatedCount: Int { count }

    /// Starts an epoch: draws its order and batch seed from ``generator`` and, with
    /// ``prefetch`` > 0, starts preparing its first batches on a background thread.
    public func makeIterator() -> Iterator {
        Iterator(plan: plan(), gather: gatherBatch, prefetch: prefetch)
    }

    /// The sample order and batch seed of a new epoch (advances the generator).
    package func plan() -> EpochPlan {
        let n = dataset.count
        let order = shuffle
            ? Tensor.randperm(n, generator: generator).scalars(as: Int64.self).map { Int($0) }
            : Array(0..<n)
        return EpochPlan(order: order, batchSize: batchSize, batchCount: count, seed: generator.next())
    }

    /// One epoch of batches.
    public struct Iterator: IteratorProtocol {
        let plan: EpochPlan
        let gather: @Sendable (ArraySlice<Int>) -> Collated
        /// The background producer; `nil` without prefetching or for an empty epoch.
        let handle: PrefetchHandle<Collated>?
        /// The next batch to hand out.
        private var position = 0

        init(plan: EpochPlan, gather: @escaping @Sendable (ArraySlice<Int>) -> Collated, prefetch: Int) {
            self.plan = plan
            self.gather = gather
            if prefetch > 0 && plan.batchCount > 0 {
                handle = PrefetchHandle(PrefetchChannel(count: plan.batchCount, capacity: prefetch) { k in
                    plan.collateBatch(k, with: gather)
                })
            } else {
                handle = nil
            }
        }

        /// The next batch, or `nil` at the end of the epoch.
        public mutating func next() -> Collated.Element? {
            guard position < plan.batchCount else { return nil }
            defer { position += 1 }
            let host = handle?.channel.take() ?? plan.collateBatch(position, with: gather)
            return host.materialized()
        }

        /// The dataset indices of each batch of this epoch, in order.
        public var batchIndices: [[Int]] { (0..<plan.batchCount).map { Array(plan.indices(ofBatch: $0)) } }

        /// The background producer's channel (tests check that it stops).
        package var prefetchChannel: PrefetchChannel<Collated>? { handle?.channel }
    }
}

extension DataLoader where Source.Sample == Example, Collated == HostBatch {
    /// A loader that stacks the inputs and labels of each batch (``defaultCollate(_:)``) and yields
    /// ``Batch``es of tensors.
    ///
    /// - Parameters: see ``init(_:batchSize:shuffle:dropLast:prefetch:generator:collate:)``.
    ///
    /// PyTorch parity: `DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False,
    /// generator=None)` with the default `collate_fn`.
    public init(
        _ dataset: Source, batchSize: Int = 1, shuffle: Bool = false, dropLast: Bool = false,
        prefetch: Int = 2, generator: Generator = .default
    ) {
        self.init(dataset, batchSize: batchSize, shuffle: shuffle, dropLast: dropLast, prefetch: prefetch,
                  generator: generator, collate: defaultCollate)
        if let gathering = dataset as? any BatchGathering {
            gatherBatch = { gathering.gather($0) }
        }
    }
}

/// The order of one epoch and how it is cut into batches.
package struct EpochPlan: Sendable {
    /// Dataset indices in visiting order.
    package let order: [Int]
    package let batchSize: Int
    package let batchCount: Int
    /// The seed the per-batch generators derive from.
    package let seed: UInt64

    /// Positions of batch `k` in the dataset.
    package func indices(ofBatch k: Int) -> ArraySlice<Int> {
        order[(k * batchSize)..<Swift.min((k + 1) * batchSize, order.count)]
    }

    /// The generator bound while batch `k` is read and collated: seeded from the Philox block
    /// (epoch seed, k), so it depends on nothing but the epoch and the batch number.
    package func generator(forBatch k: Int) -> Generator {
        let b = Philox.block(seed: seed, index: UInt64(k), stream: 0x6461_7461)  // "data"
        return Generator(seed: UInt64(b.0) << 32 | UInt64(b.1))
    }

    /// Reads and collates batch `k` with `gather` (indices to batch).
    package func collateBatch<C>(_ k: Int, with gather: (ArraySlice<Int>) -> C) -> C {
        withGenerator(generator(forBatch: k)) { gather(indices(ofBatch: k)) }
    }
}
