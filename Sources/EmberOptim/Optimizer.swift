import EmberAutograd

/// Updates parameters from their gradients, one parameter group at a time.
///
/// An optimizer holds its parameters in ``ParameterGroup``s, each with its own hyperparameters
/// (learning rate, weight decay, momentum, ...), and per-parameter state (momentum buffers, moment
/// estimates, step counts) keyed by the parameter's identity. `step()` updates every parameter
/// that has a gradient, in place, with one fused pass over its elements; parameters whose `grad`
/// is `nil` and frozen parameters (`requiresGrad == false`) are skipped and keep their state.
///
/// A typical loop:
/// ```swift
/// let optimizer = Adam(model.parameters(), lr: 1e-3)
/// for batch in batches {
///     optimizer.zeroGrad()
///     let loss = lossFunction(model(batch.x), batch.y)
///     loss.backward()
///     optimizer.step()
/// }
/// ```
///
/// State can be captured with ``state()`` and loaded into a new optimizer over the same
/// parameters with ``load(_:)``; training then continues bitwise identically.
///
/// PyTorch parity: `torch.optim.Optimizer` (`step`, `zero_grad`, `param_groups`,
/// `add_param_group`, `state_dict`, `load_state_dict`). Updates follow PyTorch's single-tensor
/// (`foreach=False`) implementations, which PyTorch uses for CPU tensors.
///
/// See also: ``OptimizerBase`` (what the optimizers share), ``SGD``, ``Adam``, ``AdamW``, ``RMSprop``,
/// ``Adagrad``, ``LRScheduler``.
public protocol Optimizer: AnyObject {
    /// The hyperparameters of one group.
    associatedtype Options: OptimizerOptions

    /// PyTorch's class name (`"SGD"`, `"Adam"`, ...), recorded in ``OptimizerState`` so that state
    /// cannot be loaded into a different kind of optimizer.
    var name: String { get }

    /// The hyperparameters given at construction; ``addParameterGroup(_:configure:)`` starts from
    /// them.
    var defaults: Options { get }

    /// The groups, in order. Hyperparameters may be changed between steps (schedules set
    /// `learningRate`).
    var parameterGroups: [ParameterGroup<Options>] { get set }

    /// Updates every parameter that has a gradient.
    func step()

    /// A snapshot of the per-parameter state and every group's hyperparameters.
    func state() -> OptimizerState

    /// Replaces the per-parameter state and the groups' hyperparameters with `state`, captured
    /// from an optimizer of the same kind over parameters of the same shapes, in the same group
    /// structure. Nothing changes when it throws.
    func load(_ state: OptimizerState) throws(OptimizerStateError)
}

/// The hyperparameters of one parameter group of an optimizer.
///
/// Coding keys are PyTorch's `param_groups` keys (`lr`, `weight_decay`, `betas`, ...), so an
/// ``OptimizerState`` header reads like PyTorch's `state_dict()["param_groups"]`.
public protocol OptimizerOptions: Codable, Sendable, Equatable {
    /// The step size (`lr`). Schedules set it.
    var learningRate: Double { get set }

    /// The momentum a one-cycle schedule cycles: `momentum` for SGD and RMSprop, `beta1` for Adam
    /// and AdamW; `nil` for an optimizer without one (Adagrad), where setting it does nothing.
    var cycledMomentum: Double? { get set }

    /// PyTorch's `ValueError` text when a value is out of range (`"Invalid learning rate: -0.1"`,
    /// `"Invalid beta parameter at index 0: 1.0"`, ...), `nil` when the options are valid.
    /// Constructors stop with it; loading a state throws it.
    var validationFailure: String? { get }

    /// Values assumed for keys that a loaded group lacks because older PyTorch versions did not
    /// save them; any other missing key is an error. Empty unless an optimizer says otherwise.
    ///
    /// PyTorch parity: the `setdefault` calls of an optimizer's `__setstate__`.
    static var defaultsForMissingKeys: [String: OptimizerState.Hyperparameter] { get }
}

extension OptimizerOptions {
    public static var defaultsForMissingKeys: [String: OptimizerState.Hyperparameter] { [:] }
}

/// Parameters that share hyperparameters.
///
/// Hyperparameters are reachable directly: `group.learningRate`, `group.weightDecay`,
/// `group.momentum` (through `options`).
///
/// PyTorch parity: one entry of `optimizer.param_groups` (`{"params": [...], "lr": ..., ...}`);
/// `initialLearningRate` is its `initial_lr`.
@dynamicMemberLookup
public struct ParameterGroup<Options: OptimizerOptions> {
    /// The parameters, in order (state is saved by position over all groups).
    public var parameters: [Parameter]
    /// The group's hyperparameters.
    public var options: Options
    /// The learning rate schedules start from (`initial_lr`): set by the first schedule attached
    /// to the optimizer, `nil` before.
    public var initialLearningRate: Double?

    /// A group of `parameters` with `options`.
    public init(_ parameters: [Parameter], options: Options) {
        self.parameters = parameters
        self.options = options
    }

    /// The group's learning rate (`lr`).
    public var learningRate: Double {
        get { options.learningRate }
        set { options.learningRate = newValue }
    }

    /// Reads or writes one hyperparameter: `group.weightDecay = 0`.
    public subscript<Value>(dynamicMember keyPath: WritableKeyPath<Options, Value>) -> Value {
        get { options[keyPath: keyPath] }
        set { options[keyPath: keyPath] = newValue }
    }
}

extension Optimizer {
    /// Every parameter, group by group.
    public var parameters: [Parameter] { parameterGroups.flatMap(\.parameters) }

    /// Each group's learning rate, in group order.
    ///
    /// PyTorch parity: `[g["lr"] for g in optimizer.param_groups]`.
    public var learningRates: [Double] { parameterGroups.map(\.learningRate) }

    /// Sets the learning rate of group `group` (what schedules do).
    public func setLearningRate(_ value: Double, group: Int) {
        precondition(parameterGroups.indices.contains(group),
                     "\(name).setLearningRate: group \(group) out of range (the optimizer has \(parameterGroups.count) groups)")
        parameterGroups[group].learningRate = value
    }

    /// Clears the gradient of every parameter in every group: to `nil` by default, else to zeros
    /// in place.
    ///
    /// PyTorch parity: `zero_grad(set_to_none=True)`.
    public func zeroGrad(setToNil: Bool = true) {
        for group in parameterGroups {
            for p in group.parameters {
                guard let meta = p.autograd, meta.grad != nil else { continue }
                if setToNil { meta.grad = nil } else { meta.grad!.fillRaw(0) }
            }
        }
    }

    /// Adds a group of parameters whose hyperparameters start from ``defaults`` and are then
    /// changed by `configure`:
    /// ```swift
    /// optimizer.addParameterGroup(head.parameters()) { $0.learningRate = 1e-2 }
    /// ```
    ///
    /// PyTorch parity: `add_param_group`, including its error when a parameter is already in
    /// another group ("some parameters appear in more than one parameter group").
    public func addParameterGroup(_ parameters: [Parameter], configure: (inout Options) -> Void = { _ in }) {
        var options = defaults
        configure(&options)
        checkOptions(options, optimizer: name)
        let group = ParameterGroup(parameters, options: options)
        checkParameterGroups(parameterGroups + [group], optimizer: name)
        parameterGroups.append(group)
    }
}

/// Stops with the options' validation failure, prefixed by the optimizer's name.
func checkOptions<O: OptimizerOptions>(_ options: O, optimizer: String) {
    if let failure = options.validationFailure { preconditionFailure("\(optimizer): \(failure)") }
}

/// Stops when parameter groups are not a valid partition: PyTorch's "optimizer got an empty
/// parameter list" and "some parameters appear in more than one parameter group".
///
/// A parameter listed twice in one group is an error too (PyTorch only warns, then updates it
/// twice per step with one state; Ember refuses).
func checkParameterGroups<O>(_ groups: [ParameterGroup<O>], optimizer: String) {
    precondition(!groups.isEmpty && !(groups.count == 1 && groups[0].parameters.isEmpty),
                 "\(optimizer): optimizer got an empty parameter list")
    var seen = Set<ObjectIdentifier>()
    for (g, group) in groups.enumerated() {
        var inGroup = Set<ObjectIdentifier>()
        for p in group.parameters {
            precondition(inGroup.insert(ObjectIdentifier(p)).inserted,
                         "\(optimizer): parameter group \(g) contains a parameter (shape \(p.shape)) more than once; list each parameter once (PyTorch: optimizer contains a parameter group with duplicate parameters)")
            precondition(seen.insert(ObjectIdentifier(p)).inserted,
                         "\(optimizer): some parameters appear in more than one parameter group (a parameter of shape \(p.shape) in group \(g) is already in an earlier group)")
        }
    }
}

/// Reports gradients that flowed through an eval-mode module (training with `train()` forgotten);
/// every optimizer's `step()` starts with it. Generic over the options so that each optimizer's
/// call is specialized: a flag read per parameter on the common path.
func reportEvalModeGradients<O>(_ groups: [ParameterGroup<O>], optimizer: String) {
    var source: AnyObject?
    for group in groups {
        for p in group.parameters {
            if let s = p.takeEvalModeSource() { source = source ?? s }
        }
    }
    if let source { reportEvalModeGradients(from: source, parameters: groups.flatMap(\.parameters), optimizer: optimizer) }
}
