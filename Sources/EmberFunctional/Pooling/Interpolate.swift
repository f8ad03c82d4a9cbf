import EmberAutograd
import EmberStorage
import EmberTensor

/// How ``interpolate(_:size:scaleFactor:mode:alignCorners:)`` computes new pixels.
///
/// PyTorch parity: `mode` of `torch.nn.functional.interpolate` (`'nearest'`, `'linear'`,
/// `'bilinear'`).
public enum InterpolationMode: String, Sendable, CaseIterable {
    case nearest, linear, bilinear
}

/// Resizes the spatial dimensions of `[N, C, L]` (nearest, linear) or `[N, C, H, W]` (nearest,
/// bilinear) input to `size`, or to `floor(in * scaleFactor)`.
///
/// Source positions are PyTorch's: nearest takes `floor(o * scale)`; linear modes map the centre of
/// output pixel `o` to `(o + 0.5) * scale - 0.5` (clamped at 0), or with `alignCorners` the corner
/// pixels onto each other (`o * (in - 1) / (out - 1)`). `scale` is `1 / scaleFactor` when a scale
/// factor is given, else `in / out`. Differentiable: each input pixel gets the weighted sum of
/// the output gradients it contributed to.
///
/// PyTorch parity: `torch.nn.functional.interpolate(input, size=None, scale_factor=None,
/// mode='nearest', align_corners=None)` with `recompute_scale_factor=None`.
public func interpolate(_ input: Tensor, size: [Int]? = nil, scaleFactor: [Double]? = nil, mode: InterpolationMode = .nearest,
                        alignCorners: Bool? = nil) -> Tensor {
    interpolate(input, size: size, scaleFactor: scaleFactor, mode: mode, alignCorners: alignCorners, context: { "interpolate" })
}

package func interpolate(_ input: Tensor, size: [Int]?, scaleFactor: [Double]?, mode: InterpolationMode, alignCorners: Bool?,
                         context: () -> String) -> Tensor {
    let dims = input.rank - 2
    precondition(dims == 1 || dims == 2, "\(context()): expected a 3D [N, C, L] or 4D [N, C, H, W] input, got shape \(input.shape)")
    precondition(mode != .linear || dims == 1, "\(context()): Got \(dims + 2)D input, but linear mode needs 3D input")
    precondition(mode != .bilinear || dims == 2, "\(context()): Got \(dims + 2)D input, but bilinear mode needs 4D input")
    precondition(mode != .nearest || alignCorners == nil,
                 "\(context()): align_corners option can only be set with the interpolating modes: linear | bilinear | bicubic | trilinear")
    precondition((size == nil) != (scaleFactor == nil), "\(context()): only one of size or scale_factor should be defined")
    precondition(input.dtype == .float32 || input.dtype == .float64, "\(context()): \(input.dtype) is not supported; use float32 or float64")
    let spatial = Array(input.shape.suffix(dims))
    var out: [Int], scales: [Double?]
    if let size {
        out = size.count == 1 ? Array(repeating: size[0], count: dims) : size
        precondition(out.count == dims, "\(context()): Input and output must have the same number of spatial dimensions, but got input with spatial dimensions of \(spatial) and output size of \(size). Please provide input tensor in (N, C, d1, d2, ...,dK) format and output size in (o1, o2, ...,oK) format.")
        scales = Array(repeating: nil, count: dims)
    } else {
        let f = scaleFactor!.count == 1 ? Array(repeating: scaleFactor![0], count: dims) : scaleFactor!
        precondition(f.count == dims && f.allSatisfy { $0 > 0 && $0.isFinite },
                     "\(context()): scale_factor must be \(dims) positive numbers, got \(scaleFactor!)")
        out = (0..<dims).map { Int((Double(spatial[$0]) * f[$0]).rounded(.down)) }
        scales = f
    }
    precondition(out.allSatisfy { $0 > 0 } && spatial.allSatisfy { $0 > 0 },
                 "\(context()): Input and output sizes should be greater than 0, but got input (\(spatial)) and output (\(out))")
    // Per dimension: for each output index, two source indices and their weights.
    let align = alignCorners ?? false
    var taps: [[(Int, Int, Double, Double)]] = []
    for j in 0..<dims {
        let n = spatial[j], m = out[j]
        taps.append((0..<m).map { o in
            if mode == .nearest {
                let scale = Float(scales[j].map { 1 / $0 } ?? Double(n) / Double(m))
                let i = min(Int((Float(o) * scale).rounded(.down)), n - 1)
                return (i, i, 1, 0)
            }
            let source: Double
            if align {
                source = m > 1 ? Double(n - 1) / Double(m - 1) * Double(o) : 0
            } else {
                let scale = scales[j].map { 1 / $0 } ?? Double(n) / Double(m)
                source = max(scale * (Double(o) + 0.5) - 0.5, 0)
            }
            let i0 = min(Int(source), n - 1)
            let i1 = i0 + (i0 < n - 1 ? 1 : 0)
            let l1 = min(source - Double(i0), 1)
            return (i0, i1, 1 - l1, l1)
        })
    }
    if dims == 1 { taps.insert([(0, 0, 1, 0)], at: 0) }
    let planes = input.shape[0] * input.shape[1]
    let inH = dims == 2 ? spatial[0] : 1, inW = spatial[dims - 1]
    let x = input.contiguousRaw
    let result = Tensor(uninitializedShape: Shape(Array(input.shape.prefix(2)) + out), dtype: input.dtype)
    func forward<T: TensorFloat>(_: T.Type) {
        let s = x.pointer(as: T.self), d = result.mutablePointer(as: T.self)
        var o = 0
        for p in 0..<planes {
            let src = s + p * inH * inW
            for (h0, h1, a0, a1) in taps[0] {
                for (w0, w1, b0, b1) in taps[1] {
                    if mode == .nearest {
                        d[o] = src[h0 * inW + w0]
                        o += 1
                        continue
                    }
                    let top = T(b0) * src[h0 * inW + w0] + T(b1) * src[h0 * inW + w1]
                    let bottom = T(b0) * src[h1 * inW + w0] + T(b1) * src[h1 * inW + w1]
                    d[o] = T(a0) * top + T(a1) * bottom
                    o += 1
                }
            }
        }
    }
    if input.dtype == .float32 { forward(Float.self) } else { forward(Double.self) }
    return result.recorded("upsample_\(mode.rawValue)\(dims)d", input) { g in
        let gc = g.contiguousRaw
        let dx = Tensor(zeroedShape: input.shape, dtype: input.dtype)
        func back<T: TensorFloat>(_: T.Type) {
            let s = gc.pointer(as: T.self), d = dx.mutablePointer(as: T.self)
            var o = 0
            for p in 0..<planes {
                let dst = d + p * inH * inW
                for (h0, h1, a0, a1) in taps[0] {
                    for (w0, w1, b0, b1) in taps[1] {
                        let v = s[o]
                        dst[h0 * inW + w0] += T(a0 * b0) * v
                        dst[h0 * inW + w1] += T(a0 * b1) * v
                        dst[h1 * inW + w0] += T(a1 * b0) * v
                        dst[h1 * inW + w1] += T(a1 * b1) * v
                        o += 1
                    }
                }
            }
        }
        if input.dtype == .float32 { back(Float.self) } else { back(Double.self) }
        return [dx]
    }
}

/// Rearranges `[*, C r^2, H, W]` into `[*, C, H r, W r]`: each group of `r^2` channels becomes an
/// `r x r` block of pixels.
///
/// PyTorch parity: `torch.nn.functional.pixel_shuffle(input, upscale_factor)`.
public func pixelShuffle(_ input: Tensor, upscaleFactor r: Int) -> Tensor {
    precondition(input.rank >= 3, "pixel_shuffle expects input to have at least 3 dimensions, but got input with \(input.rank) dimension(s)")
    precondition(r > 0, "pixel_shuffle expects a positive upscale_factor, but got \(r)")
    let lead = Array(input.shape.dropLast(3)), c = input.shape[input.rank - 3], h = input.shape[input.rank - 2], w = input.shape[input.rank - 1]
    precondition(c % (r * r) == 0,
                 "pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of upscale_factor, but input.size(-3)=\(c) is not divisible by \(r * r)")
    let b = lead.reduce(1, *)
    let v = input.reshaped([b, c / (r * r), r, r, h, w]).permuted([0, 1, 4, 2, 5, 3])
    return v.reshaped(Shape(lead + [c / (r * r), h * r, w * r]))
}

/// The inverse of ``pixelShuffle(_:upscaleFactor:)``: `[*, C, H r, W r]` into `[*, C r^2, H, W]`.
///
/// PyTorch parity: `torch.nn.functional.pixel_unshuffle(input, downscale_factor)`.
public func pixelUnshuffle(_ input: Tensor, downscaleFactor r: Int) -> Tensor {
    precondition(input.rank >= 3, "pixel_unshuffle expects input to have at least 3 dimensions, but got input with \(input.rank) dimension(s)")
    precondition(r > 0, "pixel_unshuffle expects a positive downscale_factor, but got \(r)")
    let lead = Array(input.shape.dropLast(3)), c = input.shape[input.rank - 3], h = input.shape[input.rank - 2], w = input.shape[input.rank - 1]
    precondition(h % r == 0 && w % r == 0,
                 "pixel_unshuffle expects height and width to be divisible by downscale_factor, but got height=\(h) and width=\(w) for factor \(r)")
    let b = lead.reduce(1, *)
    let v = input.reshaped([b, c, h / r, r, w / r, r]).permuted([0, 1, 3, 5, 2, 4])
    return v.reshaped(Shape(lead + [c * r * r, h / r, w / r]))
}
