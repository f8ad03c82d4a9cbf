import Ember
import Testing
import _EmberTestSupport

/// Bitwise equality of two tensors (shape, dtype and every bit).
func bitwiseEqual(_ a: Tensor, _ b: Tensor) -> Bool {
    a.shape == b.shape && a.dtype == b.dtype && zip(a.doubles, b.doubles).allSatisfy { $0.bitPattern == $1.bitPattern }
}

/// Every computing leaf of the tree applied to one fixed input, concatenated (in `modules()` order).
func treeOutput(_ root: Module) -> Tensor {
    let x = withGenerator(Generator(seed: 77)) { Tensor.normal([3, 4]) }
    let outputs = root.modules().compactMap { m -> Tensor? in
        switch m {
        case let l as Linear: l(x)
        case let d as Dropout: d(x)
        case let b as BatchNorm1d: b(x)
        default: nil
        }
    }
    return outputs.isEmpty ? x : Tensor.cat(outputs, axis: 0)
}

/// Traversal, state dicts and evaluation output of random trees.
@Suite struct TreePropertyTests {
    static let cases = ModeCase.sequence(150, base: 1001)

    @Test func namedModulesListsEachModuleOnceInADeterministicPreOrder() {
        expectProperty("namedModules", Self.cases) { c in
            var g = c.generator()
            let root = g.tree(valueSeed: c.seed)
            let tree = root.description
            let listed = root.module.namedModules()
            let ids = listed.map { ObjectIdentifier($0.module) }
            if Set(ids).count != ids.count { return ("a module is listed twice: \(listed.map(\.path))", tree) }
            if Set(ids) != Set(root.all.map { ObjectIdentifier($0.module) }) {
                return ("listed \(ids.count) modules, the tree has \(root.all.count): \(listed.map(\.path))", tree)
            }
            if Set(listed.map(\.path)).count != listed.count { return ("a path repeats: \(listed.map(\.path))", tree) }
            if listed.first?.path != "" || listed.first?.module !== root.module { return ("the root is not first", tree) }
            for (i, entry) in listed.enumerated().dropFirst() {
                let parentListed = listed[..<i].contains { $0.path.isEmpty || entry.path.hasPrefix($0.path + ".") }
                if !parentListed { return ("'\(entry.path)' is listed before any module holding it", tree) }
            }
            let again = root.module.namedModules()
            if again.map(\.path) != listed.map(\.path) || !zip(again, listed).allSatisfy({ $0.module === $1.module }) {
                return ("a second call lists \(again.map(\.path))", tree)
            }
            // Another tree of the same shape lists the same paths, unless it holds sets: their order
            // differs between instances, so which path reaches a shared module first differs too.
            var twin = c.generator()
            let other = twin.tree(valueSeed: c.seed + 1).module.namedModules().map(\.path)
            let mine = listed.map(\.path)
            let hasSets = mine.contains { $0.contains("members.") }
            if hasSets ? other.count != mine.count : other != mine {
                return ("a tree of the same shape lists \(other), this one \(mine)", tree)
            }
            return nil
        }
    }

    @Test func strictStateDictRoundTripIsBitwiseAndKeepsModes() {
        expectProperty("state dict round trip", Self.cases) { c in
            var g = c.generator()
            let source = g.tree(valueSeed: c.seed)
            g.scramble(source)
            source.module.withMode(.training) { _ = treeOutput(source.module) }  // running statistics move
            var twin = c.generator()
            let destination = twin.tree(valueSeed: c.seed + 1)
            twin.scramble(destination)
            let tree = source.description
            let modes = ModeSnapshot(destination)
            let saved = source.module.stateDict()
            do { try destination.module.loadStateDict(saved, strict: true) } catch {
                return ("the strict load threw: \(error)", tree)
            }
            let loaded = destination.module.stateDict()
            if loaded.keys != saved.keys { return ("keys \(loaded.keys) after loading \(saved.keys)", tree) }
            for (key, value) in saved where !bitwiseEqual(loaded[key]!, value) {
                return ("'\(key)' differs after the round trip", tree)
            }
            if let d = differences(ModeSnapshot(destination), modes, destination) { return ("loading changed modes: \(d)", tree) }
            return nil
        }
    }

    @Test func evalOutputIsBitwiseRepeatableAndMatchesAnEvaluatingScope() {
        expectProperty("eval output", Self.cases) { c in
            var g = c.generator()
            let root = g.tree(valueSeed: c.seed)
            for n in root.all { n.module.unpin() }
            withGenerator(Generator(seed: 5)) { _ = treeOutput(root.module) }  // running statistics move
            let tree = root.description
            root.module.eval()
            let first = withGenerator(Generator(seed: 1)) { treeOutput(root.module) }
            let second = withGenerator(Generator(seed: 2)) { treeOutput(root.module) }
            if !bitwiseEqual(first, second) { return ("two eval passes with different generators differ", tree) }
            root.module.train()
            let scoped = root.module.evaluating { withGenerator(Generator(seed: 3)) { treeOutput(root.module) } }
            if !bitwiseEqual(scoped, first) { return ("an evaluating {} pass differs from eval()", tree) }
            if !root.all.allSatisfy({ $0.module.isTraining }) { return ("evaluating {} did not restore training", tree) }
            return nil
        }
    }
}
