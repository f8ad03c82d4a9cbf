import Ember
@testable import EmberFunctional
import Testing
import _EmberTestSupport

/// The fused recurrent kernels' float32 activations are `Tensor.sigmoid()`/`tanh()` bit for bit (so
/// a fused layer and its cell, composed from tensor ops, see the same activation values).
@Suite struct RNNMathTests {
    static var samples: [Float] {
        var values: [Float] = [0, -0, 1e-30, -1e-30, 1e-7, 0.1, 0.5, 0.624, 0.625, 0.626, 1, 2, 5, 9, 15, 20, 44, 80, 88.7, 88.8,
                               89, 100, 103.9, 104, 200, .infinity, .nan, .leastNonzeroMagnitude, .greatestFiniteMagnitude]
        values += values.map { -$0 }
        var state: UInt32 = 12345
        for _ in 0..<4000 {
            state = state &* 1_664_525 &+ 1_013_904_223
            values.append((Float(state >> 8) / Float(1 << 24) - 0.5) * 60)
        }
        while values.count % 8 != 0 { values.append(0) }
        return values
    }

    @Test func activationsAreEmberTensorsBitForBit() {
        let xs = Self.samples
        let input = Tensor(xs.map(Double.init), shape: [xs.count]).to(.float32)
        let sigmoid = input.sigmoid().scalars(as: Float.self), tanh = input.tanh().scalars(as: Float.self)
        var mismatches: [String] = []
        for start in stride(from: 0, to: xs.count, by: 8) {
            var v = SIMD8<Float>()
            for l in 0..<8 { v[l] = xs[start + l] }
            let pairs = [(Float.sigmoid8(v), sigmoid, "sigmoid"), (Float.tanh8(v), tanh, "tanh")]
            for (a, b, name) in pairs {
                for l in 0..<8 where a[l].bitPattern != b[start + l].bitPattern && !(a[l].isNaN && b[start + l].isNaN) {
                    mismatches.append("\(name)(\(v[l])): \(a[l]) vs \(b[start + l])")
                }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")
    }
}
