import EmberStorage
import Synchronization

/// The Philox4x32-10 counter-based random function (Salmon et al., "Parallel random numbers: as
/// easy as 1, 2, 3", SC 2011): 128 bits of output from a 64-bit key and a 128-bit counter.
///
/// It is a pure function: the same key and counter always give the same four words, on every
/// machine, so any element of a random tensor can be computed independently of the others.
/// Verified against the Random123 known-answer vectors in `RandomTests`.
package enum Philox {
    /// Four 32-bit output words.
    package typealias Block = (UInt32, UInt32, UInt32, UInt32)

    @inline(__always)
    static func mulhilo(_ a: UInt32, _ b: UInt32) -> (hi: UInt32, lo: UInt32) {
        let p = UInt64(a) &* UInt64(b)
        return (UInt32(truncatingIfNeeded: p >> 32), UInt32(truncatingIfNeeded: p))
    }

    /// Ten Philox rounds over `counter` with `key`.
    @inline(__always)
    package static func block(counter: Block, key: (UInt32, UInt32)) -> Block {
        var (c0, c1, c2, c3) = counter
        var (k0, k1) = key
        for round in 0..<10 {
            if round > 0 {
                k0 &+= 0x9E37_79B9
                k1 &+= 0xBB67_AE85
            }
            let (hi0, lo0) = mulhilo(0xD251_1F53, c0)
            let (hi1, lo1) = mulhilo(0xCD9E_8D57, c2)
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
        }
        return (c0, c1, c2, c3)
    }

    /// The blocks `(index + b, stream)` for `b < blocks`, block `b`'s four words at
    /// `out[4 * b ..< 4 * b + 4]`: the same words as ``block(seed:index:stream:)``, computed eight
    /// blocks at a time where the CPU has AVX2.
    package static func fill(seed: UInt64, index: UInt64, stream: UInt64 = 0, blocks: Int,
                             into out: UnsafeMutablePointer<UInt32>) {
        if PhiloxKernel.isAvailable {
            PhiloxKernel.fill(seed: seed, index: index, stream: stream, blocks: blocks, into: out)
            return
        }
        for b in 0..<blocks {
            let w = block(seed: seed, index: index &+ UInt64(b), stream: stream)
            out[4 * b] = w.0; out[4 * b + 1] = w.1; out[4 * b + 2] = w.2; out[4 * b + 3] = w.3
        }
    }

    /// The block for a 64-bit `seed`, a 64-bit block `index` (low half of the counter) and a
    /// 64-bit `stream` (high half; 0 for ordinary draws, >= 1 for rejection-sampling retries).
    @inline(__always)
    package static func block(seed: UInt64, index: UInt64, stream: UInt64 = 0) -> Block {
        block(
            counter: (UInt32(truncatingIfNeeded: index), UInt32(truncatingIfNeeded: index >> 32),
                      UInt32(truncatingIfNeeded: stream), UInt32(truncatingIfNeeded: stream >> 32)),
            key: (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32)))
    }
}

/// A seedable source of random numbers for Ember's random tensors (`uniform`, `normal`,
/// `bernoulli`, `randint`, `randperm`) and for anything else that needs reproducible randomness
/// (weight initialisation, dropout, shuffling).
///
/// It is counter-based (Philox4x32-10): its whole state is a `seed` and an `offset` counting the
/// 128-bit blocks used so far. A draw of `n` values reserves a range of blocks and element `i` of
/// the draw depends only on `(seed, offset, i)`, so the same seed gives the same numbers on every
/// run, on every machine and at any thread count (large draws are filled in parallel chunks).
/// Reading ``state`` and assigning it back later resumes the exact same sequence (checkpoints).
///
/// It is a class because it has identity: two draws from the same generator differ because the
/// first advanced its offset. The state sits behind a `Mutex`, so a generator may be shared
/// between tasks safely; only the *order* in which concurrent tasks draw is then unspecified, so
/// for reproducible concurrent work give each task its own generator (see ``split()``).
///
/// ```swift
/// let g = Generator(seed: 42)
/// let w = Tensor.normal([3, 4], generator: g)
/// let saved = g.state
/// let a = Tensor.uniform([5], generator: g)
/// g.state = saved
/// let b = Tensor.uniform([5], generator: g)   // a == b
/// ```
///
/// PyTorch parity: `torch.Generator` with `manual_seed`, `initial_seed`, `get_state`/`set_state`
/// (as ``manualSeed(_:)``, ``initialSeed``, ``state``). The streams differ from PyTorch's (CPU
/// PyTorch uses mt19937), so the same seed does not give PyTorch's numbers.
///
/// See also: ``withGenerator(_:_:)``, ``Generator/default``.
public final class Generator: Sendable, RandomNumberGenerator {
    /// Everything needed to resume a generator: its seed and how many 128-bit blocks it has used.
    public struct State: Sendable, Hashable, Codable, CustomStringConvertible {
        /// The Philox key.
        public var seed: UInt64
        /// The number of 128-bit Philox blocks consumed so far (the next draw starts here).
        public var offset: UInt64

        public init(seed: UInt64, offset: UInt64) {
            self.seed = seed
            self.offset = offset
        }

        public var description: String { "Generator.State(seed: \(seed), offset: \(offset))" }
    }

    private let current: Mutex<State>

    /// A generator at the start of the stream for `seed`.
    public init(seed: UInt64) {
        current = Mutex(State(seed: seed, offset: 0))
    }

    /// A generator resuming from a saved `state`.
    public init(state: State) {
        current = Mutex(state)
    }

    /// The seed and offset; assign a saved value to resume exactly where it was.
    ///
    /// PyTorch parity: `get_state()` / `set_state()` (a two-number state instead of a byte tensor).
    public var state: State {
        get { current.withLock { $0 } }
        set { current.withLock { $0 = newValue } }
    }

    /// The seed this generator's stream was started from. PyTorch parity: `initial_seed()`.
    public var initialSeed: UInt64 { state.seed }

    /// Restarts the stream for `seed` (offset 0). PyTorch parity: `manual_seed(seed)`.
    public func manualSeed(_ seed: UInt64) {
        state = State(seed: seed, offset: 0)
    }

    /// Atomically reserves `blocks` consecutive Philox blocks and returns the seed and the index
    /// of the first one. Everything random in Ember draws through this.
    package func reserve(blocks: Int) -> (seed: UInt64, start: UInt64) {
        precondition(blocks >= 0, "Generator: negative block count \(blocks)")
        let reserved = current.withLock { s in
            let start = s.offset
            s.offset &+= UInt64(blocks)
            return (s.seed, start)
        }
        if Generator.journalScopes.load(ordering: .relaxed) > 0, let journal = Generator.journal {
            journal.note(self, before: State(seed: reserved.0, offset: reserved.1))
        }
        return reserved
    }

    /// 64 random bits (one block). Lets the generator drive the standard library's random APIs:
    /// `var g = Generator(seed: 1); items.shuffled(using: &g)` (their algorithms belong to the
    /// standard library and may change between Swift versions; prefer `Tensor.randperm` for
    /// shuffles that must stay identical across toolchains).
    public func next() -> UInt64 {
        let (seed, start) = reserve(blocks: 1)
        let b = Philox.block(seed: seed, index: start)
        return UInt64(b.0) << 32 | UInt64(b.1)
    }

    /// A new generator with a seed drawn from this one (which advances by one block): a
    /// deterministic way to hand each worker or task its own independent stream.
    public func split() -> Generator { Generator(seed: next()) }
}

// MARK: - Task-local default

extension Generator {
    /// The generator bound by ``withGenerator(_:_:)`` in the current task, if any.
    @TaskLocal package static var bound: Generator? = nil

    /// The process-wide fallback: seed 0, created on first use.
    private static let process = Generator(seed: 0)

    /// The generator random functions use when none is passed: the one bound by the innermost
    /// ``withGenerator(_:_:)`` in the current task (child tasks inherit it), otherwise a
    /// process-wide generator that starts at seed 0.
    ///
    /// Ember is deterministic by default: a program that never seeds anything draws the same
    /// numbers on every run. The process-wide fallback is shared, so when several tasks draw from
    /// it concurrently the interleaving decides who gets which numbers; wrap such work (and every
    /// test) in `withGenerator(Generator(seed: ...)) { ... }` to make it independent of other code.
    /// `Generator.default.manualSeed(s)` reseeds whichever generator is current.
    ///
    /// PyTorch parity: the default generator behind `torch.rand`/`torch.manual_seed`, except that
    /// PyTorch seeds it from the clock at start-up (non-deterministic) and it is not task-scoped.
    public static var `default`: Generator { bound ?? process }
}

/// Runs `body` with `generator` as ``Generator/default`` for this task and its child tasks.
///
/// PyTorch parity: like `torch.random.fork_rng()` + `torch.manual_seed(...)`, but scoped: nothing
/// leaks out of `body`, and other tasks are not affected.
public func withGenerator<R>(_ generator: Generator, _ body: () throws -> R) rethrows -> R {
    try Generator.$bound.withValue(generator, operation: body)
}

/// Runs the async `body` with `generator` as ``Generator/default`` for this task and its children.
public func withGenerator<R>(
    _ generator: Generator, isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> R
) async rethrows -> R {
    try await Generator.$bound.withValue(generator, operation: body, isolation: isolation)
}

/// The generators a stretch of code drew from and their states before its first draw, so that
/// the same draws can be made again (activation checkpointing replays dropout masks with it).
package final class RandomJournal: @unchecked Sendable {
    private let entries = Mutex<[(generator: Generator, before: Generator.State)]>([])

    package init() {}

    func note(_ generator: Generator, before: Generator.State) {
        entries.withLock { list in
            if !list.contains(where: { $0.generator === generator }) { list.append((generator, before)) }
        }
    }

    /// Sets every generator back to its state before the first draw and returns the states they
    /// had, for ``restore(_:)``.
    package func rewind() -> [(Generator, Generator.State)] {
        entries.withLock { list in
            list.map { entry in
                let now = entry.generator.state
                entry.generator.state = entry.before
                return (entry.generator, now)
            }
        }
    }

    /// Puts generators back to the states ``rewind()`` returned.
    package static func restore(_ states: [(Generator, Generator.State)]) {
        for (generator, state) in states { generator.state = state }
    }
}

extension Generator {
    @TaskLocal static var journal: RandomJournal?
    static let journalScopes = Atomic<Int>(0)

    /// Runs `body`, noting in `journal` every generator it draws from (on this task).
    package static func recording<R>(into journal: RandomJournal, _ body: () throws -> R) rethrows -> R {
        journalScopes.add(1, ordering: .relaxed)
        defer { journalScopes.subtract(1, ordering: .relaxed) }
        return try $journal.withValue(journal, operation: body)
    }
}
