import Ember
import Foundation
import Synchronization
import Testing
import _EmberTestSupport

/// Tests for the automatic mutants that survived run 5c of the mutation check (TESTING.md,
/// "Run 5c"): each fails on its mutant, applied by hand to the sources.
@Suite struct MutationSurvivorRun5cTests {
    /// The functional batchNorm refuses eps 0 in training (the batch variance may be 0, and
    /// PyTorch's CPU kernel refuses it too), with the message naming the value.
    @Test func functionalBatchNormRefusesZeroEpsInTraining() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var mean: Tensor? = nil, variance: Tensor? = nil
            _ = batchNorm(Tensor([1, 2, 3, 5] as [Float], shape: [2, 2]), runningMean: &mean, runningVar: &variance,
                          weight: nil, bias: nil, training: true, momentum: 0.1, eps: 0)
        }
        #expect(standardErrorText(result).contains("batch_norm: batch_norm eps must be positive during training, but got 0.0"))
    }

    /// eps 0 is allowed in evaluation (only training refuses it): the running statistics normalise
    /// exactly, `(x - mean) / sqrt(var)`, in the function and in the module.
    @Test func batchNormTakesZeroEpsInEvaluation() {
        var mean: Tensor? = Tensor([1, -2] as [Float]), variance: Tensor? = Tensor([4, 0.25] as [Float])
        let x = Tensor([3, -1, 5, -3] as [Float], shape: [2, 2])
        let y = batchNorm(x, runningMean: &mean, runningVar: &variance, weight: nil, bias: nil,
                          training: false, momentum: 0.1, eps: 0)
        #expect(y.floats == [1, 2, 2, -2])
        let layer = BatchNorm1d(2, eps: 0)
        layer.runningMean!.value = Tensor([1, -2] as [Float])
        layer.runningVar!.value = Tensor([4, 0.25] as [Float])
        layer.eval()
        #expect(layer(x).floats == [1, 2, 2, -2])
    }

    /// The functional batchNorm checks the weight's size itself (a weight with one element too
    /// many would otherwise be read in part, silently).
    @Test func functionalBatchNormRefusesAWeightOfAnotherSize() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var mean: Tensor? = nil, variance: Tensor? = nil
            _ = batchNorm(Tensor([1, 2, 3, 5, 8, 13] as [Float], shape: [2, 3]), runningMean: &mean, runningVar: &variance,
                          weight: Tensor.ones([4]), bias: nil, training: true, momentum: 0.1, eps: 1e-5)
        }
        #expect(standardErrorText(result).contains("batch_norm: weight should contain 3 elements not 4 (input shape [2, 3])"))
    }

    /// Dropout2d takes unbatched `[C, H, W]` input and drops whole channels of it.
    @Test func dropout2dTakesUnbatchedThreeDimensionalInput() {
        let y = withGenerator(Generator(seed: 5)) { Dropout2d(0.5)(Tensor.ones([16, 3, 2])) }
        #expect(y.shape == [16, 3, 2])
        let v = y.floats
        var kept = 0
        for c in 0..<16 {
            let channel = Set(v[(c * 6)..<(c * 6 + 6)])
            #expect(channel == [0] || channel == [2], "channel \(c) is all dropped or all kept: \(channel)")
            kept += channel == [2] ? 1 : 0
        }
        #expect(kept > 0 && kept < 16)
    }

    /// A dropout of `n` elements advances its generator by `ceil(n / 4)` Philox blocks (four
    /// 32-bit words a block), as documented: the next draw continues right after it.
    @Test(arguments: [1, 3, 4, 5, 8, 1_000, 1_024, 1_025])
    func elementwiseDropoutAdvancesTheGeneratorByCeilNOverFourBlocks(n: Int) {
        for dtype in [DType.float32, .float64] {
            let g = Generator(seed: 11)
            _ = dropout(Tensor.ones([n], dtype: dtype), p: 0.5, training: true, generator: g)
            #expect(g.state == Generator.State(seed: 11, offset: UInt64((n + 3) / 4)), "n = \(n), \(dtype)")
        }
    }

    /// Channel dropout (a mask shape other than the input's) in float64 scales the kept elements
    /// by `1 / (1 - p)`, computed in float64.
    @Test func float64ChannelDropoutScalesKeptElementsByOneOverOneMinusP() {
        let p = 0.25
        let x = Tensor((0..<(4 * 8 * 3)).map { Double($0 % 7) + 0.5 }, shape: [4, 8, 3])
        let y = dropout(x, p: p, training: true, maskShape: [4, 8, 1], generator: Generator(seed: 3))
        #expect(y.dtype == .float64)
        let xs = x.doubles, ys = y.doubles
        var kept = 0
        for row in 0..<32 {
            let wasKept = ys[row * 3] != 0
            kept += wasKept ? 1 : 0
            for j in 0..<3 {
                let i = row * 3 + j
                #expect(ys[i] == (wasKept ? xs[i] * (1 / (1 - p)) : 0), "element \(i): \(ys[i]) for x = \(xs[i])")
            }
        }
        #expect(kept > 0 && kept < 32)
        let z = withGenerator(Generator(seed: 3)) { Dropout2d(p)(Tensor.ones([2, 16, 2, 2], dtype: .float64)) }.doubles
        #expect(Set(z) == [0, 1 / (1 - p)])
    }

    /// The functional dropout checks its probability in both modes, with PyTorch's message (the
    /// modules check theirs when built; `F.dropout` raises also with `training=False`).
    @Test func functionalDropoutRefusesAProbabilityAboveOne() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = dropout(Tensor.ones([4]), p: 1.5, training: false)
        }
        #expect(standardErrorText(result).contains("dropout: dropout probability has to be between 0 and 1, but got 1.5"))
    }

    /// `p = 0` in training returns the input itself and draws no random numbers (PyTorch returns
    /// the input for `p == 0`), for the function and for the module.
    @Test func dropoutWithZeroProbabilityDrawsNothing() {
        let x = Tensor.normal([5, 7])
        let g = Generator(seed: 8)
        let y = dropout(x, p: 0, training: true, generator: g)
        expectBitwiseEqual(y, x)
        #expect(g.state == Generator.State(seed: 8, offset: 0), "p = 0 draws no random numbers")
        let layer = Dropout(0, generator: g)
        layer.train()
        expectBitwiseEqual(layer(x), x)
        #expect(g.state == Generator.State(seed: 8, offset: 0))
        // An integer input is returned too (the kernels take only floats).
        let ints = Tensor([1, 2, 3])
        #expect(dropout(ints, p: 0, training: true, generator: g).scalars(as: Int64.self) == [1, 2, 3])
    }

    /// `parameterCount` is the number of parameter elements, exactly.
    @Test func parameterCountIsTheNumberOfParameterElements() {
        #expect(Linear(3, 2).parameterCount == 8)
        #expect(ReLU().parameterCount == 0)
        #expect(Sequential(Linear(3, 2), ReLU(), Linear(2, 1, bias: false)).parameterCount == 10)
    }

    /// The summary pads every column but the last to its width, so each column starts at its
    /// header's offset on every row, whatever the widths of the parameter counts.
    @Test func summaryColumnsLineUpUnderTheirHeaders() {
        let model = Sequential(Linear(3, 2), ReLU(), Linear(2, 100))
        let lines = model.summary().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let header = lines[0]
        func column(_ name: String) -> Int { header.distance(from: header.startIndex, to: header.range(of: name)!.lowerBound) }
        let params = column("params"), shapes = column("shapes")
        #expect(header.hasSuffix("shapes"), "the last column is not padded: \(header)")
        let entries = model.listing()
        #expect(entries.map(\.parameterCount) == [0, 8, 0, 300])
        for (line, entry) in zip(lines[2...], entries) {
            let count = String(entry.parameterCount)
            #expect(String(line.dropFirst(params).prefix(shapes - params)) == count.padding(toLength: shapes - params, withPad: " ", startingAt: 0),
                    "\(line)")
            #expect(String(line.dropFirst(shapes)) == entry.shapes.joined(separator: ", "), "\(line)")
        }
    }

    /// Batch normalization of `[N, C, 2]` input (two positions per channel, the general loop, not
    /// the one-position `[N, C]` loops) follows the definition in both dtypes.
    @Test(arguments: [DType.float32, .float64])
    func batchNormOfTwoPositionsPerChannelFollowsTheDefinition(dtype: DType) {
        let n = 4, c = 5, s = 2
        let values = (0..<(n * c * s)).map { Double(($0 * 37) % 23) / 4 - 2 }
        let x = Tensor(values, shape: [n, c, s]).to(dtype)
        let layer = BatchNorm1d(c, dtype: dtype)
        let y = layer(x).doubles
        let xs = x.doubles
        for ch in 0..<c {
            var group: [Double] = []
            for i in 0..<n { for j in 0..<s { group.append(xs[(i * c + ch) * s + j]) } }
            let mean = group.reduce(0, +) / Double(group.count)
            let variance = group.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(group.count)
            for i in 0..<n {
                for j in 0..<s {
                    let k = (i * c + ch) * s + j
                    let expected = (xs[k] - mean) / (variance + 1e-5).squareRoot()
                    #expect(abs(y[k] - expected) < 1e-5, "element \(k): \(y[k]), expected \(expected)")
                }
            }
        }
        layer.eval()
        let e = layer(x).doubles, rm = layer.runningMean!.value.doubles, rv = layer.runningVar!.value.doubles
        for k in 0..<(n * c * s) {
            let ch = (k / s) % c
            let expected = (xs[k] - rm[ch]) / (rv[ch] + 1e-5).squareRoot()
            #expect(abs(e[k] - expected) < 1e-5, "eval element \(k): \(e[k]), expected \(expected)")
        }
    }

    /// One sample of one channel, `[1, 1, L]`: all `L` positions are that channel's values (the
    /// positions per channel are `count / (N C)` also when `N C = 1`), in training and in eval.
    @Test(arguments: [DType.float32, .float64])
    func batchNormOfOneSampleOfOneChannelUsesEveryPosition(dtype: DType) {
        let values: [Double] = [3, -1, 4, 1, -5, 9]
        let x = Tensor(values, shape: [1, 1, 6]).to(dtype)
        let mean = values.reduce(0, +) / 6
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 6
        let layer = BatchNorm1d(1, momentum: 1, dtype: dtype)
        let y = layer(x).doubles
        #expect(y.count == 6)
        for k in 0..<6 {
            let expected = (values[k] - mean) / (variance + 1e-5).squareRoot()
            #expect(abs(y[k] - expected) < 1e-5, "element \(k): \(y[k]), expected \(expected)")
        }
        #expect(abs(layer.runningMean!.value.doubles[0] - mean) < 1e-6)
        #expect(abs(layer.runningVar!.value.doubles[0] - variance * 6 / 5) < 1e-5, "the unbiased variance over 6 values")
        layer.eval()
        let e = layer(x).doubles
        for k in 0..<6 {
            let expected = (values[k] - mean) / (variance * 6 / 5 + 1e-5).squareRoot()
            #expect(abs(e[k] - expected) < 1e-5, "eval element \(k): \(e[k]), expected \(expected)")
        }
        #expect(BatchNorm1d(1, dtype: dtype)(Tensor([1, 2] as [Double], shape: [1, 1, 2]).to(dtype)).shape == [1, 1, 2],
                "two values of the one channel are enough to train")
    }

    /// Hyperparameters print as Python's `repr` does: shortest round-trip digits (`%g`'s six
    /// significant digits only below 1e-4, where Python writes `1e-05`).
    @Test func hyperparametersPrintWithPythonsDigits() {
        #expect(BatchNorm1d(3, eps: 0.001, momentum: 1.0 / 3).extraDescription
            == "3, eps=0.001, momentum=0.3333333333333333, affine=True, track_running_stats=True")
        #expect(LayerNorm([4], eps: 0.0012345678).extraDescription == "(4,), eps=0.0012345678, elementwise_affine=True")
        #expect(BatchNorm1d(3, eps: 1e-5).extraDescription.contains("eps=1e-05"))
    }

    /// BatchNorm's float32 `[N, C]` gradients over more than 16 channels (the four-channel loops'
    /// 16-channel blocks, then the remainder): `dgamma`, `dbeta` and `dx` equal the float64
    /// layer's on the same values.
    @Test func batchNormFloat32GradientsOverManyChannels() throws {
        let n = 5, c = 51
        let xs = (0..<(n * c)).map { Double(($0 * 7919) % 1000) / 100 - 5 }
        let gs = (0..<(n * c)).map { Double(($0 * 104_729) % 997) / 500 - 1 }
        func gradients(_ dtype: DType) throws -> (dx: [Double], dw: [Double], db: [Double]) {
            let layer = BatchNorm1d(c, dtype: dtype)
            layer.weight!.value = Tensor((0..<c).map { 0.5 + Double($0 % 7) / 4 }, shape: [c]).to(dtype)
            let x = Tensor(xs, shape: [n, c]).to(dtype).requiringGrad()
            (layer(x) * Tensor(gs, shape: [n, c]).to(dtype)).sum().backward()
            return (try #require(x.grad).doubles, try #require(layer.weight!.grad).doubles, try #require(layer.bias!.grad).doubles)
        }
        let single = try gradients(.float32), double = try gradients(.float64)
        func worst(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }.max()! }
        #expect(worst(single.dw, double.dw) < 1e-4, "dgamma")
        #expect(worst(single.db, double.db) < 1e-4, "dbeta")
        #expect(worst(single.dx, double.dx) < 1e-4, "dx")
    }

    /// The training-mode-without-grad report leaves out the whole subtree of a pinned module, not
    /// only the pinned module: an unpinned Dropout beside a pinned block is named alone, not the
    /// Dropout inside the block.
    @Test func forgottenEvalReportLeavesOutThePinnedSubtree() {
        let model = Sequential(Linear(3, 4), Dropout(0.5), Sequential(Linear(4, 4), Dropout(0.5)).pin(.training))
        _ = model.parameters()  // as an optimizer would: every module learns its root and path
        let reports = Mutex<[Diagnostic]>([])
        withDiagnosticsHandler({ d in reports.withLock { $0.append(d) } }) {
            _ = withGenerator(Generator(seed: 2)) { withNoGrad { model(Tensor.ones([2, 3])) } }
        }
        let all = reports.withLock { $0 }
        #expect(all.map(\.kind) == [.forgottenEval])
        #expect(all.first?.modules == ["1"], "\(all.map(\.message))")
    }
}
