import Ember
@testable import EmberNN
import Testing
import _EmberTestSupport

/// A leaf module with one parameter and one buffer, counting mode-change notifications.
final class Probe: Module {
    var weight = Parameter(Tensor.zeros([2]))
    var stat = Buffer(Tensor.zeros([1]))
    var changes = 0
    override func didChangeMode() { changes += 1 }
}

@propertyWrapper struct Logged<Value> {
    var wrappedValue: Value
}

struct Pair { var left: Probe; var right: Probe? }

enum Head { case linear(Probe), none }

final class NotAModule { var hidden = Probe() }

final class Back: Module {
    var parent = WeakModuleReference<Module>(nil)
    var probe = Probe()
}

/// Holds children in every container kind Swift offers.
final class Zoo: Module {
    var field = Probe()
    var optional: Probe? = Probe()
    var missing: Probe? = nil
    var array = [Probe(), Probe()]
    var dictionary: [String: Probe] = ["cls": Probe(), "box": Probe()]
    var intKeyed: [Int: Probe] = [2: Probe(), 1: Probe()]
    var tuple = (Probe(), named: Probe())
    var pair = Pair(left: Probe(), right: Probe())
    var head = Head.linear(Probe())
    @Logged var wrapped = Probe()
    var nested: [[String: Probe?]] = [["x": Probe()]]
    var scalars: [Float] = Array(repeating: 0, count: 100_000)
    var back = Back()
    override init() {
        super.init()
        back.parent = WeakModuleReference(self)
    }
}

@Suite struct ModuleDiscoveryTests {
    static let zooModulePaths = [
        "", "field", "optional", "array.0", "array.1", "dictionary.box", "dictionary.cls",
        "int_keyed.1", "int_keyed.2", "tuple.0", "tuple.named", "pair.left", "pair.right",
        "head.linear", "wrapped", "nested.0.x", "back", "back.probe",
    ]

    @Test func zooNamesFollowPyTorchContainerNaming() {
        let zoo = Zoo()
        #expect(zoo.namedModules().map(\.path) == Self.zooModulePaths)
        let params = zoo.namedParameters().map(\.name)
        #expect(params == Self.zooModulePaths.dropFirst().filter { $0 != "back" }.map { $0 + ".weight" })
        #expect(zoo.namedBuffers().map(\.name).first == "field.stat")
    }

    @Test func evalAndTrainReachEveryContainerKind() {
        let zoo = Zoo()
        #expect(zoo.modules().allSatisfy { $0.isTraining })
        zoo.eval()
        #expect(zoo.modules().count == Self.zooModulePaths.count)
        #expect(zoo.modules().allSatisfy { !$0.isTraining })
        zoo.train()
        #expect(zoo.modules().allSatisfy { $0.isTraining })
        let probes = zoo.modules().compactMap { $0 as? Probe }
        #expect(probes.allSatisfy { $0.changes == 2 })
    }

    @Test func childEvalDoesNotFollowWeakBackReference() {
        let zoo = Zoo()
        zoo.back.eval()
        #expect(!zoo.back.isTraining && !zoo.back.probe.isTraining)
        #expect(zoo.isTraining && zoo.field.isTraining)
    }

    @Test func sharedModuleVisitedOnceUnderFirstName() {
        final class Shared: Module {
            let a = Probe()
            lazy var b = a
            var list: [Probe] = []
        }
        let m = Shared()
        _ = m.b
        m.list = [m.a]
        #expect(m.namedModules().map(\.path) == ["", "a"])
        #expect(m.namedParameters().map(\.name) == ["a.weight"])
        // state_dict is not deduplicated, as in PyTorch.
        #expect(m.stateDict().keys == ["a.weight", "a.stat", "b.weight", "b.stat", "list.0.weight", "list.0.stat"])
        m.eval()
        #expect(m.a.changes == 1)
    }

    @Test func moduleHiddenInNonModuleClassWarnsWithPath() {
        final class Holder: Module { var helper = NotAModule(); var ok = Probe() }
        let h = Holder()
        let warnings = h.discoveryWarnings()
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("'helper' is a NotAModule") == true)
        #expect(warnings.first?.contains("'helper.hidden'") == true)
        h.eval()
        #expect(h.helper.hidden.isTraining, "non-module classes are not descended")
    }

    @Test(arguments: [("runningMean", "running_mean"), ("numBatchesTracked", "num_batches_tracked"),
                      ("fc1", "fc1"), ("weightIH", "weight_ih"), ("HTTPServer", "http_server"), ("layer2Norm", "layer2_norm")])
    func propertyNamesBecomeSnakeCaseKeys(_ swiftName: String, _ key: String) {
        #expect(snakeCased(swiftName) == key)
    }

    @Test func scalarCollectionsAreLeavesDecidedWithoutReflection() {
        // Reflecting a 100k-element [Float] element by element would make every walk slow.
        #expect((Zoo().scalars as Any) is ModuleTreeLeaf)
        #expect(([[1.0: "a"]] as Any) is ModuleTreeLeaf)
        #expect(!(([Probe()]) as Any is ModuleTreeLeaf))
        #expect(!((Optional(Probe())) as Any is ModuleTreeLeaf))
    }
}
