import EmberAutograd
import EmberStorage
import EmberTensor

/// 1-D transposed convolution ("deconvolution") of `[N, C_in, L]` (or unbatched `[C_in, L]`) input
/// with a `[C_in, C_out / groups, k]` weight: the input gradient of ``conv1d(_:weight:bias:stride:padding:dilation:groups:paddingMode:)``
/// as a forward op. Output length `(L - 1) stride - 2 padding + dilation (k - 1) + outputPadding + 1`;
/// `outputSize` (the spatial sizes, or with the leading batch and channel sizes) picks
/// `outputPadding` for you, as the modules' `output_size` argument does in PyTorch.
///
/// PyTorch parity: `torch.nn.functional.conv_transpose1d(input, weight, bias=None, stride=1,
/// padding=0, output_padding=0, groups=1, dilation=1)`, with PyTorch's checks and messages.
public func convTranspose1d(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: SpatialSize = 1,
                            padding: SpatialSize = 0, outputPadding: SpatialSize = 0, groups: Int = 1,
                            dilation: SpatialSize = 1, outputSize: [Int]? = nil) -> Tensor {
    transposedConvolution(input, weight: weight, bias: bias, dims: 1, stride: stride, padding: padding,
                          outputPadding: outputPadding, groups: groups, dilation: dilation, outputSize: outputSize,
                          context: { "conv_transpose1d" })
}

/// 2-D transposed convolution; see ``convTranspose1d(_:weight:bias:stride:padding:outputPadding:groups:dilation:outputSize:)``.
///
/// PyTorch parity: `torch.nn.functional.conv_transpose2d`.
public func convTranspose2d(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: SpatialSize = 1,
                            padding: SpatialSize = 0, outputPadding: SpatialSize = 0, groups: Int = 1,
                            dilation: SpatialSize = 1, outputSize: [Int]? = nil) -> Tensor {
    transposedConvolution(input, weight: weight, bias: bias, dims: 2, stride: stride, padding: padding,
                          outputPadding: outputPadding, groups: groups, dilation: dilation, outputSize: outputSize,
                          context: { "conv_transpose2d" })
}

/// 3-D transposed convolution; see ``convTranspose1d(_:weight:bias:stride:padding:outputPadding:groups:dilation:outputSize:)``.
///
/// PyTorch parity: `torch.nn.functional.conv_transpose3d`.
public func convTranspose3d(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: SpatialSize = 1,
                            padding: SpatialSize = 0, outputPadding: SpatialSize = 0, groups: Int = 1,
                            dilation: SpatialSize = 1, outputSize: [Int]? = nil) -> Tensor {
    transposedConvolution(input, weight: weight, bias: bias, dims: 3, stride: stride, padding: padding,
                          outputPadding: outputPadding, groups: groups, dilation: dilation, outputSize: outputSize,
                          context: { "conv_transpose3d" })
}

/// The transposed convolution behind the functions and the `ConvTranspose` modules.
package func transposedConvolution(_ input: Tensor, weight: Tensor, bias: Tensor?, dims: Int, stride: SpatialSize,
                                   padding: SpatialSize, outputPadding: SpatialSize, groups: Int, dilation: SpatialSize,
                                   outputSize: [Int]?, context: () -> String) -> Tensor {
    let setup = ConvolutionSetup(input, dims: dims, name: "conv_transpose\(dims)d", context: context)
    let x = setup.input
    checkWeight(weight, bias: bias, input: x, dims: dims, groups: groups, transposed: true, context: context)
    let kernel = Array(weight.shape.dropFirst(2))
    let s = stride.expanded(to: dims, "stride", op: context())
    let p = padding.expanded(to: dims, "padding", op: context())
    let d = dilation.expanded(to: dims, "dilation", op: context())
    var op = outputPadding.expanded(to: dims, "output_padding", op: context())
    precondition(s.allSatisfy { $0 > 0 }, "\(context()): non-positive stride is not supported (stride=\(s))")
    precondition(p.allSatisfy { $0 >= 0 }, "\(context()): negative padding is not supported (padding=\(p))")
    precondition(op.allSatisfy { $0 >= 0 }, "\(context()): negative output_padding is not supported (output_padding=\(op))")
    precondition(d.allSatisfy { $0 > 0 }, "\(context()): dilation should be greater than zero (dilation=\(d))")
    let spatial = setup.spatial
    let minimum: [Int] = (0..<dims).map { j in
        let span: Int = d[j] * (kernel[j] - 1) + 1
        return (spatial[j] - 1) * s[j] - 2 * p[j] + span
    }
    if var requested = outputSize {
        if requested.count == dims + (setup.unbatched ? 1 : 2) { requested = Array(requested.suffix(dims)) }
        precondition(requested.count == dims,
                     "\(context()): for \(dims + (setup.unbatched ? 1 : 2))D input, output_size must have \(dims) or \(dims + (setup.unbatched ? 1 : 2)) elements (got \(requested.count))")
        let maximum = (0..<dims).map { minimum[$0] + s[$0] - 1 }
        precondition((0..<dims).allSatisfy { requested[$0] >= minimum[$0] && requested[$0] <= maximum[$0] },
                     "\(context()): requested an output size of \(requested), but valid sizes range from \(minimum) to \(maximum) (for an input of \(spatial))")
        op = (0..<dims).map { requested[$0] - minimum[$0] }
    }
    precondition((0..<dims).allSatisfy { op[$0] < s[$0] || op[$0] < d[$0] },
                 "\(context()): output padding must be smaller than either stride or dilation, but got output_padding=\(op), stride=\(s), dilation=\(d)")
    let output = (0..<dims).map { minimum[$0] + op[$0] }
    precondition(output.allSatisfy { $0 > 0 },
                 "\(context()): Given input size per channel: (\(spatial.map(String.init).joined(separator: " x "))). Calculated output size per channel: (\(output.map(String.init).joined(separator: " x "))). Output size is too small")
    // The geometry of the convolution this op is the adjoint of: from the output back to the input.
    let g = WindowGeometry(input: WindowGeometry.lift(output, fill: 1), kernel: WindowGeometry.lift(kernel, fill: 1),
                           stride: WindowGeometry.lift(s, fill: 1), padBefore: WindowGeometry.lift(p, fill: 0),
                           padAfter: WindowGeometry.lift(p, fill: 0), dilation: WindowGeometry.lift(d, fill: 1),
                           output: WindowGeometry.lift(spatial, fill: 1))
    let outShape = Shape([x.shape[0], weight.shape[1] * groups] + output)
    return setup.finish(convolutionOp(x, weight: weight, bias: bias, geometry: g, groups: groups, outShape: outShape,
                                      transposed: true))
}
