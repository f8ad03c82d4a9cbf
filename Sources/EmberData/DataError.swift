/// Why a data file could not be read. Each case names the file and says where the problem is and
/// what was expected there, so that a command-line tool can print it as one line:
///
/// ```
/// train.csv:14: column 3: expected a number, found "n/a"
/// images.idx: byte 2: expected an IDX type code (0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E), found 0x07
/// labels.npy: byte 140: element 3 (index [1, 1]): expected an integer (reading as int64), found 0.5
/// ```
///
/// The readers never crash on a malformed file: every check of each format has a case here.
public enum DataError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened or read.
    case unreadable(file: String, reason: String)
    /// A CSV file is malformed at `line` (1-based, the physical line where the offending field
    /// starts) and `column` (1-based field number; 0 when the problem concerns the whole line).
    case csv(file: String, line: Int, column: Int, expected: String, found: String)
    /// A NumPy `.npy` file is malformed at byte `offset` (0-based, from the start of the file).
    case npy(file: String, offset: Int, expected: String, found: String)
    /// An IDX file is malformed at byte `offset` (0-based, from the start of the file).
    case idx(file: String, offset: Int, expected: String, found: String)
    /// A resource that ships inside the package is missing (a broken installation).
    case missingResource(name: String)
    /// An element of a binary array file (`.npy`, IDX) read as int64 is not a whole number in
    /// int64's range (0.5, NaN, infinity, 1e19): `offset` is its byte offset in the file,
    /// `element` its row-major index and `index` its position per dimension.
    case notAnInteger(file: String, offset: Int, element: Int, index: [Int], value: String)
    /// An element of a binary array file (`.npy`, IDX) is NaN or infinite (or overflows the
    /// requested float dtype), and the read did not pass `allowNonFinite: true`.
    case nonFinite(file: String, offset: Int, element: Int, index: [Int], value: String)

    public var description: String {
        switch self {
        case .unreadable(let file, let reason): "cannot read '\(file)': \(reason)"
        case .csv(let file, let line, let column, let expected, let found):
            column > 0
                ? "\(file):\(line): column \(column): expected \(expected), found \(found)"
                : "\(file):\(line): expected \(expected), found \(found)"
        case .npy(let file, let offset, let expected, let found):
            "\(file): byte \(offset): expected \(expected), found \(found)"
        case .idx(let file, let offset, let expected, let found):
            "\(file): byte \(offset): expected \(expected), found \(found)"
        case .missingResource(let name):
            "the resource '\(name)' is missing from EmberData's bundle (a broken installation)"
        case .notAnInteger(let file, let offset, let element, let index, let value):
            "\(file): byte \(offset): element \(element) (index \(index)): expected an integer in int64's range (reading as int64), found \(value)"
        case .nonFinite(let file, let offset, let element, let index, let value):
            "\(file): byte \(offset): element \(element) (index \(index)): expected a finite number, found \(value) (pass allowNonFinite: true to accept NaN and infinity)"
        }
    }
}
