import Ember

// Random module trees for the property tests of the mode contract: holder modules whose stored
// properties are each container kind discovery promises to reach, composed at random, plus the
// generator's own record of the tree (an oracle independent of discovery).

/// SplitMix64: a small seeded generator, so every tree can be rebuilt from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

final class FieldHolder: Module {
    var first: Module
    var second: Module?
    init(_ children: [Module]) { first = children[0]; second = children.count > 1 ? children[1] : nil }
}

final class ArrayHolder: Module {
    var items: [Module]
    init(_ children: [Module]) { items = children }
}

final class StringKeyHolder: Module {
    var items: [String: Module]
    init(_ children: [Module]) { items = Dictionary(uniqueKeysWithValues: children.enumerated().map { ("k\(9 - $0.offset)", $0.element) }) }
}

final class IntKeyHolder: Module {
    var items: [Int: Module]
    init(_ children: [Module]) { items = Dictionary(uniqueKeysWithValues: children.enumerated().map { (10 - 3 * $0.offset, $0.element) }) }
}

final class OptionalArrayHolder: Module {
    var items: [Module]?
    init(_ children: [Module]) { items = children }
}

final class TupleHolder: Module {
    var pair: (Module, second: Module?)
    init(_ children: [Module]) { pair = (children[0], children.count > 1 ? children[1] : nil) }
}

struct ModuleBox {
    var head: Module
    var tail: [Module]
}

final class StructHolder: Module {
    var box: ModuleBox
    init(_ children: [Module]) { box = ModuleBox(head: children[0], tail: Array(children.dropFirst())) }
}

enum ModuleSlot {
    case one(Module)
    case many(Module, rest: [Module])
}

final class EnumHolder: Module {
    var slot: ModuleSlot
    init(_ children: [Module]) { slot = children.count == 1 ? .one(children[0]) : .many(children[0], rest: Array(children.dropFirst())) }
}

final class NestedHolder: Module {
    var grid: [[String: Module?]]
    init(_ children: [Module]) { grid = children.map { ["m": $0, "none": nil] } }
}

/// A set member; its subtree holds no state (a stateful module in a set stops `stateDict()`).
final class SetMember: Module, Hashable {
    var inner: [Module]
    init(_ children: [Module]) { inner = children }
    static func == (a: SetMember, b: SetMember) -> Bool { a === b }
    func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

final class SetTreeHolder: Module {
    var members: Set<SetMember>
    init(_ children: [SetMember]) { members = Set(children) }
}

/// The generator's record of one module: what it is and which modules it holds, in order.
final class TreeNode {
    let module: Module
    let label: String
    var children: [TreeNode]
    init(_ module: Module, _ label: String, _ children: [TreeNode] = []) {
        self.module = module
        self.label = label
        self.children = children
    }

    /// Every node reachable from here, each once.
    var all: [TreeNode] {
        var seen = Set<ObjectIdentifier>(), out: [TreeNode] = [], stack = [self]
        while let n = stack.popLast() {
            guard seen.insert(ObjectIdentifier(n.module)).inserted else { continue }
            out.append(n)
            stack.append(contentsOf: n.children.reversed())
        }
        return out
    }

    /// An indented listing with modes and pins, printed when a property fails.
    func dump(_ indent: String = "", seen: inout Set<ObjectIdentifier>) -> String {
        let m = module
        let shared = !seen.insert(ObjectIdentifier(m)).inserted
        var line = "\(indent)\(label) [\(m.mode)\(m.pinnedMode.map { ", pinned \($0)" } ?? "")]"
        if shared { return line + " (shared, listed above)\n" }
        line += "\n"
        for c in children { line += c.dump(indent + "  ", seen: &seen) }
        return line
    }

    var description: String {
        var seen = Set<ObjectIdentifier>()
        return dump(seen: &seen)
    }
}

/// Builds random trees of every container kind, nested up to `maxDepth` holders deep, with
/// shared leaves and random pins.
struct ModeTreeGenerator {
    var rng: SplitMix64
    let maxDepth: Int
    let maxWidth: Int
    private var statefulPool: [TreeNode] = []
    private var statelessPool: [TreeNode] = []

    init(seed: UInt64, maxDepth: Int, maxWidth: Int) {
        rng = SplitMix64(seed: seed)
        self.maxDepth = maxDepth
        self.maxWidth = maxWidth
    }

    /// A tree and its record. Parameter values come from a generator seeded by `valueSeed`, so two
    /// trees of one shape can hold different values.
    mutating func tree(valueSeed: UInt64) -> TreeNode {
        withGenerator(Generator(seed: valueSeed)) { node(depth: 0, stateless: false) }
    }

    private mutating func leaf(stateless: Bool) -> TreeNode {
        let pool = stateless ? statelessPool : statefulPool
        if !pool.isEmpty, Int.random(in: 0..<5, using: &rng) == 0 {
            return pool[Int.random(in: 0..<pool.count, using: &rng)]  // a shared module
        }
        let n: TreeNode
        switch Int.random(in: 0..<(stateless ? 2 : 4), using: &rng) {
        case 0: n = TreeNode(Dropout(0.5), "Dropout")
        case 1: n = TreeNode(AlphaDropout(0.3), "AlphaDropout")
        case 2: n = TreeNode(Linear(4, 4), "Linear")
        default: n = TreeNode(BatchNorm1d(4), "BatchNorm1d")
        }
        if stateless { statelessPool.append(n) } else { statefulPool.append(n) }
        return n
    }

    private mutating func children(_ range: ClosedRange<Int>, depth: Int, stateless: Bool) -> [TreeNode] {
        let count = Int.random(in: range.lowerBound...Swift.min(range.upperBound, Swift.max(range.lowerBound, maxWidth)), using: &rng)
        return (0..<count).map { _ in node(depth: depth + 1, stateless: stateless) }
    }

    private mutating func node(depth: Int, stateless: Bool) -> TreeNode {
        if depth >= maxDepth || (depth > 0 && Int.random(in: 0..<3, using: &rng) == 0) {
            return leaf(stateless: stateless)
        }
        let kind = Int.random(in: 0..<10, using: &rng)
        if kind == 9 {
            let members = (0..<Int.random(in: 1...2, using: &rng)).map { _ -> TreeNode in
                let inner = depth + 1 < maxDepth ? children(0...2, depth: depth + 1, stateless: true) : []
                return TreeNode(SetMember(inner.map(\.module)), "SetMember", inner)
            }
            return TreeNode(SetTreeHolder(members.map { $0.module as! SetMember }), "SetTreeHolder", members)
        }
        let kids = children(kind == 1 ? 0...3 : (kind == 0 || kind == 5) ? 1...2 : 1...3, depth: depth, stateless: stateless)
        let modules = kids.map(\.module)
        let (holder, label): (Module, String) = switch kind {
        case 0: (FieldHolder(modules), "FieldHolder")
        case 1: (ArrayHolder(modules), "ArrayHolder")
        case 2: (StringKeyHolder(modules), "StringKeyHolder")
        case 3: (IntKeyHolder(modules), "IntKeyHolder")
        case 4: (OptionalArrayHolder(modules), "OptionalArrayHolder")
        case 5: (TupleHolder(modules), "TupleHolder")
        case 6: (StructHolder(modules), "StructHolder")
        case 7: (EnumHolder(modules), "EnumHolder")
        default: (NestedHolder(modules), "NestedHolder")
        }
        return TreeNode(holder, label, kids)
    }

    /// Pins about one module in six to a random mode, then switches random modules, so the tree
    /// starts from mixed modes.
    mutating func scramble(_ root: TreeNode) {
        let nodes = root.all
        for n in nodes where Int.random(in: 0..<6, using: &rng) == 0 {
            n.module.pin(Bool.random(using: &rng) ? .training : .evaluation)
        }
        for n in nodes where Bool.random(using: &rng) {
            n.module.train(Bool.random(using: &rng))
        }
    }
}

extension TreeNode {
    /// The modules `train()`/`eval()` on this node may change: those reachable through unpinned
    /// modules only (a pinned module and its subtree are left as they are).
    var switchable: Set<ObjectIdentifier> {
        var out = Set<ObjectIdentifier>(), stack = [self]
        while let n = stack.popLast() {
            guard n.module.pinnedMode == nil, out.insert(ObjectIdentifier(n.module)).inserted else { continue }
            stack.append(contentsOf: n.children)
        }
        return out
    }

    /// The modules `pin(_:)` on this node switches: itself, and those reachable from it through
    /// modules that were not pinned already.
    var pinnable: Set<ObjectIdentifier> {
        var out: Set<ObjectIdentifier> = [ObjectIdentifier(module)], stack = children
        while let n = stack.popLast() {
            guard n.module.pinnedMode == nil, out.insert(ObjectIdentifier(n.module)).inserted else { continue }
            stack.append(contentsOf: n.children)
        }
        return out
    }

    /// Each module's training flag, in `all` order.
    var flags: [Bool] { all.map(\.module.isTraining) }
}
