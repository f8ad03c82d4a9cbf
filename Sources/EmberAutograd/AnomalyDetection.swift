import EmberTensor
import Synchronization

/// A NaN or infinite gradient found by ``detectAnomaly(_:)``: which op's backward produced it,
/// for which of its inputs, and where the op was created.
///
/// PyTorch parity: the `RuntimeError` of `torch.autograd.detect_anomaly()` ("Function
/// 'MulBackward0' returned nan values in its 0th output."), with the module path in place of
/// the forward's Python traceback.
public struct AnomalyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The op whose backward returned the value (`"mul"`, `"log"`, `"linear"`).
    public var op: String
    /// The input of that op whose gradient holds it (0 for the first).
    public var inputIndex: Int
    /// `"nan"` or `"inf"`.
    public var value: String
    /// The shape of that gradient.
    public var shape: [Int]
    /// Where the op was created: the innermost module running when it was recorded, as
    /// `Linear 'encoder.0'`, or `nil` outside any module (or when the forward ran outside the
    /// scope).
    public var createdIn: String?

    public var description: String {
        let place = createdIn.map { "created in \($0)" } ?? "created outside any module (or before the detectAnomaly scope)"
        return "detectAnomaly: the backward of '\(op)' (\(place)) returned \(value) values in its gradient for input \(inputIndex) (shape \(shape))"
    }
}

/// Runs `body` with anomaly detection: every op records the module it was created in, and every
/// backward pass checks each gradient it computes. At the first NaN or infinite value the pass
/// stops without adding anything to any `grad` (leaves keep their previous gradients), later
/// backward passes in the scope do nothing, and when `body` returns the scope throws an
/// ``AnomalyError`` naming the op and its module. Wrap one training step (forward and backward)
/// so the error comes before the optimizer steps.
///
/// Cost: one pass over every gradient of the backward (a float comparison per element) and a
/// module name per recorded op. Outside the scope the cost is one relaxed atomic load per
/// recorded op and per module call.
///
/// PyTorch parity: `with torch.autograd.detect_anomaly():`, which raises at once from
/// `backward()`; Ember's `backward` cannot throw, so the error comes at the end of the scope.
public func detectAnomaly<R>(_ body: () throws -> R) throws -> R {
    let state = AnomalyDetection.State()
    AnomalyDetection.activeScopes.add(1, ordering: .relaxed)
    defer { AnomalyDetection.activeScopes.subtract(1, ordering: .relaxed) }
    let result = try AnomalyDetection.$current.withValue(state, operation: body)
    if let anomaly = state.anomaly { throw anomaly }
    return result
}

/// The state of ``detectAnomaly(_:)``, seen by the engine and by `Module`'s call.
public enum AnomalyDetection {
    package final class State: @unchecked Sendable {
        package var anomaly: AnomalyError?
        package var modules: [String] = []
    }

    @TaskLocal package static var current: State?
    static let activeScopes = Atomic<Int>(0)

    /// Whether some task runs inside `detectAnomaly` (one relaxed atomic load; then read
    /// ``current`` for this task's state).
    @inline(__always)
    package static var isActive: Bool { activeScopes.load(ordering: .relaxed) > 0 }

    /// Whether this task runs inside `detectAnomaly`.
    public static var isEnabled: Bool { isActive && current != nil }

    /// Runs `body` as the forward of the module described by `name`, so ops recorded in it name
    /// it. Call it only when ``isActive``.
    package static func withModule<R>(_ name: @autoclosure () -> String, _ body: () throws -> R) rethrows -> R {
        guard let state = current else { return try body() }
        state.modules.append(name())
        defer { state.modules.removeLast() }
        return try body()
    }

    static func currentContext() -> String? {
        current?.modules.last
    }

    static func describe(_ node: AutogradMeta) -> String {
        node.creationContext.map { "it was created in \($0)" }
            ?? "run the forward inside detectAnomaly to see the module that created it"
    }

    /// The first NaN or infinity in `grads`, as an error naming `node`.
    static func check(_ grads: [Tensor?], of node: AutogradMeta) -> AnomalyError? {
        for (k, g) in grads.enumerated() {
            guard let g, let value = nonFinite(in: g) else { continue }
            return AnomalyError(op: node.opName, inputIndex: k, value: value, shape: g.shape.map { $0 },
                                createdIn: node.creationContext)
        }
        return nil
    }

    private static func nonFinite(in t: Tensor) -> String? {
        func scan<T: BinaryFloatingPoint & TensorScalar>(_: T.Type) -> String? {
            let c = t.contiguousRaw
            let p = UnsafeBufferPointer(start: c.pointer(as: T.self), count: c.count)
            var sawInf = false
            for v in p where !v.isFinite {
                if v.isNaN { return "nan" }
                sawInf = true
            }
            return sawInf ? "inf" : nil
        }
        switch t.dtype {
        case .float32: return scan(Float.self)
        case .float64: return scan(Double.self)
        default: return nil
        }
    }
}
