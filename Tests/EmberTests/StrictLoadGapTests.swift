import Ember
import Testing
import _EmberTestSupport

/// Strict and non-strict loading with one kind of problem at a time (the combined case is in
/// StateDictTests), plus the conversions PyTorch's `load_state_dict` performs.
@Suite struct StrictLoadGapTests {
    func expectStrictFailure(_ sd: StateDict, _ line: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let dst = TwoProbes()
        let before = dst.stateDict()
        #expect(sourceLocation: sourceLocation) {
            try dst.loadStateDict(sd)
        } throws: { error in
            (error as? StateDictError)?.description == "Error(s) in loading state_dict for TwoProbes:\n" + line
        }
        for (key, value) in before { expectBitwiseEqual(dst.stateDict()[key]!, value, "\(key) unchanged after a failed load") }
    }

    func source() -> StateDict {
        let src = TwoProbes()
        src.a.weight.value = Tensor([1, 2] as [Float])
        return src.stateDict()
    }

    @Test func strictRefusesAnUnexpectedKeyAlone() {
        var sd = source()
        sd["extra"] = Tensor.zeros([1])
        expectStrictFailure(sd, "\tUnexpected key(s) in state_dict: \"extra\". ")
    }

    @Test func strictRefusesAMissingKeyAlone() {
        var sd = source()
        sd["inner.0.weight"] = nil
        expectStrictFailure(sd, "\tMissing key(s) in state_dict: \"inner.0.weight\". ")
    }

    @Test func strictRefusesAShapeMismatchAlone() {
        var sd = source()
        sd["b.stat"] = Tensor.zeros([1, 1])
        expectStrictFailure(sd, "\tsize mismatch for b.stat: copying a param with shape torch.Size([1, 1]) from checkpoint, the shape in current model is torch.Size([1]).")
    }

    @Test func nonStrictLoadsWhatMatchesAndReportsTheRest() throws {
        var sd = source()
        sd["extra"] = Tensor.zeros([1])
        sd["b.weight"] = nil
        let dst = TwoProbes()
        dst.b.weight.value = Tensor([7, 8] as [Float])
        let keys = try dst.loadStateDict(sd, strict: false)
        #expect(keys.missingKeys == ["b.weight"] && keys.unexpectedKeys == ["extra"])
        #expect(dst.a.weight.value.floats == [1, 2] && dst.b.weight.value.floats == [7, 8])
    }

    @Test func valuesAreConvertedToTheModelsDType() throws {
        var sd = source()
        sd["a.weight"] = Tensor([0.1, 3] as [Double])
        let dst = TwoProbes()
        try dst.loadStateDict(sd)
        #expect(dst.a.weight.value.dtype == .float32)
        expectBitwiseEqual(dst.a.weight.value, Tensor([Float(0.1), 3]))
    }

    /// PyTorch accepts a missing `num_batches_tracked` and a one-element `[1]` tensor for a scalar.
    @Test func batchNormCounterMayBeMissingOrOneElement() throws {
        let src = BatchNorm1d(2)
        _ = src(Tensor(rows: [[1, 2], [3, 5]] as [[Float]]))
        var sd = src.stateDict()
        sd["num_batches_tracked"] = nil
        let dst = BatchNorm1d(2)
        #expect(try dst.loadStateDict(sd).description == "<All keys matched successfully>")
        expectBitwiseEqual(dst.runningMean!.value, src.runningMean!.value)
        #expect(dst.numBatchesTracked!.value.item(as: Int64.self) == 0)
        sd["num_batches_tracked"] = Tensor([Int64(5)])
        try dst.loadStateDict(sd)
        #expect(dst.numBatchesTracked!.value.rank == 0 && dst.numBatchesTracked!.value.item(as: Int64.self) == 5)
    }
}
