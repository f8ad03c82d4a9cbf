#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import EmberTensor

/// How tensors are printed.
///
/// PyTorch parity: the fields and defaults of `torch.set_printoptions` (`precision=4`,
/// `threshold=1000`, `edgeitems=3`, `linewidth=80`, `sci_mode=None`). Ember passes options
/// explicitly (`t.description(options:)`) instead of changing a process-wide setting.
public struct PrintOptions: Sendable, Hashable {
    /// Digits after the decimal point for floating-point values.
    public var precision: Int
    /// Tensors with more elements than this are summarised with `...`.
    public var threshold: Int
    /// Items shown at the start and end of each summarised dimension (at least 1).
    public var edgeItems: Int
    /// Characters per line before a row of values wraps.
    public var lineWidth: Int
    /// Force (`true`) or forbid (`false`) scientific notation; `nil` lets the values decide.
    public var scientific: Bool?

    public init(precision: Int = 4, threshold: Int = 1000, edgeItems: Int = 3, lineWidth: Int = 80,
                scientific: Bool? = nil) {
        precondition(precision >= 0 && precision <= 30, "PrintOptions: precision must be in 0...30, got \(precision)")
        precondition(edgeItems >= 1, "PrintOptions: edgeItems must be at least 1, got \(edgeItems)")
        self.precision = precision
        self.threshold = threshold
        self.edgeItems = edgeItems
        self.lineWidth = lineWidth
        self.scientific = scientific
    }

    /// PyTorch's `profile="full"`: never summarise.
    public static var full: PrintOptions { PrintOptions(threshold: .max) }
}

extension Tensor: CustomStringConvertible, CustomDebugStringConvertible {
    /// The tensor as PyTorch prints it, e.g.
    ///
    /// ```
    /// tensor([[0.1000, 2.0000],
    ///         [3.0000, 4.0000]])
    /// ```
    ///
    /// Floats get 4 decimals, or scientific notation when the largest and smallest non-zero
    /// magnitudes differ by more than 1000x, or one exceeds 1e8 or falls below 1e-4; integer-valued
    /// floats print as `1.`; tensors over 1000 elements are summarised with `...`; float64 adds
    /// `dtype=torch.float64`, empty tensors their size, and tracked tensors `requires_grad=True` or
    /// `grad_fn=<op>`.
    ///
    /// PyTorch parity: `str(tensor)` / `repr(tensor)` with default print options, character for
    /// character (pinned by a PyTorch fixture), except that `grad_fn` shows Ember's op name
    /// (`grad_fn=<mul>`) where PyTorch shows its node class (`grad_fn=<MulBackward0>`).
    public var description: String { description(options: PrintOptions()) }

    /// Same as ``description``.
    public var debugDescription: String { description }

    /// The tensor printed with `options` (see ``description``).
    public func description(options: PrintOptions) -> String {
        let prefix = "tensor("
        let indent = prefix.count
        var suffixes: [String] = []
        let body: String
        if count == 0 {
            // PyTorch shows the size unless it is (0,); a 0-d tensor is never empty.
            if rank != 1 { suffixes.append("size=(" + shape.map(String.init).joined(separator: ", ") + ")") }
            if dtype != .float32 { suffixes.append("dtype=\(dtype)") }
            body = "[]"
        } else {
            if dtype == .float64 { suffixes.append("dtype=\(dtype)") }
            body = TensorPrinter(self, options: options).render(indent: indent)
        }
        if let op = gradFnName {
            suffixes.append("grad_fn=<\(op)>")
        } else if requiresGrad {
            suffixes.append("requires_grad=True")
        }
        return TensorPrinter.addSuffixes(prefix + body, suffixes, indent: indent, lineWidth: options.lineWidth)
    }
}

/// PyTorch's `torch/_tensor_str.py`, transcribed: one formatter sized over the (summarised)
/// values, then a recursive layout.
private struct TensorPrinter {
    let tensor: Tensor
    let options: PrintOptions
    let summarize: Bool
    let formatter: Formatter

    init(_ tensor: Tensor, options: PrintOptions) {
        self.tensor = tensor
        self.options = options
        self.summarize = tensor.count > options.threshold
        var values: [Double] = []
        var ints: [Int64] = []
        var bools: [Bool] = []
        // Only the elements that will be shown decide widths and notation, as in PyTorch.
        TensorPrinter.visitShown(tensor, summarize: summarize, edge: options.edgeItems) { offset in
            switch tensor.dtype {
            case .float32, .float64: values.append(TensorPrinter.double(tensor, offset))
            case .int64: ints.append(TensorPrinter.int(tensor, offset))
            case .bool: bools.append(TensorPrinter.bool(tensor, offset))
            }
        }
        switch tensor.dtype {
        case .float32, .float64: formatter = Formatter(floats: values, options: options)
        case .int64: formatter = Formatter(width: ints.map { String($0).count }.max() ?? 1)
        case .bool: formatter = Formatter(width: bools.map { $0 ? 4 : 5 }.max() ?? 1)
        }
    }

    // MARK: element access (through strides: no copy, works on any view)

    static func double(_ t: Tensor, _ offset: Int) -> Double {
        let p = t.storage.baseAddress
        return t.dtype == .float32 ? Double(p.load(fromByteOffset: offset * 4, as: Float.self))
            : p.load(fromByteOffset: offset * 8, as: Double.self)
    }

    static func int(_ t: Tensor, _ offset: Int) -> Int64 {
        t.storage.baseAddress.load(fromByteOffset: offset * 8, as: Int64.self)
    }

    static func bool(_ t: Tensor, _ offset: Int) -> Bool {
        t.storage.baseAddress.load(fromByteOffset: offset, as: Bool.self)
    }

    /// The indices shown along a dimension of `size`: all, or the first and last `edge`.
    static func shownIndices(_ size: Int, summarize: Bool, edge: Int) -> [Int] {
        summarize && size > 2 * edge ? Array(0..<edge) + Array((size - edge)..<size) : Array(0..<size)
    }

    /// Calls `body(storage offset)` for every shown element, in row-major order.
    static func visitShown(_ t: Tensor, summarize: Bool, edge: Int, _ body: (Int) -> Void) {
        func walk(_ dim: Int, _ offset: Int) {
            if dim == t.rank { body(offset); return }
            for i in shownIndices(t.shape[dim], summarize: summarize, edge: edge) {
                walk(dim + 1, offset + i * t.strides[dim])
            }
        }
        walk(0, t.offset)
    }

    func format(_ offset: Int) -> String {
        switch tensor.dtype {
        case .float32, .float64: formatter.format(TensorPrinter.double(tensor, offset))
        case .int64: formatter.pad(String(TensorPrinter.int(tensor, offset)))
        case .bool: formatter.pad(TensorPrinter.bool(tensor, offset) ? "True" : "False")
        }
    }

    // MARK: layout

    func render(indent: Int) -> String {
        if tensor.rank == 0 { return format(tensor.offset) }
        return render(dim: 0, offset: tensor.offset, indent: indent)
    }

    private func render(dim: Int, offset: Int, indent: Int) -> String {
        let size = tensor.shape[dim], step = tensor.strides[dim]
        let elide = summarize && size > 2 * options.edgeItems
        let rest = tensor.rank - dim  // PyTorch's `dim` of the sub-tensor
        if rest == 1 {
            let elementLength = formatter.width + 2
            let perLine = Swift.max(1, (options.lineWidth - indent) / elementLength)
            var data: [String] = []
            for i in TensorPrinter.shownIndices(size, summarize: summarize, edge: options.edgeItems) {
                if elide && i == size - options.edgeItems { data.append(" ...") }
                data.append(format(offset + i * step))
            }
            let lines = stride(from: 0, to: data.count, by: perLine).map {
                data[$0..<Swift.min($0 + perLine, data.count)].joined(separator: ", ")
            }
            return "[" + lines.joined(separator: ",\n" + String(repeating: " ", count: indent + 1)) + "]"
        }
        var slices: [String] = []
        for i in TensorPrinter.shownIndices(size, summarize: summarize, edge: options.edgeItems) {
            if elide && i == size - options.edgeItems { slices.append("...") }
            slices.append(render(dim: dim + 1, offset: offset + i * step, indent: indent + 1))
        }
        let separator = "," + String(repeating: "\n", count: rest - 1) + String(repeating: " ", count: indent + 1)
        return "[" + slices.joined(separator: separator) + "]"
    }

    /// PyTorch's `_add_suffixes`: `, suffix` on the last line, or on a new indented line when the
    /// line would pass `lineWidth`.
    static func addSuffixes(_ text: String, _ suffixes: [String], indent: Int, lineWidth: Int) -> String {
        var out = text
        // PyTorch computes len(s) - s.rfind("\n") + 1, which is the last line's length + 2.
        let lastNewline = text.utf8.lastIndex(of: UInt8(ascii: "\n")).map { text.utf8.distance(from: text.utf8.startIndex, to: $0) } ?? -1
        var lastLineLength = text.utf8.count - lastNewline + 1
        for suffix in suffixes {
            if lastLineLength + suffix.count + 2 > lineWidth {
                out += ",\n" + String(repeating: " ", count: indent) + suffix
                lastLineLength = indent + suffix.count
            } else {
                out += ", " + suffix
                lastLineLength += suffix.count + 2
            }
        }
        return out + ")"
    }
}

/// PyTorch's `_Formatter`: decides integer mode, scientific notation and the common width.
private struct Formatter {
    var width = 1
    var isFloat = false
    var intMode = true
    var scientific = false
    var precision = 4

    /// For int64 and bool: the widest printed value.
    init(width: Int) { self.width = Swift.max(1, width) }

    init(floats values: [Double], options: PrintOptions) {
        isFloat = true
        precision = options.precision
        let shown = values.filter { $0.isFinite && $0 != 0 }
        guard !shown.isEmpty else { return }
        let magnitudes = shown.map { Swift.abs($0) }
        let lo = magnitudes.min()!, hi = magnitudes.max()!
        intMode = shown.allSatisfy { $0 == $0.rounded(.up) }
        scientific = options.scientific ?? (hi / lo > 1000 || hi > 1e8 || lo < 1e-4)
        for v in shown {
            if scientific {
                width = Swift.max(width, Formatter.c(v, "%.\(precision)e").count)
            } else if intMode {
                width = Swift.max(width, Formatter.c(v, "%.0f").count + 1)
            } else {
                width = Swift.max(width, Formatter.c(v, "%.\(precision)f").count)
            }
        }
    }

    func format(_ v: Double) -> String {
        let s: String
        if !v.isFinite {
            s = v.isNaN ? "nan" : (v > 0 ? "inf" : "-inf")  // Python's spelling (C may print -nan)
        } else if scientific {
            s = Formatter.c(v, "%.\(precision)e")
        } else if intMode {
            s = Formatter.c(v, "%.0f") + "."
        } else {
            s = Formatter.c(v, "%.\(precision)f")
        }
        return pad(s)
    }

    func pad(_ s: String) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }

    /// C's `printf` formatting of one finite double (correctly rounded, like Python's `format`).
    static func c(_ v: Double, _ spec: String) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 400) { buffer in
            let n = withVaList([v]) { vsnprintf(buffer.baseAddress, buffer.count, spec, $0) }
            precondition(n >= 0 && n < buffer.count, "Tensor printing: value \(v) does not fit the print buffer")
            return String(decoding: UnsafeRawBufferPointer(start: buffer.baseAddress, count: Int(n)), as: UTF8.self)
        }
    }
}
