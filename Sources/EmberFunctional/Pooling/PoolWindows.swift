import EmberStorage
import EmberTensor

/// The windows of one pooling call over three spatial dimensions (1-D and 2-D calls put size-1
/// dimensions in front): for each dimension and output index, the clipped input range
/// `start..<end` visited with `step`, and for average pooling the window's length counting the
/// padding.
struct PoolWindows {
    var input: [Int]
    var output: [Int]
    var start: [[Int]]
    var end: [[Int]]
    var step: [Int]
    /// Window lengths including padding (average pooling's `count_include_pad`).
    var paddedLength: [[Int]]

    var inputPlane: Int { input[0] * input[1] * input[2] }
    var outputPlane: Int { output[0] * output[1] * output[2] }

    /// For 2-D windows (depth 1) that are all whole and undilated, their kernel and stride.
    var fullWindows2d: (kernel: (Int, Int), stride: (Int, Int))? {
        guard input[0] == 1, output[0] == 1, step[1] == 1, step[2] == 1, output[1] > 0, output[2] > 0 else { return nil }
        func uniform(_ j: Int) -> (Int, Int)? {
            let k = end[j][0] - start[j][0], s = output[j] > 1 ? start[j][1] - start[j][0] : 1
            guard k > 0, s > 0, start[j][0] == 0 else { return nil }
            for o in 0..<output[j] where start[j][o] != o * s || end[j][o] != o * s + k { return nil }
            return (k, s)
        }
        guard let h = uniform(1), let w = uniform(2) else { return nil }
        return ((h.0, w.0), (h.1, w.1))
    }

    /// PyTorch's `pooling_output_shape`: with `ceilMode` the last window may hang over the end, but
    /// must start inside the input or its left padding.
    static func outputSize(_ n: Int, kernel k: Int, stride s: Int, pad p: Int, dilation d: Int, ceilMode: Bool) -> Int {
        let numerator = n + 2 * p - d * (k - 1) - 1 + (ceilMode ? s - 1 : 0)
        var out = (numerator >= 0 ? numerator / s : -((-numerator + s - 1) / s)) + 1
        if ceilMode && (out - 1) * s >= n + p { out -= 1 }
        return out
    }

    /// One value when all are equal (as PyTorch prints an int argument), else the list.
    static func scalar(_ v: [Int]) -> String { Set(v).count == 1 ? "\(v[0])" : "\(v)" }

    /// Sliding windows of max pooling (dilated) or average pooling (`dilation` all 1), with
    /// PyTorch's checks; `describe` names the call.
    static func sliding(input: [Int], kernel: [Int], stride: [Int], padding: [Int], dilation: [Int], ceilMode: Bool,
                        planes: Int, describe: () -> String) -> PoolWindows {
        let dims = input.count
        precondition(kernel.allSatisfy { $0 > 0 }, "\(describe()): kernel size should be greater than zero, but got kernel_size=\(kernel)")
        precondition(stride.allSatisfy { $0 > 0 }, "\(describe()): stride should be greater than zero, but got stride=\(stride)")
        precondition(dilation.allSatisfy { $0 > 0 }, "\(describe()): dilation should be greater than zero, but got dilation=\(dilation)")
        precondition((0..<dims).allSatisfy { padding[$0] >= 0 && padding[$0] <= kernel[$0] / 2 },
                     "\(describe()): pad should be at most half of effective kernel size, but got pad=\(scalar(padding)), kernel_size=\(scalar(kernel)) and dilation=\(scalar(dilation))")
        let output = (0..<dims).map {
            outputSize(input[$0], kernel: kernel[$0], stride: stride[$0], pad: padding[$0], dilation: dilation[$0], ceilMode: ceilMode)
        }
        precondition(output.allSatisfy { $0 >= 1 },
                     "\(describe()): Given input size: (\(([planes] + input).map(String.init).joined(separator: "x"))). Calculated output size: (\(([planes] + output).map(String.init).joined(separator: "x"))). Output size is too small")
        var w = PoolWindows(input: [], output: [], start: [], end: [], step: [], paddedLength: [])
        for j in 0..<dims {
            let (n, k, s, p, d) = (input[j], kernel[j], stride[j], padding[j], dilation[j])
            var starts: [Int] = [], ends: [Int] = [], lengths: [Int] = []
            for o in 0..<output[j] {
                var lo = o * s - p
                let paddedEnd = min(lo + (k - 1) * d + 1, n + p)
                lengths.append(paddedEnd - lo)
                let hi = min(lo + (k - 1) * d + 1, n)
                while lo < 0 { lo += d }
                starts.append(lo)
                ends.append(max(hi, lo))
            }
            w.append(input: n, output: output[j], start: starts, end: ends, step: d, paddedLength: lengths)
        }
        return w.lifted
    }

    /// Adaptive windows: output `o` of `m` over an input of `n` covers `floor(o n / m)..<ceil((o + 1) n / m)`.
    static func adaptive(input: [Int], output: [Int]) -> PoolWindows {
        var w = PoolWindows(input: [], output: [], start: [], end: [], step: [], paddedLength: [])
        for j in input.indices {
            let (n, m) = (input[j], output[j])
            let starts = (0..<m).map { $0 * n / m }, ends = (0..<m).map { (($0 + 1) * n + m - 1) / m }
            w.append(input: n, output: m, start: starts, end: ends, step: 1, paddedLength: zip(starts, ends).map { $1 - $0 })
        }
        return w.lifted
    }

    private mutating func append(input n: Int, output m: Int, start: [Int], end: [Int], step: Int, paddedLength: [Int]) {
        input.append(n); output.append(m); self.start.append(start); self.end.append(end)
        self.step.append(step); self.paddedLength.append(paddedLength)
    }

    /// With size-1 dimensions put in front, so there are three.
    private var lifted: PoolWindows {
        var w = self
        while w.input.count < 3 {
            w.input.insert(1, at: 0); w.output.insert(1, at: 0); w.start.insert([0], at: 0); w.end.insert([1], at: 0)
            w.step.insert(1, at: 0); w.paddedLength.insert([1], at: 0)
        }
        return w
    }
}

/// Shape handling shared by the pooling functions: the input is `[N, C, spatial...]` or unbatched
/// `[C, spatial...]`; every leading plane is pooled alike.
struct PoolSetup {
    let dims: Int
    let input: Tensor
    var spatial: [Int] { Array(input.shape.suffix(dims)) }
    var planes: Int { input.shape.dropLast(dims).reduce(1, *) }
    var leading: [Int] { Array(input.shape.dropLast(dims)) }

    init(_ input: Tensor, dims: Int, context: () -> String) {
        self.dims = dims
        self.input = input
        precondition(input.rank == dims + 1 || input.rank == dims + 2,
                     "\(context()): Expected \(dims + 1)D or \(dims + 2)D (batch mode) tensor with optional 0 dim batch size for input, but got: \(input.shape)")
        precondition(input.shape.suffix(dims + 1).allSatisfy { $0 > 0 },
                     "\(context()): Expected \(dims + 1)D or \(dims + 2)D (batch mode) tensor with optional 0 dim batch size for input, but got: \(input.shape) (only the batch dimension may be empty)")
        precondition(input.dtype == .float32 || input.dtype == .float64,
                     "\(context()): \(input.dtype) is not supported; use float32 or float64")
    }
}
