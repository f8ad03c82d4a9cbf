import Ember
import Foundation
import Testing
import _EmberTestSupport

/// Joining (cat, stack) and splitting (split, chunk), against PyTorch fixtures
/// (`Tools/fixtures/gen_views.py`) and exact expectations.
@Suite struct JoinTests {
    let fx = try! Fixture("views")
    var x: Tensor { fx["x"] }  // [2, 3, 4] float32
    var x2: Tensor { fx["x2"] }  // [2, 1, 4]
    var m: Tensor { fx["m"] }  // [4, 6]
    var c: Tensor { fx["c"] }  // [3, 1]
    var s: Tensor { fx["s"] }  // 0-d

    static func sample(_ shape: Shape, phase: Double = 0) -> Tensor {
        Tensor((0..<shape.elementCount).map { sin(Double($0) * 0.9 + phase) }, shape: shape)
    }

    // MARK: cat

    @Test func catMatchesPyTorch() {
        let x = x, x2 = x2, m = m, c = c
        expectBitwiseEqual(Tensor.cat([x, x2, x[.all, ..<2]], axis: 1), fx["cat1"])
        let strided = x.transposed(1, 2)[.all, ..<3, .all].transposed(1, 2)[.all, .all, ..<2]
        expectBitwiseEqual(Tensor.cat([x, strided], axis: -1), fx["cat_neg"])
        expectBitwiseEqual(Tensor.cat([x, Tensor.zeros([2, 0, 4]), x2], axis: 1), fx["cat_empty"])
        expectBitwiseEqual(Tensor.cat([c.expanded(to: [3, 2]), m[..<3, ..<2]], axis: 1), fx["cat_expanded"])
        let single = Tensor.cat([m.t])
        expectBitwiseEqual(single, fx["t"])
        #expect(single.isContiguous)
    }

    @Test func catSkipsEmptyVectorsAndPromotesDTypes() {
        let x = x
        // Empty 1-d tensors are skipped (any rank of the others), but still take part in promotion.
        let legacy = Tensor.cat([Tensor.zeros([0], dtype: .float64), x, Tensor.zeros([0])])
        expectBitwiseEqual(legacy, fx["cat_legacy_empty"])
        #expect(legacy.dtype == .float64)
        expectBitwiseEqual(Tensor.cat([Tensor.zeros([2, 3]), Tensor.zeros([0])], axis: 1), Tensor.zeros([2, 3]))
        #expect(Tensor.cat([Tensor.zeros([0]), Tensor.zeros([0])]).shape == [0])
        #expect(Tensor.cat([Tensor.zeros([0]), Tensor.zeros([2, 0])]).shape == [2, 0])
        expectBitwiseEqual(Tensor.cat([Tensor.arange(0, 3), Tensor([0.5, 1.5] as [Float])]), fx["cat_int_float"])
        expectBitwiseEqual(Tensor.cat([Tensor([true, false]), Tensor.arange(0, 2)]), fx["cat_bool_int"])
        expectBitwiseEqual(Tensor.cat([Tensor([0.1 as Float]), Tensor([0.1 as Double])]), fx["cat_f32_f64"])
        #expect(Tensor.cat([Tensor([true]), Tensor([false])]).dtype == .bool)
    }

    @Test func catGradientsMatchFiniteDifferences() {
        let a = Self.sample([2, 3, 4]), b = Self.sample([2, 1, 4], phase: 1), e = Tensor.zeros([2, 0, 4], dtype: .float64)
        #expect(checkGradients([a, b]) { Tensor.cat([$0[0], $0[1], $0[0][.all, 1...]], axis: 1) } == nil)
        #expect(checkGradients([a, b, e]) { Tensor.cat([$0[0], $0[2], $0[1]], axis: -2) } == nil)
        #expect(checkGradients([a]) { Tensor.cat([$0[0].transposed(0, 2), $0[0].transposed(0, 2)], axis: 2) } == nil)
        #expect(checkGradients([b]) { Tensor.cat([Tensor.zeros([0], dtype: .float64), $0[0]]) } == nil)
    }

    @Test func catGradientKeepsEachInputsDType() {
        let a = Tensor([1, 2] as [Float]).requiringGrad()
        let b = Tensor([3] as [Double]).requiringGrad()
        let i = Tensor([4, 5])
        let out = Tensor.cat([a, i, b])
        #expect(out.dtype == .float64)
        (out * Tensor([1, 2, 3, 4, 5] as [Double])).sum().backward()
        expectBitwiseEqual(a.grad!, Tensor([1, 2] as [Float]))
        expectBitwiseEqual(b.grad!, Tensor([5] as [Double]))
    }

    // MARK: stack

    @Test func stackMatchesPyTorch() {
        let x = x, m = m, s = s
        expectBitwiseEqual(Tensor.stack([x, x * 2, x.transposed(1, 2).transposed(1, 2)]), fx["stack0"])
        expectBitwiseEqual(Tensor.stack([m, m.t.t + 1], axis: -1), fx["stack_neg"])
        expectBitwiseEqual(Tensor.stack([m, m + 1, m + 2], axis: 1), fx["stack_mid"])
        expectBitwiseEqual(Tensor.stack([s, s * 2]), fx["stack_0d"])
        expectBitwiseEqual(Tensor.stack([Tensor([1]), Tensor([2.5 as Float])]), fx["stack_promote"])
        #expect(Tensor.stack([Tensor.zeros([0]), Tensor.zeros([0])], axis: 1).shape == [0, 2])
    }

    @Test func stackGradientsMatchFiniteDifferences() {
        let a = Self.sample([2, 3]), b = Self.sample([2, 3], phase: 2)
        #expect(checkGradients([a, b]) { Tensor.stack([$0[0], $0[1], $0[0]]) } == nil)
        #expect(checkGradients([a, b]) { Tensor.stack([$0[0].t, $0[1].t], axis: -1) } == nil)
        #expect(checkGradients([a, b]) { Tensor.stack([$0[0], $0[1]], axis: 1) } == nil)
        #expect(checkGradients([Tensor(0.3 as Double)]) { Tensor.stack([$0[0], $0[0] * 2]) } == nil)
    }

    // MARK: split / chunk

    /// Sizes along `axis` of each piece.
    func sizes(_ pieces: [Tensor], _ axis: Int) -> [Int] { pieces.map { $0.shape[axis] } }

    @Test func splitFollowsPyTorchsSizeRules() {
        let v = Tensor.arange(0, 5)
        #expect(sizes(v.split(size: 2), 0) == [2, 2, 1])
        #expect(sizes(v.split(size: 5), 0) == [5])
        #expect(sizes(v.split(size: 7), 0) == [5])
        #expect(sizes(Tensor.zeros([0]).split(size: 2), 0) == [0])
        #expect(sizes(Tensor.zeros([0]).split(size: 0), 0) == [0])
        let pieces = v.split(sizes: [2, 0, 3])
        #expect(pieces.map { $0.scalars(as: Int64.self) } == [[0, 1], [], [2, 3, 4]])
        #expect(sizes(Tensor.zeros([2, 5]).split(size: 3, axis: -1), 1) == [3, 2])
    }

    @Test func chunkFollowsPyTorchsSizeRule() {
        #expect(sizes(Tensor.zeros([6]).chunk(4), 0) == [2, 2, 2])
        #expect(sizes(Tensor.zeros([5]).chunk(3), 0) == [2, 2, 1])
        #expect(sizes(Tensor.zeros([6]).chunk(3), 0) == [2, 2, 2])
        #expect(sizes(Tensor.zeros([2]).chunk(5), 0) == [1, 1])
        #expect(sizes(Tensor.zeros([0]).chunk(3), 0) == [0, 0, 0])
        #expect(sizes(Tensor.zeros([2, 5]).chunk(2, axis: -1), 1) == [3, 2])
        let pieces = Tensor.arange(0, 5).chunk(2)
        #expect(pieces.map { $0.scalars(as: Int64.self) } == [[0, 1, 2], [3, 4]])
    }

    @Test func splitPiecesAreViewsThatNeverAlias() throws {
        let m = m
        let pieces = m.t.split(size: 4, axis: 0)
        try #require(pieces.count == 2)
        #expect(pieces.allSatisfy { $0.storage === m.storage })
        expectBitwiseEqual(pieces[0], m.t[..<4])
        expectBitwiseEqual(Tensor.cat(pieces), m.t)
        var first = pieces[0]
        first.fillRaw(3)
        #expect(first.doubles.allSatisfy { $0 == 3 })
        expectBitwiseEqual(pieces[1], m.t[4...])
        expectBitwiseEqual(m, fx["m"])
        #expect(Tensor.cat([m, m]).storage !== m.storage)  // cat copies
    }

    @Test func splitAndChunkGradientsMatchFiniteDifferences() {
        let a = Self.sample([5, 3])
        #expect(checkGradients([a]) { let p = $0[0].split(size: 2); return p[0] * p[1] + p[0] } == nil)
        #expect(checkGradients([a]) { let p = $0[0].split(sizes: [1, 0, 4]); return p[2].sum(axis: 0) + p[0] + p[1].sum() } == nil)
        #expect(checkGradients([a]) { let p = $0[0].t.chunk(2, axis: 1); return Tensor.cat([p[1], p[0]], axis: 1) } == nil)
        #expect(checkGradients([a]) { $0[0].chunk(3)[2] } == nil)
    }

    // MARK: errors

    @Test(arguments: joinPreconditionCases.keys.sorted())
    func stopsWithPyTorchMessage(_ key: String) async throws {
        try await expectPreconditionFailure(key)
    }
}

let joinPreconditionCases: [String: PreconditionCase] = [
    "cat.empty": .init(message: "cat: torch.cat(): expected a non-empty list of Tensors", body: { _ = Tensor.cat([]) }),
    "cat.0d": .init(message: "cat: zero-dimensional tensor (at position 1) cannot be concatenated",
                    body: { _ = Tensor.cat([Tensor.zeros([0]), Tensor(1 as Float)]) }),
    "cat.rank": .init(message: "cat: Tensors must have same number of dimensions: got 2 and 1",
                      body: { _ = Tensor.cat([Tensor.zeros([2, 3]), Tensor.zeros([3])]) }),
    "cat.size": .init(
        message: "cat: Sizes of tensors must match except in dimension 0. Expected size 3 but got size 4 for tensor number 1 in the list.",
        body: { _ = Tensor.cat([Tensor.zeros([2, 3]), Tensor.zeros([2, 4])]) }),
    "cat.sizeEmpty": .init(
        message: "cat: Sizes of tensors must match except in dimension 0. Expected size 3 but got size 4 for tensor number 2 in the list.",
        body: { _ = Tensor.cat([Tensor.zeros([2, 3]), Tensor.zeros([0]), Tensor.zeros([0, 4])]) }),
    "cat.axis": .init(message: "cat: Dimension out of range (expected to be in range of [-2, 1], but got 2)",
                      body: { _ = Tensor.cat([Tensor.zeros([2, 3])], axis: 2) }),
    "cat.axisWithEmpty": .init(message: "cat: Dimension out of range (expected to be in range of [-2, 1], but got 5)",
                               body: { _ = Tensor.cat([Tensor.zeros([2, 3]), Tensor.zeros([0])], axis: 5) }),
    "stack.empty": .init(message: "stack: stack expects a non-empty TensorList", body: { _ = Tensor.stack([]) }),
    "stack.size": .init(message: "stack: stack expects each tensor to be equal size, but got [2, 3] at entry 0 and [3, 2] at entry 1",
                        body: { _ = Tensor.stack([Tensor.zeros([2, 3]), Tensor.zeros([3, 2])]) }),
    "stack.rank": .init(message: "stack: stack expects each tensor to be equal size, but got [2] at entry 0 and [1, 2] at entry 1",
                        body: { _ = Tensor.stack([Tensor.zeros([2]), Tensor.zeros([1, 2])]) }),
    "stack.axis": .init(message: "stack: Dimension out of range (expected to be in range of [-3, 2], but got 3)",
                        body: { _ = Tensor.stack([Tensor.zeros([2, 3])], axis: 3) }),
    "split.zero": .init(message: "split: split_size can only be 0 if dimension size is 0, but got dimension size of 5",
                        body: { _ = Tensor.zeros([5]).split(size: 0) }),
    "split.negative": .init(message: "split: split expects split_size be non-negative, but got split_size=-1",
                            body: { _ = Tensor.zeros([5]).split(size: -1) }),
    "split.0d": .init(message: "split: split expects at least a 1-dimensional tensor",
                      body: { _ = Tensor(1 as Float).split(size: 1) }),
    "split.axis": .init(message: "split: Dimension out of range (expected to be in range of [-2, 1], but got 2)",
                        body: { _ = Tensor.zeros([2, 5]).split(size: 2, axis: 2) }),
    "splitSizes.sum": .init(
        message: "split: split_with_sizes expects split_sizes to sum exactly to 5 (input tensor's size at dimension 0), but got split_sizes=[2, 2]",
        body: { _ = Tensor.zeros([5]).split(sizes: [2, 2]) }),
    "splitSizes.negative": .init(
        message: "split: split_with_sizes expects split_sizes have only non-negative entries, but got split_sizes=[6, -1]",
        body: { _ = Tensor.zeros([5]).split(sizes: [6, -1]) }),
    "splitSizes.0d": .init(message: "split: split expects at least a 1-dimensional tensor",
                           body: { _ = Tensor(1 as Float).split(sizes: [1]) }),
    "chunk.zero": .init(message: "chunk: chunk expects `chunks` to be greater than 0, got: 0",
                        body: { _ = Tensor.zeros([5]).chunk(0) }),
    "chunk.0d": .init(message: "chunk: chunk expects at least a 1-dimensional tensor",
                      body: { _ = Tensor(1 as Float).chunk(1) }),
]
