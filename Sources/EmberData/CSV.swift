import EmberAutograd
import Foundation
import EmberTensor
import EmberStorage

/// A CSV column, by header name or by 0-based index (negative indices count from the end, so
/// `-1` is the last column). String and integer literals convert: `label: "species"`, `label: 0`.
public enum CSVColumn: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, CustomStringConvertible {
    case name(String)
    case index(Int)

    public init(stringLiteral value: String) { self = .name(value) }
    public init(integerLiteral value: Int) { self = .index(value) }

    public var description: String {
        switch self {
        case .name(let n): "\"\(n)\""
        case .index(let i): "\(i)"
        }
    }
}

/// How the label column's text becomes class indices.
public enum CSVLabels: Sendable, Hashable {
    /// Each label is an integer written in the file (`3`, `-1`).
    case integers
    /// Each label is a class name; classes are numbered in sorted order of their names (the
    /// names are in ``CSVTable/classNames``), as scikit-learn's `LabelEncoder` does.
    case categories
}

/// The numeric content of a CSV file: a feature matrix and, when a label column was named, one
/// int64 class index per row.
public struct CSVTable: Sendable, Equatable {
    /// `[rows, featureNames.count]`, float32 or float64.
    public var features: HostTensor
    /// The feature columns' names from the header, or `column1`, `column2`, ... (1-based positions
    /// in the file) without one.
    public var featureNames: [String]
    /// `[rows]` int64, or `nil` when no label column was given.
    public var labels: HostTensor?
    /// The label column's name (from the header, or `columnN`).
    public var labelName: String?
    /// With ``CSVLabels/categories``, class `i`'s name; otherwise empty.
    public var classNames: [String]

    /// The number of data rows.
    public var rowCount: Int { features.shape[0] }

    /// The table as a dataset of (feature row, label) examples.
    ///
    /// - Precondition: the table has labels.
    public func dataset() -> TensorDataset {
        guard let labels else {
            preconditionFailure("CSVTable.dataset(): the table has no labels; pass label: to CSV.read to name the label column")
        }
        return TensorDataset(inputs: features, labels: labels)
    }
}

/// Reads numeric CSV files into a feature matrix and labels.
///
/// ```swift
/// let table = try CSV.read(contentsOf: "iris.csv", label: "species", labels: .categories)
/// let data = table.dataset()          // inputs [150, 4] float32, labels [150] int64
/// ```
///
/// The text is RFC 4180 CSV (see the parameters for the options): an optional header row, then
/// rows with as many fields as the header (or the first row). Every field outside the label and
/// excluded columns must be a finite number (surrounding spaces are ignored; `nan`, `inf` and
/// numbers beyond the dtype's range are accepted only with `allowNonFinite: true`); the label
/// column holds integer class indices (whole numbers: `0.5` or `1.0` is an error, never
/// truncated) or class names.
///
/// Every problem throws ``DataError/csv(file:line:column:expected:found:)`` with the line (where
/// the field starts) and column (1-based field number) and what was expected there: a ragged row,
/// a cell that is not a number, a non-finite number (unless allowed), an unclosed quote, text after a closing quote, a label that is not
/// an integer, or a named column that is not in the header.
///
/// PyTorch parity: none in `torch`; similar to `numpy.loadtxt(path, delimiter=",",
/// skiprows=1)` plus a label column, or `pandas.read_csv`, restricted to numeric data.
public enum CSV {
    /// Reads the CSV file at `path`.
    ///
    /// - Parameters:
    ///   - path: the file.
    ///   - hasHeader: whether the first row holds column names (default `true`).
    ///   - delimiter: the field separator, an ASCII character (default `,`; `;` and `\t` are common).
    ///   - label: the label column, by name or index; `nil` (default) reads every column as features.
    ///   - labels: how label text becomes class indices (default ``CSVLabels/integers``).
    ///   - excluding: columns to skip (identifiers, free text).
    ///   - dtype: the features' dtype, `.float32` (default) or `.float64` (each cell is parsed
    ///     directly to the dtype, so there is no double rounding).
    ///   - allowNonFinite: accept `nan`, `inf` and numbers that overflow the dtype to infinity in
    ///     feature columns (default `false`: they are an error naming the row and column).
    public static func read(
        contentsOf path: String, hasHeader: Bool = true, delimiter: Character = ",", label: CSVColumn? = nil,
        labels: CSVLabels = .integers, excluding: [CSVColumn] = [], dtype: DType = .float32, allowNonFinite: Bool = false
    ) throws(DataError) -> CSVTable {
        try decode(FileBytes.read(path), file: path, hasHeader: hasHeader, delimiter: delimiter, label: label,
                   labels: labels, excluding: excluding, dtype: dtype, allowNonFinite: allowNonFinite)
    }

    /// Decodes CSV text held in memory; `file` is only used in errors. See
    /// ``read(contentsOf:hasHeader:delimiter:label:labels:excluding:dtype:allowNonFinite:)``.
    public static func decode(
        _ data: Data, file: String = "<memory>", hasHeader: Bool = true, delimiter: Character = ",",
        label: CSVColumn? = nil, labels: CSVLabels = .integers, excluding: [CSVColumn] = [], dtype: DType = .float32,
        allowNonFinite: Bool = false
    ) throws(DataError) -> CSVTable {
        guard let d = delimiter.asciiValue, d != UInt8(ascii: "\""), d != 0x0A, d != 0x0D else {
            preconditionFailure("CSV: the delimiter must be an ASCII character other than a quote or a line break, not \(delimiter.debugDescription)")
        }
        precondition(dtype == .float32 || dtype == .float64, "CSV: features are read as float32 or float64, not \(dtype)")
        if case .name(let n)? = label, !hasHeader {
            preconditionFailure("CSV: the label column \"\(n)\" is given by name, but hasHeader is false; give its index instead")
        }
        return try FileBytes.withBytes(data) { (raw) throws(DataError) in
            var reader = TableReader(file: file, hasHeader: hasHeader, labelKind: labels, dtype: dtype, allowNonFinite: allowNonFinite)
            var parser = CSVParser(bytes: raw, delimiter: d, file: file)
            while let record = try parser.next() {
                try reader.add(record, parser: parser, label: label, excluding: excluding)
            }
            return try reader.finish(label: label, excluding: excluding)
        }
    }
}

/// Accumulates parsed records into a table.
private struct TableReader {
    let file: String
    let hasHeader: Bool
    let labelKind: CSVLabels
    let dtype: DType
    let allowNonFinite: Bool

    var header: [String]?
    var width: Int?
    var firstLine = 1
    var labelIndex: Int?
    var featureColumns: [Int] = []
    var floats: [Float] = []
    var doubles: [Double] = []
    var integerLabels: [Int64] = []
    var textLabels: [String] = []
    var rows = 0

    init(file: String, hasHeader: Bool, labelKind: CSVLabels, dtype: DType, allowNonFinite: Bool) {
        self.file = file
        self.hasHeader = hasHeader
        self.labelKind = labelKind
        self.dtype = dtype
        self.allowNonFinite = allowNonFinite
    }

    /// Fixes the columns from the first record (the header, or the first data row).
    mutating func setUp(_ record: CSVParser.Record, parser: CSVParser, label: CSVColumn?, excluding: [CSVColumn]) throws(DataError) {
        let n = record.fields.count
        width = n
        firstLine = record.line
        if hasHeader { header = record.fields.map { parser.text(of: $0) } }
        func resolve(_ column: CSVColumn, role: String) throws(DataError) -> Int {
            switch column {
            case .name(let name):
                let names = header ?? []
                if let i = names.firstIndex(of: name) { return i }
                if let i = names.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == name }) { return i }
                throw .csv(file: file, line: record.line, column: 0, expected: "a column named \"\(name)\" in the header (\(role))",
                           found: "the columns " + names.prefix(12).map { Render.quoted($0) }.joined(separator: ", ") + (names.count > 12 ? ", ..." : ""))
            case .index(let i):
                let j = i < 0 ? i + n : i
                guard j >= 0 && j < n else {
                    throw .csv(file: file, line: record.line, column: 0,
                               expected: "\(role) index \(i) to be in -\(n)..<\(n)", found: "rows of \(n) fields")
                }
                return j
            }
        }
        labelIndex = try label.map { (c) throws(DataError) in try resolve(c, role: "the label column") }
        var skipped = Set<Int>()
        for c in excluding { skipped.insert(try resolve(c, role: "an excluded column")) }
        if let labelIndex { skipped.insert(labelIndex) }
        featureColumns = (0..<n).filter { !skipped.contains($0) }
    }

    mutating func add(_ record: CSVParser.Record, parser: CSVParser, label: CSVColumn?, excluding: [CSVColumn]) throws(DataError) {
        if width == nil {
            try setUp(record, parser: parser, label: label, excluding: excluding)
            if hasHeader { return }
        }
        let width = width!
        guard record.fields.count == width else {
            throw .csv(file: file, line: record.line, column: Swift.min(record.fields.count, width) + 1,
                       expected: "\(width) fields, as in the \(hasHeader ? "header" : "first row") (line \(firstLine))",
                       found: "\(record.fields.count) field\(record.fields.count == 1 ? "" : "s")")
        }
        for j in featureColumns {
            let field = record.fields[j]
            if dtype == .float32 {
                guard let v = parser.withContent(of: field, { CSVNumber.parse(CSVNumber.trimmed($0), as: Float.self) }) else {
                    throw notANumber(field, column: j, parser: parser)
                }
                if !allowNonFinite && !v.isFinite { throw nonFinite(field, column: j, parser: parser) }
                floats.append(v)
            } else {
                guard let v = parser.withContent(of: field, { CSVNumber.parse(CSVNumber.trimmed($0), as: Double.self) }) else {
                    throw notANumber(field, column: j, parser: parser)
                }
                if !allowNonFinite && !v.isFinite { throw nonFinite(field, column: j, parser: parser) }
                doubles.append(v)
            }
        }
        if let labelIndex {
            let field = record.fields[labelIndex]
            let raw = parser.text(of: field)
            let text = parser.withContent(of: field) { String(decoding: CSVNumber.trimmed($0), as: UTF8.self) }
            switch labelKind {
            case .integers:
                guard let v = Int64(text) else {
                    throw .csv(file: file, line: field.line, column: labelIndex + 1,
                               expected: "an integer class label\(columnName(labelIndex))",
                               found: text.isEmpty ? "an empty field" : Render.quoted(raw))
                }
                integerLabels.append(v)
            case .categories:
                guard !text.isEmpty else {
                    throw .csv(file: file, line: field.line, column: labelIndex + 1,
                               expected: "a class name\(columnName(labelIndex))", found: "an empty field")
                }
                textLabels.append(text)
            }
        }
        rows += 1
    }

    private func columnName(_ j: Int) -> String {
        guard let header else { return "" }
        return " in column " + Render.quoted(header[j])
    }

    private func notANumber(_ field: CSVParser.Field, column j: Int, parser: CSVParser) -> DataError {
        let isEmpty = parser.withContent(of: field) { CSVNumber.trimmed($0).isEmpty }
        return .csv(file: file, line: field.line, column: j + 1, expected: "a number\(columnName(j))",
                    found: isEmpty ? "an empty field" : Render.quoted(parser.text(of: field)))
    }

    private func nonFinite(_ field: CSVParser.Field, column j: Int, parser: CSVParser) -> DataError {
        .csv(file: file, line: field.line, column: j + 1,
             expected: "a finite \(dtype == .float32 ? "float32" : "float64") number\(columnName(j)) (pass allowNonFinite: true to accept NaN and infinity)",
             found: Render.quoted(parser.text(of: field)))
    }

    func finish(label: CSVColumn?, excluding: [CSVColumn]) throws(DataError) -> CSVTable {
        if width == nil {
            if hasHeader {
                throw .csv(file: file, line: 1, column: 0, expected: "a header row", found: "an empty file")
            }
            if let label {
                throw .csv(file: file, line: 1, column: 0, expected: "rows with a label column \(label)", found: "an empty file")
            }
        }
        let names = featureColumns.map { header?[$0] ?? "column\($0 + 1)" }
        let shape: Shape = [rows, featureColumns.count]
        let features = dtype == .float32 ? HostTensor(floats, shape: shape) : HostTensor(doubles, shape: shape)
        var table = CSVTable(features: features, featureNames: names, labels: nil, labelName: nil, classNames: [])
        if let labelIndex {
            table.labelName = header?[labelIndex] ?? "column\(labelIndex + 1)"
            switch labelKind {
            case .integers:
                table.labels = HostTensor(integerLabels)
            case .categories:
                let classes = Array(Set(textLabels)).sorted()
                let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, Int64($0)) })
                table.labels = HostTensor(textLabels.map { index[$0]! })
                table.classNames = classes
            }
        }
        return table
    }
}
