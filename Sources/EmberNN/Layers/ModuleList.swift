import EmberAutograd
import EmberTensor

/// Modules in a list, named `0`, `1`, ... with no `forward` of its own.
///
/// Use it for a model that is itself a list of modules, as PyTorch's `ModuleList` at the top of a
/// checkpoint (keys `0.weight`, `1.bias`), or for blocks a custom `forward` loops over. A plain
/// `[Module]` property works as well inside a module (`blocks.0.weight`); `ModuleList` is for
/// when the list itself is the module whose keys must carry no prefix.
///
/// ```swift
/// let heads = ModuleList([Linear(16, 2), Linear(16, 3)])
/// try heads.loadSafetensors("heads.safetensors")   // keys 0.weight, 0.bias, 1.weight, 1.bias
/// let outputs = heads.map { $0(features) }
/// ```
///
/// PyTorch parity: `torch.nn.ModuleList`: the same keys, `append`, `insert`, `extend`, indexing.
/// Calling it stops with PyTorch's "missing the required forward function" message.
public final class ModuleList: Module, RandomAccessCollection {
    /// The modules, in order.
    @Flattened public var modules: [Module]

    public init(_ modules: [Module] = []) {
        self.modules = modules
        super.init()
    }

    public convenience init(_ modules: Module...) { self.init(modules) }

    public var startIndex: Int { modules.startIndex }
    public var endIndex: Int { modules.endIndex }

    /// The module at `index`.
    public subscript(index: Int) -> Module {
        get { modules[index] }
        set { modules[index] = newValue }
    }

    /// Appends a module. PyTorch parity: `ModuleList.append`.
    public func append(_ module: Module) { modules.append(module) }

    /// Appends modules. PyTorch parity: `ModuleList.extend`.
    public func append(contentsOf others: [Module]) { modules.append(contentsOf: others) }

    /// Inserts a module before `index`. PyTorch parity: `ModuleList.insert`.
    public func insert(_ module: Module, at index: Int) { modules.insert(module, at: index) }

    /// Stops: a list of modules has no single forward. Call its modules.
    public override func forward(_ input: Tensor) -> Tensor {
        preconditionFailure("\(errorContext): Module [ModuleList] is missing the required \"forward\" function; call its modules (input shape \(input.shape))")
    }
}

/// Modules under string keys, in insertion order, with no `forward` of its own.
///
/// Keys are used as they are (no snake-casing) and carry no prefix: a `ModuleDict` holding
/// `"encoder"` and `"head"` has state-dict keys `encoder.weight`, `head.bias`, in insertion order.
///
/// PyTorch parity: `torch.nn.ModuleDict`: the same keys and order, `keys`, subscripting,
/// `removeValue(forKey:)` for `pop`. Calling it stops with PyTorch's message.
public final class ModuleDict: Module {
    @Flattened var entries: OrderedModules

    /// An empty dictionary, or `pairs` in order (a repeated key keeps its first position and its
    /// last module).
    public init(_ pairs: [(String, Module)] = []) {
        entries = OrderedModules()
        super.init()
        for (key, module) in pairs { self[key] = module }
    }

    /// The keys, in insertion order.
    public var keys: [String] { entries.keys }

    /// The modules, in key order.
    public var values: [Module] { entries.keys.map { entries.modules[$0]! } }

    /// Number of entries.
    public var count: Int { entries.keys.count }

    /// The module under `key`; setting a new key appends it, setting `nil` removes it.
    public subscript(key: String) -> Module? {
        get { entries.modules[key] }
        set {
            precondition(!key.isEmpty && !key.contains("."), "ModuleDict: a key must be non-empty and contain no '.', got \"\(key)\"")
            if let newValue {
                if entries.modules.updateValue(newValue, forKey: key) == nil { entries.keys.append(key) }
            } else if entries.modules.removeValue(forKey: key) != nil {
                entries.keys.removeAll { $0 == key }
            }
        }
    }

    /// Removes and returns the module under `key`. PyTorch parity: `ModuleDict.pop`.
    @discardableResult
    public func removeValue(forKey key: String) -> Module? {
        let module = self[key]
        self[key] = nil
        return module
    }

    /// Stops: a dictionary of modules has no single forward. Call its modules.
    public override func forward(_ input: Tensor) -> Tensor {
        preconditionFailure("\(errorContext): Module [ModuleDict] is missing the required \"forward\" function; call its modules (input shape \(input.shape))")
    }
}

/// String-keyed modules in insertion order. Discovery reads it through a dictionary-style mirror
/// and keeps this order (a Swift `Dictionary` has none, so discovery sorts its keys).
struct OrderedModules: CustomReflectable {
    var keys: [String] = []
    var modules: [String: Module] = [:]

    var customMirror: Mirror {
        Mirror(self, children: keys.map { (label: nil, value: ($0, modules[$0]!) as Any) }, displayStyle: .dictionary)
    }
}
