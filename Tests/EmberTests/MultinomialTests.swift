import Ember
import Testing
import _EmberTestSupport

/// `multinomial`: determinism for a seed, the sampled distribution (chi-square with a generous
/// bound), uniqueness without replacement and PyTorch's argument errors. Ember's random stream
/// differs from PyTorch's by design, so there is no PyTorch fixture for the samples.
@Suite struct MultinomialTests {
    @Test func sameSeedSameSamples() {
        let p = Tensor([0.1, 0.2, 0.3, 0.4] as [Double])
        let a = p.multinomial(numSamples: 50, replacement: true, generator: Generator(seed: 7))
        let b = p.multinomial(numSamples: 50, replacement: true, generator: Generator(seed: 7))
        let c = p.multinomial(numSamples: 50, replacement: true, generator: Generator(seed: 8))
        #expect(a.dtype == .int64 && a.shape == [50])
        #expect(a.scalars(as: Int64.self) == b.scalars(as: Int64.self))
        #expect(a.scalars(as: Int64.self) != c.scalars(as: Int64.self))
        // A generator advances between draws; a fresh one with the same seed replays both.
        let g = Generator(seed: 3)
        let first = p.multinomial(numSamples: 50, replacement: true, generator: g)
        let second = p.multinomial(numSamples: 50, replacement: true, generator: g)
        #expect(first.scalars(as: Int64.self) != second.scalars(as: Int64.self))
        let replay = Generator(seed: 3)
        #expect(p.multinomial(numSamples: 50, replacement: true, generator: replay).scalars(as: Int64.self) == first.scalars(as: Int64.self))
        #expect(p.multinomial(numSamples: 50, replacement: true, generator: replay).scalars(as: Int64.self) == second.scalars(as: Int64.self))
    }

    /// Pearson's chi-square statistic of `counts` against `expected` frequencies.
    static func chiSquare(_ counts: [Int], _ probabilities: [Double], total: Int) -> Double {
        zip(counts, probabilities).reduce(0) { acc, cp in
            let e = cp.1 * Double(total)
            return e == 0 ? acc + (cp.0 == 0 ? 0 : .infinity) : acc + (Double(cp.0) - e) * (Double(cp.0) - e) / e
        }
    }

    @Test func withReplacementFollowsTheWeights() {
        // Unnormalised weights with a zero: category 2 must never be drawn.
        let w: [Double] = [1, 3, 0, 6, 10]
        let p = w.map { $0 / 20 }
        let n = 20_000
        let rows = Tensor(w + w.reversed(), shape: [2, 5])
        let s = rows.multinomial(numSamples: n, replacement: true, generator: Generator(seed: 11))
        #expect(s.shape == [2, n])
        let v = s.scalars(as: Int64.self)
        var c0 = [Int](repeating: 0, count: 5), c1 = [Int](repeating: 0, count: 5)
        for k in 0..<n { c0[Int(v[k])] += 1; c1[Int(v[n + k])] += 1 }
        #expect(c0[2] == 0 && c1[2] == 0)
        // 3 degrees of freedom (4 non-zero categories): P(chi2 > 30) is about 1e-6.
        #expect(Self.chiSquare(c0, p, total: n) < 30, "counts \(c0)")
        #expect(Self.chiSquare(c1, p.reversed(), total: n) < 30, "counts \(c1)")
    }

    @Test func withoutReplacementIsSequentialSampling() {
        // First draw follows the weights; the second follows them renormalised without the first.
        let w: [Double] = [1, 2, 3, 4]
        let trials = 6_000
        let batch = Tensor((0..<trials).flatMap { _ in w }, shape: [trials, 4]).to(.float32)
        let s = batch.multinomial(numSamples: 4, generator: Generator(seed: 5)).scalars(as: Int64.self)
        var first = [Int](repeating: 0, count: 4)
        var secondAfter3 = [Int](repeating: 0, count: 4), after3 = 0
        for t in 0..<trials {
            let row = Array(s[(4 * t)..<(4 * t + 4)])
            #expect(Set(row).count == 4, "a row repeats a category: \(row)")
            first[Int(row[0])] += 1
            if row[0] == 3 { after3 += 1; secondAfter3[Int(row[1])] += 1 }
        }
        #expect(Self.chiSquare(first, w.map { $0 / 10 }, total: trials) < 30, "first draws \(first)")
        #expect(Self.chiSquare(secondAfter3, [1.0 / 6, 2.0 / 6, 3.0 / 6, 0], total: after3) < 30, "second draws \(secondAfter3)")
    }

    @Test func withoutReplacementDrawsZeroWeightsLast() {
        let p = Tensor([1, 0, 1, 0] as [Double])
        for seed in 0..<20 {
            let s = p.multinomial(numSamples: 4, generator: Generator(seed: UInt64(seed))).scalars(as: Int64.self)
            #expect(Set(s.prefix(2)) == [0, 2] && Array(s.suffix(2)) == [1, 3])
        }
    }

    @Test func emptyBatch() {
        #expect(Tensor.zeros([0, 3]).multinomial(numSamples: 2, replacement: true).shape == [0, 2])
    }

    @Test func rejectsBadRank() async {
        let r1 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.ones([2, 2, 2]).multinomial(numSamples: 1)
        }
        #expect(standardErrorText(r1).contains("prob_dist must be 1 or 2 dim"))
    }

    @Test func rejectsIntegerInput() async {
        let r2 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor([1, 2] as [Int64]).multinomial(numSamples: 1)
        }
        #expect(standardErrorText(r2).contains("multinomial only supports floating-point dtypes for input, got: Long"))
    }

    @Test func rejectsTooManySamplesWithoutReplacement() async {
        let r3 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor([1.0, 2.0]).multinomial(numSamples: 3)
        }
        #expect(standardErrorText(r3).contains("cannot sample n_sample > prob_dist.size(-1) samples without replacement"))
    }

    @Test func rejectsNonPositiveSampleCount() async {
        let r4 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor([1.0, 2.0]).multinomial(numSamples: 0)
        }
        #expect(standardErrorText(r4).contains("cannot sample n_sample <= 0 samples"))
    }

    @Test func rejectsNegativeOrNaNWeights() async {
        let r5 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor([1.0, -2.0]).multinomial(numSamples: 1)
        }
        #expect(standardErrorText(r5).contains("probability tensor contains either `inf`, `nan` or element < 0"))
        let r6 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor([1.0, .nan]).multinomial(numSamples: 1, replacement: true)
        }
        #expect(standardErrorText(r6).contains("probability tensor contains either `inf`, `nan` or element < 0"))
    }

    @Test func rejectsAllZeroRow() async {
        let r7 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor([1, 1, 0, 0] as [Double], shape: [2, 2]).multinomial(numSamples: 1)
        }
        #expect(standardErrorText(r7).contains("invalid multinomial distribution (sum of probabilities <= 0)"))
    }
}
