import Ember
import Foundation
import Testing
import _EmberTestSupport

/// Reads the cases of `tensor_ops_math.safetensors` (`Tools/fixtures/gen_tensor_ops_math.py`) and
/// checks an Ember function against one: output, dtype, gradients of `sum(out * w)`, the same
/// output through non-contiguous copies of the inputs, and (for "double" cases) the
/// Hessian-vector product.
enum OpsMath {
    nonisolated(unsafe) static let fx = try! Fixture("tensor_ops_math")

    /// The case names the generator wrote for `group`.
    static func cases(_ group: String) -> [String] {
        try! JSONDecoder().decode([String].self, from: Data(fx.metadata[group]!.utf8))
    }

    /// The inputs `NAME/in0`, `NAME/in1`, ... in order.
    static func inputs(_ name: String) -> [Tensor] {
        var out = [Tensor]()
        while let x = fx.tensors["\(name)/in\(out.count)"] { out.append(x) }
        return out
    }

    /// The same values with non-contiguous strides (rank >= 2: a transposed view of a transposed
    /// copy); lower ranks unchanged.
    static func strided(_ x: Tensor) -> Tensor {
        x.rank >= 2 ? x.transposed(0, -1).contiguous().transposed(0, -1) : x
    }

    static func check(_ name: String, atol: Double = 1e-12, rtol: Double = 1e-10,
                      sourceLocation: SourceLocation = #_sourceLocation, _ f: ([Tensor]) -> Tensor) {
        let ins = inputs(name)
        #expect(!ins.isEmpty, "\(name): no inputs", sourceLocation: sourceLocation)
        let expected = fx["\(name)/out"]
        let leaves = ins.map { $0.dtype.isFloatingPoint ? $0.requiringGrad() : $0 }
        let out = f(leaves)
        #expect(out.dtype == expected.dtype, "\(name): dtype \(out.dtype) vs \(expected.dtype)", sourceLocation: sourceLocation)
        expectClose(out, expected, atol: atol, rtol: rtol, "\(name) forward", sourceLocation: sourceLocation)
        if let w = fx.tensors["\(name)/w"] {
            (out * w.to(out.dtype)).sum().backward()
            for i in ins.indices {
                guard let g = fx.tensors["\(name)/grad\(i)"] else { continue }
                let actual = leaves[i].grad ?? Tensor.zeros(ins[i].shape, dtype: ins[i].dtype)
                expectClose(actual, g, atol: atol, rtol: rtol, "\(name) gradient of input \(i)", sourceLocation: sourceLocation)
            }
        }
        expectClose(f(ins.map(strided)), expected, atol: atol, rtol: rtol, "\(name) non-contiguous", sourceLocation: sourceLocation)
    }

    /// Checks `d/dx sum(grad_x(sum(f(x) * w)) * v)` for the case's first input.
    static func checkDouble(_ name: String, atol: Double = 1e-12, rtol: Double = 1e-10,
                            sourceLocation: SourceLocation = #_sourceLocation, _ f: (Tensor) -> Tensor) {
        let x = inputs(name)[0].requiringGrad()
        let w = fx["\(name)/w"], v = fx["\(name)/v"]
        let g = Autograd.grad((f(x) * w).sum(), [x], createGraph: true)[0]!
        expectClose(g, fx["\(name)/grad0"], atol: atol, rtol: rtol, "\(name) gradient", sourceLocation: sourceLocation)
        let h = Autograd.grad((g * v).sum(), [x])[0]!
        expectClose(h, fx["\(name)/hvp0"], atol: atol, rtol: rtol, "\(name) double backward", sourceLocation: sourceLocation)
    }
}
