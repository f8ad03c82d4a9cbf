/// PyTorch's CPU generator (the 32-bit Mersenne Twister, MT19937, seeded as `torch.Generator().
/// manual_seed(seed)` seeds it), enough to reproduce `torch.randperm(n, generator:)`.
struct MersenneTwister {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624

    /// PyTorch keeps the low 32 bits of the seed.
    init(seed: UInt64) {
        state[0] = UInt32(truncatingIfNeeded: seed)
        for i in 1..<624 {
            state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i)
        }
    }

    mutating func next() -> UInt32 {
        if index >= 624 {
            for i in 0..<624 {
                let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7fff_ffff)
                state[i] = state[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1) != 0 ? 0x9908_b0df : 0)
            }
            index = 0
        }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9d2c_5680
        y ^= (y << 15) & 0xefc6_0000
        y ^= y >> 18
        return y
    }
}

/// `torch.randperm(n, generator=torch.Generator().manual_seed(seed))`: a Fisher-Yates shuffle
/// drawing `random() % (n - i)` from MT19937, as PyTorch's CPU kernel does.
func pytorchRandperm(_ n: Int, seed: UInt64) -> [Int] {
    var generator = MersenneTwister(seed: seed)
    var r = Array(0..<n)
    guard n > 1 else { return r }
    for i in 0..<(n - 1) {
        let z = Int(UInt64(generator.next()) % UInt64(n - i))
        r.swapAt(i, z + i)
    }
    return r
}

/// Which dataset indices each rank reads in an epoch: equal shards of a (shuffled) permutation.
///
/// With `shuffle`, the epoch's order is a permutation seeded with `seed + epoch` (call
/// ``setEpoch(_:)`` before each epoch, or every epoch repeats the first one's order). Without
/// `dropLast`, indices from the start are repeated to make the total a multiple of
/// `numReplicas`; with it, the tail is dropped. Rank `r` gets every `numReplicas`-th index from
/// position `r`.
///
/// The permutation is PyTorch's, bit for bit: PyTorch draws it with
/// `torch.randperm(count, generator=g.manual_seed(seed + epoch))` from its MT19937 CPU
/// generator, which this type reproduces (checked against PyTorch in
/// `Tools/fixtures/gen_distributed_sampler.py`). Ember's own `Tensor.randperm` draws from Philox
/// and gives a different order, so the sampler does not use it.
///
/// PyTorch parity: `torch.utils.data.DistributedSampler(dataset, num_replicas, rank, shuffle=True,
/// seed=0, drop_last=False)` and `set_epoch`; the same indices for the same arguments.
public struct DistributedSampler: Sendable, Sequence {
    /// The dataset's size.
    public let count: Int
    public let numReplicas: Int
    public let rank: Int
    public let shuffle: Bool
    public let seed: UInt64
    public let dropLast: Bool
    /// The epoch whose order ``indices()`` gives.
    public private(set) var epoch = 0

    /// - Parameters:
    ///   - count: the dataset's size.
    ///   - numReplicas: the world size.
    ///   - rank: this rank, `0..<numReplicas`.
    public init(count: Int, numReplicas: Int, rank: Int, shuffle: Bool = true, seed: UInt64 = 0, dropLast: Bool = false) {
        precondition(count >= 0, "DistributedSampler: count must be non-negative, got \(count)")
        precondition(numReplicas >= 1, "DistributedSampler: num_replicas must be positive, got \(numReplicas)")
        precondition(rank >= 0 && rank < numReplicas,
                     "DistributedSampler: Invalid rank \(rank), rank should be in the interval [0, \(numReplicas - 1)]")
        self.count = count
        self.numReplicas = numReplicas
        self.rank = rank
        self.shuffle = shuffle
        self.seed = seed
        self.dropLast = dropLast
    }

    /// A sampler for this rank of `group`.
    public init(count: Int, group: ProcessGroup, shuffle: Bool = true, seed: UInt64 = 0, dropLast: Bool = false) {
        self.init(count: count, numReplicas: group.worldSize, rank: group.rank, shuffle: shuffle, seed: seed, dropLast: dropLast)
    }

    /// Indices per rank: `ceil(count / numReplicas)`, or with `dropLast` and a remainder,
    /// `ceil((count - numReplicas) / numReplicas)` (PyTorch's `num_samples`).
    public var numSamples: Int {
        if dropLast && count % numReplicas != 0 {
            return Int((Double(count - numReplicas) / Double(numReplicas)).rounded(.up))
        }
        return (count + numReplicas - 1) / numReplicas
    }

    /// `numSamples * numReplicas`.
    public var totalSize: Int { numSamples * numReplicas }

    /// Sets the epoch, so that shuffling draws a new order.
    ///
    /// PyTorch parity: `set_epoch(epoch)`.
    public mutating func setEpoch(_ epoch: Int) { self.epoch = epoch }

    /// This rank's indices for the current epoch.
    public func indices() -> [Int] {
        var all = shuffle ? pytorchRandperm(count, seed: seed &+ UInt64(bitPattern: Int64(epoch))) : Array(0..<count)
        let total = totalSize
        if !dropLast {
            let padding = total - all.count
            if padding > 0 && !all.isEmpty {
                let base = all
                while all.count < total { all.append(contentsOf: base.prefix(total - all.count)) }
            }
        } else {
            all = Array(all.prefix(total))
        }
        return Array(stride(from: rank, to: total, by: numReplicas).map { all[$0] })
    }

    public func makeIterator() -> IndexingIterator<[Int]> { indices().makeIterator() }
}
