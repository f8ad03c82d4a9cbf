import Ember
import Foundation
import Testing
import _EmberTestSupport

/// Loss modules: the same results as the functional forms, PyTorch's defaults and state-dict
/// keys, and weights as buffers.
@Suite struct LossModuleTests {
    let fx = try! Fixture("losses")

    @Test func defaultsMatchPyTorch() {
        let ce = CrossEntropyLoss()
        #expect(ce.reduction == .mean && ce.ignoreIndex == -100 && ce.labelSmoothing == 0 && ce.weight == nil)
        let nll = NLLLoss()
        #expect(nll.reduction == .mean && nll.ignoreIndex == -100 && nll.weight == nil)
        #expect(MSELoss().reduction == .mean && L1Loss().reduction == .mean)
        #expect(SmoothL1Loss().beta == 1 && HuberLoss().delta == 1)
        #expect(BCELoss().weight == nil)
        let bcel = BCEWithLogitsLoss()
        #expect(bcel.weight == nil && bcel.posWeight == nil)
        let kl = KLDivLoss()
        #expect(kl.reduction == .mean && !kl.logTarget)
        #expect(Reduction.allCases.map(\.description) == ["none", "mean", "sum", "batchmean"])
    }

    @Test func modulesEqualTheirFunctionalForms() {
        let x = fx["cls/2d/x"], t = fx["cls/2d/t_class"], w = fx["cls/2d/w"]
        expectBitwiseEqual(CrossEntropyLoss(weight: w, ignoreIndex: 1, reduction: .sum, labelSmoothing: 0.2)(x, t),
                           crossEntropy(x, target: t, weight: w, ignoreIndex: 1, reduction: .sum, labelSmoothing: 0.2))
        let lp = fx["cls/2d/logp"]
        expectBitwiseEqual(NLLLoss(weight: w, ignoreIndex: 1, reduction: .none)(lp, t),
                           nllLoss(lp, target: t, weight: w, ignoreIndex: 1, reduction: .none))
        let a = fx["reg/x"], b = fx["reg/y"]
        expectBitwiseEqual(MSELoss(reduction: .sum)(a, b), mseLoss(a, target: b, reduction: .sum))
        expectBitwiseEqual(L1Loss(reduction: .none)(a, b), l1Loss(a, target: b, reduction: .none))
        expectBitwiseEqual(SmoothL1Loss(beta: 0.5)(a, b), smoothL1Loss(a, target: b, beta: 0.5))
        expectBitwiseEqual(HuberLoss(reduction: .sum, delta: 2)(a, b), huberLoss(a, target: b, reduction: .sum, delta: 2))
        let p = fx["bce/p"], y = fx["bce/y"], bw = fx["bce/w"]
        expectBitwiseEqual(BCELoss(weight: bw)(p, y), binaryCrossEntropy(p, target: y, weight: bw))
        let z = fx["bcel/z"], pw = fx["bcel/pw"]
        expectBitwiseEqual(BCEWithLogitsLoss(weight: bw, reduction: .none, posWeight: pw)(z, y),
                           binaryCrossEntropyWithLogits(z, target: y, weight: bw, reduction: .none, posWeight: pw))
        let kx = fx["kl/x"], kq = fx["kl/logq"]
        expectBitwiseEqual(KLDivLoss(reduction: .batchMean, logTarget: true)(kx, kq),
                           klDiv(kx, target: kq, reduction: .batchMean, logTarget: true))
    }

    @Test func modeDoesNotChangeALoss() {
        let loss = CrossEntropyLoss(labelSmoothing: 0.1)
        let x = fx["cls/3d/x"], t = fx["cls/3d/t_none"]
        let training = loss(x, t)
        loss.eval()
        expectBitwiseEqual(loss(x, t), training)
    }

    /// PyTorch registers class weights as buffers: `state_dict()` of `CrossEntropyLoss(weight=w)` is
    /// `{'weight': w}`; without weights it is empty.
    @Test func stateDictKeysMatchPyTorch() throws {
        let expected = try JSONDecoder().decode([String: [String]].self, from: Data(fx.metadata["state_dict_keys"]!.utf8))
        let w = Tensor([1, 2, 3] as [Float])
        let modules: [String: Module] = [
            "CrossEntropyLoss(weight)": CrossEntropyLoss(weight: w),
            "CrossEntropyLoss()": CrossEntropyLoss(),
            "NLLLoss(weight)": NLLLoss(weight: w),
            "BCELoss(weight)": BCELoss(weight: w),
            "BCEWithLogitsLoss(weight,pos_weight)": BCEWithLogitsLoss(weight: w, posWeight: w),
            "BCEWithLogitsLoss(pos_weight)": BCEWithLogitsLoss(posWeight: w),
            "MSELoss()": MSELoss(),
        ]
        #expect(Set(modules.keys) == Set(expected.keys))
        for (name, module) in modules {
            #expect(module.stateDict().keys == expected[name], "\(name)")
            #expect(module.namedParameters().isEmpty, "\(name) has no parameters")
        }
        expectBitwiseEqual(try #require(CrossEntropyLoss(weight: w).stateDict()["weight"]), w)
    }

    @Test func weightsLoadFromAStateDictAndChangeTheLoss() throws {
        let x = fx["cls/2d/x"], t = fx["cls/2d/t_none"], w = fx["cls/2d/w"]
        let loss = CrossEntropyLoss(weight: Tensor.ones([4]))
        expectBitwiseEqual(loss(x, t), crossEntropy(x, target: t))
        _ = try loss.loadStateDict(["weight": w])
        expectBitwiseEqual(loss(x, t), crossEntropy(x, target: t, weight: w))
    }

    @Test func aLossInsideAModelContributesItsBuffers() {
        final class Classifier: Module {
            let fc = Linear(4, 3)
            let criterion = CrossEntropyLoss(weight: Tensor([1, 2, 3] as [Float]))
        }
        let net = Classifier()
        #expect(net.stateDict().keys == ["fc.weight", "fc.bias", "criterion.weight"], "PyTorch's keys for the same model")
        #expect(net.namedParameters().map(\.name) == ["fc.weight", "fc.bias"])
    }

    @Test func listingShowsPyTorchRepr() {
        #expect(CrossEntropyLoss().extraDescription == "")
        #expect(KLDivLoss().typeName == "KLDivLoss")
    }

    @Test func lossesTrainATinyClassifier() {
        // A few steps of gradient descent on a separable problem lower the loss.
        let fc = Linear(2, 2, generator: Generator(seed: 3))
        let criterion = CrossEntropyLoss()
        let x = Tensor([1, 1, 2, 1.5, -1, -1, -2, -0.5] as [Float], shape: [4, 2])
        let t = Tensor([0, 0, 1, 1] as [Int])
        var losses: [Double] = []
        for _ in 0..<20 {
            let loss = criterion(fc(x), t)
            losses.append(loss.doubleValue)
            loss.backward()
            withNoGrad {
                fc.weight.value = fc.weight.value - fc.weight.grad! * 0.5
                fc.bias!.value = fc.bias!.value - fc.bias!.grad! * 0.5
            }
            fc.weight.grad = nil
            fc.bias!.grad = nil
        }
        #expect(losses.last! < losses.first! / 4, "losses \(losses)")
    }
}
