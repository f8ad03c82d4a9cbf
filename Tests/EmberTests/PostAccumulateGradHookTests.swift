import Ember
import _EmberTestSupport
import Synchronization
import Testing

// Tensor.registerPostAccumulateGradHook: the hook sees the accumulated gradient, once per pass,
// as soon as the last op feeding the leaf has run its backward (DistributedDataParallel starts its
// bucket all-reduces from it while backward goes on).

/// Events recorded by hooks, in order (hooks run on the thread that runs backward).
private final class EventLog: @unchecked Sendable {
    var events: [String] = []
}

@Suite("Post-accumulate gradient hooks")
struct PostAccumulateGradHookTests {
    @Test("the hook sees the accumulated gradient, once per pass, even for a leaf used twice")
    func seesAccumulatedGradient() {
        let p = Tensor([1.0, 2.0]).requiringGrad()
        var calls = 0
        var last: [Double] = []
        p.registerPostAccumulateGradHook { g in
            calls += 1
            last = g.scalars(as: Double.self)
        }
        (p * 3 + p * p).sum().backward()  // d/dp = 3 + 2p = [5, 7]
        #expect(calls == 1 && last == [5, 7])
        (p * 3).sum().backward()  // accumulates: [8, 10]
        #expect(calls == 2 && last == [8, 10])
        #expect(p.grad!.scalars(as: Double.self) == [8, 10])
    }

    @Test("a leaf finishes as soon as its last consumer has run, before earlier layers' backward")
    func firesBeforeEarlierLayers() {
        let log = EventLog()
        let x = Tensor(rows: [[1.0, 2.0]])
        let w1 = Tensor(rows: [[1.0, 0.5], [0.25, 1.0]]).requiringGrad()
        let w2 = Tensor(rows: [[2.0], [1.0]]).requiringGrad()
        w1.registerPostAccumulateGradHook { _ in log.events.append("w1") }
        w2.registerPostAccumulateGradHook { _ in log.events.append("w2") }
        let h = x.matmul(w1)
        h.registerHook { _ -> Tensor? in log.events.append("h"); return nil }  // runs when h's node is processed
        h.matmul(w2).sum().backward()
        #expect(log.events == ["w2", "h", "w1"])
        // The gradients are those of the plain engine: dL/dw2 = h^T, dL/dw1 = x^T w2^T.
        #expect(w2.grad!.scalars(as: Double.self) == [1.5, 2.5])
        #expect(w1.grad!.scalars(as: Double.self) == [2, 1, 4, 2])
    }

    @Test("tensor hooks run before accumulation; a removed hook no longer runs; Autograd.grad runs none")
    func orderingAndRemoval() {
        let p = Tensor([1.0]).requiringGrad()
        let log = EventLog()
        p.registerHook { g in log.events.append("pre \(g.scalars(as: Double.self))"); return g * 2 }
        let handle = p.registerPostAccumulateGradHook { g in log.events.append("post \(g.scalars(as: Double.self))") }
        (p * 5).sum().backward()
        #expect(log.events == ["pre [5.0]", "post [10.0]"])
        handle.remove()
        (p * 5).sum().backward()
        #expect(log.events.count == 3 && p.grad!.scalars(as: Double.self) == [20])
        p.registerPostAccumulateGradHook { _ in log.events.append("grad") }
        _ = Autograd.grad([(p * 5).sum()], [p])
        #expect(!log.events.contains("grad"))
    }

    @Test func registeringOnANonLeafStops() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let p = Tensor([1.0]).requiringGrad()
            (p * 2).registerPostAccumulateGradHook { _ in }
        }
        #expect(standardErrorText(result).contains("post accumulate grad hooks cannot be registered on non-leaf tensors"))
    }

    @Test func registeringOnATensorWithoutGradientStops() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            Tensor([1.0]).registerPostAccumulateGradHook { _ in }
        }
        #expect(standardErrorText(result).contains("cannot register a hook on a tensor that doesn't require gradient"))
    }
}
