import EmberAutograd
import EmberTensor

/// The hooks registered on one module. A leaf of module discovery.
final class ModuleHooks: ModuleTreeLeaf {
    typealias ForwardPre = (Module, Tensor) -> Tensor?
    typealias Forward = (Module, Tensor, Tensor) -> Tensor?
    typealias Backward = (Module, _ gradInput: [Tensor?], _ gradOutput: [Tensor?]) -> [Tensor?]?
    typealias LoadPre = (Module, inout StateDict, _ prefix: String) -> Void
    typealias LoadPost = (Module, inout IncompatibleKeys) -> Void

    var forwardPre: [(id: Int, body: ForwardPre)] = []
    var forward: [(id: Int, body: Forward)] = []
    var backward: [(id: Int, body: Backward)] = []
    var loadPre: [(id: Int, body: LoadPre)] = []
    var loadPost: [(id: Int, body: LoadPost)] = []

    var runsAroundForward: Bool { !forwardPre.isEmpty || !forward.isEmpty || !backward.isEmpty }
    var isEmpty: Bool { !runsAroundForward && loadPre.isEmpty && loadPost.isEmpty }

    func remove(_ id: Int) {
        forwardPre.removeAll { $0.id == id }
        forward.removeAll { $0.id == id }
        backward.removeAll { $0.id == id }
        loadPre.removeAll { $0.id == id }
        loadPost.removeAll { $0.id == id }
    }

    /// The listing's note, e.g. `hooks: 1 forward pre, 2 forward`.
    var summary: String? {
        let parts = [(forwardPre.count, "forward pre"), (forward.count, "forward"), (backward.count, "backward"),
                     (loadPre.count, "load pre"), (loadPost.count, "load post")]
            .filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }
        return parts.isEmpty ? nil : "hooks: " + parts.joined(separator: ", ")
    }
}

/// The gradient of a module's output, kept between the output's backward and the input's.
private final class BackwardHookState {
    var gradOutput: [Tensor?] = [nil]
}

// Hooks run around `forward(_:)` when the module is called as `module(x)`
// (`callAsFunction(_:)`), which is how containers call their children. A subclass's own
// `callAsFunction` with other arguments (an LSTM's state, MaxUnpool's indices) calls `forward`
// directly or computes on its own and runs no hooks.
extension Module {
    /// Registers `hook`, called before each forward with the input; return a tensor to replace
    /// the input, or `nil` to keep it.
    ///
    /// PyTorch parity: `register_forward_pre_hook(hook)`, for the single-tensor input Ember's
    /// `forward` takes.
    @discardableResult
    public func registerForwardPreHook(_ hook: @escaping (_ module: Module, _ input: Tensor) -> Tensor?) -> RemovableHandle {
        addHook { $0.forwardPre.append(($1, hook)) }
    }

    /// Registers `hook`, called after each forward with the input and the output; return a
    /// tensor to replace the output, or `nil` to keep it.
    ///
    /// PyTorch parity: `register_forward_hook(hook)`.
    @discardableResult
    public func registerForwardHook(_ hook: @escaping (_ module: Module, _ input: Tensor, _ output: Tensor) -> Tensor?) -> RemovableHandle {
        addHook { $0.forward.append(($1, hook)) }
    }

    /// Registers `hook`, called during backward once the gradient with respect to the module's
    /// input is known, with that gradient (`[nil]` when the input requires none) and the
    /// gradient of the output; return a replacement for the input gradient, or `nil` to keep it.
    ///
    /// PyTorch parity: `register_full_backward_hook(hook)`: the same arguments, order and
    /// replacement rule, for one input and one output.
    @discardableResult
    public func registerFullBackwardHook(
        _ hook: @escaping (_ module: Module, _ gradInput: [Tensor?], _ gradOutput: [Tensor?]) -> [Tensor?]?
    ) -> RemovableHandle {
        addHook { $0.backward.append(($1, hook)) }
    }

    /// Registers `hook`, called by `loadStateDict` on a tree that contains this module, before
    /// anything is checked or loaded, with the whole state dict and this module's key prefix
    /// (`"encoder.0."`, `""` for the root); it may rewrite the state dict (rename keys of an
    /// old checkpoint, convert values).
    ///
    /// PyTorch parity: `register_load_state_dict_pre_hook(hook)`, with the state dict passed
    /// `inout` in place of PyTorch's mutable dict and error lists.
    @discardableResult
    public func registerLoadStateDictPreHook(_ hook: @escaping (_ module: Module, _ stateDict: inout StateDict, _ prefix: String) -> Void) -> RemovableHandle {
        addHook { $0.loadPre.append(($1, hook)) }
    }

    /// Registers `hook`, called after `loadStateDict` loaded a tree containing this module, with
    /// the keys that did not match; it may change them (clearing a key a non-strict load may
    /// ignore).
    ///
    /// PyTorch parity: `register_load_state_dict_post_hook(hook)`. As in PyTorch, a strict load
    /// that fails throws before post hooks run.
    @discardableResult
    public func registerLoadStateDictPostHook(_ hook: @escaping (_ module: Module, _ incompatibleKeys: inout IncompatibleKeys) -> Void) -> RemovableHandle {
        addHook { $0.loadPost.append(($1, hook)) }
    }

    /// The note shown in the listing for this module's hooks (`nil` when there are none).
    public var hooksSummary: String? { hookTable?.summary }

    private func addHook(_ add: (ModuleHooks, Int) -> Void) -> RemovableHandle {
        let table = hookTable ?? ModuleHooks()
        hookTable = table
        let id = RemovableHandle.nextID()
        add(table, id)
        return RemovableHandle(id: id) { [weak self, weak table] in
            guard let table else { return }
            table.remove(id)
            if table.isEmpty, let self, self.hookTable === table { self.hookTable = nil }
        }
    }

    /// `forward(input)` with this module's hooks around it and, under anomaly detection, its
    /// name recorded on the ops it creates.
    func forwardWithHooks(_ input: Tensor) -> Tensor {
        guard let table = hookTable, table.runsAroundForward else {
            return AnomalyDetection.withModule(errorContext) { forward(input) }
        }
        var x = input
        for (_, hook) in table.forwardPre {
            if let replaced = hook(self, x) { x = replaced }
        }
        let hooks = table.backward.map(\.body)
        let state = BackwardHookState()
        let recording = !hooks.isEmpty && GradMode.isEnabled
        if recording && x.requiresGrad {
            // Identity on the input: its backward sees the input gradient.
            x = x.identityForHooks { g in
                var gradInput: [Tensor?] = [g]
                for hook in hooks {
                    if let replaced = hook(self, gradInput, state.gradOutput) {
                        precondition(replaced.count == 1, "\(self.errorContext): a full backward hook returned \(replaced.count) input gradients for 1 input")
                        gradInput = replaced
                    }
                }
                return gradInput[0]
            }
        }
        var y = AnomalyDetection.isActive ? AnomalyDetection.withModule(errorContext) { forward(x) } : forward(x)
        for (_, hook) in table.forward {
            if let replaced = hook(self, x, y) { y = replaced }
        }
        if recording && y.requiresGrad {
            let inputTracked = x.requiresGrad
            // Identity on the output: its backward keeps the output gradient; with an input
            // that needs no gradient, the hooks run here with `[nil]`, as PyTorch's do.
            y = y.identityForHooks { g in
                state.gradOutput = [g]
                if !inputTracked { for hook in hooks { _ = hook(self, [nil], [g]) } }
                return g
            }
        }
        return y
    }
}

extension Tensor {
    /// The same values, recorded as an op whose backward passes the gradient through `body`
    /// (which may replace it; `nil` stops it).
    fileprivate func identityForHooks(_ body: @escaping (Tensor) -> Tensor?) -> Tensor {
        HookIdentity(body: body).apply([self])[0]
    }
}

/// The identity as a custom function, so that hooks see gradients at a module's boundary.
private struct HookIdentity: AutogradFunction {
    let body: (Tensor) -> Tensor?
    func forward(_ ctx: FunctionContext, _ inputs: [Tensor]) -> [Tensor] { [inputs[0]] }
    func backward(_ ctx: FunctionContext, _ gradOutputs: [Tensor]) -> [Tensor?] { [body(gradOutputs[0])] }
}

extension Module {
    /// Runs the load-state-dict pre hooks of every module in this tree on `stateDict`.
    func runLoadPreHooks(_ stateDict: inout StateDict, prefix: String) {
        for (path, module) in namedModules() {
            guard let table = module.hookTable, !table.loadPre.isEmpty else { continue }
            let p = prefix + (path.isEmpty ? "" : path + ".")
            for (_, hook) in table.loadPre { hook(module, &stateDict, p) }
        }
    }

    /// Runs the load-state-dict post hooks of every module in this tree.
    func runLoadPostHooks(_ keys: inout IncompatibleKeys) {
        for (_, module) in namedModules() {
            guard let table = module.hookTable, !table.loadPost.isEmpty else { continue }
            for (_, hook) in table.loadPost { hook(module, &keys) }
        }
    }
}
