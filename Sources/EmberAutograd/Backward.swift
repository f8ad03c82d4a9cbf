import EmberTensor
import Synchronization

extension Tensor {
    /// Whether gradients are computed for this tensor. Setting it on a non-leaf is an error, as in
    /// PyTorch; only floating-point tensors can require gradients.
    ///
    /// PyTorch parity: `requires_grad` / `requires_grad_()`.
    public var requiresGrad: Bool {
        get { autograd?.requiresGrad ?? false }
        set {
            if let meta = autograd, !meta.isLeaf {
                preconditionFailure("requiresGrad: you can only change requires_grad flags of leaf variables (this tensor came from \(meta.opName)); use detached() first")
            }
            precondition(!newValue || dtype.isFloatingPoint,
                         "requiresGrad: only Tensors of floating point dtype can require gradients (this one is \(dtype))")
            if let meta = autograd { meta.requiresGrad = newValue } else if newValue {
                autograd = AutogradMeta(requiresGrad: true)
            }
        }
    }

    /// Returns a copy that requires gradients (a new leaf).
    public func requiringGrad(_ on: Bool = true) -> Tensor {
        var t = detached()
        t.requiresGrad = on
        return t
    }

    /// The gradient accumulated into this leaf by `backward()` (or into a non-leaf that called
    /// `retainGrad()`), `nil` before any backward.
    ///
    /// PyTorch parity: `.grad`.
    public var grad: Tensor? {
        get { autograd?.grad }
        nonmutating set {
            precondition(autograd != nil, "grad: this tensor does not require gradients; set requiresGrad first")
            autograd?.grad = newValue
        }
    }

    /// Whether this tensor is a leaf of the graph (not produced by a recorded op).
    public var isLeaf: Bool { autograd?.isLeaf ?? true }

    /// The name of the op that produced this tensor, when it was recorded (`"mul"`, `"matmul"`).
    public var gradFnName: String? { autograd.flatMap { $0.isLeaf ? nil : $0.opName } }

    /// Keeps this non-leaf's gradient after backward. PyTorch parity: `retain_grad()`.
    public func retainGrad() {
        precondition(tracksGrad, "retainGrad: can't retain_grad on Tensor that has requires_grad=False")
        autograd?.retainsGrad = true
    }

    /// The same values without gradient tracking (shares storage). PyTorch parity: `detach()`.
    public func detached() -> Tensor {
        var t = self
        t.autograd = nil
        return t
    }

    /// Computes gradients of this tensor with respect to every leaf that requires them and adds
    /// them to those leaves' `grad`.
    ///
    /// - Parameters:
    ///   - gradient: the upstream gradient, same shape as `self`; may be omitted only for a
    ///     one-element tensor (then it is 1).
    ///   - retainGraph: keep the graph so backward can run through it again; defaults to
    ///     `createGraph`.
    ///   - createGraph: record the backward computation itself, so that the accumulated
    ///     gradients can be differentiated again (every op on the way must support it; see
    ///     ``Autograd``).
    ///
    /// The walk is iterative (no recursion limit on deep graphs); gradients of broadcast operands
    /// are summed back to their shapes by each op's backward. A leaf's gradients from one pass are
    /// summed first, run through its hooks (``registerHook(_:)``), then added to `grad`.
    ///
    /// PyTorch parity: `Tensor.backward(gradient=None, retain_graph=None, create_graph=False)`,
    /// including its errors for a non-scalar without `gradient` and for a tensor that does not
    /// require grad.
    public func backward(_ gradient: Tensor? = nil, retainGraph: Bool? = nil, createGraph: Bool = false) {
        guard let root = autograd, root.requiresGrad else {
            preconditionFailure("backward: element 0 of tensors does not require grad and does not have a grad_fn (shape \(shape)); set requiresGrad on a leaf or run outside withNoGrad")
        }
        let seed = seedGradient(gradient, op: "backward")
        BackwardSweep(retainGraph: retainGraph ?? createGraph, createGraph: createGraph, targets: nil)
            .run(roots: [(root, seed)])
    }

    /// The gradient a backward pass starts from: `gradient` checked against this tensor's shape,
    /// or 1 for a one-element tensor.
    func seedGradient(_ gradient: Tensor?, op: String) -> Tensor {
        if let g = gradient {
            precondition(g.shape == shape, "\(op): gradient has shape \(g.shape) but the tensor has shape \(shape)")
            return g
        }
        precondition(count == 1, "\(op): grad can be implicitly created only for scalar outputs (this tensor has shape \(shape)); pass an upstream gradient")
        return Tensor.ones(shape, dtype: dtype)
    }
}

private let releasedGraphMessage = "backward: Trying to backward through the graph a second time (or directly access saved tensors after they have already been freed). Specify retainGraph: true on the first call."

/// One reverse-mode sweep: topological order by iterative depth-first search, then gradients flow
/// from the roots to the leaves, summed per node.
///
/// Bookkeeping lives on the nodes (`visited`, `pendingGrad`, `captured`) instead of a set and a
/// dictionary keyed by node identity: no hashing, one array for the order and one for the
/// search stack. Leaves collect their gradients in `pendingGrad` too and are finished after the
/// sweep: hooks see a leaf's total gradient of the pass, as in PyTorch.
///
/// With `targets` (``Autograd/grad(_:_:gradOutputs:retainGraph:createGraph:allowUnused:)``)
/// nothing is accumulated into `grad`: the targets' gradients are returned, and only the nodes
/// with a path to a target run their backward.
struct BackwardSweep {
    let retainGraph: Bool
    let createGraph: Bool
    let targets: [AutogradMeta]?
    /// Whether the walk stops at the targets instead of passing through them (only for targets
    /// that cut every path from the roots to the rest of the graph, as ``recomputedGradients``'s
    /// stand-ins do): a sweep inside another's backward then never touches the outer graph.
    let stopsAtTargets: Bool
    /// Tells this sweep's pending leaf gradients from those of a sweep it runs inside.
    let id = BackwardSweep.nextID()

    init(retainGraph: Bool, createGraph: Bool, targets: [AutogradMeta]?, stopsAtTargets: Bool = false) {
        self.retainGraph = retainGraph
        self.createGraph = createGraph
        self.targets = targets
        self.stopsAtTargets = stopsAtTargets
    }

    private static let counter = Atomic<Int>(0)
    /// Post-accumulate hooks registered and not removed (a hook whose tensor went away still
    /// counts): while none are, sweeps skip looking for leaves to finish early.
    static let postAccumulateHookCount = Atomic<Int>(0)
    /// How many sweeps with `createGraph` are running in the process (``creatingGraph`` reads
    /// the task's recording mode only when some are).
    static let graphCreatingSweeps = Atomic<Int>(0)
    private static func nextID() -> Int { counter.add(1, ordering: .relaxed).newValue }

    @discardableResult
    func run(roots: [(AutogradMeta, Tensor)]) -> [Tensor?] {
        for (root, _) in roots {
            precondition(!root.released, releasedGraphMessage)
        }
        if createGraph {
            BackwardSweep.graphCreatingSweeps.add(1, ordering: .relaxed)
            defer { BackwardSweep.graphCreatingSweeps.subtract(1, ordering: .relaxed) }
            return withGrad { sweep(roots) }
        }
        return withNoGrad { sweep(roots) }
    }

    private func sweep(_ roots: [(AutogradMeta, Tensor)]) -> [Tensor?] {
        let anomaly = AnomalyDetection.isActive ? AnomalyDetection.current : nil
        if let anomaly, anomaly.anomaly != nil { return targets.map { $0.map { _ in nil } } ?? [] }
        // A sweep inside another's backward (a checkpointed segment) may share targets: their
        // flags are put back as they were.
        let previouslyCaptured = targets?.map(\.captured) ?? []
        if let targets { for t in targets { t.captured = true } }
        defer { if let targets { for (t, was) in zip(targets, previouslyCaptured) { t.captured = was } } }

        // Post-order over non-leaf nodes reachable from the roots.
        var order: [AutogradMeta] = []
        var stack: [(node: AutogradMeta, next: Int)] = []
        for (root, _) in roots where root.hasBackward && !root.visited {
            root.visited = true
            stack.append((root, 0))
            while let (node, next) = stack.last {
                if next < node.inputs.count {
                    stack[stack.count - 1].next = next + 1
                    guard let child = node.inputs[next] else { continue }
                    if stopsAtTargets && child.captured { continue }
                    if child.hasBackward {
                        if !child.visited {
                            child.visited = true
                            stack.append((child, 0))
                        }
                    } else if child.released {
                        for n in order { n.visited = false }
                        for (n, _) in stack { n.visited = false }
                        preconditionFailure(releasedGraphMessage)
                    }
                } else {
                    stack.removeLast()
                    order.append(node)
                }
            }
        }
        // With targets, only nodes with a path to one need their backward (children come first
        // in post-order, so one pass decides).
        var needed: Set<ObjectIdentifier>? = nil
        if targets != nil {
            var set = Set<ObjectIdentifier>()
            for node in order where node.captured || node.inputs.contains(where: { input in
                guard let input else { return false }
                return input.captured || set.contains(ObjectIdentifier(input))
            }) {
                set.insert(ObjectIdentifier(node))
            }
            needed = set
        }

        var leaves: [AutogradMeta] = []
        // Leaf gradients pending in an outer sweep, put back when this one ends.
        var stashed: [(AutogradMeta, Tensor?, Int)] = []
        defer { for (leaf, grad, sweep) in stashed { leaf.pendingGrad = grad; leaf.pendingSweep = sweep } }
        var results: [ObjectIdentifier: Tensor] = [:]
        func send(_ g: Tensor, to input: AutogradMeta) {
            if !input.hasBackward && input.pendingSweep != id {
                if input.pendingGrad != nil { stashed.append((input, input.pendingGrad, input.pendingSweep)) }
                input.pendingGrad = nil
                input.pendingSweep = id
            }
            if let existing = input.pendingGrad {
                input.pendingGrad = createGraph ? existing + g : Kernels.add(existing, g)
            } else {
                input.pendingGrad = g
                if !input.hasBackward { leaves.append(input) }
            }
        }
        leaves.reserveCapacity(16)
        for (root, seed) in roots {
            if root.hasBackward || root.requiresGrad { send(createGraph ? seed : seed.detached(), to: root) }
        }

        // Leaves with post-accumulate hooks finish as soon as the last node that feeds them has
        // run (the one earliest in post-order), so their hooks run while backward goes on.
        var finishing: [[AutogradMeta]]? = nil
        if targets == nil && BackwardSweep.postAccumulateHookCount.load(ordering: .relaxed) > 0 {
            var lists = [[AutogradMeta]](repeating: [], count: order.count)
            var seen = Set<ObjectIdentifier>()
            for (position, node) in order.enumerated() {
                for case let input? in node.inputs where !input.hasBackward && input.postAccumulateHooks != nil {
                    if seen.insert(ObjectIdentifier(input)).inserted { lists[position].append(input) }
                }
            }
            finishing = lists
        }

        var i = order.count - 1
        while i >= 0 {
            let node = order[i]
            let position = i
            i -= 1
            defer {
                if let finishing {
                    for leaf in finishing[position] where leaf.pendingSweep == id { finish(leaf) }
                }
            }
            node.visited = false
            guard var grad = node.pendingGrad else { continue }
            node.pendingGrad = nil
            if let hooks = node.hooks { grad = runHooks(hooks, on: grad) }
            if targets == nil, node.retainsGrad { accumulate(grad, into: node) }
            if node.captured { results[ObjectIdentifier(node)] = grad }
            if let needed, !needed.contains(ObjectIdentifier(node)) { continue }
            guard let backward = node.backward else { continue }
            if createGraph {
                precondition(node.supportsDoubleBackward,
                             "backward: the derivative of \(node.opName)'s backward is not implemented, so createGraph cannot differentiate through it (gradients of gradients); \(AnomalyDetection.describe(node))")
            }
            let inputGrads = backward(grad)
            let inputs = node.inputs
            precondition(inputGrads.count == inputs.count,
                         "backward of \(node.opName) returned \(inputGrads.count) gradients for \(inputs.count) inputs")
            if let anomaly, let found = AnomalyDetection.check(inputGrads, of: node) {
                anomaly.anomaly = found
                for node in order.prefix(i + 1) { node.visited = false; node.pendingGrad = nil }
                for leaf in leaves { leaf.pendingGrad = nil }
                return targets.map { $0.map { _ in nil } } ?? []
            }
            let evalModeSource = node.evalModeSource
            for k in 0..<inputs.count {
                guard let input = inputs[k], let g = inputGrads[k] else { continue }
                if let evalModeSource, input.evalModeSource == nil { input.evalModeSource = evalModeSource }
                if input.hasBackward || input.requiresGrad { send(g, to: input) }
            }
            if !retainGraph {
                node.backward = nil
                node.inputs = []
                node.released = true
            }
        }

        if stopsAtTargets, let targets {
            for t in targets where t.hasBackward {
                if let g = t.pendingGrad { results[ObjectIdentifier(t)] = g }
                t.pendingGrad = nil
            }
        }
        for leaf in leaves {
            guard targets != nil else { finish(leaf); continue }
            if let grad = takeGradient(leaf), leaf.captured { results[ObjectIdentifier(leaf)] = grad }
        }
        return targets?.map { results[ObjectIdentifier($0)] } ?? []
    }

    /// A leaf's pending gradient of this sweep, through its hooks; `nil` when it has none (or it
    /// was finished already).
    private func takeGradient(_ leaf: AutogradMeta) -> Tensor? {
        guard let grad = leaf.pendingGrad else { return nil }
        leaf.pendingGrad = nil
        return leaf.hooks.map { runHooks($0, on: grad) } ?? grad
    }

    /// A leaf's gradient of this sweep accumulated into `grad`, then its post-accumulate hooks.
    private func finish(_ leaf: AutogradMeta) {
        guard let grad = takeGradient(leaf) else { return }
        accumulate(grad, into: leaf)
        if let post = leaf.postAccumulateHooks, let accumulated = leaf.grad {
            for hook in post { _ = hook.body(accumulated) }
        }
    }

    private func runHooks(_ hooks: [GradientHook], on grad: Tensor) -> Tensor {
        var g = grad
        for hook in hooks {
            if let replacement = hook.body(g) {
                precondition(replacement.shape == g.shape,
                             "hook: a gradient hook returned shape \(replacement.shape) for a gradient of shape \(g.shape)")
                g = replacement
            }
        }
        return g
    }

    /// Adds `g` to the gradient of `meta` (a leaf, or a non-leaf that retains its gradient).
    private func accumulate(_ g: Tensor, into meta: AutogradMeta) {
        if let existing = meta.grad {
            precondition(existing.shape == g.shape, "backward: gradient shape \(g.shape) does not match accumulated gradient shape \(existing.shape)")
            meta.grad = createGraph ? existing + g : Kernels.add(existing, g)
        } else {
            meta.grad = createGraph ? g : g.contiguousRaw
        }
    }
}

/// The gradients of `composite(inputs)` for the incoming gradient `g`, recorded: what a fused op's
/// backward returns when the engine runs it with `createGraph` (gradients of gradients), so that
/// the op only needs its forward written with recorded ops (`composite`), not a second backward.
///
/// The composite runs on stand-ins for the inputs (recorded identities), and a nested sweep
/// that stops at them differentiates it; the results reach the real inputs through the stand-ins.
package func recomputedGradients(_ inputs: [Tensor?], _ g: Tensor, _ composite: ([Tensor?]) -> Tensor) -> [Tensor?] {
    let standIns = inputs.map { x -> Tensor? in
        guard let x else { return nil }
        return x.tracksGrad ? x.recorded("identity", x, twice: true) { g in [g] } : x
    }
    let output = composite(standIns)
    let targets = standIns.compactMap { $0.flatMap { $0.tracksGrad ? $0.autograd : nil } }
    guard let root = output.autograd, root.requiresGrad, !targets.isEmpty else { return inputs.map { _ in nil } }
    let grads = BackwardSweep(retainGraph: true, createGraph: true, targets: targets, stopsAtTargets: true)
        .run(roots: [(root, g)])
    var k = 0
    return standIns.map { x in
        guard let x, x.tracksGrad else { return nil }
        defer { k += 1 }
        return grads[k] ?? Tensor.zeros(x.shape, dtype: x.dtype)
    }
}
