import Ember
import Testing
import _EmberTestSupport

/// A module that can sit in a `Set` (identity equality and hashing).
final class HashableProbe: Module, Hashable {
    var weight = Parameter(Tensor.zeros([1]))
    static func == (a: HashableProbe, b: HashableProbe) -> Bool { a === b }
    func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

/// Modules reachable only through an optional that wraps a container, never through a cast.
final class OptionalContainers: Module {
    var blocks: [Probe]? = [Probe(), Probe()]
    var heads: [String: Probe]? = ["cls": Probe()]
    var pair: Pair? = Pair(left: Probe(), right: nil)
    var absent: [Probe]? = nil
}

/// Modules held in sets, alone and nested in other containers.
final class SetHolder: Module {
    var tags: Set<HashableProbe> = [HashableProbe(), HashableProbe()]
    var grouped: [Set<HashableProbe>] = [[HashableProbe()]]
    var maybe: Set<HashableProbe>? = [HashableProbe()]
}

/// Discovery through optionals of containers and through sets: names, modes, parameters.
@Suite struct DiscoveryGapTests {
    @Test func optionalOfContainerIsDescended() {
        let m = OptionalContainers()
        #expect(m.namedModules().map(\.path) == ["", "blocks.0", "blocks.1", "heads.cls", "pair.left"])
        #expect(m.stateDict().keys.first == "blocks.0.weight")
        m.eval()
        #expect(!m.blocks![0].isTraining && !m.blocks![1].isTraining && !m.heads!["cls"]!.isTraining)
        #expect(!m.pair!.left.isTraining)
        m.train()
        #expect(m.modules().allSatisfy { $0.isTraining })
    }

    @Test func setElementsAreReachedByEvalTrainAndTraversal() {
        let m = SetHolder()
        let all = Array(m.tags) + Array(m.grouped[0]) + Array(m.maybe!)
        #expect(m.modules().count == 1 + all.count)
        #expect(Set(m.modules().dropFirst().map(ObjectIdentifier.init)) == Set(all.map(ObjectIdentifier.init)))
        #expect(m.parameters().count == all.count)
        m.eval()
        #expect(all.allSatisfy { !$0.isTraining })
        m.train()
        #expect(all.allSatisfy { $0.isTraining })
        let paths = m.namedModules().map(\.path).dropFirst()
        #expect(paths.filter { $0.hasPrefix("tags.") }.sorted() == ["tags.0", "tags.1"])
        #expect(paths.contains("grouped.0.0") && paths.contains("maybe.0"))
    }
}
