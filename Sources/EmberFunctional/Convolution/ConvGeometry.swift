import EmberAutograd
import EmberStorage
import EmberTensor

/// The sliding-window geometry of one convolution or pooling call, always over three spatial
/// dimensions: 1-D and 2-D calls put size-1 dimensions in front (kernel 1, stride 1, no padding),
/// so one set of loops serves every rank.
struct WindowGeometry {
    /// Input spatial sizes `[D, H, W]`.
    var input: [Int]
    /// Kernel sizes (undilated).
    var kernel: [Int]
    var stride: [Int]
    /// Padding before and after each dimension (they differ only for `.same` with an even
    /// dilated kernel).
    var padBefore: [Int]
    var padAfter: [Int]
    var dilation: [Int]
    /// Output spatial sizes.
    var output: [Int]

    var inputPlane: Int { input[0] * input[1] * input[2] }
    var outputPlane: Int { output[0] * output[1] * output[2] }
    var kernelVolume: Int { kernel[0] * kernel[1] * kernel[2] }

    /// Whether every window is one input element at the same position (a 1x1 convolution): the
    /// column matrix is then the input itself.
    var isPointwise: Bool {
        kernelVolume == 1 && stride == [1, 1, 1] && padBefore == [0, 0, 0] && padAfter == [0, 0, 0]
            && input == output
    }

    /// Puts the `d` given values after `3 - d` copies of `fill`.
    static func lift(_ v: [Int], fill: Int) -> [Int] { Array(repeating: fill, count: 3 - v.count) + v }

    /// A convolution's geometry (PyTorch's output size `(in + pads - dilation (k - 1) - 1) / stride
    /// + 1`), with PyTorch's checks; `describe` names the call in messages.
    static func convolution(input: [Int], kernel: [Int], stride: [Int], padBefore: [Int], padAfter: [Int],
                            dilation: [Int], describe: () -> String) -> WindowGeometry {
        precondition(stride.allSatisfy { $0 > 0 }, "\(describe()): non-positive stride is not supported (stride=\(stride))")
        precondition((padBefore + padAfter).allSatisfy { $0 >= 0 }, "\(describe()): negative padding is not supported (padding=\(padBefore))")
        precondition(dilation.allSatisfy { $0 > 0 }, "\(describe()): dilation should be greater than zero (dilation=\(dilation))")
        let padded = input.indices.map { input[$0] + padBefore[$0] + padAfter[$0] }
        let effective = kernel.indices.map { dilation[$0] * (kernel[$0] - 1) + 1 }
        precondition(zip(padded, effective).allSatisfy { $0 >= $1 },
                     "\(describe()): Calculated padded input size per channel: (\(padded.map(String.init).joined(separator: " x "))). Kernel size: (\(effective.map(String.init).joined(separator: " x "))). Kernel size can't be greater than actual input size")
        let output = padded.indices.map { (padded[$0] - effective[$0]) / stride[$0] + 1 }
        return WindowGeometry(input: lift(input, fill: 1), kernel: lift(kernel, fill: 1), stride: lift(stride, fill: 1),
                              padBefore: lift(padBefore, fill: 0), padAfter: lift(padAfter, fill: 0),
                              dilation: lift(dilation, fill: 1), output: lift(output, fill: 1))
    }
}

/// Shape checks and option handling shared by the convolution entry points.
struct ConvolutionSetup {
    /// Spatial dimensions (1, 2 or 3).
    let dims: Int
    /// Whether the caller passed one unbatched sample (`[C, ...]`), to be given back without the
    /// batch dimension.
    let unbatched: Bool
    /// The input with its batch dimension.
    let input: Tensor

    init(_ input: Tensor, dims: Int, name: String, context: () -> String) {
        self.dims = dims
        precondition(input.rank == dims + 1 || input.rank == dims + 2,
                     "\(context()): Expected \(dims + 1)D (unbatched) or \(dims + 2)D (batched) input to \(name), but got input of size: \(input.shape)")
        precondition(input.dtype == .float32 || input.dtype == .float64,
                     "\(context()): \(input.dtype) is not supported; use float32 or float64")
        unbatched = input.rank == dims + 1
        self.input = unbatched ? input.unsqueezed(axis: 0) : input
    }

    var spatial: [Int] { Array(input.shape.dropFirst(2)) }

    /// Gives the result back without the batch dimension when the input had none.
    func finish(_ out: Tensor) -> Tensor { unbatched ? out.squeezed(axis: 0) : out }
}
