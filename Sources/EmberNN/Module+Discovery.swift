import EmberAutograd
import Foundation

/// Something a module holds directly (not through a child module).
enum Member {
    case module(Module)
    case parameter(Parameter)
    case buffer(Buffer)
}

/// A member with its local (dot-joined) name relative to the holding module.
struct NamedMember {
    var name: String
    var member: Member
    /// Found inside a `Set`, whose iteration order is not stable across runs, so the name is not
    /// stable either.
    var unstableName: Bool
}

extension Module {
    /// This module's own members in declaration order (superclass fields first), found by
    /// reflection through containers. Child modules are returned, not descended.
    ///
    /// `path` is this module's path from the traversal root, used in warnings, which go to
    /// `warn` (path, message).
    func localMembers(path: String, warn: (String, String) -> Void) -> [NamedMember] {
        var mirrors: [Mirror] = []
        var m: Mirror? = Mirror(reflecting: self)
        while let current = m {
            mirrors.append(current)
            m = current.superclassMirror
        }
        var stack: [(name: String, value: Any, unstable: Bool)] = []
        for mirror in mirrors {  // derived first; reversed on the stack below gives base first
            for child in mirror.children.reversed() {
                guard let label = child.label else { continue }
                let (name, value) = fieldName(label, value: child.value)
                stack.append((name, value, false))
            }
        }
        var out: [NamedMember] = []
        while let (name, value, unstable) = stack.popLast() {
            if let module = value as? Module {
                out.append(NamedMember(name: name, member: .module(module), unstableName: unstable))
                continue
            }
            if let p = value as? Parameter {
                out.append(NamedMember(name: name, member: .parameter(p), unstableName: unstable))
                continue
            }
            if let b = value as? Buffer {
                out.append(NamedMember(name: name, member: .buffer(b), unstableName: unstable))
                continue
            }
            if value is ModuleTreeLeaf { continue }
            let mirror = Mirror(reflecting: value)
            var children: [(String, Any, Bool)] = []
            switch mirror.displayStyle {
            case .optional:
                if let some = mirror.children.first { children.append((name, some.value, unstable)) }
            case .collection:
                for (i, c) in mirror.children.enumerated() { children.append((join(name, String(i)), c.value, unstable)) }
            case .set:
                for (i, c) in mirror.children.enumerated() { children.append((join(name, String(i)), c.value, true)) }
            case .dictionary:
                var entries: [(String, Any)] = []
                for c in mirror.children {
                    let pair = Array(Mirror(reflecting: c.value).children)
                    guard pair.count == 2 else { continue }
                    entries.append((String(describing: pair[0].value), pair[1].value))
                }
                if !(value is OrderedModules) { entries.sort { $0.0 < $1.0 } }
                for (key, v) in entries { children.append((join(name, key), v, unstable)) }
            case .tuple:
                for (i, c) in mirror.children.enumerated() {
                    var label = c.label ?? String(i)
                    if label.hasPrefix(".") { label.removeFirst() }
                    children.append((join(name, snakeCased(label)), c.value, unstable))
                }
            case .struct:
                for c in mirror.children {
                    guard let label = c.label else { continue }
                    let (n, v) = fieldName(label, value: c.value)
                    children.append((join(name, n), v, unstable))
                }
            case .enum:
                for c in mirror.children { children.append((join(name, snakeCased(c.label ?? "payload")), c.value, unstable)) }
            case .class:
                if let hidden = firstHiddenModule(in: value) {
                    let full = join(path, name)
                    warn(full, "Ember warning: '\(full)' is a \(type(of: value)), which is not a Module, and holds a module at '\(join(full, hidden))'; train()/eval(), parameters() and stateDict() do not reach it. Make \(type(of: value)) a subclass of Module.")
                }
            default:
                break
            }
            stack.append(contentsOf: children.reversed().map { (name: $0.0, value: $0.1, unstable: $0.2) })
        }
        return out
    }
}

/// Joins two name segments with a dot, skipping empty ones.
@inline(__always)
func join(_ a: String, _ b: String) -> String {
    a.isEmpty ? b : (b.isEmpty ? a : a + "." + b)
}

/// The public name of a stored property: property-wrapper storage `_name` is named `name` (a
/// wrapper struct with a single stored property is looked through), and `lazy var name` storage
/// is named `name`.
private func fieldName(_ label: String, value: Any) -> (String, Any) {
    if let flattened = value as? FlattenedNames { return ("", flattened.flattenedContents) }
    let lazyPrefix = "$__lazy_storage_$_"
    if label.hasPrefix(lazyPrefix) { return (snakeCased(String(label.dropFirst(lazyPrefix.count))), value) }
    guard label.hasPrefix("_"), label.count > 1 else { return (snakeCased(label), value) }
    let name = snakeCased(String(label.dropFirst()))
    let mirror = Mirror(reflecting: value)
    if mirror.displayStyle == .struct, mirror.children.count == 1, let only = mirror.children.first {
        return (name, only.value)
    }
    return (name, value)
}

/// The relative path of the first module reachable inside a non-module object, if any. Looks
/// through containers and nested objects, visiting each object once.
private func firstHiddenModule(in root: Any) -> String? {
    var seen = Set<ObjectIdentifier>()
    var stack: [(String, Any)] = [("", root)]
    var first = true
    while let (name, value) = stack.popLast() {
        if !first, value is Module { return name }
        if value is ModuleTreeLeaf || value is Parameter || value is Buffer { continue }
        let mirror = Mirror(reflecting: value)
        if mirror.displayStyle == .class {
            let id = ObjectIdentifier(value as AnyObject)
            guard seen.insert(id).inserted else { continue }
        }
        first = false
        var m: Mirror? = mirror
        var children: [(String, Any)] = []
        while let current = m {
            for (i, c) in current.children.enumerated() {
                var label = c.label ?? String(i)
                if label.hasPrefix(".") { label.removeFirst() }
                if mirror.displayStyle == .dictionary {
                    let pair = Array(Mirror(reflecting: c.value).children)
                    if pair.count == 2 { children.append((join(name, String(describing: pair[0].value)), pair[1].value)); continue }
                }
                children.append((join(name, label), c.value))
            }
            m = current.superclassMirror
        }
        stack.append(contentsOf: children.reversed())
    }
    return nil
}

/// Swift's camelCase property name as PyTorch's snake_case attribute name, so state-dict keys
/// match: `runningMean` -> `running_mean`, `numBatchesTracked` -> `num_batches_tracked`,
/// `weightIH` -> `weight_ih`, `fc1` -> `fc1`. Dictionary keys are never changed.
func snakeCased(_ name: String) -> String {
    let chars = Array(name)
    guard chars.contains(where: \.isUppercase) else { return name }
    var out = ""
    for (i, ch) in chars.enumerated() {
        if ch.isUppercase, i > 0 {
            let prev = chars[i - 1]
            let nextIsLower = i + 1 < chars.count && chars[i + 1].isLowercase
            if prev.isLowercase || prev.isNumber || (prev.isUppercase && nextIsLower), prev != "_" {
                out.append("_")
            }
        }
        out.append(contentsOf: ch.lowercased())
    }
    return out
}
