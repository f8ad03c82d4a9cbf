import EmberAutograd
import EmberTensor
import EmberStorage

/// A training or evaluation mode.
public enum Mode: String, Sendable, Hashable, CustomStringConvertible, Codable {
    /// Training behaviour: dropout drops, batch normalization uses and updates batch statistics.
    case training = "train"
    /// Deterministic inference behaviour: dropout is the identity, batch normalization uses its
    /// running statistics.
    case evaluation = "eval"

    public var description: String { rawValue }
}

/// The base class of every layer and model.
///
/// Subclass it, store layers, parameters and buffers in stored properties, and override
/// ``forward(_:)``. There is no registration step: Ember discovers children by reflection.
///
/// ## Discovery contract
/// 1. A child is any stored property whose value is a `Module`, or that contains modules through
///    `Optional`, `Array`, `Dictionary` (any key type), `Set`, tuples (any arity), structs, enums with
///    payloads, or property-wrapper storage, nested to any depth.
/// 2. Leaves are never descended: `Tensor`, `Parameter`, `Buffer`, scalars, `String`, and
///    collections of those (decided in O(1) through ``ModuleTreeLeaf`` before any reflection).
/// 3. A module is visited once even when shared, named by its first path, as PyTorch does. The walk
///    uses an explicit stack, not recursion.
/// 4. Nothing is cached: every traversal walks afresh, so modules added later are always found.
/// 5. Instances of classes that are not modules are not descended (they may be caches or graphs);
///    when one holds a module, the traversal prints one warning naming its path, so that the
///    holder can be made a `Module`.
/// 6. A back-reference to a parent must be a ``WeakModuleReference``, which is a leaf; a plain
///    stored reference to the parent would make `child.eval()` switch the parent too.
///
/// Names follow PyTorch's: `fc1.weight`, array elements by index (`blocks.0.weight`), dictionary
/// entries by key (`heads.cls.weight`, keys sorted since Swift dictionaries have no order), tuple
/// elements by label or position, struct fields and enum payloads by name, and property-wrapper
/// storage by the wrapped property's name.
///
/// PyTorch parity: `torch.nn.Module`, except that PyTorch only sees modules registered as
/// attributes or in `ModuleList`/`ModuleDict`, and silently skips plain lists, dicts and helper
/// objects. Ember reaches them all (a deliberate difference).
open class Module {
    /// Whether this module is in training mode. `true` after construction (PyTorch's default).
    public internal(set) var isTraining: Bool = true

    /// The mode this module is pinned to, if any: `train()` and `eval()` leave a pinned module and
    /// its subtree unchanged until ``unpin()``.
    public internal(set) var pinnedMode: Mode?

    /// Whether this module belongs to an inference-only copy made by
    /// ``Module/fusedForInference(folding:rebuilding:)``: `train()` (and `pin(.training)`,
    /// `withMode(.training)`) on it stops, since its BatchNorm layers are folded away.
    public internal(set) var isInferenceOnly = false

    /// The path this module had in the last traversal that reached it (`""` for a root), used to
    /// name it in error messages. Only a hint: a module may sit in several trees.
    public internal(set) var lastKnownPath: String?

    /// Paths already warned about (a holder class hiding modules), so each warns once per root.
    var warnedPaths: Set<String> = []

    /// The root of the last traversal that reached this module: mode reports name the modules of
    /// that tree, once per tree. A weak leaf, so that discovery never follows it.
    var lastKnownRootReference = WeakModuleReference<Module>(nil)
    var lastKnownRoot: Module? {
        get { lastKnownRootReference.module }
        set { lastKnownRootReference.module = newValue }
    }

    /// The mode reports this module made as a root (each kind once).
    var reportedDiagnostics: Set<DiagnosticKind> = []

    /// Whether a BatchNorm already checked, in eval mode, that its running statistics moved.
    var checkedInitialStatistics = false

    /// Whether Ember may report mode mistakes involving this module (a training-mode forward with
    /// recording off, an eval-mode forward whose gradients an optimizer steps, untouched running
    /// statistics). Set `false` where the unusual use is deliberate; pins also count as deliberate.
    public var reportsModeMistakes = true

    /// The hooks registered on this module (`Module+Hooks.swift`), `nil` when none.
    var hookTable: ModuleHooks?

    public init() {}

    /// The current mode.
    public var mode: Mode { isTraining ? .training : .evaluation }

    /// Whether this module computes differently in training and evaluation mode (dropout with
    /// `p > 0`, BatchNorm with running statistics, a stacked recurrent layer with dropout).
    open var isModeDependent: Bool { false }

    /// Called after this module's mode changed (by `train`, `eval`, a pin or a scope's restore).
    /// Override to react, for example to reset a cache; call `super` is not required.
    open func didChangeMode() {}

    /// The computation. Subclasses override this (modules with other signatures add their own
    /// `callAsFunction` instead).
    open func forward(_ input: Tensor) -> Tensor {
        preconditionFailure("\(typeName): forward(_:) is not implemented; override forward(_ input: Tensor) -> Tensor")
    }

    /// Runs ``forward(_:)``.
    ///
    /// Disfavoured in overload resolution, so a subclass's own `callAsFunction(_:...)` with
    /// defaulted extra arguments wins for `module(x)` (``LSTM`` returns its output and states);
    /// where a `Tensor` is expected, this one still applies.
    /// Hooks registered on the module (``registerForwardHook(_:)`` and the others) run around
    /// the forward.
    @_disfavoredOverload
    public func callAsFunction(_ input: Tensor) -> Tensor {
        // The innermost running module, when in eval mode, for functional dropout's warning.
        let outer = EvalForwardScope.currentPointer
        let own = isTraining ? nil : UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque())
        if own != outer { EvalForwardScope.setPointer(own) }
        defer { if own != outer { EvalForwardScope.setPointer(outer) } }
        if hookTable == nil && !AnomalyDetection.isActive { return forward(input) }
        return forwardWithHooks(input)
    }

    /// The class name, used in listings and messages.
    public var typeName: String { String(describing: type(of: self)) }

    /// How error messages name this module: `BatchNorm1d 'bn1'`, or just the type when its path is
    /// unknown or it is a root.
    public var errorContext: String {
        if let p = lastKnownPath, !p.isEmpty { return "\(typeName) '\(p)'" }
        return typeName
    }

    /// PyTorch's `extra_repr`: the constructor arguments shown in listings, e.g.
    /// `in_features=10, out_features=20, bias=True`.
    open var extraDescription: String { "" }

    /// Sets this module's flag and notifies it, if the value changes.
    func setTraining(_ on: Bool) {
        guard isTraining != on else { return }
        isTraining = on
        didChangeMode()
    }
}

/// A weak reference to a module that module discovery never follows. Use it for back-references
/// (a child that knows its parent), so `child.eval()` does not switch the parent.
public struct WeakModuleReference<M: Module>: ModuleTreeLeaf {
    public weak var module: M?
    public init(_ module: M?) { self.module = module }
}
