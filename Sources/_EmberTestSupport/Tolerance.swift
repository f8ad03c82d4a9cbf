import Ember
import Testing

/// Where two tensors disagree beyond tolerance: enough to fix the bug without a debugger.
public struct Mismatch: CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// Compares `actual` with `expected` under the project's one tolerance rule,
/// `|a - b| <= atol + rtol * |b|` element-wise (b is the expected value).
///
/// Shapes are checked first. NaN matches NaN and infinities must match exactly. Returns `nil`
/// when they agree, else a report with the mismatch count, the worst index, both values there and
/// the largest absolute and relative errors.
public func compare(_ actual: Tensor, _ expected: Tensor, atol: Double, rtol: Double) -> Mismatch? {
    guard actual.shape == expected.shape else {
        return Mismatch(message: "shape mismatch: actual \(actual.shape), expected \(expected.shape)")
    }
    let a = actual.doubles, b = expected.doubles
    guard a.count == b.count else { return Mismatch(message: "count mismatch: \(a.count) vs \(b.count)") }
    var bad = 0, worst = -1
    var worstExcess = -Double.infinity, maxAbs = 0.0, maxRel = 0.0
    for i in 0..<a.count {
        let x = a[i], y = b[i]
        if x.isNaN && y.isNaN { continue }
        if x.isInfinite || y.isInfinite || x.isNaN || y.isNaN {
            if x != y { bad += 1; if worst < 0 || worstExcess < .infinity { worst = i; worstExcess = .infinity } }
            continue
        }
        let diff = abs(x - y)
        maxAbs = max(maxAbs, diff)
        if y != 0 { maxRel = max(maxRel, diff / abs(y)) }
        let excess = diff - (atol + rtol * abs(y))
        if excess > 0 {
            bad += 1
            if excess > worstExcess { worstExcess = excess; worst = i }
        }
    }
    guard bad > 0 else { return nil }
    let index = unravel(worst, actual.shape)
    return Mismatch(message: """
        \(bad) of \(a.count) elements differ beyond atol=\(atol), rtol=\(rtol); worst at \(index): \
        actual \(a[worst]), expected \(b[worst]); max abs error \(maxAbs), max rel error \(maxRel)
        """)
}

/// Records a test issue when `actual` and `expected` differ beyond tolerance (see `compare`).
public func expectClose(
    _ actual: Tensor, _ expected: Tensor, atol: Double = 1e-5, rtol: Double = 1e-4,
    _ comment: String = "", sourceLocation: SourceLocation = #_sourceLocation
) {
    if let m = compare(actual, expected, atol: atol, rtol: rtol) {
        Issue.record("\(comment.isEmpty ? "" : comment + ": ")\(m)", sourceLocation: sourceLocation)
    }
}

/// Records a test issue unless both tensors have the same shape, dtype and bit-identical values.
public func expectBitwiseEqual(
    _ actual: Tensor, _ expected: Tensor, _ comment: String = "",
    sourceLocation: SourceLocation = #_sourceLocation
) {
    guard actual.shape == expected.shape, actual.dtype == expected.dtype else {
        Issue.record("\(comment) shape/dtype mismatch: \(actual.shape) \(actual.dtype) vs \(expected.shape) \(expected.dtype)", sourceLocation: sourceLocation)
        return
    }
    let a = actual.doubles, b = expected.doubles
    if let i = (0..<a.count).first(where: { a[$0].bitPattern != b[$0].bitPattern }) {
        Issue.record("\(comment) not bitwise equal; first difference at \(unravel(i, actual.shape)): \(a[i]) vs \(b[i])", sourceLocation: sourceLocation)
    }
}

/// The multi-index of row-major position `i` in `shape`.
func unravel(_ i: Int, _ shape: Shape) -> [Int] {
    var rest = i
    var out = [Int](repeating: 0, count: shape.count)
    for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] > 0 {
        out[d] = rest % shape[d]
        rest /= shape[d]
    }
    return out
}
