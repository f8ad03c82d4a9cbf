import Ember
import Testing
import _EmberTestSupport

/// Transformer layers, stacks and the full model against PyTorch, loaded from PyTorch state
/// dicts through the ordinary loading API.
@Suite struct TransformerTests {
    let fx = try! Fixture("attention")
    var all: StateDict { StateDict(fx.tensors.filter { $0.key.hasPrefix("sd.") }.map { ($0.key, $0.value) }) }

    func torchKeys(_ prefix: String) -> Set<String> {
        Set(fx.keys(withPrefix: prefix + ".").map { String($0.dropFirst(prefix.count + 1)) })
    }

    static func encoderLayer(_ name: String) -> TransformerEncoderLayer {
        name == "post_relu"
            ? TransformerEncoderLayer(dModel: 8, nhead: 2, dimFeedforward: 16, dtype: .float64)
            : TransformerEncoderLayer(dModel: 8, nhead: 2, dimFeedforward: 16, activation: .gelu, batchFirst: true,
                                      normFirst: true, dtype: .float64)
    }

    static func decoderLayer(_ name: String) -> TransformerDecoderLayer {
        name == "post_relu"
            ? TransformerDecoderLayer(dModel: 8, nhead: 2, dimFeedforward: 16, dtype: .float64)
            : TransformerDecoderLayer(dModel: 8, nhead: 2, dimFeedforward: 16, activation: .gelu, batchFirst: true,
                                      normFirst: true, dtype: .float64)
    }

    @Test(arguments: ["post_relu", "pre_gelu"])
    func encoderLayerMatchesPyTorch(_ name: String) throws {
        let layer = Self.encoderLayer(name)
        #expect(Set(layer.stateDict().keys) == torchKeys("sd.enclayer_\(name)"))
        try layer.loadStateDict(all, prefix: "sd.enclayer_\(name)")
        layer.eval()
        let p = "enclayer_\(name)_"
        let src = fx[p + "src"].requiringGrad()
        let out = layer(src, srcMask: fx.tensors[p + "mask"], srcKeyPaddingMask: fx.tensors[p + "kpm"])
        expectClose(out, fx[p + "out"], atol: 1e-12, rtol: 1e-10, "\(name) out")
        (out * fx[p + "go"]).sum().backward()
        expectClose(src.grad!, fx[p + "gsrc"], atol: 1e-11, rtol: 1e-9, "\(name) dsrc")
    }

    @Test(arguments: ["post_relu", "pre_gelu"])
    func decoderLayerMatchesPyTorch(_ name: String) throws {
        let layer = Self.decoderLayer(name)
        #expect(Set(layer.stateDict().keys) == torchKeys("sd.declayer_\(name)"))
        try layer.loadStateDict(all, prefix: "sd.declayer_\(name)")
        layer.eval()
        let p = "declayer_\(name)_"
        let tgt = fx[p + "tgt"].requiringGrad(), memory = fx[p + "memory"].requiringGrad()
        let out = layer(tgt, memory: memory, tgtMask: fx.tensors[p + "tgt_mask"], tgtKeyPaddingMask: fx.tensors[p + "tgt_kpm"],
                        memoryKeyPaddingMask: fx.tensors[p + "mem_kpm"])
        expectClose(out, fx[p + "out"], atol: 1e-12, rtol: 1e-10, "\(name) out")
        (out * fx[p + "go"]).sum().backward()
        expectClose(tgt.grad!, fx[p + "gtgt"], atol: 1e-11, rtol: 1e-9, "\(name) dtgt")
        expectClose(memory.grad!, fx[p + "gmemory"], atol: 1e-11, rtol: 1e-9, "\(name) dmemory")
    }

    /// PyTorch's eval `TransformerEncoder` takes its fused fast path: the padded batch becomes a
    /// nested tensor and padded positions come back as 0. Ember computes them like any other
    /// position (PyTorch's slow path does too); every unpadded position agrees.
    @Test func encoderStackLoadsPyTorchStateDictAndMatchesItsEvalOutput() throws {
        let encoder = TransformerEncoder(encoderLayer: TransformerEncoderLayer(dModel: 8, nhead: 2, dimFeedforward: 16, batchFirst: true),
                                         numLayers: 2, norm: LayerNorm(8))
        #expect(Set(encoder.stateDict().keys) == torchKeys("sd.encoder"))
        #expect(encoder.stateDict().keys.contains("layers.1.self_attn.in_proj_weight"))
        try encoder.loadStateDict(all, prefix: "sd.encoder")
        encoder.eval()
        let src = fx["encoder_src"], kpm = fx["encoder_kpm"]
        let out = withNoGrad { encoder(src, srcKeyPaddingMask: kpm) }
        let fast = fx["encoder_out"], slow = fx["encoder_out_slow"]
        expectClose(out, slow, atol: 1e-5, rtol: 1e-4, "all positions vs PyTorch's slow path")
        let padded = kpm.doubles
        for b in 0..<3 {
            for t in 0..<5 {
                let mine = out[b, t], theirs = fast[b, t]
                if padded[b * 5 + t] != 0 {
                    #expect(theirs.doubles.allSatisfy { $0 == 0 }, "PyTorch's fast path zeroes padded [\(b), \(t)]")
                } else {
                    expectClose(mine, theirs, atol: 1e-5, rtol: 1e-4, "unpadded [\(b), \(t)]")
                }
            }
        }
        // The same with recording on (the composed path).
        expectClose(encoder(src, srcKeyPaddingMask: kpm), slow, atol: 1e-5, rtol: 1e-4, "composed path")
    }

    @Test func transformerMatchesPyTorchWithMasks() throws {
        let model = Transformer(dModel: 8, nhead: 2, numEncoderLayers: 1, numDecoderLayers: 2, dimFeedforward: 16,
                                batchFirst: true, dtype: .float64)
        #expect(Set(model.stateDict().keys) == torchKeys("sd.transformer"))
        try model.loadStateDict(all, prefix: "sd.transformer")
        model.eval()
        let src = fx["transformer_src"].requiringGrad(), kpm = fx["transformer_kpm"]
        let out = model(src, fx["transformer_tgt"], tgtMask: Transformer.generateSquareSubsequentMask(3, dtype: .float64),
                        srcKeyPaddingMask: kpm, memoryKeyPaddingMask: kpm, tgtIsCausal: true)
        expectClose(out, fx["transformer_out"], atol: 1e-12, rtol: 1e-10, "out")
        (out * fx["transformer_go"]).sum().backward()
        expectClose(src.grad!, fx["transformer_gsrc"], atol: 1e-11, rtol: 1e-9, "dsrc")
    }

    @Test func squareSubsequentMaskIsPyTorchs() {
        let mask = Transformer.generateSquareSubsequentMask(4)
        #expect(mask.dtype == .float32)
        expectBitwiseEqual(mask, fx["square_mask_4"])
        #expect(Transformer.generateSquareSubsequentMask(0).shape == [0, 0])
    }

    @Test func stacksHoldIndependentCopiesOfTheLayer() {
        let layer = TransformerEncoderLayer(dModel: 4, nhead: 2, dimFeedforward: 8)
        let encoder = TransformerEncoder(encoderLayer: layer, numLayers: 3)
        #expect(encoder.layers.count == 3)
        let w0 = (encoder.layers[0] as! TransformerEncoderLayer).linear1.weight
        let w1 = (encoder.layers[1] as! TransformerEncoderLayer).linear1.weight
        #expect(w0 !== w1 && w0 !== layer.linear1.weight)
        expectBitwiseEqual(w0.value, layer.linear1.weight.value, "copies start from the layer's values")
        expectBitwiseEqual(w1.value, layer.linear1.weight.value)
        #expect(encoder.parameters().count == 3 * layer.parameters().count)
    }

    @Test func transformerReinitialisesMatricesXavierUniform() {
        let model = Transformer(dModel: 8, nhead: 2, numEncoderLayers: 1, numDecoderLayers: 1, dimFeedforward: 16)
        let w = (model.encoder.layers[0] as! TransformerEncoderLayer).linear1.weight.value.doubles
        let bound = (6.0 / Double(8 + 16)).squareRoot()
        #expect(w.allSatisfy { abs($0) <= bound } && w.contains { abs($0) > 1 / 8.0.squareRoot() })
        #expect(model.stateDict().keys.contains("decoder.layers.0.multihead_attn.in_proj_weight"))
        #expect(model.stateDict().keys.contains("encoder.norm.weight"))
    }

    @Test func customActivationIsUsed() throws {
        let a = TransformerEncoderLayer(dModel: 8, nhead: 2, dimFeedforward: 16, activation: .custom { $0.tanh() }, dtype: .float64)
        let b = TransformerEncoderLayer(dModel: 8, nhead: 2, dimFeedforward: 16, dtype: .float64)
        try b.loadStateDict(a.stateDict())
        a.eval(); b.eval()
        let x = fx["enclayer_post_relu_src"]
        let manual = a.norm2(a.norm1(x + a.selfAttn(x)) + a.linear2(a.linear1(a.norm1(x + a.selfAttn(x))).tanh()))
        expectClose(a(x), manual, atol: 1e-12, rtol: 1e-10)
        #expect(compare(a(x), b(x), atol: 1e-6, rtol: 0) != nil)
    }

    @Test func deepCopyBuildsAnIndependentEqualModel() {
        let model = Transformer(dModel: 8, nhead: 2, numEncoderLayers: 2, numDecoderLayers: 1, dimFeedforward: 16,
                                activation: .gelu, batchFirst: true, normFirst: true)
        model.eval()
        let copy = model.deepCopy()
        #expect(copy.stateDict().keys == model.stateDict().keys)
        for ((key, a), (_, b)) in zip(model.stateDict(), copy.stateDict()) { expectBitwiseEqual(a, b, key) }
        for (p, q) in zip(model.parameters(), copy.parameters()) { #expect(p !== q) }
        #expect(!copy.isTraining && !copy.encoder.isTraining)
        let copiedLayer = copy.encoder.layers[1] as! TransformerEncoderLayer
        #expect(copiedLayer.normFirst && copiedLayer.selfAttn.batchFirst)
        let src = Tensor.normal([2, 4, 8], generator: Generator(seed: 8)), tgt = Tensor.normal([2, 3, 8], generator: Generator(seed: 9))
        expectBitwiseEqual(copy(src, tgt), model(src, tgt), "same output")
        let mha = MultiheadAttention(embedDim: 8, numHeads: 2, addBiasKV: true, kdim: 3, vdim: 5).deepCopy()
        #expect(mha.biasK != nil && mha.kdim == 3 && mha.vdim == 5)
    }

    @Test func transformerShapeErrors() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let model = Transformer(dModel: 4, nhead: 2, numEncoderLayers: 1, numDecoderLayers: 1, dimFeedforward: 8)
            _ = model(Tensor.zeros([3, 2, 4]), Tensor.zeros([3, 5, 4]))
        }
        #expect(standardErrorText(result).contains("the batch number of src and tgt must be equal"))
    }
}
