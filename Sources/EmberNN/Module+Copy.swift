import EmberAutograd
import EmberFunctional
import EmberTensor
import EmberStorage

extension Module {
    /// A deep copy of this module tree: new module objects, new parameters and buffers holding
    /// copies of the values (no storage shared), the same modes, pins, `requiresGrad` flags and
    /// gradients. A module or parameter held at several places stays shared, once, in the copy.
    ///
    /// Swift cannot create an instance of an arbitrary class, so Ember builds the copy's modules
    /// itself only for its own layers (containers, `Linear`, convolutions, BatchNorm, dropout,
    /// activations, pooling, `LayerNorm`, `GroupNorm`, `Identity`, `Flatten`, `Unflatten`, the attention
    /// and Transformer modules). A tree
    /// with any other module (a custom model class) stops with a message that points to
    /// ``deepCopy(rebuilding:)``. Random generators held by dropout layers are shared, not copied.
    ///
    /// PyTorch parity: `copy.deepcopy(module)`.
    ///
    /// See also: ``deepCopy(rebuilding:)``, ``fusedForInference(folding:rebuilding:)``.
    public func deepCopy() -> Self { deepCopy(operation: "deepCopy()", rebuilding: nil) }

    /// A deep copy of this module tree built by `rebuild`, which must build the same architecture
    /// with new modules (for example `{ DigitCNN(side: 8) }`); Ember then copies into it every
    /// parameter and buffer value, mode, pin, `requiresGrad` flag, gradient and BatchNorm option.
    ///
    /// The rebuilt tree is checked against this one before anything is copied: the same module
    /// paths with the same types, the same parameter and buffer names, shapes and dtypes, the same
    /// sharing, and no module, parameter or buffer of this tree reused; a difference stops with a
    /// message naming the first differing path. Other stored options of custom modules come from
    /// `rebuild`. `rebuild` runs with a private random generator, so building the copy does not
    /// advance the caller's default generator.
    ///
    /// PyTorch parity: `copy.deepcopy(module)`, which Python can do for any class.
    public func deepCopy(rebuilding rebuild: () -> Module) -> Self {
        withoutActuallyEscaping(rebuild) { deepCopy(operation: "deepCopy(rebuilding:)", rebuilding: $0) }
    }

    /// The shared implementation; `operation` names the public call in messages.
    func deepCopy(operation: String, rebuilding rebuild: (() -> Module)?) -> Self {
        let copy: Module = withGenerator(Generator(seed: 0)) {
            if let rebuild { return rebuild() }
            var memo: [ObjectIdentifier: Module] = [:]
            var inProgress = Set<ObjectIdentifier>()
            return structuralCopy(of: self, path: "", memo: &memo, inProgress: &inProgress, operation: operation)
        }
        precondition(type(of: copy) == type(of: self),
                     "\(operation): the rebuilt model is a \(copy.typeName), but the model is a \(typeName)")
        copyState(into: copy, operation: operation)
        return copy as! Self
    }

    /// Copies every parameter and buffer value (into new storage), flag, mode and pin of this tree
    /// into `copy`, walking both trees in step and stopping at the first structural difference.
    private func copyState(into copy: Module, operation: String) {
        var modules: [ObjectIdentifier: Module] = [:], copiedModules = Set<ObjectIdentifier>()
        var parameters: [ObjectIdentifier: Parameter] = [:], copiedParameters = Set<ObjectIdentifier>()
        var buffers: [ObjectIdentifier: Buffer] = [:], copiedBuffers = Set<ObjectIdentifier>()
        var stack: [(String, Module, Module)] = [("", self, copy)]
        func named(_ path: String) -> String { path.isEmpty ? "the root" : "'\(path)'" }
        while let (path, original, target) = stack.popLast() {
            if let mapped = modules[ObjectIdentifier(original)] {
                precondition(mapped === target,
                             "\(operation): the module at \(named(path)) is shared in the model but not in the rebuilt model; build the same sharing")
                continue
            }
            precondition(copiedModules.insert(ObjectIdentifier(target)).inserted,
                         "\(operation): the rebuilt model shares the module at \(named(path)), the model does not")
            precondition(original !== target,
                         "\(operation): the rebuilt model reuses the model's own \(original.typeName) at \(named(path)); build new modules")
            precondition(type(of: original) == type(of: target),
                         "\(operation): \(named(path)) is a \(original.typeName) in the model but a \(target.typeName) in the rebuilt model")
            modules[ObjectIdentifier(original)] = target
            target.isTraining = original.isTraining
            target.pinnedMode = original.pinnedMode
            target.reportsModeMistakes = original.reportsModeMistakes
            target.checkedInitialStatistics = original.checkedInitialStatistics
            if let a = original as? BatchNormBase, let b = target as? BatchNormBase {
                b.momentum = a.momentum
                b.trackRunningStats = a.trackRunningStats
                b.isFolded = a.isFolded
            }
            let a = original.localMembers(path: path, warn: { _, _ in })
            let b = target.localMembers(path: path, warn: { _, _ in })
            let namesA = a.map { "\($0.name) (\($0.member.kind))" }, namesB = b.map { "\($0.name) (\($0.member.kind))" }
            precondition(namesA == namesB,
                         "\(operation): \(original.typeName) at \(named(path)) holds \(namesA) in the model but \(namesB) in the rebuilt model")
            var children: [(String, Module, Module)] = []
            for (x, y) in zip(a, b) {
                let memberPath = join(path, x.name)
                switch (x.member, y.member) {
                case (.module(let m), .module(let n)):
                    children.append((memberPath, m, n))
                case (.parameter(let p), .parameter(let q)):
                    if let mapped = parameters[ObjectIdentifier(p)] {
                        precondition(mapped === q, "\(operation): the parameter '\(memberPath)' is shared in the model but not in the rebuilt model")
                        continue
                    }
                    precondition(copiedParameters.insert(ObjectIdentifier(q)).inserted && p !== q,
                                 "\(operation): the rebuilt model's parameter '\(memberPath)' is shared or is the model's own; build new parameters")
                    checkSameLayout(p.value, q.value, memberPath, operation)
                    parameters[ObjectIdentifier(p)] = q
                    q.value = p.value.contiguousCopy()
                    q.requiresGrad = p.requiresGrad
                    q.grad = p.grad?.contiguousCopy()
                case (.buffer(let p), .buffer(let q)):
                    if let mapped = buffers[ObjectIdentifier(p)] {
                        precondition(mapped === q, "\(operation): the buffer '\(memberPath)' is shared in the model but not in the rebuilt model")
                        continue
                    }
                    precondition(copiedBuffers.insert(ObjectIdentifier(q)).inserted && p !== q,
                                 "\(operation): the rebuilt model's buffer '\(memberPath)' is shared or is the model's own; build new buffers")
                    precondition(p.isPersistent == q.isPersistent,
                                 "\(operation): the buffer '\(memberPath)' is \(p.isPersistent ? "" : "not ")persistent in the model but \(q.isPersistent ? "" : "not ")in the rebuilt model")
                    checkSameLayout(p.value, q.value, memberPath, operation)
                    buffers[ObjectIdentifier(p)] = q
                    q.value = p.value.contiguousCopy()
                default:
                    preconditionFailure("\(operation): '\(memberPath)' differs in kind between the model and the rebuilt model")
                }
            }
            stack.append(contentsOf: children.reversed())  // pre-order: the first difference is reported
        }
    }
}

extension Member {
    /// How messages name the kind of member.
    var kind: String {
        switch self {
        case .module(let m): m.typeName
        case .parameter: "parameter"
        case .buffer: "buffer"
        }
    }
}

/// Stops unless `a` and `b` have the same shape and dtype.
private func checkSameLayout(_ a: Tensor, _ b: Tensor, _ path: String, _ operation: String) {
    precondition(a.shape == b.shape && a.dtype == b.dtype,
                 "\(operation): '\(path)' is \(a.shape) \(a.dtype) in the model but \(b.shape) \(b.dtype) in the rebuilt model")
}

/// A new module of `module`'s type and configuration, with copies of its children (from `memo`
/// when already copied, so shared children stay shared); parameter and buffer values are copied
/// afterwards. Recursion is as deep as the tree is nested.
private func structuralCopy(of module: Module, path: String, memo: inout [ObjectIdentifier: Module],
                            inProgress: inout Set<ObjectIdentifier>, operation: String) -> Module {
    let id = ObjectIdentifier(module)
    if let done = memo[id] { return done }
    precondition(inProgress.insert(id).inserted, "\(operation): the module tree has a cycle at '\(path)'")
    defer { inProgress.remove(id) }
    func child(_ m: Module, _ name: String) -> Module {
        structuralCopy(of: m, path: join(path, name), memo: &memo, inProgress: &inProgress, operation: operation)
    }
    let copy: Module
    switch module {
    case let m as Sequential: copy = Sequential(m.layers.enumerated().map { child($1, String($0)) })
    case let m as ModuleList: copy = ModuleList(m.modules.enumerated().map { child($1, String($0)) })
    case let m as ModuleDict: copy = ModuleDict(m.keys.map { ($0, child(m[$0]!, $0)) })
    case let m as MultiheadAttention: copy = m.rebuilt()
    case let m as TransformerEncoderLayer: copy = m.rebuilt()
    case let m as TransformerDecoderLayer: copy = m.rebuilt()
    case let m as TransformerEncoder:
        copy = TransformerEncoder(layers: m.layers.modules.enumerated().map { child($1, "layers.\($0)") },
                                  norm: m.norm.map { child($0, "norm") })
    case let m as TransformerDecoder:
        copy = TransformerDecoder(layers: m.layers.modules.enumerated().map { child($1, "layers.\($0)") },
                                  norm: m.norm.map { child($0, "norm") })
    case let m as Transformer:
        copy = Transformer(encoder: child(m.encoder, "encoder") as! TransformerEncoder,
                           decoder: child(m.decoder, "decoder") as! TransformerDecoder,
                           dModel: m.dModel, nhead: m.nhead, batchFirst: m.batchFirst)
    default:
        guard let leaf = leafCopy(of: module) else {
            let place = path.isEmpty ? "the root" : "'\(path)'"
            preconditionFailure("\(operation): Ember cannot build a copy of \(module.typeName) at \(place) (Swift cannot create an instance of an arbitrary class); pass a closure that builds the same architecture, as in deepCopy(rebuilding: { MyModel() }) or fusedForInference(rebuilding: { MyModel() })")
        }
        copy = leaf
    }
    memo[id] = copy
    return copy
}

/// A new instance of one of Ember's childless layers with the same configuration, or `nil`.
private func leafCopy(of module: Module) -> Module? {
    switch module {
    case let m as Linear:
        return Linear(m.inFeatures, m.outFeatures, bias: m.bias != nil, dtype: m.weight.value.dtype)
    case let m as ConvTransposeBase:
        let k = SpatialSize(m.kernelSize), s = SpatialSize(m.stride), p = SpatialSize(m.explicitPadding)
        let o = SpatialSize(m.outputPadding), d = SpatialSize(m.dilation), t = m.weight.value.dtype
        switch m {
        case is ConvTranspose1d:
            return ConvTranspose1d(m.inChannels, m.outChannels, k, stride: s, padding: p, outputPadding: o, groups: m.groups,
                                   bias: m.bias != nil, dilation: d, dtype: t)
        case is ConvTranspose2d:
            return ConvTranspose2d(m.inChannels, m.outChannels, k, stride: s, padding: p, outputPadding: o, groups: m.groups,
                                   bias: m.bias != nil, dilation: d, dtype: t)
        case is ConvTranspose3d:
            return ConvTranspose3d(m.inChannels, m.outChannels, k, stride: s, padding: p, outputPadding: o, groups: m.groups,
                                   bias: m.bias != nil, dilation: d, dtype: t)
        default: return nil
        }
    case let m as ConvBase:
        let k = SpatialSize(m.kernelSize), s = SpatialSize(m.stride), d = SpatialSize(m.dilation), t = m.weight.value.dtype
        switch m {
        case is Conv1d:
            return Conv1d(m.inChannels, m.outChannels, k, stride: s, padding: m.padding, dilation: d, groups: m.groups,
                          bias: m.bias != nil, paddingMode: m.paddingMode, dtype: t)
        case is Conv2d:
            return Conv2d(m.inChannels, m.outChannels, k, stride: s, padding: m.padding, dilation: d, groups: m.groups,
                          bias: m.bias != nil, paddingMode: m.paddingMode, dtype: t)
        case is Conv3d:
            return Conv3d(m.inChannels, m.outChannels, k, stride: s, padding: m.padding, dilation: d, groups: m.groups,
                          bias: m.bias != nil, paddingMode: m.paddingMode, dtype: t)
        default: return nil
        }
    case let m as BatchNormBase:
        let t = (m.weight?.value ?? m.runningMean?.value)?.dtype ?? .float32
        let make: (Int, Double, Double?, Bool, Bool, DType) -> BatchNormBase
        switch m {
        case is BatchNorm1d: make = { BatchNorm1d($0, eps: $1, momentum: $2, affine: $3, trackRunningStats: $4, dtype: $5) }
        case is BatchNorm2d: make = { BatchNorm2d($0, eps: $1, momentum: $2, affine: $3, trackRunningStats: $4, dtype: $5) }
        case is BatchNorm3d: make = { BatchNorm3d($0, eps: $1, momentum: $2, affine: $3, trackRunningStats: $4, dtype: $5) }
        default: return nil
        }
        let copy = make(m.numFeatures, m.eps, m.momentum, m.affine, m.runningMean != nil, t)
        copy.trackRunningStats = m.trackRunningStats
        return copy
    case let m as Dropout:
        switch m {
        case is Dropout1d: return Dropout1d(m.p, generator: m.generator)
        case is Dropout2d: return Dropout2d(m.p, generator: m.generator)
        case is Dropout3d: return Dropout3d(m.p, generator: m.generator)
        case is AlphaDropout: return AlphaDropout(m.p, generator: m.generator)
        default: return type(of: m) == Dropout.self ? Dropout(m.p, generator: m.generator) : nil
        }
    case is Identity: return Identity()
    case let m as Flatten: return Flatten(startAxis: m.startAxis, endAxis: m.endAxis)
    case let m as Unflatten: return Unflatten(m.axis, m.sizes)
    case is ReLU: return ReLU()
    case let m as LeakyReLU: return LeakyReLU(m.negativeSlope)
    case let m as GELU: return GELU(approximate: m.approximate)
    case is SiLU: return SiLU()
    case let m as ELU: return ELU(m.alpha)
    case is Tanh: return Tanh()
    case is Sigmoid: return Sigmoid()
    case let m as Softmax: return Softmax(axis: m.axis)
    case let m as LogSoftmax: return LogSoftmax(axis: m.axis)
    case let m as MaxPool1d: return MaxPool1d(m.kernelSize, stride: m.stride, padding: m.padding, dilation: m.dilation, ceilMode: m.ceilMode)
    case let m as MaxPool2d: return MaxPool2d(m.kernelSize, stride: m.stride, padding: m.padding, dilation: m.dilation, ceilMode: m.ceilMode)
    case let m as MaxPool3d: return MaxPool3d(m.kernelSize, stride: m.stride, padding: m.padding, dilation: m.dilation, ceilMode: m.ceilMode)
    case let m as AvgPool1d:
        return AvgPool1d(m.kernelSize, stride: m.stride, padding: m.padding, ceilMode: m.ceilMode, countIncludePad: m.countIncludePad)
    case let m as AvgPool2d:
        return AvgPool2d(m.kernelSize, stride: m.stride, padding: m.padding, ceilMode: m.ceilMode, countIncludePad: m.countIncludePad,
                         divisorOverride: m.divisorOverride)
    case let m as AvgPool3d:
        return AvgPool3d(m.kernelSize, stride: m.stride, padding: m.padding, ceilMode: m.ceilMode, countIncludePad: m.countIncludePad,
                         divisorOverride: m.divisorOverride)
    case let m as AdaptiveAvgPool1d: return m.outputSize[0].map { AdaptiveAvgPool1d($0) }
    case let m as AdaptiveAvgPool2d: return AdaptiveAvgPool2d(m.outputSize)
    case let m as AdaptiveMaxPool1d: return m.outputSize[0].map { AdaptiveMaxPool1d($0) }
    case let m as AdaptiveMaxPool2d: return AdaptiveMaxPool2d(m.outputSize)
    case let m as LayerNorm:
        return LayerNorm(m.normalizedShape, eps: m.eps, elementwiseAffine: m.weight != nil, bias: m.bias != nil,
                         dtype: m.weight?.value.dtype ?? .float32)
    case let m as GroupNorm:
        return GroupNorm(m.numGroups, m.numChannels, eps: m.eps, affine: m.weight != nil, dtype: m.weight?.value.dtype ?? .float32)
    default:
        return nil
    }
}
