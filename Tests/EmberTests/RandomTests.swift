import Ember
import Foundation
import Testing
import _EmberTestSupport

/// Mean and (population) variance of `xs`.
private func moments(_ xs: [Double]) -> (mean: Double, variance: Double) {
    let n = Double(xs.count)
    let mean = xs.reduce(0, +) / n
    let variance = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n
    return (mean, variance)
}

/// What a trapped exit test wrote to standard error (where `precondition` messages go).
func stderrText(_ result: ExitTest.Result?) -> String {
    String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
}

@Suite struct RandomTests {
    // MARK: Philox and the bit-to-number mapping

    /// Known-answer vectors from Random123 (kat_vectors, philox4x32_10).
    @Test func philoxMatchesRandom123KnownAnswers() {
        func hex(_ b: Philox.Block) -> [UInt32] { [b.0, b.1, b.2, b.3] }
        #expect(hex(Philox.block(counter: (0, 0, 0, 0), key: (0, 0)))
                == [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8])
        #expect(hex(Philox.block(counter: (~0, ~0, ~0, ~0), key: (~0, ~0)))
                == [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd])
        #expect(hex(Philox.block(counter: (0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344), key: (0xa409_3822, 0x299f_31d0)))
                == [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1])
        // Seed and 64-bit block index map onto key and counter little-end first.
        #expect(hex(Philox.block(seed: 0x299f_31d0_a409_3822, index: 0x85a3_08d3_243f_6a88, stream: 0x0370_7344_1319_8a2e))
                == [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1])
    }

    /// The first float32 uniforms of seed 0 are the top 24 bits of the first Philox block
    /// (key 0, counter 0) scaled by 2^-24: this pins the stream to the published algorithm.
    @Test func uniformStreamIsPinnedToPhilox() {
        let words: [UInt32] = [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        let expected = words.map { Float($0 >> 8) * 0x1p-24 }
        #expect(Tensor.uniform([4], generator: Generator(seed: 0)).floats == expected)
        let d = Tensor.uniform([2], dtype: .float64, generator: Generator(seed: 0)).doubles
        #expect(d == [Double((UInt64(words[0]) << 32 | UInt64(words[1])) >> 11) * 0x1p-53,
                      Double((UInt64(words[2]) << 32 | UInt64(words[3])) >> 11) * 0x1p-53])
    }

    /// Values for seed 1234, identical to those printed by the independent Python implementation
    /// `Tools/fixtures/check_random_streams.py`. They pin the streams, so that a change to any
    /// draw's layout (which would silently change every seeded run and checkpoint) fails here and
    /// is made on purpose.
    @Test func streamsArePinned() {
        let g = Generator(seed: 1234)
        #expect(Tensor.randint(low: -5, high: 1000, shape: [6], generator: g).scalars(as: Int64.self)
                == pinnedRandint)
        #expect(Tensor.randperm(8, generator: g).scalars(as: Int64.self) == pinnedRandperm)
        // libm's log/cos/sin may differ in the last bit between platforms.
        expectClose(Tensor.normal([5], dtype: .float64, generator: g), Tensor(pinnedNormal), atol: 0, rtol: 1e-15)
        #expect(Tensor.bernoulli([10], p: 0.5, dtype: .bool, generator: g).scalars(as: Bool.self) == pinnedBernoulli)
        #expect(g.state == Generator.State(seed: 1234, offset: 6 + 8 + 3 + 5))
    }

    // MARK: Reproducibility and state

    @Test func sameSeedGivesIdenticalDraws() {
        func draws(_ seed: UInt64) -> [Tensor] {
            let g = Generator(seed: seed)
            return [Tensor.uniform([7, 3], generator: g), Tensor.uniform([5], low: -2, high: 3, dtype: .float64, generator: g),
                    Tensor.normal([9], generator: g), Tensor.normal([4, 2], mean: 1, std: 3, dtype: .float64, generator: g),
                    Tensor.bernoulli([11], p: 0.3, generator: g), Tensor.randint(low: -3, high: 17, shape: [13], generator: g),
                    Tensor.randperm(10, generator: g)]
        }
        let a = draws(99), b = draws(99), c = draws(100)
        for (x, y) in zip(a, b) { expectBitwiseEqual(x, y) }
        for (x, z) in zip(a, c) where x.count > 4 { #expect(x.doubles != z.doubles, "seeds 99 and 100 gave the same \(x.shape) draw") }
    }

    @Test func consecutiveDrawsDifferAndAdvanceTheOffset() {
        let g = Generator(seed: 5)
        let a = Tensor.uniform([10], generator: g)
        #expect(g.state.offset == 3)  // 10 float32 values, 4 per block
        let b = Tensor.uniform([10], generator: g)
        #expect(g.state.offset == 6)
        #expect(a.floats != b.floats)
        _ = Tensor.uniform([0, 4], generator: g)
        #expect(g.state.offset == 6, "an empty draw uses no blocks")
        _ = Tensor.normal([], dtype: .float64, generator: g)
        #expect(g.state.offset == 7, "a 0-d draw uses one block")
    }

    @Test func restoringStateResumesTheSameSequence() {
        let g = Generator(seed: 31)
        _ = Tensor.normal([17], generator: g)
        let saved = g.state
        let first = [Tensor.uniform([6], generator: g), Tensor.randint(high: 50, shape: [9], generator: g),
                     Tensor.normal([3], dtype: .float64, generator: g)]
        g.state = saved
        let again = [Tensor.uniform([6], generator: g), Tensor.randint(high: 50, shape: [9], generator: g),
                     Tensor.normal([3], dtype: .float64, generator: g)]
        let fresh = Generator(state: saved)
        let third = [Tensor.uniform([6], generator: fresh), Tensor.randint(high: 50, shape: [9], generator: fresh),
                     Tensor.normal([3], dtype: .float64, generator: fresh)]
        for i in 0..<3 {
            expectBitwiseEqual(first[i], again[i])
            expectBitwiseEqual(first[i], third[i])
        }
        // State is Codable, for checkpoints.
        let data = try! JSONEncoder().encode(saved)
        #expect(try! JSONDecoder().decode(Generator.State.self, from: data) == saved)
    }

    @Test func manualSeedRestartsTheStream() {
        let g = Generator(seed: 8)
        let a = Tensor.uniform([5], generator: g)
        _ = Tensor.uniform([100], generator: g)
        g.manualSeed(8)
        expectBitwiseEqual(Tensor.uniform([5], generator: g), a)
        #expect(g.initialSeed == 8)
    }

    /// Element i of a draw depends only on (seed, offset, i): a short draw is a prefix of a long
    /// one, and the thread count never changes a value.
    @Test func drawsAreCounterBasedAndThreadCountIndependent() {
        for dtype in [DType.float32, .float64] {
            let long = Tensor.normal([1000], dtype: dtype, generator: Generator(seed: 3))
            let short = Tensor.normal([37], dtype: dtype, generator: Generator(seed: 3))
            #expect(Array(long.doubles.prefix(37)) == short.doubles)
        }
        let n = 300_000
        let one = Threading.withThreads(1) {
            let g = Generator(seed: 11)
            return [Tensor.uniform([n], generator: g), Tensor.normal([n], dtype: .float64, generator: g),
                    Tensor.bernoulli([n], p: 0.25, generator: g), Tensor.randint(high: 7, shape: [n / 10], generator: g)]
        }
        let many = Threading.withThreads(4) {
            let g = Generator(seed: 11)
            return [Tensor.uniform([n], generator: g), Tensor.normal([n], dtype: .float64, generator: g),
                    Tensor.bernoulli([n], p: 0.25, generator: g), Tensor.randint(high: 7, shape: [n / 10], generator: g)]
        }
        for (a, b) in zip(one, many) { expectBitwiseEqual(a, b) }
    }

    // MARK: Default generator

    @Test func withGeneratorBindsTheTaskDefault() {
        let viaScope = withGenerator(Generator(seed: 21)) {
            (Tensor.uniform([4]), Tensor.normal([3]), Tensor.randperm(6))
        }
        let g = Generator(seed: 21)
        expectBitwiseEqual(viaScope.0, Tensor.uniform([4], generator: g))
        expectBitwiseEqual(viaScope.1, Tensor.normal([3], generator: g))
        expectBitwiseEqual(viaScope.2, Tensor.randperm(6, generator: g))
    }

    @Test func withGeneratorNestsAndRestores() {
        let outer = Generator(seed: 1), inner = Generator(seed: 2)
        withGenerator(outer) {
            #expect(Generator.default === outer)
            withGenerator(inner) { #expect(Generator.default === inner) }
            #expect(Generator.default === outer)
        }
        #expect(Generator.default !== outer)
        #expect(Generator.default === Generator.default, "the fallback is one process-wide generator")
    }

    @Test func childTasksInheritTheGenerator() async {
        let g = Generator(seed: 77)
        let fromChild = await withGenerator(g) {
            await Task { Generator.default === g }.value
        }
        #expect(fromChild)
    }

    @Test func splitIsDeterministicAndIndependent() {
        let a = Generator(seed: 4), b = Generator(seed: 4)
        let a1 = a.split(), b1 = b.split()
        #expect(a1.state == b1.state)
        #expect(a1.initialSeed != 4)
        #expect(a.state.offset == 1)
        var rng = Generator(seed: 9)
        var rng2 = Generator(seed: 9)
        #expect(Array(0..<20).shuffled(using: &rng) == Array(0..<20).shuffled(using: &rng2))
    }

    // MARK: Statistics (bounds chosen so a correct implementation fails with probability < 1e-8)

    @Test(arguments: [DType.float32, .float64])
    func uniformMomentsAndRange(_ dtype: DType) {
        let n = 100_000
        let x = Tensor.uniform([n], dtype: dtype, generator: Generator(seed: 1)).doubles
        #expect(x.min()! >= 0 && x.max()! < 1)
        let (m, v) = moments(x)
        // mean: sigma = sqrt(1/12 / n); variance: sigma = sqrt((1/80 - 1/144) / n). 6 sigma each.
        #expect(abs(m - 0.5) < 6 * (1.0 / 12 / Double(n)).squareRoot())
        #expect(abs(v - 1.0 / 12) < 6 * ((1.0 / 80 - 1.0 / 144) / Double(n)).squareRoot())
        // Values are exact multiples of the resolution (24 or 53 bits).
        let scale = dtype == .float32 ? 0x1p24 : 0x1p53
        #expect(x.prefix(100).allSatisfy { ($0 * scale).rounded() == $0 * scale })

        let y = Tensor.uniform([n], low: -3, high: 5, dtype: dtype, generator: Generator(seed: 2)).doubles
        #expect(y.min()! >= -3 && y.max()! < 5)
        let (my, vy) = moments(y)
        #expect(abs(my - 1) < 6 * (64.0 / 12 / Double(n)).squareRoot())
        #expect(abs(vy - 64.0 / 12) < 6 * 64 * ((1.0 / 80 - 1.0 / 144) / Double(n)).squareRoot())
    }

    @Test func uniformNeverReturnsHighAfterRounding() {
        // A range so narrow that low + width * u rounds up to high for most u in float32.
        let low = 1.0, high = Double(Float(1).nextUp)
        let x = Tensor.uniform([1000], low: low, high: high, generator: Generator(seed: 3)).floats
        #expect(x.allSatisfy { $0 == 1 })
        #expect(Tensor.uniform([5], low: 2, high: 2, generator: Generator(seed: 3)).floats == [2, 2, 2, 2, 2])
    }

    @Test(arguments: [DType.float32, .float64])
    func normalMoments(_ dtype: DType) {
        let n = 100_000
        let x = Tensor.normal([n], dtype: dtype, generator: Generator(seed: 1)).doubles
        let (m, v) = moments(x)
        #expect(abs(m) < 6 / Double(n).squareRoot())
        #expect(abs(v - 1) < 6 * (2 / Double(n)).squareRoot())
        // Shape of the distribution: P(|z| < 1) = 0.682689..., binomial sigma.
        let inside = Double(x.filter { abs($0) < 1 }.count) / Double(n)
        #expect(abs(inside - 0.682689492) < 6 * (0.6827 * 0.3173 / Double(n)).squareRoot())
        // Even and odd positions (the two halves of Box-Muller pairs) are each standard normal.
        let odd = stride(from: 1, to: n, by: 2).map { x[$0] }
        #expect(abs(moments(odd).variance - 1) < 6 * (2 / Double(n / 2)).squareRoot())

        let y = Tensor.normal([n], mean: 3, std: 2, dtype: dtype, generator: Generator(seed: 2)).doubles
        let (my, vy) = moments(y)
        #expect(abs(my - 3) < 6 * 2 / Double(n).squareRoot())
        #expect(abs(vy - 4) < 6 * 4 * (2 / Double(n)).squareRoot())
        #expect(Tensor.normal([4], mean: 1.5, std: 0, generator: Generator(seed: 2)).floats == [1.5, 1.5, 1.5, 1.5])
    }

    @Test(arguments: [0.0, 0.1, 0.5, 0.9, 1.0])
    func bernoulliKeepsTheRightFraction(_ p: Double) {
        let n = 100_000
        let mask = Tensor.bernoulli([n], p: p, dtype: .bool, generator: Generator(seed: 6))
        #expect(mask.dtype == .bool)
        let kept = Double(mask.scalars(as: Bool.self).filter { $0 }.count)
        #expect(abs(kept - p * Double(n)) <= 5 * (Double(n) * p * (1 - p)).squareRoot())
        let f = Tensor.bernoulli([3, 7], p: p, generator: Generator(seed: 6))
        #expect(f.dtype == .float32 && f.shape == [3, 7])
        #expect(f.floats.allSatisfy { $0 == 0 || $0 == 1 })
    }

    @Test func bernoulliWithPerElementProbabilities() {
        let n = 50_000
        // Alternating probabilities 0.2 / 0.8 / 0 / 1.
        let probs = Tensor((0..<n).map { [0.2, 0.8, 0, 1][$0 % 4] } as [Double])
        let draw = Tensor.bernoulli(probs, generator: Generator(seed: 12))
        #expect(draw.dtype == .float64 && draw.shape == probs.shape)
        let v = draw.doubles
        for (k, p) in [0.2, 0.8, 0.0, 1.0].enumerated() {
            let sub = stride(from: k, to: n, by: 4).map { v[$0] }
            let kept = sub.reduce(0, +)
            #expect(abs(kept - p * Double(sub.count)) <= 5 * (Double(sub.count) * p * (1 - p)).squareRoot(),
                    "probability \(p)")
        }
        let mask = Tensor.bernoulli(Tensor([0.0, 1.0] as [Float]), dtype: .bool, generator: Generator(seed: 1))
        #expect(mask.scalars(as: Bool.self) == [false, true])
    }

    @Test func randintCoversItsRangeAndNeverLeavesIt() {
        let n = 60_000
        let x = Tensor.randint(low: -3, high: 7, shape: [n], generator: Generator(seed: 4))
        #expect(x.dtype == .int64)
        let v = x.scalars(as: Int64.self)
        var counts = [Int: Int]()
        for e in v { counts[Int(e), default: 0] += 1 }
        #expect(Set(counts.keys) == Set(-3..<7))
        let expected = Double(n) / 10, sigma = (Double(n) * 0.1 * 0.9).squareRoot()
        for (value, c) in counts { #expect(abs(Double(c) - expected) < 6 * sigma, "value \(value) drawn \(c) times") }
        #expect(Tensor.randint(low: 5, high: 6, shape: [4], generator: Generator(seed: 1)).scalars(as: Int64.self) == [5, 5, 5, 5])
        let f = Tensor.randint(high: 3, shape: [2, 2], dtype: .float32, generator: Generator(seed: 1))
        #expect(f.dtype == .float32 && f.floats.allSatisfy { [0, 1, 2].contains($0) })
    }

    /// Ranges near 2^63 reject about half of all raw draws: exercises the retry streams and the
    /// full int64 span.
    @Test func randintHandlesHugeRanges() {
        let n = 20_000
        // bound = 2^63 + 1: rejection probability ~ 1/2 per raw draw.
        let low = -(1 << 62), high = (1 << 62) + 1
        let v = Tensor.randint(low: low, high: high, shape: [n], generator: Generator(seed: 2)).scalars(as: Int64.self)
        #expect(v.allSatisfy { $0 >= low && $0 < high })
        let mean = v.reduce(0.0) { $0 + Double($1) } / Double(n)
        let sd = (Double(high) - Double(low)) / 12.squareRoot()
        #expect(abs(mean) < 6 * sd / Double(n).squareRoot())
        // The full int64 span.
        let w = Tensor.randint(low: Int.min, high: Int.max, shape: [1000], generator: Generator(seed: 3)).scalars(as: Int64.self)
        #expect(w.allSatisfy { $0 < Int64.max })
        #expect(w.contains { $0 < 0 } && w.contains { $0 > 0 })
        // Direct check of the bounded sampler.
        for bound: UInt64 in [1, 2, 3, 7, 1 << 32 + 1, (1 << 63) + 1, .max] {
            for i in 0..<200 { #expect(RandomBits.bounded(bound, seed: 1, index: UInt64(i)) < bound) }
        }
    }

    @Test func randpermIsAPermutation() {
        for n in [0, 1, 2, 5, 1000] {
            let p = Tensor.randperm(n, generator: Generator(seed: UInt64(n)))
            #expect(p.dtype == .int64 && p.shape == [n])
            #expect(p.scalars(as: Int64.self).sorted() == (0..<Int64(n)).map { $0 })
        }
        #expect(Tensor.randperm(4, dtype: .float64, generator: Generator(seed: 1)).doubles.sorted() == [0, 1, 2, 3])
        // Every element lands in position 0 about equally often.
        let g = Generator(seed: 10)
        let trials = 20_000
        var first = [Int64: Int]()
        for _ in 0..<trials { first[Tensor.randperm(5, generator: g).scalars(as: Int64.self)[0], default: 0] += 1 }
        let sigma = (Double(trials) * 0.2 * 0.8).squareRoot()
        #expect(first.count == 5)
        for (k, c) in first { #expect(abs(Double(c) - Double(trials) / 5) < 6 * sigma, "\(k) first \(c) times") }
    }

    @Test func likeVariantsFollowTheTemplate() {
        let t = Tensor.zeros([2, 3], dtype: .float64)
        let u = t.uniformLike(generator: Generator(seed: 1))
        #expect(u.shape == [2, 3] && u.dtype == .float64)
        expectBitwiseEqual(u, Tensor.uniform([2, 3], dtype: .float64, generator: Generator(seed: 1)))
        let z = t.normalLike(dtype: .float32, generator: Generator(seed: 1))
        #expect(z.shape == [2, 3] && z.dtype == .float32)
    }

    // MARK: Errors (PyTorch's texts)

    @Test func invalidArgumentsStopWithPyTorchsMessages() async {
        var r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.randint(low: 5, high: 5, shape: [3])
        }
        #expect(stderrText(r).contains("random_ expects 'from' to be less than 'to', but got from=5 >= to=5"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.uniform([3], low: 1, high: 0)
        }
        #expect(stderrText(r).contains("uniform_ expects to return a [from, to) range, but found from=1.0 > to=0.0"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.uniform([3], dtype: .int64)
        }
        #expect(stderrText(r).contains("\"check_uniform_bounds\" not implemented for 'torch.int64'"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.normal([3], std: -1)
        }
        #expect(stderrText(r).contains("normal expects std >= 0.0, but found std -1.0"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.bernoulli([3], p: 1.5)
        }
        #expect(stderrText(r).contains("bernoulli_ expects p to be in [0, 1], but got p=1.5"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.bernoulli(Tensor([0.5, 2] as [Float]))
        }
        #expect(stderrText(r).contains("Expected p_in >= 0 && p_in <= 1 to be true, but got false"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.randperm(-1)
        }
        #expect(stderrText(r).contains("Trying to create tensor with negative dimension -1: [-1]"))
    }
}

// Pinned stream values (see `streamsArePinned`).
private let pinnedRandint: [Int64] = [122, 618, 245, 710, 76, 788]
private let pinnedRandperm: [Int64] = [5, 2, 7, 4, 6, 3, 0, 1]
private let pinnedNormal: [Double] = [
    -1.0769280769486336, 0.1317616927913088, -0.336871155159883, 0.14609020650275634, -1.3466221699014436,
]
private let pinnedBernoulli = [true, true, true, false, false, true, false, false, false, false]
