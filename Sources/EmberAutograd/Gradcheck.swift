import EmberTensor

/// A gradient that disagrees with its finite-difference estimate.
public struct GradcheckError: Error, Sendable, CustomStringConvertible {
    /// The input whose gradient disagrees.
    public var inputIndex: Int
    /// The worst element: its position in the flattened input and in the flattened output.
    public var inputElement: Int, outputElement: Int
    /// The analytical (backward) and numerical (finite-difference) Jacobian entries there.
    public var analytical: Double, numerical: Double

    public var description: String {
        "gradcheck: Jacobian mismatch for output element \(outputElement) with respect to input \(inputIndex), element \(inputElement): numerical \(numerical), analytical \(analytical)"
    }
}

extension Autograd {
    /// Checks the gradients `backward` computes for `f` against float64 central finite
    /// differences, entry by entry of the Jacobian.
    ///
    /// Each input that requires a gradient must be float64 (finite differences in float32 are
    /// too coarse to tell a right gradient from a wrong one). The analytical Jacobian comes from
    /// one backward pass per output element; the numerical one from `(f(x + eps) - f(x - eps)) /
    /// 2 eps` per input element. An entry passes when `|a - n| <= atol + rtol * |n|`.
    ///
    /// - Throws: ``GradcheckError`` naming the first input and worst entry that fails.
    ///
    /// PyTorch parity: `torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)`
    /// (which raises on failure by default), for functions with one output.
    public static func gradcheck(_ inputs: [Tensor], eps: Double = 1e-6, atol: Double = 1e-5, rtol: Double = 1e-3,
                                 _ f: ([Tensor]) -> Tensor) throws {
        for (k, x) in inputs.enumerated() where x.requiresGrad {
            precondition(x.dtype == .float64,
                         "gradcheck: input \(k) requires grad but is \(x.dtype); use float64 inputs (x.to(.float64))")
        }
        let output = f(inputs)
        let outCount = output.count
        let checked = inputs.indices.filter { inputs[$0].requiresGrad }
        precondition(!checked.isEmpty, "gradcheck: no input requires grad")
        // Analytical Jacobian, row by row: J[j] = d out_j / d inputs.
        var analytical = checked.map { [[Double]](repeating: [Double](repeating: 0, count: inputs[$0].count), count: outCount) }
        if output.requiresGrad {
            for j in 0..<outCount {
                var seed = [Double](repeating: 0, count: outCount)
                seed[j] = 1
                let g = Tensor(seed, shape: output.shape).to(output.dtype)
                let grads = grad([output], checked.map { inputs[$0] }, gradOutputs: [g], retainGraph: true, allowUnused: true)
                for (c, gk) in grads.enumerated() {
                    if let gk { analytical[c][j] = gk.doubles }
                }
            }
        }
        // Numerical Jacobian, column by column.
        for (c, k) in checked.enumerated() {
            let x = inputs[k].detached().contiguous()
            var values = x.scalars(as: Double.self)
            var worst: GradcheckError?
            var worstExcess = 0.0
            for i in 0..<values.count {
                let original = values[i]
                func evaluate(_ v: Double) -> [Double] {
                    values[i] = v
                    var args = inputs.map { $0.detached() }
                    args[k] = Tensor(values, shape: x.shape)
                    return withNoGrad { f(args) }.doubles
                }
                let plus = evaluate(original + eps), minus = evaluate(original - eps)
                values[i] = original
                for j in 0..<outCount {
                    let n = (plus[j] - minus[j]) / (2 * eps)
                    let a = analytical[c][j][i]
                    let excess = Swift.abs(a - n) - (atol + rtol * Swift.abs(n))
                    if excess > worstExcess || (excess.isNaN && worst == nil) || (a.isNaN != n.isNaN) {
                        worstExcess = excess.isNaN ? .infinity : excess
                        worst = GradcheckError(inputIndex: k, inputElement: i, outputElement: j, analytical: a, numerical: n)
                    }
                }
            }
            if let worst { throw worst }
        }
    }
}
