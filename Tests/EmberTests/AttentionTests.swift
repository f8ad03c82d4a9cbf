import Ember
import Testing
import _EmberTestSupport

/// `scaledDotProductAttention` against PyTorch (`Tools/fixtures/gen_attention.py`): the composed
/// (differentiable) path with its gradients, the tiled inference kernel, masks, causal, scale,
/// GQA, a fully masked row, finite differences, errors and memory.
@Suite struct AttentionTests {
    let fx = try! Fixture("attention")

    /// The fixture cases and how each was called in PyTorch.
    static let cases = ["basic", "boolmask", "floatmask", "causal", "causal_tall", "scale", "gqa", "fullmask", "unbatched", "f32"]

    func run(_ name: String, _ q: Tensor, _ k: Tensor, _ v: Tensor) -> Tensor {
        let mask = fx.tensors["sdpa_\(name)_mask"]
        return scaledDotProductAttention(query: q, key: k, value: v, attnMask: mask, isCausal: name.hasPrefix("causal"),
                                         scale: name == "scale" ? 0.3 : nil, enableGQA: name == "gqa")
    }

    @Test(arguments: cases)
    func composedForwardAndGradientsMatchPyTorch(_ name: String) {
        let (atol, rtol) = name == "f32" ? (1e-5, 1e-4) : (1e-12, 1e-10)
        let q = fx["sdpa_\(name)_q"].requiringGrad(), k = fx["sdpa_\(name)_k"].requiringGrad(), v = fx["sdpa_\(name)_v"].requiringGrad()
        let out = run(name, q, k, v)
        expectClose(out, fx["sdpa_\(name)_out"], atol: atol, rtol: rtol, "\(name) out")
        (out * fx["sdpa_\(name)_go"]).sum().backward()
        expectClose(q.grad!, fx["sdpa_\(name)_gq"], atol: atol, rtol: rtol, "\(name) dq")
        expectClose(k.grad!, fx["sdpa_\(name)_gk"], atol: atol, rtol: rtol, "\(name) dk")
        expectClose(v.grad!, fx["sdpa_\(name)_gv"], atol: atol, rtol: rtol, "\(name) dv")
    }

    @Test(arguments: cases)
    func tiledInferenceKernelMatchesPyTorch(_ name: String) {
        let (atol, rtol) = name == "f32" ? (1e-5, 1e-4) : (1e-12, 1e-10)
        let out = withNoGrad { run(name, fx["sdpa_\(name)_q"], fx["sdpa_\(name)_k"], fx["sdpa_\(name)_v"]) }
        #expect(out.requiresGrad == false)
        expectClose(out, fx["sdpa_\(name)_out"], atol: atol, rtol: rtol, "\(name) tiled")
    }

    @Test func fullyMaskedRowIsZeroWithZeroGradientsAsPyTorch() {
        // PyTorch 2.13 (CPU, math and flash paths alike) gives 0 for a row with no key to attend.
        let out = fx["sdpa_fullmask_out"]
        #expect(out.select(axis: 2, index: 1).doubles.allSatisfy { $0 == 0 })
        let q = fx["sdpa_fullmask_q"].requiringGrad()
        let y = run("fullmask", q, fx["sdpa_fullmask_k"], fx["sdpa_fullmask_v"])
        #expect(y.select(axis: 2, index: 1).doubles.allSatisfy { $0 == 0 })
        (y * fx["sdpa_fullmask_go"]).sum().backward()
        #expect(q.grad!.select(axis: 2, index: 1).doubles.allSatisfy { $0 == 0 })
        #expect(!q.grad!.doubles.contains { $0.isNaN })
        let tiled = withNoGrad { run("fullmask", fx["sdpa_fullmask_q"], fx["sdpa_fullmask_k"], fx["sdpa_fullmask_v"]) }
        #expect(tiled.select(axis: 2, index: 1).doubles.allSatisfy { $0 == 0 })
    }

    @Test(arguments: ["basic", "boolmask", "floatmask", "causal_tall", "gqa"])
    func finiteDifferencesAgree(_ name: String) {
        let mask = fx.tensors["sdpa_\(name)_mask"]
        let m = checkGradients([fx["sdpa_\(name)_q"], fx["sdpa_\(name)_k"], fx["sdpa_\(name)_v"]] + (mask.map { $0.dtype == .bool ? [] : [$0] } ?? [])) { xs in
            scaledDotProductAttention(query: xs[0], key: xs[1], value: xs[2], attnMask: xs.count > 3 ? xs[3] : mask,
                                      isCausal: name.hasPrefix("causal"), enableGQA: name == "gqa")
        }
        #expect(m == nil, "\(name): \(m.map(String.init(describing:)) ?? "")")
    }

    @Test func secondOrderGradientsAgreeWithFiniteDifferences() {
        // Hessian-vector product of L = sum(sdpa(q, k, v)^2) in q: a double backward through the
        // composed path against central differences of the first gradient along u.
        let q = fx["sdpa_boolmask_q"], k = fx["sdpa_boolmask_k"], v = fx["sdpa_boolmask_v"], mask = fx["sdpa_boolmask_mask"]
        let u = Tensor.normal(q.shape, dtype: .float64, generator: Generator(seed: 2))
        func firstGradient(_ q0: Tensor, createGraph: Bool) -> (leaf: Tensor, grad: Tensor) {
            let leaf = q0.requiringGrad()
            let out = scaledDotProductAttention(query: leaf, key: k, value: v, attnMask: mask)
            return (leaf, Autograd.grad([(out * out).sum()], [leaf], createGraph: createGraph)[0]!)
        }
        let (leaf, g) = firstGradient(q, createGraph: true)
        let hvp = Autograd.grad([(g * u).sum()], [leaf])[0]!
        let eps = 1e-6
        let fd = (firstGradient(q + u * eps, createGraph: false).grad - firstGradient(q - u * eps, createGraph: false).grad) / (2 * eps)
        expectClose(hvp, fd, atol: 1e-6, rtol: 1e-4, "Hessian-vector product")
    }

    /// Inputs that span several query and key tiles (108-112 x 128, the last of each ragged),
    /// broadcast masks and a transposed (non-contiguous) query.
    @Test(arguments: [DType.float32, .float64])
    func tiledKernelMatchesComposedPathAcrossTiles(_ dtype: DType) {
        let g = Generator(seed: 5)
        let q = Tensor.normal([2, 3, 230, 9], dtype: dtype, generator: g)
        let k = Tensor.normal([2, 3, 131, 9], dtype: dtype, generator: g)
        let v = Tensor.normal([2, 1, 131, 5], dtype: dtype, generator: g)   // broadcast over heads
        let qT = Tensor.normal([2, 3, 9, 230], dtype: dtype, generator: g).transposed(-2, -1)
        let boolMask = Tensor.uniform([230, 131], generator: g) .> 0.3
        let floatMask = Tensor.normal([2, 1, 230, 131], dtype: dtype, generator: g)
        let tol = dtype == .float32 ? 2e-5 : 1e-12
        for (name, query, mask, causal) in [("plain", q, nil, false), ("bool", q, boolMask, false),
                                            ("float", q, floatMask, false), ("causal", q, nil, true),
                                            ("transposed", qT, boolMask, false)] as [(String, Tensor, Tensor?, Bool)] {
            let fast = withNoGrad { scaledDotProductAttention(query: query, key: k, value: v, attnMask: mask, isCausal: causal) }
            let slow = scaledDotProductAttention(query: query.requiringGrad(), key: k, value: v, attnMask: mask, isCausal: causal)
            #expect(slow.requiresGrad)
            #expect(fast.shape == [2, 3, 230, 5])
            expectClose(fast, slow.detached(), atol: tol, rtol: tol, "\(dtype) \(name)")
        }
    }

    /// A head's keys and values packed once for all its query blocks (values wider than one packed
    /// strip, causal blocks that use part of a packed tile), and a head too large for the packing
    /// budget, packed per query block instead: both as the composed path.
    @Test(arguments: [DType.float32, .float64])
    func headPackingAndItsFallbackMatchTheComposedPath(_ dtype: DType) {
        let g = Generator(seed: 9)
        let tol = dtype == .float32 ? 3e-5 : 1e-12
        for (l, s, e, ev, packed) in [(230, 300, 12, 37, true), (120, 2200, 64, 64, false)] {
            let q = Tensor.normal([1, 2, l, e], dtype: dtype, generator: g), k = Tensor.normal([1, 2, s, e], dtype: dtype, generator: g)
            let v = Tensor.normal([1, 2, s, ev], dtype: dtype, generator: g)
            for causal in [false, true] {
                let recorder = AttentionWorkspaceRecorder()
                // One thread, so the recorded bytes are one worker's.
                let fast = Threading.withThreads(1) {
                    AttentionWorkspaceRecorder.$current.withValue(recorder) {
                        withNoGrad { scaledDotProductAttention(query: q, key: k, value: v, isCausal: causal) }
                    }
                }
                let slow = scaledDotProductAttention(query: q.requiringGrad(), key: k, value: v, isCausal: causal)
                expectClose(fast, slow.detached(), atol: tol, rtol: tol, "\(dtype) L \(l) S \(s) causal \(causal)")
                // The tiles alone take well under 1 MiB per thread; packing adds the head's tiles.
                let tilesOnly = scaledDotProductAttentionWorkspaceBytes(valueDim: ev, dtype: dtype, threads: 1) - attentionHeadPackingBytes
                #expect(recorder.calls.count == 1)
                #expect(((recorder.calls.first ?? 0) > tilesOnly) == packed, "L \(l) S \(s): head packing \(packed)")
            }
        }
    }

    /// Heads split from a `[B, L, 3 * H * E]` projection by views are read in place, and the output
    /// takes the query's layout, so its heads merge back by a view (no copy either way); values are
    /// bitwise those of contiguous inputs, also with a fully masked row (written 0, not left unset).
    @Test func headViewsAreReadInPlaceAndTheOutputMergesByAView() {
        let g = Generator(seed: 21)
        let (b, l, h, e) = (2, 37, 3, 8)
        let qkv = Tensor.normal([b, l, 3 * h * e], generator: g)
        func heads(_ i: Int) -> Tensor {
            qkv.narrow(axis: 2, start: i * h * e, length: h * e).reshaped([b, l, h, e]).transposed(1, 2)
        }
        let (q, k, v) = (heads(0), heads(1), heads(2))
        #expect(!q.isContiguous)
        var allowed = [Bool](repeating: true, count: l * l)
        for j in 0..<l { allowed[5 * l + j] = false }  // query 5 sees no key
        let mask = Tensor(allowed, shape: [l, l])
        let viewed = withNoGrad { scaledDotProductAttention(query: q, key: k, value: v, attnMask: mask) }
        let copied = withNoGrad {
            scaledDotProductAttention(query: q.contiguous(), key: k.contiguous(), value: v.contiguous(), attnMask: mask)
        }
        #expect(viewed.shape == [b, h, l, e])
        expectBitwiseEqual(viewed, copied)
        #expect(viewed.transposed(1, 2).isContiguous)  // [B, L, H, E] in memory: the merge is a view
        #expect(copied.isContiguous)
        #expect(viewed.select(axis: 2, index: 5).floats.allSatisfy { $0 == 0 })
        let composed = scaledDotProductAttention(query: q.requiringGrad(), key: k, value: v, attnMask: mask)
        expectClose(viewed, composed.detached(), atol: 2e-6, rtol: 2e-5)
    }

    @Test func tiledWorkspaceDoesNotGrowWithSequenceLength() {
        // The composed path would need L*S*4 = 64 MiB for the scores of this one head.
        let g = Generator(seed: 1)
        let n = 4096
        let q = Tensor.normal([1, n, 2], generator: g), k = Tensor.normal([1, n, 2], generator: g)
        let v = Tensor.normal([1, n, 2], generator: g)
        let recorder = AttentionWorkspaceRecorder()
        let out = AttentionWorkspaceRecorder.$current.withValue(recorder) {
            withNoGrad { scaledDotProductAttention(query: q, key: k, value: v, isCausal: true) }
        }
        #expect(out.shape == [1, n, 2])
        #expect(!out.doubles.contains { !$0.isFinite })
        let small = AttentionWorkspaceRecorder.$current.withValue(recorder) {
            withNoGrad { scaledDotProductAttention(query: q[0..., 0..<256], key: k[0..., 0..<256], value: v[0..., 0..<256]) }
        }
        #expect(small.shape == [1, 256, 2])
        #expect(recorder.calls.count == 2)
        guard recorder.calls.count == 2 else { return }
        let threads = Threading.maxThreads
        let bound = scaledDotProductAttentionWorkspaceBytes(valueDim: 2, dtype: .float32, threads: threads)
        #expect(recorder.calls[0] <= bound && recorder.calls[1] <= bound)
        #expect(recorder.calls[0] < n * n * 4 / 16, "workspace \(recorder.calls[0]) bytes; scores would be \(n * n * 4)")
        // Causal row 0 attends to key 0 only.
        expectClose(out[0, 0], v[0, 0], atol: 1e-6, rtol: 0, "causal first row")
    }

    /// NaN as PyTorch's default CPU kernel: with `isCausal` only the rows that see the NaN key
    /// become NaN; an explicit mask is added as a bias, so NaN + (-inf) poisons every row.
    @Test func nanInAKeyFollowsPyTorch() {
        var keys = fx["sdpa_basic_k"].doubles   // [2, 2, 4, 5]
        keys[2 * 5] = .nan                       // batch 0, head 0, key 2
        let k = Tensor(keys, shape: [2, 2, 4, 5]), q = fx["sdpa_basic_q"], v = fx["sdpa_basic_v"]
        let tril = Tensor((0..<12).map { $0 % 4 <= $0 / 4 }, shape: [3, 4])
        for (name, mask, causal) in [("isCausal", nil, true), ("mask", tril, false)] as [(String, Tensor?, Bool)] {
            let composed = scaledDotProductAttention(query: q.requiringGrad(), key: k, value: v, attnMask: mask, isCausal: causal).detached()
            let tiled = withNoGrad { scaledDotProductAttention(query: q, key: k, value: v, attnMask: mask, isCausal: causal) }
            for (path, out) in [("composed", composed), ("tiled", tiled)] {
                #expect(out[0, 0, 0].doubles.allSatisfy { causal ? $0.isFinite : $0.isNaN }, "\(name) \(path): row 0")
                #expect(out[0, 0, 1].doubles.allSatisfy { causal ? $0.isFinite : $0.isNaN }, "\(name) \(path): row 1")
                #expect(out[0, 0, 2].doubles.allSatisfy { $0.isNaN }, "\(name) \(path): row 2 sees the NaN")
                #expect(out[1].doubles.allSatisfy { $0.isFinite }, "\(name) \(path): other batch entries are untouched")
            }
        }
    }

    @Test func emptyQueryAndZeroDimensions() {
        let q = Tensor.zeros([2, 0, 4]), k = Tensor.normal([2, 3, 4]), v = Tensor.normal([2, 3, 5])
        #expect(withNoGrad { scaledDotProductAttention(query: q, key: k, value: v) }.shape == [2, 0, 5])
        #expect(scaledDotProductAttention(query: q.requiringGrad(), key: k, value: v).shape == [2, 0, 5])
    }

    @Test func dropoutDropsWheneverPositiveAndIsSeeded() {
        let q = fx["sdpa_basic_q"], k = fx["sdpa_basic_k"], v = fx["sdpa_basic_v"]
        let plain = scaledDotProductAttention(query: q, key: k, value: v)
        let a = scaledDotProductAttention(query: q, key: k, value: v, dropoutP: 0.5, generator: Generator(seed: 3))
        let b = scaledDotProductAttention(query: q, key: k, value: v, dropoutP: 0.5, generator: Generator(seed: 3))
        expectBitwiseEqual(a, b, "same seed")
        #expect(compare(a, plain, atol: 1e-6, rtol: 0) != nil, "dropout changed nothing")
        let all = scaledDotProductAttention(query: q, key: k, value: v, dropoutP: 1, generator: Generator(seed: 3))
        #expect(all.doubles.allSatisfy { $0 == 0 })
    }

    @Test func defaultScaleIsInverseSquareRootOfE() {
        let q = fx["sdpa_basic_q"], k = fx["sdpa_basic_k"], v = fx["sdpa_basic_v"]
        let e = Double(q.shape[3])
        expectClose(scaledDotProductAttention(query: q, key: k, value: v, scale: 1 / e.squareRoot()),
                    scaledDotProductAttention(query: q, key: k, value: v), atol: 0, rtol: 0)
        let manual = (q.matmul(k.transposed(-2, -1)) / e.squareRoot()).softmax(axis: -1).matmul(v)
        expectClose(withNoGrad { scaledDotProductAttention(query: q, key: k, value: v) }, manual, atol: 1e-13, rtol: 1e-12)
    }

    @Test func maskWithIsCausalStops() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let x = Tensor.zeros([2, 3, 4])
            _ = scaledDotProductAttention(query: x, key: x, value: x, attnMask: Tensor.ones([3, 3]), isCausal: true)
        }
        #expect(standardErrorText(result).contains("Explicit attn_mask should not be set when is_causal=True"))
    }

    @Test func gqaHeadsMustDivide() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = scaledDotProductAttention(query: Tensor.zeros([1, 3, 2, 4]), key: Tensor.zeros([1, 2, 2, 4]),
                                          value: Tensor.zeros([1, 2, 2, 4]), enableGQA: true)
        }
        #expect(standardErrorText(result).contains("Number of heads in key and value must divide the number of heads in query"))
    }

    @Test func mismatchedEmbeddingStops() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = scaledDotProductAttention(query: Tensor.zeros([2, 3]), key: Tensor.zeros([4, 5]), value: Tensor.zeros([4, 5]))
        }
        #expect(standardErrorText(result).contains("query and key must have the same embedding size"))
    }

    @Test(arguments: [(6, 8), (5, 7), (50, 16)])
    func sinusoidalPositionalEncodingMatchesTutorialFormula(_ length: Int, _ dModel: Int) {
        let pe = sinusoidalPositionalEncoding(length: length, dModel: dModel, dtype: .float64)
        expectClose(pe, fx["pe_\(length)_\(dModel)"], atol: 1e-14, rtol: 1e-12, "pe \(length)x\(dModel)")
        #expect(sinusoidalPositionalEncoding(length: length, dModel: dModel).dtype == .float32)
    }
}
