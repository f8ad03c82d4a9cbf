import Ember
import Foundation
import Testing
import _EmberTestSupport

/// One PyTorch loss computation from `Tools/fixtures/gen_losses.py`.
struct LossCase: Decodable, CustomTestStringConvertible, Sendable {
    var name: String
    var fn: String
    var input: String
    var target: String
    var weight: String?
    var posWeight: String?
    var up: String?
    var reduction: String?
    var ignoreIndex: Int?
    var labelSmoothing: Double?
    var beta: Double?
    var delta: Double?
    var logTarget: Bool?
    var targetGrad: Bool?
    var dtype: String?

    var testDescription: String { name }
    var reductionValue: Reduction { Reduction(rawValue: reduction ?? "mean")! }
    var isFloat64: Bool { dtype == "float64" }

    static let all: [LossCase] = {
        let fx = try! Fixture("losses")
        return try! JSONDecoder().decode([LossCase].self, from: Data(fx.metadata["cases"]!.utf8))
    }()
    static let crossEntropyCases = all.filter { $0.fn == "crossEntropy" }

    /// Ember's loss for this case (`path` only matters for cross entropy).
    func evaluate(_ x: Tensor, _ y: Tensor, _ fx: Fixture, path: CrossEntropyPath = .automatic) -> Tensor {
        let w = weight.map { fx[$0] }, red = reductionValue
        switch fn {
        case "crossEntropy":
            if path == .automatic {
                return crossEntropy(x, target: y, weight: w, ignoreIndex: ignoreIndex ?? -100, reduction: red,
                                    labelSmoothing: labelSmoothing ?? 0)
            }
            return crossEntropy(x, y, w, ignoreIndex ?? -100, red, labelSmoothing ?? 0, op: "crossEntropy", path: path)
        case "nllLoss": return nllLoss(x, target: y, weight: w, ignoreIndex: ignoreIndex ?? -100, reduction: red)
        case "mseLoss": return mseLoss(x, target: y, reduction: red)
        case "l1Loss": return l1Loss(x, target: y, reduction: red)
        case "smoothL1Loss": return smoothL1Loss(x, target: y, reduction: red, beta: beta ?? 1)
        case "huberLoss": return huberLoss(x, target: y, reduction: red, delta: delta ?? 1)
        case "binaryCrossEntropy": return binaryCrossEntropy(x, target: y, weight: w, reduction: red)
        case "binaryCrossEntropyWithLogits":
            return binaryCrossEntropyWithLogits(x, target: y, weight: w, reduction: red, posWeight: posWeight.map { fx[$0] })
        case "klDiv": return klDiv(x, target: y, reduction: red, logTarget: logTarget ?? false)
        default: preconditionFailure("unknown loss \(fn)")
        }
    }

    /// PyTorch's loss, input gradient and target gradient, split out of the flat result tensor.
    func expected(_ fx: Fixture) -> (loss: Tensor, dInput: Tensor, dTarget: Tensor?) {
        let flat = fx["r/\(name)"]
        let lossShape: Shape = up.map { fx[$0].shape } ?? []
        let x = fx[input], y = fx[target]
        let nl = lossShape.elementCount
        let loss = flat.sliced(axis: 0, start: 0, end: nl).reshaped(lossShape)
        let dx = flat.sliced(axis: 0, start: nl, end: nl + x.count).reshaped(x.shape)
        let dy = targetGrad == true ? flat.sliced(axis: 0, start: nl + x.count, end: nl + x.count + y.count).reshaped(y.shape) : nil
        #expect(flat.count == nl + x.count + (dy?.count ?? 0), "\(name): result tensor has \(flat.count) values")
        return (loss, dx, dy)
    }

    /// Runs the case in Ember: loss, input gradient and (when PyTorch has one) target gradient.
    func run(_ fx: Fixture, path: CrossEntropyPath = .automatic) -> (loss: Tensor, dInput: Tensor?, dTarget: Tensor?) {
        let x = fx[input].requiringGrad()
        let y = targetGrad == true ? fx[target].requiringGrad() : fx[target]
        let loss = evaluate(x, y, fx, path: path)
        if let up { (loss * fx[up]).sum().backward() } else { loss.backward() }
        return (loss, x.grad, targetGrad == true ? y.grad : nil)
    }

    var tolerance: (atol: Double, rtol: Double) { isFloat64 ? (1e-12, 1e-10) : (3e-6, 2e-5) }
}

/// Every loss and option combination against PyTorch: values, input gradients and target
/// gradients (float32, and float64 for a subset).
@Suite struct LossFixtureTests {
    let fx = try! Fixture("losses")

    @Test func fixtureCoversEveryLossAndOption() {
        let cases = LossCase.all
        let fns = Set(cases.map(\.fn))
        #expect(fns == ["crossEntropy", "nllLoss", "mseLoss", "l1Loss", "smoothL1Loss", "huberLoss", "binaryCrossEntropy",
                        "binaryCrossEntropyWithLogits", "klDiv"])
        for fn in fns {
            let reductions = Set(cases.filter { $0.fn == fn }.map(\.reductionValue))
            #expect(reductions.isSuperset(of: [.none, .mean, .sum]), "\(fn) reductions \(reductions)")
            #expect(cases.contains { $0.fn == fn && $0.isFloat64 }, "\(fn) has no float64 case")
        }
        #expect(cases.contains { $0.fn == "klDiv" && $0.reductionValue == .batchMean })
        let ce = LossCase.crossEntropyCases
        // weights x ignoreIndex x labelSmoothing x reduction, for every input rank
        for rank in 1...4 {
            let ofRank = ce.filter { fx[$0.input].rank == rank && fx[$0.target].dtype == .int64 }
            #expect(Set(ofRank.map { "\($0.weight != nil)/\($0.ignoreIndex ?? -100)/\($0.labelSmoothing ?? 0)/\($0.reductionValue)" }).count >= 24,
                    "rank \(rank) class-index cases")
        }
        #expect(ce.contains { fx[$0.target].dtype.isFloatingPoint && $0.weight != nil && ($0.labelSmoothing ?? 0) > 0 })
    }

    @Test(arguments: LossCase.all)
    func matchesPyTorch(_ c: LossCase) throws {
        let (atol, rtol) = c.tolerance
        let expected = c.expected(fx)
        let got = c.run(fx)
        #expect(got.loss.dtype == expected.loss.dtype, "\(c.name): dtype")
        expectClose(got.loss, expected.loss, atol: atol, rtol: rtol, "\(c.name) loss")
        expectClose(try #require(got.dInput, "\(c.name): no input gradient"), expected.dInput, atol: atol, rtol: rtol,
                    "\(c.name) input gradient")
        if let dy = expected.dTarget {
            expectClose(try #require(got.dTarget, "\(c.name): no target gradient"), dy, atol: atol, rtol: rtol,
                        "\(c.name) target gradient")
        }
    }

    /// The general path (logSoftmax + NLL kernel) against PyTorch too, for the cases the fused
    /// kernel normally takes.
    @Test(arguments: LossCase.crossEntropyCases)
    func generalCrossEntropyPathMatchesPyTorch(_ c: LossCase) throws {
        let (atol, rtol) = c.tolerance
        let expected = c.expected(fx)
        let got = c.run(fx, path: .general)
        expectClose(got.loss, expected.loss, atol: atol, rtol: rtol, "\(c.name) loss (general path)")
        expectClose(try #require(got.dInput), expected.dInput, atol: atol, rtol: rtol, "\(c.name) input gradient (general path)")
    }

    @Test func extremeLogitsGiveExactFiniteLosses() {
        let loss = crossEntropy(fx["ext/x"], target: fx["ext/t"], reduction: .none)
        // row 0: target -1000 against 1000 and 999: 2000 + log(1 + e^-1), to float32's precision at 2000
        #expect(abs(loss.doubles[0] - (2000 + log1p(exp(-1.0)))) <= 1.3e-4)
        // row 2: target 1000 tied with another 1000: log 2
        #expect(abs(loss.doubles[2] - log(2.0)) < 1e-6)
        #expect(loss.doubles.allSatisfy { $0.isFinite })
    }
}
