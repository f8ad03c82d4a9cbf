import Ember
import Testing
import _EmberTestSupport

/// `MultiheadAttention` against PyTorch: every option of `Tools/fixtures/gen_attention.py`, loaded
/// through the ordinary state-dict API under PyTorch's keys, with outputs, weights and gradients.
@Suite struct MultiheadAttentionTests {
    let fx = try! Fixture("attention")

    static let cases = ["basic", "perhead", "batchfirst_masks", "biaskv_zeroattn", "kvdim", "nobias", "unbatched",
                        "noweights_causal", "fullmask_weights", "fullmask_noweights", "self_seqfirst"]
    /// The cases whose query, key and value are one tensor.
    static let selfAttentionCases = ["unbatched", "noweights_causal", "self_seqfirst"]

    static func make(_ name: String, dtype: DType = .float64) -> MultiheadAttention {
        switch name {
        case "batchfirst_masks", "noweights_causal": MultiheadAttention(embedDim: 8, numHeads: 2, batchFirst: true, dtype: dtype)
        case "biaskv_zeroattn": MultiheadAttention(embedDim: 8, numHeads: 2, addBiasKV: true, addZeroAttn: true, dtype: dtype)
        case "kvdim": MultiheadAttention(embedDim: 8, numHeads: 2, kdim: 5, vdim: 7, dtype: dtype)
        case "nobias": MultiheadAttention(embedDim: 8, numHeads: 2, bias: false, dtype: dtype)
        default: MultiheadAttention(embedDim: 8, numHeads: 2, dtype: dtype)
        }
    }

    /// The fixture's state-dict entries (every key of every case) as one state dict.
    var all: StateDict { StateDict(fx.tensors.filter { $0.key.hasPrefix("sd.") }.map { ($0.key, $0.value) }) }

    @Test(arguments: cases)
    func stateDictKeysAreExactlyPyTorchs(_ name: String) {
        let m = Self.make(name)
        let torchKeys = Set(fx.keys(withPrefix: "sd.mha_\(name).").map { String($0.dropFirst("sd.mha_\(name).".count)) })
        #expect(Set(m.stateDict().keys) == torchKeys)
    }

    @Test(arguments: cases)
    func forwardWeightsAndGradientsMatchPyTorch(_ name: String) throws {
        let m = Self.make(name)
        try m.loadStateDict(all, prefix: "sd.mha_\(name)")
        m.eval()
        let p = "mha_\(name)_"
        let q = fx[p + "query"].requiringGrad(), k = fx[p + "key"].requiringGrad(), v = fx[p + "value"].requiringGrad()
        let selfAttention = Self.selfAttentionCases.contains(name)
        let (key, value) = selfAttention ? (q, q) : (k, v)
        let needWeights = !name.contains("noweights") && name != "self_seqfirst"
        let (out, weights) = m(query: q, key: key, value: value, keyPaddingMask: fx.tensors[p + "kpm"], needWeights: needWeights,
                               attnMask: fx.tensors[p + "mask"], averageAttnWeights: name != "perhead",
                               isCausal: name == "noweights_causal")
        if name == "fullmask_weights" {
            // PyTorch's need_weights path uses a plain softmax: a query with no key is NaN.
            #expect(out.select(axis: 0, index: 1).doubles.allSatisfy { $0.isNaN })
            #expect(fx[p + "out"].select(axis: 0, index: 1).doubles.allSatisfy { $0.isNaN })
            expectClose(out.select(axis: 0, index: 0), fx[p + "out"].select(axis: 0, index: 0), atol: 1e-12, rtol: 1e-10)
            return
        }
        expectClose(out, fx[p + "out"], atol: 1e-12, rtol: 1e-10, "\(name) out")
        if needWeights {
            expectClose(try #require(weights), fx[p + "weights"], atol: 1e-12, rtol: 1e-10, "\(name) weights")
        } else {
            #expect(weights == nil)
        }
        (out * fx[p + "go"]).sum().backward()
        if selfAttention {
            // PyTorch's query, key and value were three leaves with the same values.
            expectClose(q.grad!, fx[p + "gquery"] + fx[p + "gkey"] + fx[p + "gvalue"], atol: 1e-11, rtol: 1e-9, "\(name) dx")
        } else {
            expectClose(q.grad!, fx[p + "gquery"], atol: 1e-11, rtol: 1e-9, "\(name) dq")
            expectClose(k.grad!, fx[p + "gkey"], atol: 1e-11, rtol: 1e-9, "\(name) dk")
            expectClose(v.grad!, fx[p + "gvalue"], atol: 1e-11, rtol: 1e-9, "\(name) dv")
        }
        let win = m.inProjWeight ?? m.qProjWeight!
        expectClose(win.grad!, fx[p + "gin"], atol: 1e-11, rtol: 1e-9, "\(name) d in-projection")
    }

    /// Without gradients self-attention projects once against the packed weight and reads q, k
    /// and v as three views of that product (seq-first, batch-first and unbatched layouts).
    @Test(arguments: selfAttentionCases)
    func selfAttentionWithoutGradientsMatchesPyTorch(_ name: String) throws {
        let m = Self.make(name)
        try m.loadStateDict(all, prefix: "sd.mha_\(name)")
        m.eval()
        let p = "mha_\(name)_"
        let x = fx[p + "query"]
        let out = withNoGrad {
            m(query: x, key: x, value: x, keyPaddingMask: fx.tensors[p + "kpm"], needWeights: false,
              attnMask: fx.tensors[p + "mask"], isCausal: name == "noweights_causal").output
        }
        expectClose(out, fx[p + "out"], atol: 1e-12, rtol: 1e-10, "\(name) out")
        // The same values through a copy of the input (not the same view: three products).
        let copy = x * 1
        let separate = withNoGrad {
            m(query: x, key: copy, value: copy, keyPaddingMask: fx.tensors[p + "kpm"], needWeights: false,
              attnMask: fx.tensors[p + "mask"], isCausal: name == "noweights_causal").output
        }
        expectClose(separate, fx[p + "out"], atol: 1e-12, rtol: 1e-10, "\(name) out, separate products")
    }

    @Test func float32ModuleMatchesPyTorchWithinFloatTolerance() throws {
        let m = Self.make("batchfirst_masks", dtype: .float32)
        try m.loadStateDict(all, prefix: "sd.mha_batchfirst_masks")
        m.eval()
        let p = "mha_batchfirst_masks_"
        let (out, w) = m(query: fx[p + "query"].to(.float32), key: fx[p + "key"].to(.float32), value: fx[p + "value"].to(.float32),
                         keyPaddingMask: fx[p + "kpm"], attnMask: fx[p + "mask"].to(.float32))
        #expect(out.dtype == .float32)
        expectClose(out, fx[p + "out"].to(.float32), atol: 1e-5, rtol: 1e-4)
        expectClose(w!, fx[p + "weights"].to(.float32), atol: 1e-5, rtol: 1e-4)
        // Without weights the same output comes from SDPA (the tiled kernel under no-grad).
        let fast = withNoGrad {
            m(query: fx[p + "query"].to(.float32), key: fx[p + "key"].to(.float32), value: fx[p + "value"].to(.float32),
              keyPaddingMask: fx[p + "kpm"], needWeights: false, attnMask: fx[p + "mask"].to(.float32)).output
        }
        expectClose(fast, fx[p + "out"].to(.float32), atol: 1e-5, rtol: 1e-4)
    }

    @Test func initialisationFollowsPyTorch() {
        let m = MultiheadAttention(embedDim: 16, numHeads: 4, addBiasKV: true)
        #expect(m.inProjWeight!.shape == [48, 16])
        #expect(m.inProjBias!.value.doubles.allSatisfy { $0 == 0 })
        #expect(m.outProj.bias!.value.doubles.allSatisfy { $0 == 0 })
        let bound = (6.0 / Double(48 + 16)).squareRoot()
        let w = m.inProjWeight!.value.doubles
        #expect(w.allSatisfy { abs($0) <= bound } && w.contains { abs($0) > bound * 0.8 }, "xavier uniform bound \(bound)")
        #expect(m.biasK!.shape == [1, 1, 16] && m.biasV!.shape == [1, 1, 16])
        #expect(m.biasK!.value.doubles.contains { $0 != 0 })
        #expect(m.outProj.weight.value.doubles.allSatisfy { abs($0) <= 0.25 })  // Linear's 1/sqrt(16)
        let separate = MultiheadAttention(embedDim: 8, numHeads: 2, kdim: 3, vdim: 5)
        #expect(separate.inProjWeight == nil)
        #expect(separate.kProjWeight!.shape == [8, 3] && separate.vProjWeight!.shape == [8, 5])
        #expect(separate.stateDict().keys == ["q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias",
                                              "out_proj.weight", "out_proj.bias"])
    }

    @Test func selfAttentionForwardIsTheOutputWithoutWeights() throws {
        let m = Self.make("unbatched")
        try m.loadStateDict(all, prefix: "sd.mha_unbatched")
        let x = fx["mha_unbatched_query"]
        expectClose(m(x), m(query: x, key: x, value: x).output, atol: 1e-13, rtol: 1e-12)
    }

    @Test func embedDimMustDivideByHeads() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = MultiheadAttention(embedDim: 10, numHeads: 3)
        }
        #expect(standardErrorText(result).contains("embed_dim must be divisible by num_heads"))
    }

    @Test func isCausalNeedsAMask() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let m = MultiheadAttention(embedDim: 4, numHeads: 2)
            let x = Tensor.zeros([3, 1, 4])
            _ = m(query: x, key: x, value: x, isCausal: true)
        }
        #expect(standardErrorText(result).contains("Need attn_mask if specifying the is_causal hint"))
    }

    @Test func wrongAttnMaskShapeStops() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let m = MultiheadAttention(embedDim: 4, numHeads: 2)
            let x = Tensor.zeros([3, 1, 4])
            _ = m(query: x, key: x, value: x, attnMask: Tensor.zeros([2, 3]))
        }
        #expect(standardErrorText(result).contains("The shape of the 2D attn_mask is [2, 3], but should be [3, 3]."))
    }
}
