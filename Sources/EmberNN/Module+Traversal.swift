import EmberAutograd
import Foundation

extension Module {
    /// Walks the module tree from `self` in pre-order (each module's own members before its
    /// children), visiting each module once, with an explicit stack. `visit` receives each
    /// module's path (root is `""`) and its local members; returning `false` skips its subtree.
    func walk(_ visit: (String, Module, [NamedMember]) -> Bool) {
        var seen = Set<ObjectIdentifier>()
        var stack: [(String, Module)] = [("", self)]
        var warnings: [(String, String)] = []
        while let (path, module) = stack.popLast() {
            guard seen.insert(ObjectIdentifier(module)).inserted else { continue }
            module.lastKnownPath = path
            module.lastKnownRoot = self
            let members = module.localMembers(path: path) { warnings.append(($0, $1)) }
            guard visit(path, module, members) else { continue }
            for m in members.reversed() {
                if case .module(let child) = m.member { stack.append((join(path, m.name), child)) }
            }
        }
        for (path, message) in warnings where warnedPaths.insert(path).inserted {
            FileHandle.standardError.write(Data((message + "\n").utf8))
        }
    }

    /// Warnings about modules that discovery cannot reach (held by non-module objects), by path.
    /// Each is also printed once to standard error during traversal.
    public func discoveryWarnings() -> [String] {
        var out: [String] = []
        var seen = Set<ObjectIdentifier>()
        var stack: [(String, Module)] = [("", self)]
        while let (path, module) = stack.popLast() {
            guard seen.insert(ObjectIdentifier(module)).inserted else { continue }
            let members = module.localMembers(path: path) { _, message in out.append(message) }
            for m in members.reversed() {
                if case .module(let child) = m.member { stack.append((join(path, m.name), child)) }
            }
        }
        return out
    }

    /// Immediate children with their names, in declaration order; a child held twice is listed
    /// once, under its first name.
    ///
    /// PyTorch parity: `named_children()`. A module in an array field `blocks` is named `blocks.0`
    /// (PyTorch would list the `ModuleList` named `blocks` instead; plain Swift arrays are not
    /// modules).
    public func namedChildren() -> [(name: String, module: Module)] {
        var seen = Set<ObjectIdentifier>()
        var out: [(name: String, module: Module)] = []
        for m in localMembers(path: "", warn: { _, _ in }) {
            if case .module(let child) = m.member, seen.insert(ObjectIdentifier(child)).inserted {
                out.append((m.name, child))
            }
        }
        return out
    }

    /// Immediate children. PyTorch parity: `children()`.
    public func children() -> [Module] { namedChildren().map(\.module) }

    /// Every module in the tree, `self` first (named `""`), pre-order, each once.
    ///
    /// PyTorch parity: `named_modules()`.
    public func namedModules() -> [(path: String, module: Module)] {
        var out: [(path: String, module: Module)] = []
        walk { path, module, _ in out.append((path, module)); return true }
        return out
    }

    /// Every module in the tree. PyTorch parity: `modules()`.
    public func modules() -> [Module] { namedModules().map(\.module) }

    /// Every parameter with its dotted path, each once (first path wins), each module's own
    /// parameters before its children's.
    ///
    /// PyTorch parity: `named_parameters()`.
    public func namedParameters() -> [(name: String, parameter: Parameter)] {
        var seen = Set<ObjectIdentifier>()
        var out: [(name: String, parameter: Parameter)] = []
        walk { path, _, members in
            for m in members {
                if case .parameter(let p) = m.member, seen.insert(ObjectIdentifier(p)).inserted {
                    out.append((join(path, m.name), p))
                }
            }
            return true
        }
        return out
    }

    /// Every parameter, each once. PyTorch parity: `parameters()`.
    public func parameters() -> [Parameter] { namedParameters().map(\.parameter) }

    /// Every buffer (persistent or not) with its dotted path, each once.
    ///
    /// PyTorch parity: `named_buffers()`.
    public func namedBuffers() -> [(name: String, buffer: Buffer)] {
        var seen = Set<ObjectIdentifier>()
        var out: [(name: String, buffer: Buffer)] = []
        walk { path, _, members in
            for m in members {
                if case .buffer(let b) = m.member, seen.insert(ObjectIdentifier(b)).inserted {
                    out.append((join(path, m.name), b))
                }
            }
            return true
        }
        return out
    }

    /// Every buffer, each once. PyTorch parity: `buffers()`.
    public func buffers() -> [Buffer] { namedBuffers().map(\.buffer) }

    /// Calls `body` on every module of the tree, children before their parent, and returns `self`.
    ///
    /// PyTorch parity: `apply(fn)` (post-order, as PyTorch's recursion visits children first).
    @discardableResult
    public func apply(_ body: (Module) -> Void) -> Self {
        for m in modules().reversed() { body(m) }
        return self
    }

    /// Sets `requiresGrad` on every parameter of the tree (freezing with `false`); the mode is
    /// not touched. Returns `self`.
    ///
    /// PyTorch parity: `requires_grad_(requires_grad)`.
    @discardableResult
    public func requiresGrad(_ on: Bool) -> Self {
        for p in parameters() { p.requiresGrad = on }
        return self
    }

    /// Clears every parameter's gradient (to `nil` by default, as PyTorch 2 does).
    ///
    /// PyTorch parity: `zero_grad(set_to_none=True)`.
    public func zeroGrad(setToNil: Bool = true) {
        for p in parameters() {
            if setToNil { p.grad = nil } else if let g = p.grad { p.grad = g.zerosLike() }
        }
    }

    /// Total number of parameter elements.
    public var parameterCount: Int { parameters().reduce(0) { $0 + $1.count } }
}
