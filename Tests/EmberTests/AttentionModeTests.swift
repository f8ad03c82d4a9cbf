import Ember
import Testing
import _EmberTestSupport

/// Modes of the attention modules: attention dropout only in training, bitwise repeatable eval
/// outputs, and batch independence under key padding masks.
@Suite struct AttentionModeTests {
    static func input(_ shape: Shape, seed: UInt64) -> Tensor { Tensor.normal(shape, generator: Generator(seed: seed)) }

    @Test func multiheadAttentionDropsOnlyInTraining() throws {
        let m = MultiheadAttention(embedDim: 8, numHeads: 2, dropout: 0.5, generator: Generator(seed: 9))
        let reference = MultiheadAttention(embedDim: 8, numHeads: 2)
        try reference.loadStateDict(m.stateDict())
        reference.eval()
        #expect(m.isModeDependent && !reference.isModeDependent)
        let x = Self.input([5, 3, 8], seed: 1)
        m.train()
        let t1 = m(query: x, key: x, value: x).output, t2 = m(query: x, key: x, value: x).output
        #expect(compare(t1, t2, atol: 1e-6, rtol: 0) != nil, "training draws new dropout masks")
        #expect(compare(t1, reference(query: x, key: x, value: x).output, atol: 1e-6, rtol: 0) != nil)
        m.eval()
        let (e1, w1) = m(query: x, key: x, value: x)
        let (e2, w2) = m(query: x, key: x, value: x)
        expectBitwiseEqual(e1, e2, "eval is repeatable")
        expectBitwiseEqual(w1!, w2!, "eval weights are repeatable")
        let (r, rw) = reference(query: x, key: x, value: x)
        expectBitwiseEqual(e1, r, "eval equals a dropout-free module")
        expectBitwiseEqual(w1!, rw!)
        // The weights of each query still sum to one (no dropout scaling) in eval.
        for s in w1!.sum(axis: -1).doubles { #expect(abs(s - 1) < 1e-6) }
        // Without weights, under no-grad (the tiled kernel).
        let n1 = withNoGrad { m(query: x, key: x, value: x, needWeights: false).output }
        let n2 = withNoGrad { m(query: x, key: x, value: x, needWeights: false).output }
        expectBitwiseEqual(n1, n2)
        expectClose(n1, e1, atol: 1e-6, rtol: 1e-5)
    }

    @Test func encoderLayerAndStackAreRepeatableInEvalOnly() {
        let encoder = TransformerEncoder(encoderLayer: TransformerEncoderLayer(dModel: 8, nhead: 2, dimFeedforward: 16, dropout: 0.3),
                                         numLayers: 2)
        let x = Self.input([4, 2, 8], seed: 2)
        encoder.train()
        #expect(compare(encoder(x), encoder(x), atol: 1e-6, rtol: 0) != nil, "training drops")
        encoder.eval()
        expectBitwiseEqual(encoder(x), encoder(x), "eval (recording)")
        expectBitwiseEqual(withNoGrad { encoder(x) }, withNoGrad { encoder(x) }, "eval (no-grad)")
        expectClose(withNoGrad { encoder(x) }, encoder(x), atol: 1e-5, rtol: 1e-5, "tiled and composed agree")
        let decoder = TransformerDecoderLayer(dModel: 8, nhead: 2, dimFeedforward: 16, dropout: 0.3)
        let mem = Self.input([3, 2, 8], seed: 3)
        decoder.train()
        #expect(compare(decoder(x, memory: mem), decoder(x, memory: mem), atol: 1e-6, rtol: 0) != nil)
        decoder.eval()
        expectBitwiseEqual(decoder(x, memory: mem), decoder(x, memory: mem))
    }

    /// A sample's eval output does not depend on how far it is padded nor on what the padding and
    /// the other samples of its batch hold.
    @Test(arguments: [false, true])
    func evalOutputIsBatchIndependentUnderKeyPaddingMasks(_ noGrad: Bool) {
        let encoder = TransformerEncoder(encoderLayer: TransformerEncoderLayer(dModel: 8, nhead: 2, dimFeedforward: 16, batchFirst: true),
                                         numLayers: 2, norm: LayerNorm(8))
        encoder.eval()
        func run(_ x: Tensor, _ kpm: Tensor?) -> Tensor {
            noGrad ? withNoGrad { encoder(x, srcKeyPaddingMask: kpm) } : encoder(x, srcKeyPaddingMask: kpm)
        }
        let a = Self.input([1, 3, 8], seed: 4)       // sample A: 3 tokens
        let b = Self.input([1, 6, 8], seed: 5)       // sample B: 6 tokens
        let alone = run(a, nil)
        func batch(garbage seed: UInt64) -> Tensor {
            let padded = Tensor.cat([a, Self.input([1, 3, 8], seed: seed) * 100], axis: 1)
            return Tensor.cat([padded, b], axis: 0)
        }
        let kpm = Tensor([false, false, false, true, true, true, false, false, false, false, false, false], shape: [2, 6])
        let out1 = run(batch(garbage: 6), kpm)
        let out2 = run(batch(garbage: 7), kpm)
        expectBitwiseEqual(out1[0, 0..<3], out2[0, 0..<3], "padding content does not reach A")
        expectBitwiseEqual(out1[1], out2[1], "A's padding does not reach B")
        expectClose(out1[0, 0..<3], alone[0], atol: 1e-5, rtol: 1e-5, "A padded vs alone")
        expectClose(out1[1], run(b, nil)[0], atol: 1e-5, rtol: 1e-5, "B in a batch vs alone")
    }
}
