import Ember
import Foundation
import Testing

/// A helper object (not a Module) that keeps a weak back-reference to the model it serves.
private final class Helper {
    let parent: WeakModuleReference<Module>
    init(_ parent: Module) { self.parent = WeakModuleReference(parent) }
}

private final class Model: Module {
    let fc = Linear(2, 2)
    var helper: Helper?
}

/// Tests for the automatic mutants that survived the suite (TESTING.md).
@Suite struct MutationSurvivorTests {
    /// A leaf (here a `WeakModuleReference`) inside a non-Module helper is not searched for
    /// hidden modules, so a helper holding a weak back-reference gives no discovery warning.
    @Test func aHelperHoldingAWeakBackReferenceIsNotWarnedAbout() {
        let model = Model()
        model.helper = Helper(model)
        #expect(model.discoveryWarnings().isEmpty, "\(model.discoveryWarnings())")
        #expect(model.namedModules().map(\.0) == ["", "fc"])
    }

    /// AlphaDropout on zeros: kept elements give `b = -a alpha' p`, dropped ones `a alpha' + b`
    /// (`y = a (m x + (1 - m) alpha') + b`); the same seed on ones shows which were kept.
    @Test func alphaDropoutAddsItsShift() {
        let p = 0.5, alpha = -1.7580993408473766
        let a = 1 / ((1 - p) * (1 + p * alpha * alpha)).squareRoot()
        let b = -a * alpha * p
        let layer = AlphaDropout(p)
        let zeros = withGenerator(Generator(seed: 4)) { layer(Tensor.zeros([256])) }.doubles
        let ones = withGenerator(Generator(seed: 4)) { layer(Tensor.ones([256])) }.doubles
        var kept = 0
        for i in 0..<256 {
            let wasKept = abs(ones[i] - zeros[i]) > 1e-6
            kept += wasKept ? 1 : 0
            let expected = wasKept ? b : a * alpha + b
            #expect(abs(zeros[i] - expected) < 1e-5, "element \(i): \(zeros[i]), expected \(expected)")
        }
        #expect(kept > 64 && kept < 192)
    }

    /// The snake-casing rule splits an acronym from a following capitalised word wherever it
    /// stands, also at the end of a name: `QKv` is `Q` + `Kv` in `headQKv` as in `headQKvalue`.
    @Test func acronymBoundaryIsSplitAtTheEndOfANameToo() {
        final class Heads: Module {
            let headQKv = Linear(1, 1)
            let headQKvalue = Linear(1, 1)
            let weightIH = Parameter(Tensor.zeros([1]))
        }
        #expect(Heads().stateDict().keys == ["weight_ih", "head_q_kv.weight", "head_q_kv.bias", "head_q_kvalue.weight", "head_q_kvalue.bias"])
    }

    /// BatchNorm's backward over many channels (its per-channel sums on the heap, after a freed
    /// block of NaNs of about the same size): `dgamma = sum(g xhat)`, `dbeta = sum(g)` per
    /// channel, computed here in float64 from the definition.
    @Test(arguments: [1, 3])
    func batchNormGradientSumsStartFromZero(spatial s: Int) {
        let n = 3, c = 2_000
        let x = Tensor((0..<(n * c * s)).map { Double(($0 * 7919) % 1000) / 100 - 5 }, shape: s == 1 ? [n, c] : [n, c, s])
        let g = Tensor((0..<(n * c * s)).map { Double(($0 * 104_729) % 997) / 500 - 1 }, shape: x.shape)
        let layer = BatchNorm1d(c, dtype: .float64)
        let y = layer(x)
        do { let junk = [Double](repeating: .nan, count: 3 * c + 8); withExtendedLifetime(junk) {} }
        (y * g).sum().backward()
        let xs = x.doubles, gs = g.doubles
        var worst = 0.0
        for ch in 0..<c {
            var values: [Double] = []
            var grads: [Double] = []
            for i in 0..<n { for j in 0..<s { values.append(xs[(i * c + ch) * s + j]); grads.append(gs[(i * c + ch) * s + j]) } }
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
            let invstd = 1 / (variance + 1e-5).squareRoot()
            let dgamma = zip(values, grads).map { ($0 - mean) * invstd * $1 }.reduce(0, +)
            let dbeta = grads.reduce(0, +)
            worst = max(worst, abs(layer.weight!.grad!.doubles[ch] - dgamma), abs(layer.bias!.grad!.doubles[ch] - dbeta))
        }
        #expect(worst < 1e-9, "largest difference \(worst)")
    }

    /// Setting a state-dict entry to nil removes its key, and only an existing one.
    @Test func removingAStateDictEntryRemovesItsKey() {
        var sd: StateDict = ["a": .ones([1]), "b": .zeros([2]), "c": .ones([3])]
        sd["b"] = nil
        #expect(sd.keys == ["a", "c"] && sd.count == 2 && sd.map(\.key) == ["a", "c"])
        sd["missing"] = nil
        #expect(sd.keys == ["a", "c"])
        sd["b"] = .ones([4])
        #expect(sd.keys == ["a", "c", "b"] && sd["b"]?.shape == [4])
    }

    /// Dropout1d takes `[C, L]` and `[N, C, L]`, dropping whole channels, and stops on other ranks
    /// with PyTorch's message.
    @Test func dropout1dTakesTwoAndThreeDimensionalInput() {
        let layer = Dropout1d(0.5)
        let unbatched = withGenerator(Generator(seed: 3)) { layer(Tensor.ones([6, 5])) }.doubles
        let rows = (0..<6).map { Array(unbatched[($0 * 5)..<($0 * 5 + 5)]) }
        #expect(rows.allSatisfy { row in row.allSatisfy { $0 == 0 } || row.allSatisfy { $0 == 2 } })
        #expect(withGenerator(Generator(seed: 3)) { layer(Tensor.ones([2, 6, 5])) }.shape == [2, 6, 5])
    }

    @Test func dropout1dRefusesFourDimensionalInput() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Dropout1d(0.5)(Tensor.ones([2, 3, 4, 5]))
        }
        let text = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(text.contains("dropout1d: Expected 2D or 3D input, but received a 4D input"))
    }

    /// The functional batchNorm checks the running statistics' size itself (a module checks before
    /// calling it, a direct caller gets the same protection).
    @Test func functionalBatchNormRefusesRunningStatisticsOfAnotherSize() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var mean: Tensor? = Tensor.zeros([4]), variance: Tensor? = Tensor.ones([4])
            _ = batchNorm(Tensor.ones([2, 3]), runningMean: &mean, runningVar: &variance, weight: nil, bias: nil,
                          training: false, momentum: 0.1, eps: 1e-5)
        }
        let text = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(text.contains("running_mean should contain 3 elements not 4"))
    }

    /// BatchNorm's float32 `[N, C]` statistics over more than 16 channels (the four-channel loops'
    /// 16-channel blocks), after a freed block of NaNs the size of the statistics: the output and
    /// the running variance follow the definition, computed here in float64.
    @Test func batchNormFloat32StatisticsOverManyChannels() {
        let n = 4, c = 48
        let xs = (0..<(n * c)).map { Double(($0 * 7919) % 1000) / 100 - 5 }
        let layer = BatchNorm1d(c)
        do { let junk = [Double](repeating: .nan, count: 2 * c); withExtendedLifetime(junk) {} }
        let y = layer(Tensor(xs, shape: [n, c]).to(.float32)).doubles
        let runningVar = layer.runningVar!.value.doubles
        var worst = 0.0
        for ch in 0..<c {
            let column = (0..<n).map { xs[$0 * c + ch] }
            let mean = column.reduce(0, +) / Double(n)
            let variance = column.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
            for i in 0..<n { worst = max(worst, abs(y[i * c + ch] - (column[i] - mean) / (variance + 1e-5).squareRoot())) }
            worst = max(worst, abs(runningVar[ch] - (0.9 + 0.1 * variance * Double(n) / Double(n - 1))))
        }
        #expect(worst < 1e-4, "largest difference \(worst)")
    }
}

