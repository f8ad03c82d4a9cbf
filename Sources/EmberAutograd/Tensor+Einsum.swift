import EmberTensor
import EmberStorage

// Einstein summation, built from differentiable ops (diagonal, sum, permute, reshape, expand,
// matmul), so its gradients and double backward need no code of their own.

/// Einstein summation over one or more operands, e.g. `einsum("bij,bjk->bik", a, b)`.
///
/// PyTorch parity: `torch.einsum(equation, *operands)`; see `Tensor.einsum(_:_:)` (the array form).
public func einsum(_ equation: String, _ operands: Tensor...) -> Tensor { Tensor.einsum(equation, operands) }

extension Tensor {
    /// Einstein summation over one or more operands, e.g. `Tensor.einsum("bij,bjk->bik", a, b)`.
    ///
    /// PyTorch parity: `torch.einsum(equation, *operands)`; see the array form below.
    public static func einsum(_ equation: String, _ operands: Tensor...) -> Tensor { einsum(equation, operands) }

    /// Einstein summation: each operand's dimensions are named by letters (`a-z`, `A-Z`) in
    /// `equation`, terms separated by commas; `->` names the output. Labels repeated within one
    /// operand take its diagonal (`"ii->i"`, trace `"ii->"`); labels missing from the output are
    /// summed over; labels shared by operands are multiplied element-wise (batch dimensions when
    /// they appear in the output, contracted otherwise); `...` stands for the remaining
    /// dimensions, which broadcast across operands (right-aligned). Without `->` the output is the
    /// ellipsis dimensions followed by the labels that appear exactly once, in alphabetical order
    /// (upper case first). Size-1 dimensions broadcast against other operands' sizes.
    ///
    /// Two operands are contracted with one batched matrix product (integer operands by a
    /// broadcast product and a sum); more than two are contracted left to right. Gradients flow
    /// to every operand through the ops used.
    ///
    /// PyTorch parity: `torch.einsum(equation, *operands)`, including its error texts for bad
    /// equations ("einsum(): the number of subscripts in the equation (2) does not match the number
    /// of dimensions (3) for operand 0 and no ellipsis was given", "einsum(): output subscript k
    /// does not appear in the equation for any input operand", ...).
    public static func einsum(_ equation: String, _ operands: [Tensor]) -> Tensor {
        precondition(!operands.isEmpty,
                     "einsum(): must specify the equation string and at least one operand, or at least one operand and its subscripts list")
        let parsed = EinsumEquation(equation)
        precondition(parsed.inputs.count <= operands.count,
                     "einsum(): fewer operands were provided than specified in the equation (equation \"\(equation)\", \(operands.count) operands)")
        precondition(parsed.inputs.count >= operands.count,
                     "einsum(): more operands were provided than specified in the equation (equation \"\(equation)\", \(operands.count) operands)")

        // Ellipsis dimensions per operand; labels 52 + j name the j-th broadcast ellipsis dimension.
        var ellipsisDims = [Int](repeating: 0, count: operands.count)
        for (k, (term, t)) in zip(parsed.inputs, operands).enumerated() {
            let n = term.filter { $0 >= 0 }.count
            if term.contains(EinsumEquation.ellipsis) {
                precondition(n <= t.rank,
                             "einsum(): the number of subscripts in the equation (\(n)) is more than the number of dimensions (\(t.rank)) for operand \(k)")
                ellipsisDims[k] = t.rank - n
            } else {
                precondition(n == t.rank,
                             "einsum(): the number of subscripts in the equation (\(n)) does not match the number of dimensions (\(t.rank)) for operand \(k) and no ellipsis was given")
            }
        }
        let e = ellipsisDims.max() ?? 0
        let ellipsisLabels = (0..<e).map { 52 + $0 }
        var labelsPerOperand = [[Int]]()
        for (k, term) in parsed.inputs.enumerated() {
            var labels = [Int]()
            for l in term {
                if l == EinsumEquation.ellipsis {
                    labels += (0..<ellipsisDims[k]).map { 52 + e - ellipsisDims[k] + $0 }
                } else {
                    labels.append(l)
                }
            }
            labelsPerOperand.append(labels)
        }

        // The output labels.
        var output = [Int]()
        if let out = parsed.output {
            for l in out {
                if l == EinsumEquation.ellipsis { output += ellipsisLabels; continue }
                precondition(parsed.inputs.contains { $0.contains(l) },
                             "einsum(): output subscript \(EinsumEquation.name(l)) does not appear in the equation for any input operand")
                precondition(!output.contains(l), "einsum(): output subscript \(EinsumEquation.name(l)) appears more than once in the output")
                output.append(l)
            }
        } else {
            var counts = [Int: Int]()
            for term in parsed.inputs { for l in term where l >= 0 { counts[l, default: 0] += 1 } }
            output = ellipsisLabels + counts.filter { $0.value == 1 }.keys.sorted()
        }

        // Diagonals of repeated labels (their sizes must match within the operand).
        var terms = [(Tensor, [Int])]()
        for (k, t) in operands.enumerated() { terms.append(einsumDiagonals(t, labelsPerOperand[k], operand: k)) }

        // Sizes must agree (or be 1) across operands.
        var sizes = [Int: Int]()
        for (k, (t, labels)) in terms.enumerated() {
            for (d, l) in labels.enumerated() {
                let s = t.shape[d]
                if let known = sizes[l], known != s {
                    precondition(known == 1 || s == 1,
                                 "einsum(): operands do not broadcast with remapped shapes (original->remapped): subscript \(EinsumEquation.name(l)) has size \(known) in one operand and \(s) in operand \(k) (shapes \(operands.map { $0.shape }))")
                    sizes[l] = Swift.max(known, s)
                } else if sizes[l] == nil {
                    sizes[l] = s
                }
            }
        }

        // Contraction from left to right.
        var (acc, accLabels) = terms[0]
        for k in 1..<Swift.max(terms.count, 1) {
            let later = Set(terms[(k + 1)...].flatMap { $0.1 }).union(output)
            (acc, accLabels) = einsumSumOut(acc, accLabels, keep: later.union(terms[k].1))
            let (b, bLabels) = einsumSumOut(terms[k].0, terms[k].1, keep: later.union(accLabels))
            (acc, accLabels) = einsumPair(acc, accLabels, b, bLabels, keep: later)
        }
        (acc, accLabels) = einsumSumOut(acc, accLabels, keep: Set(output))
        let perm = output.map { l in accLabels.firstIndex(of: l)! }
        return perm == Array(0..<perm.count) ? acc : acc.permuted(perm)
    }

    /// Takes the diagonal of every label repeated within one operand (its sizes must match).
    private static func einsumDiagonals(_ t: Tensor, _ labels: [Int], operand k: Int) -> (Tensor, [Int]) {
        var t = t, labels = labels
        while let i = labels.indices.first(where: { i in labels[(i + 1)...].contains(labels[i]) }) {
            let j = labels[(i + 1)...].firstIndex(of: labels[i])!
            precondition(t.shape[i] == t.shape[j],
                         "einsum(): subscript \(EinsumEquation.name(labels[i])) is repeated for operand \(k) but the sizes don't match, \(t.shape[i]) != \(t.shape[j])")
            let l = labels[i]
            t = t.diagonal(offset: 0, axis1: i, axis2: j)
            labels.remove(at: j)
            labels.remove(at: i)
            labels.append(l)
        }
        return (t, labels)
    }

    /// Sums over the labels not in `keep`.
    private static func einsumSumOut(_ t: Tensor, _ labels: [Int], keep: Set<Int>) -> (Tensor, [Int]) {
        let axes = labels.indices.filter { !keep.contains(labels[$0]) }
        if axes.isEmpty { return (t, labels) }
        return (t.sum(axes: axes), labels.filter { keep.contains($0) })
    }

    /// Contracts two operands over their shared labels not in `keep`, as one batched matrix
    /// product `[batch, aOnly, shared] x [batch, shared, bOnly]`.
    private static func einsumPair(_ a: Tensor, _ la: [Int], _ b: Tensor, _ lb: [Int], keep: Set<Int>) -> (Tensor, [Int]) {
        var a = a, b = b
        let dt = promotedDType(a.dtype, b.dtype)
        if a.dtype != dt { a = a.to(dt) }
        if b.dtype != dt { b = b.to(dt) }
        let shared = la.filter { lb.contains($0) }
        let batch = shared.filter { keep.contains($0) }, contracted = shared.filter { !keep.contains($0) }
        let aOnly = la.filter { !lb.contains($0) }, bOnly = lb.filter { !la.contains($0) }
        // Broadcast size-1 shared dimensions against the other operand.
        var aTarget = a.shape, bTarget = b.shape
        for l in shared {
            let i = la.firstIndex(of: l)!, j = lb.firstIndex(of: l)!
            let s = Swift.max(a.shape[i], b.shape[j])
            if a.shape[i] == 1 { aTarget[i] = s }
            if b.shape[j] == 1 { bTarget[j] = s }
        }
        if aTarget != a.shape { a = a.expanded(to: aTarget) }
        if bTarget != b.shape { b = b.expanded(to: bTarget) }
        func size(_ t: Tensor, _ labels: [Int], _ l: Int) -> Int { t.shape[labels.firstIndex(of: l)!] }
        let batchSizes = batch.map { size(a, la, $0) }, aSizes = aOnly.map { size(a, la, $0) }
        let bSizes = bOnly.map { size(b, lb, $0) }, kSizes = contracted.map { size(a, la, $0) }
        let outLabels = batch + aOnly + bOnly
        let outShape = Shape(batchSizes + aSizes + bSizes)
        if !dt.isFloatingPoint {
            // Integer operands: a broadcast product over [batch, aOnly, bOnly, contracted], summed.
            let all = batch + aOnly + bOnly + contracted
            func lifted(_ t: Tensor, _ labels: [Int]) -> Tensor {
                let present = all.filter { labels.contains($0) }
                var v = t.permuted(present.map { labels.firstIndex(of: $0)! })
                for (i, l) in all.enumerated() where !labels.contains(l) { v = v.unsqueezed(axis: i) }
                return v
            }
            var p = lifted(a, la) * lifted(b, lb)
            if !contracted.isEmpty { p = p.sum(axes: Array(outLabels.count..<all.count)) }
            return (p.reshaped(outShape), outLabels)
        }
        let prod = { (s: [Int]) in s.reduce(1, *) }
        let am = a.permuted((batch + aOnly + contracted).map { la.firstIndex(of: $0)! })
            .reshaped([prod(batchSizes), prod(aSizes), prod(kSizes)])
        let bm = b.permuted((batch + contracted + bOnly).map { lb.firstIndex(of: $0)! })
            .reshaped([prod(batchSizes), prod(kSizes), prod(bSizes)])
        return (am.matmul(bm).reshaped(outShape), outLabels)
    }
}

/// A parsed einsum equation: labels 0..<52 for `A-Z` then `a-z`, ``ellipsis`` for `...`.
private struct EinsumEquation {
    static let ellipsis = -1
    var inputs: [[Int]] = [[]]
    var output: [Int]? = nil

    static func name(_ label: Int) -> String {
        if label >= 52 { return "..." }
        let scalar = label < 26 ? 65 + label : 97 + label - 26
        return String(Character(Unicode.Scalar(UInt8(scalar))))
    }

    init(_ equation: String) {
        let chars = Array(equation)
        var i = 0
        func add(_ label: Int) {
            if output != nil { output!.append(label) } else { inputs[inputs.count - 1].append(label) }
        }
        func where_() -> String { output != nil ? "for output" : "for operand \(inputs.count - 1)" }
        while i < chars.count {
            let c = chars[i]
            switch c {
            case " ":
                i += 1
            case "-":
                precondition(output == nil && i + 1 < chars.count && chars[i + 1] == ">",
                             "einsum(): invalid subscript given at index \(i) in the equation string, subscripts must be in [a-zA-Z]")
                output = []
                i += 2
            case ",":
                precondition(output == nil, "einsum(): found ',' in the output subscripts (index \(i) of \"\(equation)\")")
                inputs.append([])
                i += 1
            case ".":
                precondition(i + 2 < chars.count && chars[i + 1] == "." && chars[i + 2] == ".",
                             "einsum(): found '.' \(where_()) that is not part of any ellipsis")
                let current = output ?? inputs[inputs.count - 1]
                precondition(!current.contains(Self.ellipsis),
                             "einsum(): found '.' \(where_()) for which an ellipsis was already found")
                add(Self.ellipsis)
                i += 3
            default:
                guard let a = c.asciiValue, (65...90).contains(a) || (97...122).contains(a) else {
                    preconditionFailure("einsum(): invalid subscript given at index \(i) in the equation string, subscripts must be in [a-zA-Z]")
                }
                add(a <= 90 ? Int(a) - 65 : Int(a) - 97 + 26)
                i += 1
            }
        }
    }
}
