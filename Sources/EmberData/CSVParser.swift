/// Splits CSV text (RFC 4180) into records of fields, tracking physical line numbers.
///
/// Fields are separated by `delimiter`, records by `\n`, `\r\n` or `\r`. A field that starts with
/// `"` is quoted: it ends at the next lone `"` (a doubled `""` is a literal quote) and may contain
/// delimiters and line breaks; only a delimiter or a line break may follow it. Empty lines are
/// skipped. A UTF-8 byte-order mark at the start is ignored.
struct CSVParser {
    /// One field: where its bytes are (or, for a quoted field, its content with the quotes
    /// removed) and the line it starts on.
    struct Field {
        /// An unquoted field's bytes in the input.
        var range: Range<Int>
        /// A quoted field's content, unescaped.
        var quoted: [UInt8]?
        var line: Int
    }

    /// One record: its fields and the line it starts on.
    struct Record {
        var fields: [Field]
        var line: Int
    }

    let bytes: UnsafeRawBufferPointer
    let delimiter: UInt8
    let file: String
    private var pos = 0
    private var line = 1
    /// The previous record's field count, to size the next one's array.
    private var lastWidth = 0

    init(bytes: UnsafeRawBufferPointer, delimiter: UInt8, file: String) {
        self.bytes = bytes
        self.delimiter = delimiter
        self.file = file
        if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { pos = 3 }
    }

    private static let quote = UInt8(ascii: "\""), lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")

    /// Consumes a line break at `pos` if there is one.
    private mutating func lineBreak() -> Bool {
        guard pos < bytes.count else { return false }
        if bytes[pos] == Self.lf {
            pos += 1
        } else if bytes[pos] == Self.cr {
            pos += 1
            if pos < bytes.count && bytes[pos] == Self.lf { pos += 1 }
        } else {
            return false
        }
        line += 1
        return true
    }

    /// The next non-empty record, or `nil` at the end of the text.
    mutating func next() throws(DataError) -> Record? {
        while lineBreak() {}
        guard pos < bytes.count else { return nil }
        let recordLine = line
        var fields: [Field] = []
        fields.reserveCapacity(lastWidth)
        while true {
            let field = try nextField(column: fields.count + 1)
            fields.append(field)
            if pos < bytes.count && bytes[pos] == delimiter {
                pos += 1
                continue
            }
            _ = lineBreak()
            lastWidth = fields.count
            return Record(fields: fields, line: recordLine)
        }
    }

    /// The field at `pos`; leaves `pos` at the delimiter, line break or end that follows it.
    private mutating func nextField(column: Int) throws(DataError) -> Field {
        let fieldLine = line
        if pos < bytes.count && bytes[pos] == Self.quote {
            pos += 1
            var text: [UInt8] = []
            while true {
                guard pos < bytes.count else {
                    throw .csv(file: file, line: fieldLine, column: column,
                               expected: "a closing quote (\") for the quoted field that starts here", found: "the end of the file")
                }
                let c = bytes[pos]
                if c == Self.quote {
                    if pos + 1 < bytes.count && bytes[pos + 1] == Self.quote {
                        text.append(Self.quote)
                        pos += 2
                        continue
                    }
                    pos += 1
                    break
                }
                if c == Self.lf || (c == Self.cr && !(pos + 1 < bytes.count && bytes[pos + 1] == Self.lf)) { line += 1 }
                text.append(c)
                pos += 1
            }
            if pos < bytes.count && bytes[pos] != delimiter && bytes[pos] != Self.lf && bytes[pos] != Self.cr {
                var end = pos
                while end < bytes.count && end - pos < 20 && bytes[end] != delimiter && bytes[end] != Self.lf && bytes[end] != Self.cr { end += 1 }
                throw .csv(file: file, line: line, column: column,
                           expected: "a delimiter or the end of the line after the closing quote",
                           found: Render.quoted(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[pos..<end]), as: UTF8.self)))
            }
            return Field(range: pos..<pos, quoted: text, line: fieldLine)
        }
        let start = pos
        while pos < bytes.count {
            let c = bytes[pos]
            if c == delimiter || c == Self.lf || c == Self.cr { break }
            pos += 1
        }
        return Field(range: start..<pos, quoted: nil, line: fieldLine)
    }

    /// Calls `body` with the bytes of `field`'s content.
    func withContent<R>(of field: Field, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        if let quoted = field.quoted { return quoted.withUnsafeBytes(body) }
        return body(UnsafeRawBufferPointer(rebasing: bytes[field.range]))
    }

    /// `field`'s content as text (invalid UTF-8 is repaired).
    func text(of field: Field) -> String {
        withContent(of: field) { String(decoding: $0, as: UTF8.self) }
    }
}

/// Number parsing from a field's bytes.
enum CSVNumber {
    /// The bytes without leading and trailing spaces and tabs.
    static func trimmed(_ b: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var lo = 0, hi = b.count
        while lo < hi && (b[lo] == 0x20 || b[lo] == 0x09) { lo += 1 }
        while hi > lo && (b[hi - 1] == 0x20 || b[hi - 1] == 0x09) { hi -= 1 }
        return UnsafeRawBufferPointer(rebasing: b[lo..<hi])
    }

    /// The number in `b` (already trimmed), correctly rounded to `T`, or `nil`. Short integers
    /// (the common case: pixel values, counts) are converted exactly without building a string;
    /// everything else goes through the standard library's parser (`1.5e-3`, `nan`, `inf`).
    static func parse<T: BinaryFloatingPoint & LosslessStringConvertible>(_ b: UnsafeRawBufferPointer, as: T.Type) -> T? {
        if b.isEmpty { return nil }
        var i = 0
        var negative = false
        if b[0] == UInt8(ascii: "-") || b[0] == UInt8(ascii: "+") {
            negative = b[0] == UInt8(ascii: "-")
            i = 1
        }
        // Integers below 10^6 are exact in float32 and float64.
        if b.count - i >= 1 && b.count - i <= 6 {
            var v = 0
            var j = i
            while j < b.count, b[j] >= 0x30, b[j] <= 0x39 {
                v = v * 10 + Int(b[j] - 0x30)
                j += 1
            }
            if j == b.count { return negative ? -T(v) : T(v) }
        }
        return T(String(decoding: b, as: UTF8.self))
    }
}
