import EmberNN

extension StateDict {
    /// Reads a state dict saved as safetensors, keys in file order.
    ///
    /// PyTorch parity: reads what `safetensors.torch.save_file(model.state_dict(), path)` writes.
    public init(safetensorsAt path: String) throws(SafetensorsError) {
        let contents = try Safetensors.read(contentsOf: path)
        self.init(contents.names.map { ($0, contents.tensors[$0]!) })
    }

    /// Writes this state dict as safetensors (atomically: temporary file, then rename).
    public func write(safetensorsTo path: String, metadata: [String: String] = [:]) throws(SafetensorsError) {
        try Safetensors.write(map { ($0.key, $0.value) }, metadata: metadata, to: path)
    }
}

/// Why weights could not be loaded from a file: the file itself, or its keys and shapes.
public enum WeightsLoadingError: Error, CustomStringConvertible {
    case file(SafetensorsError)
    case stateDict(path: String, StateDictError)

    public var description: String {
        switch self {
        case .file(let e): e.description
        case .stateDict(let path, let e): "\(path): \(e.description)"
        }
    }
}

extension Module {
    /// Loads weights saved as safetensors (for example PyTorch's `state_dict()`), checking every
    /// key and shape before copying anything. The mode is not changed.
    ///
    /// PyTorch parity: `model.load_state_dict(safetensors.torch.load_file(path), strict=strict)`.
    ///
    /// `prefix` loads only the entries under it, without it (see
    /// ``EmberNN/Module/loadStateDict(_:prefix:strict:)``).
    @discardableResult
    public func loadSafetensors(_ path: String, prefix: String = "", strict: Bool = true) throws(WeightsLoadingError) -> IncompatibleKeys {
        let dict: StateDict
        do { dict = try StateDict(safetensorsAt: path) } catch { throw .file(error) }
        do { return try loadStateDict(dict, prefix: prefix, strict: strict) } catch { throw .stateDict(path: path, error) }
    }

    /// Saves `stateDict()` as safetensors, atomically.
    ///
    /// PyTorch parity: `safetensors.torch.save_file(model.state_dict(), path)`; PyTorch loads the file.
    public func saveSafetensors(_ path: String, metadata: [String: String] = [:]) throws(SafetensorsError) {
        try stateDict().write(safetensorsTo: path, metadata: metadata)
    }
}
