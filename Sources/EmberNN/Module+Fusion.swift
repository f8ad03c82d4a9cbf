import EmberAutograd
import EmberFunctional
import EmberTensor
import EmberStorage

extension Module {
    /// An inference-only copy of this model in which each eval-mode BatchNorm that directly follows
    /// a `Linear`, `Conv1d/2d/3d` or `ConvTranspose1d/2d/3d` is folded into that layer, and
    /// dropout layers and `Identity` are removed. The model itself is not changed, and the copy
    /// shares no parameter, buffer or module with it.
    ///
    /// Folding, per output channel `c`, with `s = gamma[c] / sqrt(runningVar[c] + eps)` (`gamma`
    /// 1 and `beta` 0 for `affine: false`), computed in float64 and stored in the layer's dtype:
    ///
    ///     w'[c] = w[c] * s        b'[c] = (b[c] - runningMean[c]) * s + beta[c]
    ///
    /// A bias-less layer gets a bias. Grouped and depthwise convolutions fold per output channel;
    /// a transposed convolution's weight `[in, out / groups, k...]` is scaled along its output
    /// channels. The copy computes the model's eval-mode outputs up to rounding.
    ///
    /// Which BatchNorm follows which layer:
    /// - In a ``Sequential`` (and every nested one), where the order is known: first dropout layers
    ///   (except those pinned to training: Monte-Carlo dropout stays), `Identity` and folded
    ///   BatchNorms are removed from its list; then each BatchNorm right after a `Linear`
    ///   (`BatchNorm1d`) or an N-d convolution (`BatchNormNd`) with as many channels is folded and
    ///   removed. A pair is left unfolded when the BatchNorm has no running statistics, or either
    ///   module is also held somewhere else in the tree (folding would change that use too).
    /// - In a custom module, whose forward order Ember cannot see, name the pairs by module path:
    ///   `folding: [("conv1", "bn1"), ("blocks.0.conv", "blocks.0.bn")]`. The BatchNorm stays in
    ///   place, marked ``BatchNormBase/isFolded``, and returns its input unchanged.
    ///   Dropout held by a custom module stays (in eval mode it is the identity).
    ///
    /// Stops, naming the module, for a BatchNorm to fold that is in training mode (call `eval()`
    /// first) or pinned to training, and for a named pair that cannot be folded: an unknown path,
    /// not a layer and a BatchNorm of matching kind and size, no running statistics, already
    /// folded, or held twice. A Linear-BatchNorm1d fold assumes `[N, features]` output, as PyTorch's
    /// does.
    ///
    /// The copy is in eval mode (pins kept) and ``isInferenceOnly``: `train()`,
    /// `pin(.training)` and `withMode(.training)` on it stop. Parameters keep `requiresGrad`, as in
    /// PyTorch. Its state dict differs from the model's (fused values, removed `Sequential`
    /// entries): save the original for training.
    ///
    /// - Parameters:
    ///   - pairs: (layer path, BatchNorm path) pairs to fold beyond the `Sequential` ones.
    ///   - rebuild: builds the same architecture with new modules, for trees with modules Ember
    ///     cannot copy itself (custom classes); see ``deepCopy(rebuilding:)``.
    ///
    /// PyTorch parity: `torch.nn.utils.fusion.fuse_conv_bn_eval` / `fuse_linear_bn_eval` (the same
    /// formulas; PyTorch folds only forward convolutions) and
    /// `torch.ao.quantization.fuse_modules(model, [["conv1", "bn1"]], inplace=False)` for named
    /// pairs (which replaces the BatchNorm with `Identity`). PyTorch's copy can still `train()`.
    ///
    /// See also: ``deepCopy()``, ``deepCopy(rebuilding:)``.
    public func fusedForInference(folding pairs: [(layer: String, batchNorm: String)] = [],
                                  rebuilding rebuild: (() -> Module)? = nil) -> Self {
        let operation = "fusedForInference()"
        let copy = deepCopy(operation: operation, rebuilding: rebuild)
        let references = copy.referenceCounts()
        let byPath = Dictionary(copy.namedModules().map { ($0.path, $0.module) }, uniquingKeysWith: { a, _ in a })
        for (layerPath, bnPath) in pairs {
            let name = "\(operation): the pair ('\(layerPath)', '\(bnPath)')"
            guard let layer = byPath[layerPath], let bn = byPath[bnPath] else {
                let missing = byPath[layerPath] == nil ? layerPath : bnPath
                preconditionFailure("\(name): no module at '\(missing)'; the module paths are \(byPath.keys.sorted().filter { !$0.isEmpty })")
            }
            guard let bn = bn as? BatchNormBase else {
                preconditionFailure("\(name): '\(bnPath)' is a \(bn.typeName), not a BatchNorm")
            }
            guard let kind = foldableKind(of: layer) else {
                preconditionFailure("\(name): '\(layerPath)' is a \(layer.typeName); only Linear, Conv1d/2d/3d and ConvTranspose1d/2d/3d take a folded BatchNorm")
            }
            precondition(type(of: bn) == kind.batchNorm && bn.numFeatures == kind.channels,
                         "\(name): \(layer.typeName) '\(layerPath)' has \(kind.channels) output channels and takes a \(kind.batchNorm) of that size, but '\(bnPath)' is a \(bn.typeName)(\(bn.numFeatures))")
            precondition(!bn.isFolded, "\(name): '\(bnPath)' is already folded")
            precondition(bn.runningMean != nil,
                         "\(name): \(bn.typeName) '\(bnPath)' has no running statistics (trackRunningStats: false), so it normalises with each batch's statistics even in eval mode; there is nothing to fold")
            precondition(references[ObjectIdentifier(layer), default: 0] == 1 && references[ObjectIdentifier(bn), default: 0] == 1,
                         "\(name): '\(references[ObjectIdentifier(layer), default: 0] == 1 ? bnPath : layerPath)' is held at more than one place in the model; folding would change its other uses")
            checkFoldableMode(bn, path: bnPath, operation: operation)
            fold(bn, into: layer)
            bn.isFolded = true
        }
        for (path, module) in copy.namedModules() {
            guard let sequential = module as? Sequential else { continue }
            sequential.layers = foldedLayers(sequential.layers, path: path, references: references, operation: operation)
        }
        copy.eval()
        for module in copy.modules() { module.isInferenceOnly = true }
        return copy
    }

    /// How many times each module is held in this tree (by every holder, counting repeats).
    func referenceCounts() -> [ObjectIdentifier: Int] {
        var counts: [ObjectIdentifier: Int] = [ObjectIdentifier(self): 1]
        walk { _, _, members in
            for m in members { if case .module(let child) = m.member { counts[ObjectIdentifier(child), default: 0] += 1 } }
            return true
        }
        return counts
    }
}

/// A `Sequential`'s layers with dropout (not pinned to training), `Identity` and folded
/// BatchNorms removed, and each foldable BatchNorm folded into the layer before it and removed.
private func foldedLayers(_ layers: [Module], path: String, references: [ObjectIdentifier: Int],
                          operation: String) -> [Module] {
    let kept = layers.filter { layer in
        if let dropout = layer as? Dropout { return dropout.pinnedMode == .training }
        if let bn = layer as? BatchNormBase { return !bn.isFolded }
        return !(layer is Identity)
    }
    var out: [Module] = []
    for layer in kept {
        if let bn = layer as? BatchNormBase, let previous = out.last, let kind = foldableKind(of: previous),
           type(of: bn) == kind.batchNorm, bn.numFeatures == kind.channels, bn.runningMean != nil,
           references[ObjectIdentifier(bn)] == 1, references[ObjectIdentifier(previous)] == 1 {
            checkFoldableMode(bn, path: bn.lastKnownPath ?? path, operation: operation)
            fold(bn, into: previous)
            continue
        }
        out.append(layer)
    }
    return out
}

/// The output channels of a layer that can take a folded BatchNorm, and the BatchNorm type that
/// follows it; `nil` for other modules.
private func foldableKind(of layer: Module) -> (channels: Int, batchNorm: BatchNormBase.Type)? {
    switch layer {
    case let l as Linear: return (l.outFeatures, BatchNorm1d.self)
    case let c as ConvBase:
        switch c.dims {
        case 1: return (c.outChannels, BatchNorm1d.self)
        case 2: return (c.outChannels, BatchNorm2d.self)
        case 3: return (c.outChannels, BatchNorm3d.self)
        default: return nil
        }
    default: return nil
    }
}

/// Stops unless `bn` is in eval mode and not pinned to training.
private func checkFoldableMode(_ bn: BatchNormBase, path: String, operation: String) {
    precondition(bn.pinnedMode != .training,
                 "\(operation): \(bn.typeName) '\(path)' is pinned to training mode, so it normalises with batch statistics and updates its running statistics; it cannot be folded. Unpin it (unpin()) or leave it out")
    precondition(!bn.isTraining,
                 "\(operation): \(bn.typeName) '\(path)' is in training mode; folding uses the running statistics, which only eval mode uses. Call eval() on the model first")
}

/// Folds `bn`'s eval-mode affine map into `layer`'s weight and bias (see
/// ``Module/fusedForInference(folding:rebuilding:)``), in float64, stored in the weight's dtype.
private func fold(_ bn: BatchNormBase, into layer: Module) {
    let weight: Parameter, oldBias: Parameter?, outChannels: Int, channel: (Int) -> Int
    let dtype: DType
    switch layer {
    case let l as Linear:
        weight = l.weight; oldBias = l.bias; outChannels = l.outFeatures
        let inner = l.inFeatures
        channel = { $0 / inner }
    case let c as ConvBase:
        weight = c.weight; oldBias = c.bias; outChannels = c.outChannels
        let kernelVolume = c.kernelSize.reduce(1, *)
        if c.transposed {
            // [in, out / groups, k...]: element i is input channel i / (perGroup * kernelVolume),
            // output channel (its group) * perGroup + (i / kernelVolume) % perGroup.
            let perGroup = c.outChannels / c.groups, inPerGroup = c.inChannels / c.groups
            channel = { i in (i / (perGroup * kernelVolume)) / inPerGroup * perGroup + (i / kernelVolume) % perGroup }
        } else {
            let inner = c.weight.value.count / max(c.outChannels, 1)
            channel = { $0 / inner }
        }
    default:
        preconditionFailure("fold: \(layer.typeName) takes no folded BatchNorm")
    }
    dtype = weight.value.dtype
    let mean = bn.runningMean!.value.doubles, variance = bn.runningVar!.value.doubles
    let gamma = bn.weight?.value.doubles ?? Array(repeating: 1, count: outChannels)
    let beta = bn.bias?.value.doubles ?? Array(repeating: 0, count: outChannels)
    let scale = (0..<outChannels).map { gamma[$0] / (variance[$0] + bn.eps).squareRoot() }
    let w = weight.value.doubles
    let folded = w.indices.map { w[$0] * scale[channel($0)] }
    let b = oldBias?.value.doubles ?? Array(repeating: 0, count: outChannels)
    let bias = (0..<outChannels).map { (b[$0] - mean[$0]) * scale[$0] + beta[$0] }
    weight.value = Tensor(folded, shape: weight.value.shape).to(dtype)
    let biasValue = Tensor(bias, shape: [outChannels]).to(dtype)
    if let oldBias {
        oldBias.value = biasValue
    } else {
        let created = Parameter(biasValue, requiresGrad: weight.requiresGrad)
        switch layer {
        case let l as Linear: l.bias = created
        case let c as ConvBase: c.bias = created
        default: break
        }
    }
}
