import EmberStorage

/// Gradient-tracking state of a tensor, shared by all copies of that tensor value.
///
/// A leaf (user-created tensor or a `Parameter`'s value) has no `backward` and accumulates into
/// `grad`. A non-leaf was produced by an op while recording: `backward` maps the gradient of this
/// tensor to gradients of `inputs` (aligned; `nil` where an input needs none).
/// The backward engine lives in EmberAutograd; this type is here only because `Tensor` stores it.
///
/// Performance: every field is read on each op that records and several times per node during
/// backward, from other modules. Swift checks exclusive access to a class's stored properties at
/// run time (a call into the runtime and a thread-local lookup per access; about a fifth of a tiny
/// network's training step). The graph is confined to one thread and no field is ever accessed
/// while an access to it is in progress, so the stored fields are `@exclusivity(unchecked)`. A
/// client module ignores that attribute when it accesses a stored property directly, so the
/// fields are private and reached through the computed properties below, whose accessors run in
/// this module.
package final class AutogradMeta {
    @exclusivity(unchecked) private var _requiresGrad: Bool
    @exclusivity(unchecked) private var _grad: Tensor?
    @exclusivity(unchecked) private var _inputs: [AutogradMeta?]
    @exclusivity(unchecked) private var _backward: ((Tensor) -> [Tensor?])?
    @exclusivity(unchecked) private var _released = false
    @exclusivity(unchecked) private var _retainsGrad = false
    @exclusivity(unchecked) private var _pendingGrad: Tensor?
    @exclusivity(unchecked) private var _visited = false
    @exclusivity(unchecked) private weak var _evalModeSource: AnyObject?
    @exclusivity(unchecked) private var _hooks: [GradientHook]?
    @exclusivity(unchecked) private var _postAccumulateHooks: [GradientHook]?
    @exclusivity(unchecked) private var _captured = false
    @exclusivity(unchecked) private var _pendingSweep = 0

    package var requiresGrad: Bool {
        get { _requiresGrad }
        set { _requiresGrad = newValue }
    }
    package var grad: Tensor? {
        get { _grad }
        set { _grad = newValue }
    }
    package var inputs: [AutogradMeta?] {
        get { _inputs }
        set { _inputs = newValue }
    }
    package var backward: ((Tensor) -> [Tensor?])? {
        get { _backward }
        set { _backward = newValue }
    }
    package let opName: String
    /// Set after backward released this node's graph, to give a clear error on a second backward.
    package var released: Bool {
        get { _released }
        set { _released = newValue }
    }
    /// A non-leaf that should keep its gradient (PyTorch's `retain_grad()`).
    package var retainsGrad: Bool {
        get { _retainsGrad }
        set { _retainsGrad = newValue }
    }
    /// Backward engine scratch: the gradient flowing into this node during a sweep, and whether the
    /// sweep's depth-first search has reached it. Both are cleared before the sweep ends.
    package var pendingGrad: Tensor? {
        get { _pendingGrad }
        set { _pendingGrad = newValue }
    }
    package var visited: Bool {
        get { _visited }
        set { _visited = newValue }
    }
    /// A mode-dependent module in evaluation mode that gradients of this node flow through
    /// (diagnostics: an optimizer stepping parameters reached this way reports it). The backward
    /// engine passes it from a node to its inputs; a leaf keeps it until the optimizer's step.
    package var evalModeSource: AnyObject? {
        get { _evalModeSource }
        set { _evalModeSource = newValue }
    }
    /// Gradient hooks (`Tensor.registerHook`), run in registration order on this tensor's total
    /// gradient of a backward pass, before it is passed on or accumulated; `nil` when none.
    package var hooks: [GradientHook]? {
        get { _hooks }
        set { _hooks = newValue }
    }
    /// Hooks run on a leaf's accumulated `grad` right after backward accumulated into it
    /// (`Tensor.registerPostAccumulateGradHook`; their results are ignored); `nil` when none.
    /// The engine finishes such a leaf as soon as the last node that feeds it has run, not at the
    /// end of the sweep, so the hooks can start work (DistributedDataParallel's bucket
    /// all-reduces) while backward goes on.
    package var postAccumulateHooks: [GradientHook]? {
        get { _postAccumulateHooks }
        set { _postAccumulateHooks = newValue }
    }
    /// Backward engine scratch: the sweep a leaf's `pendingGrad` belongs to (a sweep can run
    /// inside another's backward, as a checkpointed segment's does, reaching the same leaves).
    package var pendingSweep: Int {
        get { _pendingSweep }
        set { _pendingSweep = newValue }
    }
    /// Backward engine scratch: whether `Autograd.grad` asked for this node's gradient.
    package var captured: Bool {
        get { _captured }
        set { _captured = newValue }
    }
    /// Whether `backward` computes a differentiable gradient when run with recording on (the
    /// engine's `createGraph`), so that gradients of gradients flow through this op.
    package let supportsDoubleBackward: Bool
    /// Where the op was created (the module path), recorded only under anomaly detection.
    package var creationContext: String?

    /// Whether an op producing this tensor was recorded (it has a backward function).
    package var hasBackward: Bool { _backward != nil }

    package init(requiresGrad: Bool) {
        self._requiresGrad = requiresGrad
        self._inputs = []
        self._backward = nil
        self.opName = ""
        self.supportsDoubleBackward = true
    }

    package init(opName: String, inputs: [AutogradMeta?], supportsDoubleBackward: Bool = false,
                 backward: @escaping (Tensor) -> [Tensor?]) {
        self._requiresGrad = true
        self._inputs = inputs
        self._backward = backward
        self.opName = opName
        self.supportsDoubleBackward = supportsDoubleBackward
    }

    /// Whether this is a leaf of the graph (no producing op).
    package var isLeaf: Bool { _backward == nil && !_released }
}

/// A gradient hook: receives a tensor's gradient and returns a replacement, or `nil` to keep it.
package struct GradientHook {
    package let id: Int
    package let body: (Tensor) -> Tensor?
    package init(id: Int, body: @escaping (Tensor) -> Tensor?) {
        self.id = id
        self.body = body
    }
}
