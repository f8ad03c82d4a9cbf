import Ember
import Testing
import _EmberTestSupport

@Suite struct StateDictTests {
    @Test func keysAndOrderOwnMembersThenChildren() {
        final class Net: Module {
            var scale = Parameter(Tensor.ones([1]))
            var temp = Buffer(Tensor.zeros([3]), persistent: false)
            var a = Probe()
            var heads: [String: Probe] = ["reg": Probe(), "cls": Probe()]
        }
        let sd = Net().stateDict()
        #expect(sd.keys == ["scale", "a.weight", "a.stat", "heads.cls.weight", "heads.cls.stat", "heads.reg.weight", "heads.reg.stat"])
        #expect(Net().namedBuffers().map(\.name).contains("temp"), "non-persistent buffers are listed but not saved")
    }

    @Test func loadCopiesInPlaceAndKeepsModeAndIdentity() throws {
        let src = TwoProbes(), dst = TwoProbes()
        src.a.weight.value = Tensor([1, 2] as [Float])
        dst.eval()
        let weight = dst.a.weight
        let result = try dst.loadStateDict(src.stateDict())
        #expect(result.description == "<All keys matched successfully>")
        #expect(dst.a.weight === weight)
        #expect(dst.a.weight.value.floats == [1, 2])
        #expect(dst.a.weight.requiresGrad)
        #expect(dst.modules().allSatisfy { !$0.isTraining }, "loading never changes the mode")
    }

    @Test func strictLoadReportsEveryProblemInPyTorchFormat() {
        let dst = TwoProbes()
        var sd = TwoProbes().stateDict()
        sd["b.stat"] = nil
        sd["extra.weight"] = Tensor.zeros([1])
        sd["a.weight"] = Tensor.zeros([3])
        let before = dst.a.weight.value
        #expect {
            try dst.loadStateDict(sd)
        } throws: { error in
            let e = error as! StateDictError
            return e.description == """
                Error(s) in loading state_dict for TwoProbes:
                \tMissing key(s) in state_dict: "b.stat". \n\tUnexpected key(s) in state_dict: "extra.weight". \n\tsize mismatch for a.weight: copying a param with shape torch.Size([3]) from checkpoint, the shape in current model is torch.Size([2]).
                """
        }
        expectBitwiseEqual(dst.a.weight.value, before, "a failed load changes nothing")
    }

    @Test func nonStrictLoadReturnsKeysButStillRejectsShapes() throws {
        let dst = TwoProbes()
        var sd = TwoProbes().stateDict()
        sd["b.stat"] = nil
        sd["extra"] = Tensor.zeros([1])
        let keys = try dst.loadStateDict(sd, strict: false)
        #expect(keys.missingKeys == ["b.stat"] && keys.unexpectedKeys == ["extra"])
        #expect(keys.description == "_IncompatibleKeys(missing_keys=['b.stat'], unexpected_keys=['extra'])")
        sd["a.weight"] = Tensor.zeros([5])
        #expect(throws: StateDictError.self) { try dst.loadStateDict(sd, strict: false) }
    }
}
