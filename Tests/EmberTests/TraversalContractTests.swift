import Ember
import Testing
import _EmberTestSupport

/// A module whose only state is the parameter and buffer it is given, so two can share them.
final class SharedStateHolder: Module {
    var weight: Parameter
    var stat: Buffer
    init(_ weight: Parameter, _ stat: Buffer) {
        self.weight = weight
        self.stat = stat
    }
}

/// Two holders of the same parameter and buffer (tied weights).
final class TiedHolders: Module {
    var first: SharedStateHolder
    var second: SharedStateHolder
    override init() {
        let p = Parameter(Tensor.zeros([2])), b = Buffer(Tensor.zeros([1]))
        first = SharedStateHolder(p, b)
        second = SharedStateHolder(p, b)
    }
}

class BaseWithChild: Module {
    var first = Probe()
}

final class DerivedWithChild: BaseWithChild {
    var second = Probe()
}

/// A helper class (not a module) that keeps modules by name.
final class NamedCache {
    var byName: [String: Probe] = ["enc": Probe()]
}

/// Traversal promises beyond discovery: de-duplication, superclass order, `apply`, `zeroGrad`.
@Suite struct TraversalContractTests {
    /// PyTorch: `named_parameters()` and `named_buffers()` list a tied tensor once, under its first
    /// name; `state_dict()` keeps both names.
    @Test func sharedParametersAndBuffersAreListedOnce() {
        let m = TiedHolders()
        #expect(m.namedParameters().map(\.name) == ["first.weight"])
        #expect(m.namedBuffers().map(\.name) == ["first.stat"])
        #expect(m.stateDict().keys == ["first.weight", "first.stat", "second.weight", "second.stat"])
    }

    @Test func aChildHeldTwiceIsOneChild() {
        final class Twice: Module {
            let probe = Probe()
            lazy var list = [probe, probe]
        }
        let m = Twice()
        _ = m.list
        #expect(m.namedChildren().map(\.name) == ["probe"])
        #expect(m.children().count == 1)
    }

    /// PyTorch registers a base class's submodules first (its `__init__` runs first).
    @Test func superclassFieldsComeFirst() {
        let m = DerivedWithChild()
        #expect(m.namedModules().map(\.path) == ["", "first", "second"])
        #expect(m.stateDict().keys == ["first.weight", "first.stat", "second.weight", "second.stat"])
    }

    @Test func applyVisitsEveryModuleAfterItsChildren() {
        let m = TwoProbes()
        var order: [ObjectIdentifier] = []
        m.apply { order.append(ObjectIdentifier($0)) }
        #expect(order.count == 4)
        #expect(order.last == ObjectIdentifier(m), "the root comes last")
        for parent in m.modules() {
            let at = order.firstIndex(of: ObjectIdentifier(parent))!
            for child in parent.children() {
                #expect(order.firstIndex(of: ObjectIdentifier(child))! < at)
            }
        }
    }

    @Test func zeroGradKeepsZeroFilledGradientsOnRequest() throws {
        let p = Probe()
        (p.weight.value * 3.0).sum().backward()
        p.zeroGrad(setToNil: false)
        let g = try #require(p.weight.grad)
        #expect(g.shape == [2] && g.floats == [0, 0])
        p.zeroGrad()
        #expect(p.weight.grad == nil)
    }

    @Test func warningNamesAModuleHiddenInADictionaryByKey() {
        final class Holder: Module { var cache = NamedCache() }
        let warnings = Holder().discoveryWarnings()
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("'cache.byName.enc'") == true, "\(warnings)")
    }

    /// The warning goes to standard error once per path, however often the tree is walked.
    @Test func hiddenModuleWarningIsPrintedOnce() async {
        let result = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            final class Holder: Module { var cache = NamedCache() }
            let h = Holder()
            h.eval()
            h.train()
            _ = h.parameters()
        }
        let text = standardErrorText(result)
        #expect(text.components(separatedBy: "Ember warning").count - 1 == 1, "\(text)")
    }
}
