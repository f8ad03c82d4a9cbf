import EmberAutograd
import EmberTensor
import EmberStorage

// Shared plumbing of the fused updates: which parameters to update, in-place access to values
// and buffers, and chunked (parallel) loops over elements.

/// The gradient `p` is updated with, contiguous and checked against the parameter; `nil` when
/// the parameter is skipped: it has no gradient, or it is frozen (`requiresGrad == false`).
func gradientForUpdate(_ p: Parameter, optimizer: String) -> Tensor? {
    guard p.requiresGrad, let g = p.grad else { return nil }
    precondition(g.shape == p.shape,
                 "\(optimizer).step: a parameter of shape \(p.shape) has a gradient of shape \(g.shape)")
    precondition(g.dtype == p.dtype,
                 "\(optimizer).step: a \(p.dtype) parameter of shape \(p.shape) has a \(g.dtype) gradient (PyTorch: assigned grad has data of a different type)")
    return g.contiguousRaw
}

/// Runs `body` on `p`'s value made unique and contiguous, so `body` may write its elements
/// through `mutablePointer(as:)`; the parameter keeps its identity and gradient.
func updateInPlace(_ p: Parameter, _ body: (Tensor) -> Void) {
    p.updateValueInPlace { value in
        value.makeUniqueContiguous()
        body(value)
    }
}

/// Makes `buffer` unique and contiguous where it is stored (a copy only when its storage is
/// shared, e.g. with a captured state), checked against the parameter.
func makeWritable(_ buffer: inout Tensor, like p: Parameter, name: String, optimizer: String) {
    precondition(buffer.shape == p.shape && buffer.dtype == p.dtype,
                 "\(optimizer).step: state '\(name)' is \(buffer.dtype) \(buffer.shape) but its parameter is \(p.dtype) \(p.shape); a parameter's dtype or shape changed after the optimizer was created")
    buffer.makeUniqueContiguous()
}

/// Readies a buffer kept only with some options (`needed`): made writable when present, created
/// as zeros when absent. Left as it is when not needed.
func prepareBuffer(_ buffer: inout Tensor?, if needed: Bool, like p: Parameter, name: String, optimizer: String) {
    guard needed else { return }
    if buffer == nil {
        buffer = filledBuffer(like: p, 0)
    } else {
        makeWritable(&buffer!, like: p, name: name, optimizer: optimizer)
    }
}

/// A new buffer shaped like `p` with every element `value`.
func filledBuffer(like p: Parameter, _ value: Double) -> Tensor {
    Tensor.full(p.shape, value, dtype: p.dtype)
}

/// Calls `body` on disjoint ranges covering `0..<count`: EmberTensor's split (in parallel from
/// 32Ki elements). Each element's update reads and writes only that element, so chunks never share
/// memory and the split never changes a value.
@inline(__always)
func forEachChunk(_ count: Int, _ body: (Range<Int>) -> Void) {
    Kernels.forEachChunk(count: count) { start, n in body(start..<(start + n)) }
}

/// `T(value)` rounded to nearest, as PyTorch converts a Python scalar to the tensor's dtype.
@inline(__always)
func scalar<T: TensorFloat>(_ value: Double, as _: T.Type = T.self) -> T { T(fromDouble: value) }
