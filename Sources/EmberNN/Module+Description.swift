import EmberAutograd

/// One row of a model listing: a module, its mode and its own parameters.
public struct ModuleListingEntry: Sendable, Equatable {
    /// Dotted path (`""` for the root).
    public var path: String
    /// Class name.
    public var typeName: String
    /// Current mode.
    public var mode: Mode
    /// The pin, if any.
    public var pinnedMode: Mode?
    /// Elements in the module's own parameters (not its children's).
    public var parameterCount: Int
    /// The module's own parameters and persistent buffers as `name [shape]`.
    public var shapes: [String]
}

extension Module: CustomStringConvertible {
    /// The mode tag shown in listings: `[train]`, `[eval]`, `[eval, pinned]`.
    public var modeTag: String {
        "[\(mode)\(pinnedMode != nil ? ", pinned" : "")\(hooksSummary.map { ", " + $0 } ?? "")]"
    }

    /// PyTorch's `print(model)` layout, with each module's mode tag appended.
    ///
    /// ```
    /// SeedNet(  [eval]
    ///   (fc1): Linear(in_features=10, out_features=20, bias=True)  [eval]
    ///   (bn1): BatchNorm1d(20, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)  [eval, pinned]
    /// )
    /// ```
    ///
    /// PyTorch parity: `Module.__repr__` plus the mode tags, which PyTorch does not show.
    public var description: String {
        var seen = Set<ObjectIdentifier>()
        return describe(seen: &seen)
    }

    private func describe(seen: inout Set<ObjectIdentifier>) -> String {
        seen.insert(ObjectIdentifier(self))
        let children = namedChildren()
        let extra = extraDescription
        if children.isEmpty { return "\(typeName)(\(extra))  \(modeTag)" }
        var lines = ["\(typeName)(\(children.isEmpty ? extra : "")  \(modeTag)"]
        if !extra.isEmpty { lines.append("  " + extra) }
        for (name, child) in children {
            let body: String
            if seen.contains(ObjectIdentifier(child)) {
                body = "\(child.typeName)(...)  (shared, shown above)"
            } else {
                body = child.describe(seen: &seen)
            }
            let indented = body.split(separator: "\n", omittingEmptySubsequences: false)
                .enumerated().map { $0.offset == 0 ? String($0.element) : "  " + $0.element }.joined(separator: "\n")
            lines.append("  (\(name)): \(indented)")
        }
        lines.append(")")
        return lines.joined(separator: "\n")
    }

    /// One entry per module (pre-order, each once) with its mode, pin, parameter count and shapes.
    public func listing() -> [ModuleListingEntry] {
        var out: [ModuleListingEntry] = []
        walk { path, module, members in
            var count = 0
            var shapes: [String] = []
            for m in members {
                switch m.member {
                case .parameter(let p): count += p.count; shapes.append("\(m.name) \(p.shape)")
                case .buffer(let b) where b.isPersistent: shapes.append("\(m.name) \(b.value.shape)")
                default: break
                }
            }
            out.append(ModuleListingEntry(path: path, typeName: module.typeName, mode: module.mode,
                                          pinnedMode: module.pinnedMode, parameterCount: count, shapes: shapes))
            return true
        }
        return out
    }

    /// A table of every module with its mode, pin, parameter count and shapes, and totals.
    public func summary() -> String {
        let rows = listing()
        let header = ["module", "type", "mode", "pinned", "params", "shapes"]
        var table = [header]
        for r in rows {
            table.append([r.path.isEmpty ? "(root)" : r.path, r.typeName, r.mode.rawValue,
                          r.pinnedMode.map { $0.rawValue } ?? "", String(r.parameterCount), r.shapes.joined(separator: ", ")])
        }
        var widths = [Int](repeating: 0, count: header.count)
        for row in table { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
        var lines = table.map { row in
            row.enumerated().map { i, c in i == row.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        lines.insert(String(repeating: "-", count: lines[0].count), at: 1)
        let params = parameters()
        let trainable = params.filter(\.requiresGrad).reduce(0) { $0 + $1.count }
        let total = params.reduce(0) { $0 + $1.count }
        let training = rows.filter { $0.mode == .training }.count
        let pinned = rows.filter { $0.pinnedMode != nil }.count
        lines.append("")
        lines.append("parameters: \(total) (\(trainable) trainable); modules: \(rows.count) (\(training) train, \(rows.count - training) eval, \(pinned) pinned)")
        return lines.joined(separator: "\n")
    }
}
