/// Splits CSV text (RFC 4180) into records of fields, tracking physical line numbers.
///
/// Fields are separated by `delimiter`, records by `\n`, `\r\n` or `\r`. A field that starts with
/// `"` is quoted: it ends at the next lone `"` (a doubled `""` is a literal quote) and may contain
/// delimiters and line breaks; only a delimiter or a line break may follow it. Empty lines are
/// skipped. A UTF-8 byte-order mark at the start is ignored.
struct CSVParser {
    /// One field: its text (quotes removed) and where it starts.
    struct Field {
        var text: String
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
        while true {
            let field = try nextField(column: fields.count + 1)
            fields.append(field)
            if pos < bytes.count && bytes[pos] == delimiter {
                pos += 1
                continue
            }
            _ = lineBreak()
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
            return Field(text: String(decoding: text, as: UTF8.self), line: fieldLine)
        }
        let start = pos
        while pos < bytes.count {
            let c = bytes[pos]
            if c == delimiter || c == Self.lf || c == Self.cr { break }
            pos += 1
        }
        return Field(text: String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self), line: fieldLine)
    }
}
