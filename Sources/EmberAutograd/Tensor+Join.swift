import EmberTensor

// Joining (cat, stack: copies) and splitting (split, chunk: views). Pieces returned by `split` and
// `chunk` are `narrow` views that share the input's storage but never alias observably
// (copy-on-write); each piece is differentiable on its own.

extension Tensor {
    /// Concatenates tensors along an existing dimension.
    ///
    /// All tensors must have the same rank and the same sizes except along `axis`. The result's
    /// dtype is the promotion of all inputs (bool < int64 < float32 < float64). As in PyTorch,
    /// 1-d tensors with no elements are skipped, whatever the other tensors' rank. The backward
    /// hands each input its slice of the gradient (in the input's dtype).
    ///
    /// - Parameters:
    ///   - tensors: at least one tensor, none 0-d.
    ///   - axis: the dimension to join along (negative counts from the end).
    ///
    /// PyTorch parity: `torch.cat(tensors, dim=0)`, with its error texts ("Sizes of tensors must
    /// match except in dimension 0. Expected size 3 but got size 4 for tensor number 1 in the
    /// list.").
    /// See also: ``stack(_:axis:)``, ``split(size:axis:)``.
    public static func cat(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
        let (_, a, _) = Kernels.catGeometry(tensors, axis: axis)
        let out = Kernels.cat(tensors, axis: a)
        return out.recorded("cat", tensors, twice: true) { g in
            var start = 0
            return tensors.map { t in
                if Kernels.isLegacyEmpty(t) { return t.tracksGrad ? Tensor.zeros(t.shape, dtype: t.dtype) : nil }
                let n = t.shape[a]
                defer { start += n }
                guard t.tracksGrad else { return nil }
                let piece = creatingGraph ? g.narrow(axis: a, start: start, length: n) : g.narrowRaw(axis: a, start: start, length: n)
                return piece.dtype == t.dtype ? piece : (creatingGraph ? piece.to(t.dtype) : piece.convertedRaw(to: t.dtype))
            }
        }
    }

    /// Joins tensors of equal shape along a new dimension inserted at `axis`.
    ///
    /// - Parameters:
    ///   - tensors: at least one tensor; all of the same shape (dtypes are promoted as in
    ///     ``cat(_:axis:)``).
    ///   - axis: where the new dimension goes, `-(rank + 1)...rank`.
    ///
    /// PyTorch parity: `torch.stack(tensors, dim=0)`, with its error texts ("stack expects each
    /// tensor to be equal size, but got [2, 3] at entry 0 and [3, 2] at entry 1").
    public static func stack(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
        precondition(!tensors.isEmpty, "stack: stack expects a non-empty TensorList")
        for (i, t) in tensors.enumerated() where t.shape != tensors[0].shape {
            preconditionFailure("stack: stack expects each tensor to be equal size, but got \(tensors[0].shape) at entry 0 and \(t.shape) at entry \(i)")
        }
        let a = normalizeAxis(axis, rank: tensors[0].rank + 1, op: "stack")
        let out = Kernels.cat(tensors.map { $0.unsqueezedRaw(axis: a) }, axis: a)
        return out.recorded("stack", tensors, twice: true) { g in
            tensors.enumerated().map { i, t in
                guard t.tracksGrad else { return nil }
                let piece = creatingGraph ? g.select(axis: a, index: i) : g.selectRaw(axis: a, index: i)
                return piece.dtype == t.dtype ? piece : (creatingGraph ? piece.to(t.dtype) : piece.convertedRaw(to: t.dtype))
            }
        }
    }

    /// Splits into consecutive pieces of `size` along `axis` (the last may be smaller); each piece
    /// is a view.
    ///
    /// The number of pieces is `max(ceil(n / size), 1)` for a dimension of size `n`; `size` may be
    /// 0 only when `n` is 0.
    ///
    /// PyTorch parity: `torch.split(x, split_size, dim=0)`, with its error texts.
    public func split(size: Int, axis: Int = 0) -> [Tensor] {
        precondition(rank > 0, "split: split expects at least a 1-dimensional tensor")
        precondition(size >= 0, "split: split expects split_size be non-negative, but got split_size=\(size)")
        let a = normalizeAxis(axis, rank: rank, op: "split")
        let n = shape[a]
        precondition(size != 0 || n == 0,
                     "split: split_size can only be 0 if dimension size is 0, but got dimension size of \(n)")
        let pieces = size == 0 ? 1 : Swift.max((n + size - 1) / size, 1)
        return (0..<pieces).map { i in
            narrow(axis: a, start: i * size, length: Swift.min(size, n - i * size))
        }
    }

    /// Splits into consecutive pieces with the given sizes along `axis`; each piece is a view.
    ///
    /// - Parameter sizes: non-negative sizes that sum to the size of `axis` (zeros give empty
    ///   pieces).
    ///
    /// PyTorch parity: `torch.split(x, split_sizes, dim=0)` (`split_with_sizes`), with its error
    /// texts.
    public func split(sizes: [Int], axis: Int = 0) -> [Tensor] {
        precondition(rank > 0, "split: split expects at least a 1-dimensional tensor")
        let a = normalizeAxis(axis, rank: rank, op: "split")
        let n = shape[a]
        precondition(sizes.allSatisfy { $0 >= 0 },
                     "split: split_with_sizes expects split_sizes have only non-negative entries, but got split_sizes=\(sizes)")
        precondition(sizes.reduce(0, +) == n,
                     "split: split_with_sizes expects split_sizes to sum exactly to \(n) (input tensor's size at dimension \(a)), but got split_sizes=\(sizes)")
        var start = 0
        return sizes.map { size in
            defer { start += size }
            return narrow(axis: a, start: start, length: size)
        }
    }

    /// Splits into `chunks` pieces of (nearly) equal size along `axis`; each piece is a view.
    ///
    /// Pieces have size `ceil(n / chunks)` (the last may be smaller), so fewer than `chunks`
    /// pieces can come back (6 split into 4 gives 3 pieces of 2). A dimension of size 0 gives
    /// `chunks` empty pieces.
    ///
    /// PyTorch parity: `torch.chunk(x, chunks, dim=0)`, with its size rule and error texts.
    public func chunk(_ chunks: Int, axis: Int = 0) -> [Tensor] {
        precondition(rank > 0, "chunk: chunk expects at least a 1-dimensional tensor")
        precondition(chunks > 0, "chunk: chunk expects `chunks` to be greater than 0, got: \(chunks)")
        let a = normalizeAxis(axis, rank: rank, op: "chunk")
        let n = shape[a]
        let size = (n + chunks - 1) / chunks
        if size == 0 && n == 0 { return split(sizes: Array(repeating: 0, count: chunks), axis: a) }
        return split(size: size, axis: a)
    }
}
