import EmberAutograd
import EmberStorage
import EmberTensor

/// Pads the last `padding.count / 2` dimensions: `padding` lists (before, after) pairs starting
/// from the last dimension, as PyTorch does (`[left, right, top, bottom, front, back]`).
/// Negative sizes crop.
///
/// - `.constant` fills with `value` (any number of dimensions);
/// - `.reflect` mirrors without repeating the edge (`pad < size`);
/// - `.replicate` repeats the edge element;
/// - `.circular` wraps around (`pad <= size`).
///
/// The non-constant modes pad the last 1, 2 or 3 dimensions of an input with one or two more
/// dimensions (batch and channel), as in PyTorch. Differentiable: the gradient of each input
/// element is the sum over the output elements that copy it.
///
/// PyTorch parity: `torch.nn.functional.pad(input, pad, mode='constant', value=None)`.
public func pad(_ input: Tensor, _ padding: [Int], mode: PadMode = .constant, value: Double = 0) -> Tensor {
    pad(input, padding, mode: mode, value: value, context: { "pad" })
}

package func pad(_ input: Tensor, _ padding: [Int], mode: PadMode, value: Double = 0, context: () -> String) -> Tensor {
    precondition(padding.count % 2 == 0, "\(context()): Padding length must be divisible by 2")
    let k = padding.count / 2
    if k == 0 { return input }
    precondition(k <= input.rank,
                 "\(context()): Padding length should be less than or equal to two times the input dimension but got padding length \(padding.count) and input of dimension \(input.rank)")
    if mode != .constant {
        precondition((1...3).contains(k) && (input.rank == k + 1 || input.rank == k + 2),
                     "\(context()): \(mode.rawValue) padding of \(k) dimension(s) takes a \(k + 1)D or \(k + 2)D input, but got a \(input.rank)D input of size \(input.shape) (Only 2D, 3D, 4D, 5D padding with non-constant padding are supported for now)")
    }
    let inShape = Array(input.shape)
    var outShape = inShape
    // maps[j][o]: the input index along padded dimension j (outermost first) that output index o
    // copies, or -1 for the constant value.
    var maps: [[Int]] = []
    for j in 0..<k {
        let axis = input.rank - k + j
        let pair = k - 1 - j
        let before = padding[2 * pair], after = padding[2 * pair + 1]
        let n = inShape[axis]
        let size = n + before + after
        precondition(size >= 0,
                     "\(context()): The input size \(n), plus negative padding \(before) and \(after) resulted in a negative output size, which is invalid. Check dimension \(axis) of your input.")
        switch mode {
        case .reflect:
            precondition(before < n && after < n,
                         "\(context()): Argument #4: Padding size should be less than the corresponding input dimension, but got: padding (\(before), \(after)) at dimension \(axis) of input \(input.shape)")
        case .circular:
            precondition(before <= n && after <= n,
                         "\(context()): Padding value causes wrapping around more than once. (padding (\(before), \(after)) at dimension \(axis) of input \(input.shape))")
        case .replicate:
            precondition(n > 0 || size == 0, "\(context()): padding of an empty dimension \(axis) of input \(input.shape) in replicate mode")
        case .constant:
            break
        }
        outShape[axis] = size
        maps.append((0..<size).map { o in
            let i = o - before
            switch mode {
            case .constant: return i >= 0 && i < n ? i : -1
            case .reflect: return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i)
            case .replicate: return min(max(i, 0), n - 1)
            case .circular: return ((i % n) + n) % n
            }
        })
    }
    let x = input.contiguousRaw
    let out = Tensor(uninitializedShape: Shape(outShape), dtype: input.dtype)
    let padded = Array(inShape.suffix(k)), outer = inShape.dropLast(k).reduce(1, *)
    func forward<T: TensorScalar>(_: T.Type) {
        PadKernel.run(maps: maps, inner: padded, outer: outer, source: x.pointer(as: T.self),
                      target: out.mutablePointer(as: T.self), fill: T(fromDouble: value))
    }
    switch input.dtype {
    case .float32: forward(Float.self)
    case .float64: forward(Double.self)
    case .int64: forward(Int64.self)
    case .bool: forward(Bool.self)
    }
    // The backward sums g back onto the copied positions: linear in g, its transpose the padding
    // itself (with zeros for the constant).
    let accumulate = { (g: Tensor) -> Tensor in
        let gc = g.contiguousRaw
        let dx = Tensor(zeroedShape: input.shape, dtype: input.dtype)
        func back<T: TensorFloat>(_: T.Type) {
            PadKernel.accumulate(maps: maps, inner: padded, outer: outer, gradient: gc.pointer(as: T.self),
                                 into: dx.mutablePointer(as: T.self))
        }
        if input.dtype == .float32 { back(Float.self) } else { back(Double.self) }
        return dx
    }
    return out.recorded("pad", input, twice: true, backward: { g in
        guard creatingGraph else { return [accumulate(g)] }
        return [g.linearMap("padBackward", accumulate, adjoint: { u in pad(u, padding, mode: mode, value: 0, context: { "pad" }) })]
    })
}

/// The loops of ``pad(_:_:mode:value:)``: every output element copies the input element its
/// per-dimension index maps name, or takes the fill value.
enum PadKernel {
    static func run<T>(maps: [[Int]], inner: [Int], outer: Int, source: UnsafePointer<T>,
                       target: UnsafeMutablePointer<T>, fill: T) {
        let inPlane = inner.reduce(1, *), outPlane = maps.reduce(1) { $0 * $1.count }
        for b in 0..<outer {
            var o = target + b * outPlane
            visit(maps, inner, level: 0, offset: b * inPlane) { src in
                o.pointee = src >= 0 ? source[src] : fill
                o += 1
            }
        }
    }

    static func accumulate<T: TensorFloat>(maps: [[Int]], inner: [Int], outer: Int, gradient: UnsafePointer<T>,
                                           into dx: UnsafeMutablePointer<T>) {
        let inPlane = inner.reduce(1, *), outPlane = maps.reduce(1) { $0 * $1.count }
        for b in 0..<outer {
            var g = gradient + b * outPlane
            visit(maps, inner, level: 0, offset: b * inPlane) { src in
                if src >= 0 { dx[src] += g.pointee }
                g += 1
            }
        }
    }

    /// Calls `body` with the input offset of every output element in row-major order (`-1` for a
    /// fill), over the padded dimensions from `level` on.
    private static func visit(_ maps: [[Int]], _ inner: [Int], level: Int, offset: Int, _ body: (Int) -> Void) {
        let stride = inner[(level + 1)...].reduce(1, *)
        let last = level == maps.count - 1
        for i in maps[level] {
            if last {
                body(i >= 0 && offset >= 0 ? offset + i : -1)
            } else {
                visit(maps, inner, level: level + 1, offset: i >= 0 && offset >= 0 ? offset + i * stride : -1, body)
            }
        }
    }
}
