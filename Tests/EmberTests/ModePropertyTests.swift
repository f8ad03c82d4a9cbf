import Ember
import Testing
import _EmberTestSupport

/// One generated case: a seed and the size limits of its tree.
struct ModeCase: CustomStringConvertible {
    let seed: UInt64
    let depth: Int
    let width: Int
    var description: String { "seed \(seed) (maxDepth \(depth), maxWidth \(width))" }

    /// Cases in order of growing size, so the first failure found is among the smallest trees.
    static func sequence(_ count: Int, base: UInt64) -> [ModeCase] {
        (0..<count).map { i in ModeCase(seed: base + UInt64(i), depth: 1 + Swift.min(3, i / 10), width: 1 + Swift.min(2, i / 15)) }
    }

    func generator() -> ModeTreeGenerator { ModeTreeGenerator(seed: seed, maxDepth: depth, maxWidth: width) }
}

/// Records the first failing case (the smallest in the sequence) with its seed and tree.
func expectProperty(_ name: String, _ cases: [ModeCase], sourceLocation: SourceLocation = #_sourceLocation,
                    _ check: (ModeCase) -> (failure: String, tree: String)?) {
    for c in cases {
        if let (failure, tree) = check(c) {
            Issue.record("\(name) fails for \(c): \(failure)\ntree before the operation:\n\(tree)", sourceLocation: sourceLocation)
            return
        }
    }
}

/// Each module's flag and pin, by identity.
struct ModeSnapshot: Equatable {
    var flags: [ObjectIdentifier: Bool] = [:]
    var pins: [ObjectIdentifier: Mode?] = [:]
    init(_ root: TreeNode) {
        for n in root.all {
            flags[ObjectIdentifier(n.module)] = n.module.isTraining
            pins[ObjectIdentifier(n.module)] = n.module.pinnedMode
        }
    }
}

/// What `train(on)` on `target` must leave: every module it may switch in `on`, all others as
/// they were, pins unchanged.
func expectedAfterSwitch(_ before: ModeSnapshot, target: TreeNode, on: Bool) -> ModeSnapshot {
    var out = before
    for id in target.switchable { out.flags[id] = on }
    return out
}

func differences(_ actual: ModeSnapshot, _ expected: ModeSnapshot, _ root: TreeNode) -> String? {
    let wrong = root.all.filter { n in
        let id = ObjectIdentifier(n.module)
        return actual.flags[id] != expected.flags[id] || actual.pins[id] != expected.pins[id]
    }
    guard !wrong.isEmpty else { return nil }
    return wrong.map { n in
        let id = ObjectIdentifier(n.module)
        return "\(n.label) '\(n.module.lastKnownPath ?? "?")': training \(actual.flags[id]!) pin \(String(describing: actual.pins[id]!)), expected training \(expected.flags[id]!) pin \(String(describing: expected.pins[id]!))"
    }.joined(separator: "; ")
}

@Suite struct ModePropertyTests {
    static let cases = ModeCase.sequence(150, base: 1)

    @Test func trainEvalAndPinSwitchEveryReachableUnpinnedModuleAndNothingElse() {
        expectProperty("train/eval", Self.cases) { c in
            var g = c.generator()
            let root = g.tree(valueSeed: c.seed)
            g.scramble(root)
            let tree = root.description
            let nodes = root.all
            var operations: [String] = []
            for _ in 0..<4 {
                let target = Bool.random(using: &g.rng) ? root : nodes[Int.random(in: 0..<nodes.count, using: &g.rng)]
                let on = Bool.random(using: &g.rng)
                var expected = ModeSnapshot(root)
                let id = ObjectIdentifier(target.module)
                switch Int.random(in: 0..<4, using: &g.rng) {
                case 0:
                    expected = expectedAfterSwitch(expected, target: target, on: on)
                    if on { target.module.train() } else { target.module.eval() }
                    operations.append("\(on ? "train()" : "eval()") on \(target.label) '\(target.module.lastKnownPath ?? "")'")
                case 1:
                    for m in target.pinnable { expected.flags[m] = on }
                    expected.pins[id] = on ? .training : .evaluation
                    target.module.pin(on ? .training : .evaluation)
                    operations.append("pin(\(on ? "train" : "eval")) on \(target.label) '\(target.module.lastKnownPath ?? "")'")
                case 2:
                    expected.pins[id] = .some(nil)
                    target.module.unpin()
                    operations.append("unpin() on \(target.label) '\(target.module.lastKnownPath ?? "")'")
                default:
                    expected = expectedAfterSwitch(expected, target: target, on: false)
                    target.module.eval()
                    operations.append("eval() on \(target.label) '\(target.module.lastKnownPath ?? "")'")
                }
                if let d = differences(ModeSnapshot(root), expected, root) {
                    return ("after \(operations.joined(separator: ", then ")): \(d)", tree)
                }
            }
            return nil
        }
    }

    @Test func scopedSwitchesRestoreEachModulesModeAlsoOnThrowAndWhenNested() {
        expectProperty("scoped switch", Self.cases) { c in
            var g = c.generator()
            let root = g.tree(valueSeed: c.seed)
            g.scramble(root)
            let tree = root.description
            let nodes = root.all
            let before = ModeSnapshot(root)
            let target = Bool.random(using: &g.rng) ? root : nodes[Int.random(in: 0..<nodes.count, using: &g.rng)]
            let inner = nodes[Int.random(in: 0..<nodes.count, using: &g.rng)]
            let mode: Mode = Bool.random(using: &g.rng) ? .training : .evaluation
            let throwing = Bool.random(using: &g.rng)
            let form = Int.random(in: 0..<2, using: &g.rng)
            var failure: String?
            func body() throws {
                let inside = ModeSnapshot(root)
                if let d = differences(inside, expectedAfterSwitch(before, target: target, on: mode == .training), root) {
                    failure = "inside the \(mode) scope: \(d)"
                }
                inner.module.withMode(mode == .training ? .evaluation : .training) {}
                if failure == nil, let d = differences(ModeSnapshot(root), inside, root) {
                    failure = "after a nested scope on \(inner.label): \(d)"
                }
                if throwing { throw ScopeFailure() }
            }
            do {
                switch (form, mode) {
                case (0, .evaluation): try target.module.evaluating(body)
                case (0, .training): try target.module.training(body)
                default: try target.module.withMode(mode, body)
                }
            } catch {}
            if let failure { return (failure, tree) }
            if let d = differences(ModeSnapshot(root), before, root) {
                return ("after the \(mode) scope\(throwing ? " that threw" : ""): \(d)", tree)
            }
            return nil
        }
    }

    @Test func asyncScopedSwitchesRestoreEachModulesModeAlsoOnThrow() async {
        for c in Self.cases {
            var g = c.generator()
            let root = g.tree(valueSeed: c.seed)
            g.scramble(root)
            let tree = root.description
            let nodes = root.all
            let before = ModeSnapshot(root)
            let target = Bool.random(using: &g.rng) ? root : nodes[Int.random(in: 0..<nodes.count, using: &g.rng)]
            let mode: Mode = Bool.random(using: &g.rng) ? .training : .evaluation
            let throwing = Bool.random(using: &g.rng)
            var inside: ModeSnapshot?
            do {
                try await target.module.withMode(mode) {
                    await Task.yield()
                    inside = ModeSnapshot(root)
                    if throwing { throw ScopeFailure() }
                }
            } catch {}
            var failure: String?
            if let inside, let d = differences(inside, expectedAfterSwitch(before, target: target, on: mode == .training), root) {
                failure = "inside the async \(mode) scope: \(d)"
            } else if let d = differences(ModeSnapshot(root), before, root) {
                failure = "after the async \(mode) scope\(throwing ? " that threw" : ""): \(d)"
            }
            if let failure {
                Issue.record("async scoped switch fails for \(c): \(failure)\ntree before the operation:\n\(tree)")
                return
            }
        }
    }
}
