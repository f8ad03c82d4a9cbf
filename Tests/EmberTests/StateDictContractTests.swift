import Ember
import Testing
import _EmberTestSupport

/// StateDict's ordering rules and the refusal of unstable keys.
@Suite struct StateDictContractTests {
    @Test func aRepeatedKeyKeepsItsFirstPositionAndItsLastValue() {
        var sd = StateDict([("a", Tensor([1] as [Float])), ("b", Tensor([2] as [Float])), ("a", Tensor([3] as [Float]))])
        #expect(sd.keys == ["a", "b"] && sd.count == 2)
        #expect(sd["a"]?.floats == [3])
        sd["b"] = Tensor([4] as [Float])
        #expect(sd.keys == ["a", "b"] && sd["b"]?.floats == [4])
        #expect(sd.map(\.key) == ["a", "b"])
    }

    /// A set's order differs between runs, so state inside one would get unstable keys.
    @Test func stateInsideASetStopsStateDictWithAMessage() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            final class Holder: Module { var tags: Set<HashableProbe> = [HashableProbe()] }
            _ = Holder().stateDict()
        }
        #expect(standardErrorText(result).contains("stateDict: module 'tags.0' holds state but is inside a Set"))
    }
}
