import EmberTensor

/// One component of a tensor subscript: an integer position, a range, `.all`, `.newAxis`,
/// `.ellipsis`, a stepped `.slice`, or an index tensor (int64 positions or a bool mask).
///
/// Write subscripts as in Python, with Swift ranges:
///
/// ```swift
/// x[0]                    // x[0]
/// x[-1]                   // x[-1]
/// x[1..., 2]              // x[1:, 2]
/// x[.all, 0..<3]          // x[:, 0:3]
/// x[..<2, .newAxis]       // x[:2, None]
/// x[.ellipsis, 0]         // x[..., 0]
/// x[.slice(1, -1, step: 2)] // x[1:-1:2]
/// ```
///
/// Range bounds follow Python slicing: negative bounds count from the end (`(-3)...` is `[-3:]`),
/// out-of-range bounds are clamped, an empty range gives size 0. Swift ranges cannot have
/// `lower > upper`, so write `x[1:-1]` as `.slice(1, -1)`.
///
/// A `Tensor` is a component too (advanced indexing): int64 positions (negative count from the
/// end; several index tensors broadcast together) or a bool mask covering as many dimensions as
/// it has (`x[mask]`, `x[.all, idx]`, `x[idx0, idx1]`).
///
/// Subscripts can be assigned (`x[mask] = Tensor(0.0)`, `x[0..<2, idx] = t`): the value
/// broadcasts to the indexed shape and is converted to `x`'s dtype; see
/// ``Tensor/subscript(_:)``. Assignment changes only `x`: copies and views of it made before
/// keep their values (copy-on-write).
///
/// PyTorch parity: basic and advanced indexing (`__getitem__`, `__setitem__` / `index_put_`),
/// including where advanced-index dimensions go (in place when the index tensors are adjacent
/// after integers are applied, else first, as PyTorch does). Not supported: negative steps
/// (PyTorch refuses them too), and more than one ellipsis (PyTorch accepts several; NumPy and
/// Ember refuse). Not `Sendable`/`Hashable` since it may hold a tensor.
public struct TensorIndex {
    package enum Kind {
        case position(Int)
        case slice(start: Int?, end: Int?, step: Int)
        case newAxis
        case ellipsis
        case tensor(Tensor)
    }

    package let kind: Kind

    package init(_ kind: Kind) { self.kind = kind }
}

/// A value that can appear in a tensor subscript: `Int`, Swift's integer ranges, or a
/// ``TensorIndex`` (`.all`, `.newAxis`, `.ellipsis`, `.slice(_:_:step:)`).
public protocol TensorIndexExpression {
    /// This value as a subscript component.
    var tensorIndex: TensorIndex { get }
}

extension TensorIndexExpression where Self == TensorIndex {
    /// Every position of a dimension (Python's `:`).
    public static var all: TensorIndex { TensorIndex(.slice(start: nil, end: nil, step: 1)) }
    /// A new size-1 dimension (Python's `None`).
    public static var newAxis: TensorIndex { TensorIndex(.newAxis) }
    /// As many `.all` as needed to index every remaining dimension (Python's `...`).
    public static var ellipsis: TensorIndex { TensorIndex(.ellipsis) }
    /// Python's `start:end:step`; `nil` bounds mean the whole extent, negatives count from the end.
    public static func slice(_ start: Int? = nil, _ end: Int? = nil, step: Int = 1) -> TensorIndex {
        TensorIndex(.slice(start: start, end: end, step: step))
    }
}

extension TensorIndex: TensorIndexExpression {
    public var tensorIndex: TensorIndex { self }
}

extension Int: TensorIndexExpression {
    public var tensorIndex: TensorIndex { TensorIndex(.position(self)) }
}

extension Range: TensorIndexExpression where Bound == Int {
    public var tensorIndex: TensorIndex { .slice(lowerBound, upperBound) }
}

extension ClosedRange: TensorIndexExpression where Bound == Int {
    /// `a...b` includes `b`; `a...(-1)` runs to the end.
    public var tensorIndex: TensorIndex { .slice(lowerBound, upperBound == -1 ? nil : upperBound + 1) }
}

extension PartialRangeFrom: TensorIndexExpression where Bound == Int {
    public var tensorIndex: TensorIndex { .slice(lowerBound, nil) }
}

extension PartialRangeUpTo: TensorIndexExpression where Bound == Int {
    public var tensorIndex: TensorIndex { .slice(nil, upperBound) }
}

extension PartialRangeThrough: TensorIndexExpression where Bound == Int {
    public var tensorIndex: TensorIndex { .slice(nil, upperBound == -1 ? nil : upperBound + 1) }
}

extension Tensor {
    /// The view selected by a Python-style subscript (no copy); see ``TensorIndex``. Assigning
    /// to it writes the value at the selected positions.
    ///
    /// An integer removes its dimension, a range or `.all` keeps it, `.newAxis` inserts a size-1
    /// dimension and `.ellipsis` stands for all unindexed dimensions. Dimensions after the last
    /// component are kept whole. The backward writes the gradient into zeros of `self`'s shape.
    /// With index tensors the result is a copy (advanced indexing), whose backward adds the
    /// gradient back at the picked positions.
    ///
    /// Without index tensors the result shares storage with `self`, but never aliases observably
    /// (copy-on-write).
    ///
    /// Assignment (`x[...] = value`): `value` is converted to `x`'s dtype and broadcast to the
    /// indexed shape, then written there; with repeated positions the last write wins. It changes
    /// `x` only (never a copy or a view made before). Recorded when `x` or `value` requires grad:
    /// `x`'s gradient is zero at the written positions, `value`'s is the gradient there, summed
    /// over broadcasting. Like PyTorch, assigning into a leaf that requires grad while recording
    /// stops ("a leaf Variable that requires grad is being used in an in-place operation."):
    /// assign under `withNoGrad` or into a non-leaf.
    ///
    /// PyTorch parity: `x[...]` and `x[...] = value` (`index_put_`), with their error texts ("index 5
    /// is out of bounds for dimension 1 with size 3", "too many indices for tensor of dimension 3",
    /// "shape mismatch: value tensor of shape [3] cannot be broadcast to indexing result of shape
    /// [2, 4]"). A scalar value is a 0-d tensor: `x[mask] = Tensor(0.0)`.
    public subscript(_ indices: any TensorIndexExpression...) -> Tensor {
        get { indexed(indices.map(\.tensorIndex.kind)) }
        set { assign(newValue, at: indices.map(\.tensorIndex.kind)) }
    }

    /// The subscript read for components already unpacked.
    package func indexed(_ components: [TensorIndex.Kind]) -> Tensor {
        if components.contains(where: { if case .tensor = $0 { true } else { false } }) {
            return taken(Tensor.indexPositions(shape, components))
        }
        let view = subscriptedRaw(components)
        let x = self
        return view.recorded("index", x, twice: true) { g in
            [g.linearMap("indexBackward", { Kernels.embed($0, intoZerosOf: x.shape) { $0.subscriptedRaw(components) } },
                         adjoint: { gg in
                             let picked = gg.subscriptedRaw(components)
                             return picked.recorded("index", gg, twice: true) { g2 in
                                 [Kernels.embed(g2, intoZerosOf: gg.shape) { $0.subscriptedRaw(components) }]
                             }
                         })]
        }
    }

    /// Applies subscript components as raw views, checking them as PyTorch does.
    package func subscriptedRaw(_ components: [TensorIndex.Kind]) -> Tensor {
        var consumed = 0, ellipses = 0
        for c in components {
            switch c {
            case .position, .slice: consumed += 1
            case .ellipsis: ellipses += 1
            case .newAxis: break
            case .tensor: preconditionFailure("index: index tensors take the advanced-indexing path")
            }
        }
        precondition(ellipses <= 1, "index: an index can only have a single ellipsis ('...')")
        precondition(rank > 0 || consumed == 0,
                     "index: invalid index of a 0-dim tensor. Use `item()` or `doubleValue` to read the value of a 0-dim tensor")
        precondition(consumed <= rank, "index: too many indices for tensor of dimension \(rank)")
        var out = self
        var d = 0  // dimension of `out` the next component applies to
        var source = 0  // dimension of `self` it refers to, for messages
        for c in components where !Self.applyBasicIndex(c, to: &out, at: &d, source: &source, ellipsisWidth: rank - consumed) {
            preconditionFailure("index: index tensors take the advanced-indexing path")
        }
        return out
    }

    /// Applies one basic subscript component (an integer, a slice, `newAxis`, `...`) to `view` as a
    /// raw view at dimension `d`, advancing `d` and `source` (the indexed tensor's dimension, for
    /// messages); `...` skips `ellipsisWidth` dimensions. Returns `false`, changing nothing, for an
    /// index tensor (the advanced-indexing path handles those).
    package static func applyBasicIndex(_ component: TensorIndex.Kind, to view: inout Tensor, at d: inout Int,
                                        source: inout Int, ellipsisWidth: Int) -> Bool {
        switch component {
        case .position(let i):
            let n = view.shape[d]
            precondition(i >= -n && i < n, "index: index \(i) is out of bounds for dimension \(source) with size \(n)")
            view = view.selectRaw(axis: d, index: i, op: "index")
            source += 1
        case .slice(let start, let end, let step):
            view = view.slicedRaw(axis: d, start: start, end: end, step: step, op: "index")
            d += 1
            source += 1
        case .newAxis:
            view = view.unsqueezedRaw(axis: d)
            d += 1
        case .ellipsis:
            d += ellipsisWidth
            source += ellipsisWidth
        case .tensor:
            return false
        }
        return true
    }
}

extension Tensor: TensorIndexExpression {
    /// This tensor as an advanced index (int64 positions or a bool mask).
    public var tensorIndex: TensorIndex { TensorIndex(.tensor(self)) }
}
