/// A Python literal in an `.npy` header.
indirect enum PyLiteral: Equatable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case none
    case tuple([PyLiteral])
    case list([PyLiteral])
    case dict([PyLiteral])

    /// The literal as Python would print it (short).
    var rendered: String {
        switch self {
        case .string(let s): "'\(s)'"
        case .int(let v): "\(v)"
        case .bool(let b): b ? "True" : "False"
        case .none: "None"
        case .tuple(let items): items.count == 1 ? "(\(items[0].rendered),)" : "(" + items.map(\.rendered).joined(separator: ", ") + ")"
        case .list(let items): "[" + items.map(\.rendered).joined(separator: ", ") + "]"
        case .dict: "{...}"
        }
    }
}

/// Parses the Python dict literal of an `.npy` header: string keys; values that are strings,
/// integers (an old Python 2 `L` suffix is accepted), `True`/`False`/`None`, tuples, lists or
/// dicts. Errors carry the byte offset in the file (`base` + the position in `bytes`).
struct PyLiteralParser {
    let bytes: UnsafeRawBufferPointer
    let base: Int
    let file: String
    var pos = 0
    var depth = 0

    init(bytes: UnsafeRawBufferPointer, base: Int, file: String) {
        self.bytes = bytes
        self.base = base
        self.file = file
    }

    /// The top-level dict as (key, value, file offset of the value), then only whitespace.
    mutating func parseHeaderDict() throws(DataError) -> [(String, PyLiteral, Int)] {
        skipSpace()
        try expect(UInt8(ascii: "{"), "'{' starting the header dictionary")
        var entries: [(String, PyLiteral, Int)] = []
        while true {
            skipSpace()
            if peek == UInt8(ascii: "}") { pos += 1; break }
            let keyOffset = base + pos
            guard case .string(let key) = try value() else {
                throw DataError.npy(file: file, offset: keyOffset, expected: "a string key", found: "another value")
            }
            if entries.contains(where: { $0.0 == key }) {
                throw DataError.npy(file: file, offset: keyOffset, expected: "each key once", found: "a second '\(key)'")
            }
            skipSpace()
            try expect(UInt8(ascii: ":"), "':' after the key '\(key)'")
            skipSpace()
            let valueOffset = base + pos
            entries.append((key, try value(), valueOffset))
            skipSpace()
            if peek == UInt8(ascii: ",") { pos += 1; continue }
            try expect(UInt8(ascii: "}"), "',' or '}' after the value of '\(key)'")
            break
        }
        skipSpace()
        if pos < bytes.count {
            throw error("only spaces and a newline after the header dictionary")
        }
        return entries
    }

    private var peek: UInt8? { pos < bytes.count ? bytes[pos] : nil }

    private mutating func skipSpace() {
        while let c = peek, c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { pos += 1 }
    }

    private func error(_ expected: String) -> DataError {
        let found: String
        if let c = peek {
            found = (0x20..<0x7F).contains(c) ? "'\(Character(Unicode.Scalar(c)))'" : Render.hex([c])
        } else {
            found = "the end of the header"
        }
        return .npy(file: file, offset: base + pos, expected: expected, found: found)
    }

    private mutating func expect(_ c: UInt8, _ what: String) throws(DataError) {
        guard peek == c else { throw error(what) }
        pos += 1
    }

    private mutating func value() throws(DataError) -> PyLiteral {
        guard let c = peek else { throw error("a value") }
        switch c {
        case UInt8(ascii: "'"), UInt8(ascii: "\""): return .string(try string(quote: c))
        case UInt8(ascii: "("): return .tuple(try sequence(close: UInt8(ascii: ")")))
        case UInt8(ascii: "["): return .list(try sequence(close: UInt8(ascii: "]")))
        case UInt8(ascii: "{"):
            // Nested dicts only appear in dtypes Ember does not read; parse them as a flat sequence.
            return .dict(try sequence(close: UInt8(ascii: "}"), mapping: true))
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .int(try integer())
        default:
            for (word, literal) in [("True", PyLiteral.bool(true)), ("False", .bool(false)), ("None", .none)]
            where bytes[pos...].starts(with: word.utf8) {
                pos += word.utf8.count
                return literal
            }
            throw error("a Python literal (a string, an integer, True, False, None, a tuple or a list)")
        }
    }

    private mutating func string(quote: UInt8) throws(DataError) -> String {
        let startOffset = pos
        pos += 1
        var out: [UInt8] = []
        while true {
            guard let c = peek else {
                pos = startOffset
                throw error("a string closed by \(quote == UInt8(ascii: "'") ? "'" : "\"") before the end of the header")
            }
            pos += 1
            if c == quote { break }
            if c == UInt8(ascii: "\\"), let next = peek {
                pos += 1
                out.append(next)
                continue
            }
            out.append(c)
        }
        // Keys and dtype strings are ASCII; anything else is decoded leniently for messages.
        return String(decoding: out, as: UTF8.self)
    }

    private mutating func integer() throws(DataError) -> Int {
        let start = pos
        var negative = false
        if peek == UInt8(ascii: "-") { negative = true; pos += 1 }
        var value = 0
        var digits = 0
        while let c = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int(c - UInt8(ascii: "0")))
            guard !o1, !o2 else {
                pos = start
                throw error("an integer that fits in 64 bits")
            }
            value = a
            digits += 1
            pos += 1
        }
        guard digits > 0 else { throw error("digits") }
        if peek == UInt8(ascii: "L") { pos += 1 }
        return negative ? -value : value
    }

    /// Items separated by commas up to `close` (a trailing comma is allowed); with `mapping`,
    /// `key: value` pairs, flattened.
    private mutating func sequence(close: UInt8, mapping: Bool = false) throws(DataError) -> [PyLiteral] {
        depth += 1
        defer { depth -= 1 }
        guard depth <= 32 else { throw error("at most 32 levels of nesting") }
        pos += 1
        var items: [PyLiteral] = []
        while true {
            skipSpace()
            if peek == close { pos += 1; return items }
            items.append(try value())
            skipSpace()
            if mapping {
                try expect(UInt8(ascii: ":"), "':' in a dict")
                skipSpace()
                items.append(try value())
                skipSpace()
            }
            if peek == UInt8(ascii: ",") { pos += 1; continue }
            guard peek == close else {
                throw error("',' or '\(Character(Unicode.Scalar(close)))'")
            }
        }
    }
}
