import Ember
import Foundation
import SeedNetwork
import Testing
import _EmberTestSupport

/// `fusedForInference(folding:rebuilding:)` and `deepCopy()`: folded outputs equal the eval
/// outputs, the original stays untouched, the copy refuses training, and every refusal names the
/// module.
@Suite struct FusionTests {
    /// Gives every BatchNorm of `model` random affine parameters and running statistics (variance
    /// in [0.05, 2], so `eps` matters at the tolerance), and puts the model in eval mode.
    static func randomize(_ model: Module, seed: UInt64) {
        let g = Generator(seed: seed)
        for case let bn as BatchNormBase in model.modules() {
            let n = bn.numFeatures, t = bn.runningMean?.value.dtype ?? bn.weight?.value.dtype ?? .float32
            bn.weight?.value = .uniform([n], low: 0.5, high: 1.5, dtype: t, generator: g)
            bn.bias?.value = .normal([n], dtype: t, generator: g)
            bn.runningMean?.value = .normal([n], std: 0.5, dtype: t, generator: g)
            bn.runningVar?.value = .uniform([n], low: 0.05, high: 2, dtype: t, generator: g)
            bn.numBatchesTracked?.value = Tensor(Int64(10))
        }
        model.eval()
    }

    static func mlp() -> Sequential {
        Sequential(Linear(12, 16), BatchNorm1d(16), ReLU(), Dropout(0.2),
                   Linear(16, 8), BatchNorm1d(8, eps: 1e-3), ReLU(), Dropout(0.2), Identity(),
                   Linear(8, 3))
    }

    /// Evaluates `model` and `fused` on `x` (no grad) and checks them within 1e-5.
    static func expectSameOutputs(_ model: Module, _ fused: Module, _ x: Tensor, _ comment: String,
                                  sourceLocation: SourceLocation = #_sourceLocation) {
        let expected = withNoGrad { model(x) }, actual = withNoGrad { fused(x) }
        expectClose(actual, expected, atol: 1e-5, rtol: 0, comment, sourceLocation: sourceLocation)
    }

    @Test func mlpFoldsBatchNormAndDropsDropoutAndIdentity() {
        let model = withGenerator(Generator(seed: 1)) { Self.mlp() }
        Self.randomize(model, seed: 2)
        let fused = model.fusedForInference()
        #expect(fused.layers.map(\.typeName) == ["Linear", "ReLU", "Linear", "ReLU", "Linear"])
        let x = Tensor.normal([32, 12], generator: Generator(seed: 3))
        Self.expectSameOutputs(model, fused, x, "MLP")
        // Batch 1 (the packed batch-1 Linear path).
        Self.expectSameOutputs(model, fused, .normal([1, 12], generator: Generator(seed: 4)), "MLP, batch 1")
        // Bitwise repeatable: the same copy twice, and a second fusion.
        let again = model.fusedForInference()
        let first = withNoGrad { fused(x) }
        expectBitwiseEqual(withNoGrad { fused(x) }, first, "second call")
        expectBitwiseEqual(withNoGrad { again(x) }, first, "second fusion")
        #expect(fused.modules().allSatisfy { $0.isInferenceOnly } && fused.modules().allSatisfy { !$0.isTraining })
    }

    @Test func originalIsUntouchedAndSharesNothing() {
        let model = withGenerator(Generator(seed: 1)) { Self.mlp() }
        Self.randomize(model, seed: 2)
        let before = model.stateDict()
        let fused = model.fusedForInference()
        let after = model.stateDict()
        #expect(after.keys == before.keys)
        for key in before.keys { expectBitwiseEqual(after[key]!, before[key]!, key) }
        #expect(model.count == 10 && !model.modules().contains { $0.isInferenceOnly })
        let originals = Set(model.parameters().map(ObjectIdentifier.init) + model.buffers().map(ObjectIdentifier.init)
                            + model.modules().map(ObjectIdentifier.init))
        let copies = fused.parameters().map(ObjectIdentifier.init) + fused.buffers().map(ObjectIdentifier.init)
            + fused.modules().map(ObjectIdentifier.init)
        #expect(copies.allSatisfy { !originals.contains($0) })
        // Writing the copy's weights leaves the original's alone, and the original still trains.
        for p in fused.parameters() { p.value = p.value.zerosLike() }
        expectBitwiseEqual((model[0] as! Linear).weight.value, before["0.weight"]!)
        model.train()
        #expect(model.isTraining && !fused.isTraining)
    }

    @Test func digitCNNFoldsNamedPairsIntoBiaslessConvolutions() {
        let model = withGenerator(Generator(seed: 4)) { DigitCNN(side: 8, channels: 8) }
        Self.randomize(model, seed: 5)
        let fused = model.fusedForInference(folding: [("conv1", "bn1"), ("conv2", "bn2")],
                                            rebuilding: { DigitCNN(side: 8, channels: 8) })
        #expect(fused.bn1.isFolded && fused.bn2.isFolded && !model.bn1.isFolded)
        #expect(fused.conv1.bias != nil && model.conv1.bias == nil, "a bias is created on the copy only")
        #expect(!fused.bn1.isModeDependent)
        let x = Tensor.uniform([6, 64], generator: Generator(seed: 6))
        Self.expectSameOutputs(model, fused, x, "DigitCNN")
        expectBitwiseEqual(withNoGrad { fused(x) }, withNoGrad { fused(x) }, "repeatable")
    }

    @Test func resNetBlocksFoldByPath() {
        let build = { Sequential(BasicBlock(6), BasicBlock(6)) }
        let model = withGenerator(Generator(seed: 7)) { build() }
        Self.randomize(model, seed: 8)
        let pairs = (0..<2).flatMap { i in [("\(i).conv1", "\(i).bn1"), ("\(i).conv2", "\(i).bn2")] }
        let fused = model.fusedForInference(folding: pairs.map { (layer: $0.0, batchNorm: $0.1) }, rebuilding: build)
        #expect(fused.modules().compactMap { $0 as? BatchNormBase }.allSatisfy { $0.isFolded })
        let x = Tensor.normal([2, 6, 5, 5], generator: Generator(seed: 9))
        Self.expectSameOutputs(model, fused, x, "ResNet blocks")
        expectBitwiseEqual(withNoGrad { fused(x) }, withNoGrad { fused(x) }, "repeatable")
    }

    @Test func groupedDepthwiseTransposedAndOtherRanksFold() {
        let g = Generator(seed: 10)
        let cases: [(String, Sequential, Tensor)] = withGenerator(g) {
            [("grouped and depthwise 2-d",
              Sequential(Conv2d(4, 8, 3, padding: 1, groups: 2), BatchNorm2d(8), ReLU(),
                         Conv2d(8, 8, 3, groups: 8, bias: false), BatchNorm2d(8, affine: false)),
              .normal([2, 4, 6, 6], generator: g)),
             ("transposed 2-d, grouped",
              Sequential(ConvTranspose2d(4, 6, 3, stride: 2, groups: 2), BatchNorm2d(6),
                         ConvTranspose2d(6, 4, 2, bias: false), BatchNorm2d(4)),
              .normal([2, 4, 3, 3], generator: g)),
             ("1-d", Sequential(Conv1d(3, 5, 3), BatchNorm1d(5), ConvTranspose1d(5, 4, 3, groups: 1), BatchNorm1d(4)),
              .normal([2, 3, 7], generator: g)),
             ("3-d", Sequential(Conv3d(2, 4, 2, groups: 2), BatchNorm3d(4), Dropout3d(0.3), ConvTranspose3d(4, 2, 2, groups: 2), BatchNorm3d(2)),
              .normal([1, 2, 4, 4, 4], generator: g)),
             ("float64", Sequential(Linear(5, 4, dtype: .float64), BatchNorm1d(4, dtype: .float64)),
              .normal([3, 5], dtype: .float64, generator: g))]
        }
        for (name, model, x) in cases {
            Self.randomize(model, seed: 11)
            let fused = model.fusedForInference()
            #expect(!fused.layers.contains { $0 is BatchNormBase || $0 is Dropout }, "\(name): every BatchNorm folded")
            #expect(fused.parameters().allSatisfy { $0.value.dtype == x.dtype }, "\(name): the layer's dtype")
            Self.expectSameOutputs(model, fused, x, name)
        }
    }

    /// Pairs that cannot be folded in a Sequential stay as they are: a BatchNorm without running
    /// statistics, a layer held twice, a BatchNorm after an activation; Monte-Carlo dropout
    /// (pinned to training) stays too.
    @Test func unfoldablePairsInSequentialStay() {
        let shared = withGenerator(Generator(seed: 12)) { Linear(4, 4) }
        let model = withGenerator(Generator(seed: 13)) {
            Sequential(Linear(4, 4), BatchNorm1d(4, trackRunningStats: false), shared, BatchNorm1d(4), ReLU(), BatchNorm1d(4),
                       shared, Dropout(0.5))
        }
        Self.randomize(model, seed: 14)
        (model[7] as! Dropout).pin(.training)
        let fused = model.fusedForInference()
        #expect(fused.layers.map(\.typeName) == ["Linear", "BatchNorm1d", "Linear", "BatchNorm1d", "ReLU", "BatchNorm1d", "Linear", "Dropout"])
        #expect(fused[2] === fused[6], "the shared layer stays shared once")
        #expect(fused[7].pinnedMode == .training && fused[7].isTraining)
        (fused[7] as! Dropout).unpin()
        fused[7].eval()
        (model[7] as! Dropout).unpin()
        model.eval()
        Self.expectSameOutputs(model, fused, .normal([8, 4], generator: Generator(seed: 15)), "unfolded pairs")
    }

    @Test func deepCopyCopiesValuesModesPinsAndSharing() {
        let shared = withGenerator(Generator(seed: 16)) { Linear(3, 3) }
        let model = Sequential(shared, BatchNorm1d(3), ModuleList([shared, ReLU()]), Dropout(0.1))
        Self.randomize(model, seed: 17)
        model[1].pin(.training)
        shared.weight.requiresGrad = false
        let copy = model.deepCopy()
        #expect(copy[0] !== shared && (copy[2] as! ModuleList)[0] === copy[0], "shared once, not with the original")
        #expect(copy[1].pinnedMode == .training && copy[1].isTraining && !copy[0].isTraining && !copy[3].isTraining)
        #expect(!(copy[0] as! Linear).weight.requiresGrad && (copy[0] as! Linear).bias!.requiresGrad)
        #expect(copy.stateDict().keys == model.stateDict().keys)
        for (key, value) in model.stateDict() { expectBitwiseEqual(copy.stateDict()[key]!, value, key) }
        #expect(copy.parameters().count == model.parameters().count)
        #expect(!copy.isInferenceOnly)
        copy.train()
        #expect(!model[0].isTraining, "the copy's modes are its own")
    }

    @Test func rebuildingCopiesIntoAFreshTree() {
        let model = withGenerator(Generator(seed: 18)) { DigitCNN(side: 4, channels: 4) }
        Self.randomize(model, seed: 19)
        let copy = model.deepCopy(rebuilding: { DigitCNN(side: 4, channels: 4) })
        for (key, value) in model.stateDict() { expectBitwiseEqual(copy.stateDict()[key]!, value, key) }
        let x = Tensor.uniform([2, 16], generator: Generator(seed: 20))
        expectBitwiseEqual(withNoGrad { copy(x) }, withNoGrad { model(x) }, "a copy computes the same")
    }

    // MARK: - Refusals

    @Test func fusedModelRefusesTraining() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let model = Sequential(Linear(2, 2), BatchNorm1d(2)).eval()
            model.fusedForInference().train()
        }
        let text = standardErrorText(result)
        #expect(text.contains("train(): Sequential belongs to an inference-only model made by fusedForInference()"))
    }

    @Test func fusedModelRefusesTrainingInAScopeAndByPin() async {
        var result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let model = Sequential(Linear(2, 2), BatchNorm1d(2)).eval()
            let fused = model.fusedForInference()
            fused.training { _ = fused(Tensor.ones([2, 2])) }
        }
        #expect(standardErrorText(result).contains("cannot train"))
        result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let model = Sequential(Linear(2, 2), BatchNorm1d(2)).eval()
            model.fusedForInference()[0].pin(.training)
        }
        #expect(standardErrorText(result).contains("pin(.training): Linear belongs to an inference-only model"))
    }

    @Test func trainingModeBatchNormIsRefused() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Sequential(Linear(2, 2), BatchNorm1d(2)).fusedForInference()
        }
        #expect(standardErrorText(result).contains("fusedForInference(): BatchNorm1d '1' is in training mode; folding uses the running statistics"))
    }

    @Test func pinnedTrainingBatchNormIsRefused() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let model = Sequential(Conv2d(2, 2, 1), BatchNorm2d(2)).eval()
            model[1].pin(.training)
            _ = model.fusedForInference()
        }
        #expect(standardErrorText(result).contains("BatchNorm2d '1' is pinned to training mode"))
    }

    @Test func namedPairsAreChecked() async {
        var result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let model = Sequential(Linear(2, 2), BatchNorm1d(2, trackRunningStats: false)).eval()
            _ = model.fusedForInference(folding: [("0", "1")])
        }
        #expect(standardErrorText(result).contains("BatchNorm1d '1' has no running statistics"))
        result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Sequential(Linear(2, 2), BatchNorm1d(2)).eval().fusedForInference(folding: [("0", "2")])
        }
        #expect(standardErrorText(result).contains("no module at '2'"))
        result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Sequential(Linear(2, 3), BatchNorm1d(2)).eval().fusedForInference(folding: [("0", "1")])
        }
        #expect(standardErrorText(result).contains("has 3 output channels and takes a BatchNorm1d of that size"))
        result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Sequential(ReLU(), BatchNorm1d(2)).eval().fusedForInference(folding: [("0", "1")])
        }
        #expect(standardErrorText(result).contains("'0' is a ReLU; only Linear"))
    }

    @Test func customModelWithoutRebuildingIsRefused() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = DigitCNN().eval().fusedForInference(folding: [("conv1", "bn1")])
        }
        #expect(standardErrorText(result).contains("Ember cannot build a copy of DigitCNN at the root"))
    }

    @Test func mismatchedRebuildIsRefused() async {
        var result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = DigitCNN(channels: 8).deepCopy(rebuilding: { DigitCNN(channels: 16) })
        }
        #expect(standardErrorText(result).contains("'conv1.weight' is [4, 1, 3, 3] torch.float32 in the model but [8, 1, 3, 3] torch.float32 in the rebuilt model"))
        result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let model = DigitCNN()
            _ = model.deepCopy(rebuilding: { model })
        }
        #expect(standardErrorText(result).contains("the rebuilt model reuses the model's own DigitCNN at the root"))
    }
}
