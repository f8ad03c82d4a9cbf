import EmberAutograd
import EmberTensor

/// What every optimizer shares: its groups and defaults, per-parameter state keyed by the
/// parameter's identity, validation, the loop over parameters of a step, and ``state()`` and
/// ``load(_:)``.
///
/// An optimizer subclasses it with its `Options` (hyperparameters and their validation) and its
/// `Slot` (per-parameter state and how it is saved), and conforms to ``Optimizer`` with a `step()`
/// that is `step(with: self)`, its update rule being its `UpdateRule` conformance. Its `step()` is
/// its own, non-generic method, so the loop and the rule are compiled together for it, whether
/// called directly or through `any Optimizer`.
///
/// PyTorch parity: the part of `torch.optim.Optimizer` that its subclasses inherit
/// (`param_groups`, `defaults`, `state`, `step`'s loop, `state_dict`, `load_state_dict`).
///
/// See also: ``Optimizer``, ``SGD``, ``Adam``.
public class OptimizerBase<Options: OptimizerOptions, Slot: ParameterSlot> {
    /// PyTorch's class name (`"SGD"`, `"Adam"`, ...), recorded in ``OptimizerState``.
    public let name: String
    /// The hyperparameters given at construction; ``Optimizer/addParameterGroup(_:configure:)``
    /// starts from them.
    public let defaults: Options
    /// The groups, in order. Hyperparameters may be changed between steps.
    public var parameterGroups: [ParameterGroup<Options>]
    /// Per-parameter state by the parameter's identity; `nil` or absent for a parameter that has
    /// none. Values are optional so that an update modifies its slot where it lies
    /// (`subscript(_:default:)`); the optional subscript would move it out and back.
    var slots: [ObjectIdentifier: Slot?] = [:]

    /// Checks `defaults` (the first group's options when `nil`), each group's options and the
    /// groups' parameters, stopping with PyTorch's error texts prefixed by `name`.
    init(name: String, groups: [ParameterGroup<Options>], defaults: Options?) {
        let defaults = defaults ?? groups.first?.options
        if let defaults { checkOptions(defaults, optimizer: name) }
        for g in groups { checkOptions(g.options, optimizer: name) }
        // Stops when there are no groups, the one case without defaults.
        checkParameterGroups(groups, optimizer: name)
        self.name = name
        self.defaults = defaults!
        self.parameterGroups = groups
    }

    /// One step: applies `rule` to every parameter that has a gradient and `requiresGrad`, group
    /// by group, with the group's options and the parameter's slot; others are skipped and keep
    /// their state. Generic over the rule, so that each optimizer's loop calls its rule directly.
    func step<Rule: UpdateRule>(with rule: Rule) where Rule.Options == Options, Rule.Slot == Slot {
        reportEvalModeGradients(parameterGroups, optimizer: name)
        for group in parameterGroups {
            let o = group.options
            let keepsSlots = rule.keepsSlots(o)
            for p in group.parameters {
                guard let g = gradientForUpdate(p, optimizer: name) else { continue }
                if keepsSlots {
                    rule.update(p, gradient: g, slot: &slots[ObjectIdentifier(p), default: nil], options: o)
                } else {
                    var none: Slot? = nil
                    rule.update(p, gradient: g, slot: &none, options: o)
                }
            }
        }
    }

    /// A snapshot of the per-parameter state and every group's hyperparameters.
    public func state() -> OptimizerState {
        captureState(optimizer: name, groups: parameterGroups, slots: slots)
    }

    /// Replaces the per-parameter state and the groups' hyperparameters with `state`, captured
    /// from an optimizer of the same kind over parameters of the same shapes, in the same group
    /// structure. Nothing changes when it throws.
    public func load(_ state: OptimizerState) throws(OptimizerStateError) {
        (parameterGroups, slots) = try restoreState(state, optimizer: name, groups: parameterGroups, slotType: Slot.self)
    }
}

/// An optimizer's update rule, which ``OptimizerBase`` applies to each parameter in a step.
protocol UpdateRule {
    associatedtype Options
    associatedtype Slot

    /// Updates `parameter` in place from `gradient` (contiguous, of the parameter's shape and
    /// dtype) with its group's `options`, and creates or advances its `slot` (`nil` before its
    /// first update unless created otherwise). The slot's buffers are uniquely referenced unless
    /// a captured state shares them.
    func update(_ parameter: Parameter, gradient: Tensor, slot: inout Slot?, options: Options)

    /// Whether parameters of a group with `options` keep a slot. When false their slots are not
    /// looked up: `update` gets `nil`, and what it sets there is dropped. True unless a rule says
    /// otherwise.
    func keepsSlots(_ options: Options) -> Bool
}

extension UpdateRule {
    func keepsSlots(_ options: Options) -> Bool { true }
}

/// Per-parameter state of one optimizer, convertible to and from ``OptimizerState/ParameterState``.
public protocol ParameterSlot {
    /// The state as saved (PyTorch's buffer names).
    var saved: OptimizerState.ParameterState { get }
    /// The state of `parameter` (saved as index `index`) rebuilt from `saved`, checking buffer
    /// names and shapes and converting buffers to the parameter's dtype (as PyTorch does).
    static func restored(
        from saved: OptimizerState.ParameterState, for parameter: Parameter, index: Int
    ) throws(OptimizerStateError) -> Self
}
