import Ember
import Foundation
import Testing
import _EmberTestSupport

/// Activation checkpointing (`checkpoint`) and anomaly detection (`detectAnomaly`).
@Suite struct CheckpointAndAnomalyTests {
    /// Gradients of a network with dropout, trained one step with and without two checkpointed
    /// segments, from the same seed: bitwise equal, and the generator ends where it would have.
    @Test func checkpointedGradientsAreBitwiseThoseWithoutDropoutIncluded() {
        func run(checkpointed: Bool) -> (grads: [Tensor], after: Tensor, state: Generator.State) {
            let generator = Generator(seed: 7)
            return withGenerator(generator) {
                let first = Sequential(Linear(8, 16), ReLU(), Dropout(0.3), Linear(16, 16), Tanh())
                let second = Sequential(Dropout(0.2), Linear(16, 4))
                let x = Tensor.normal([5, 8])
                let h = checkpointed ? checkpoint(x) { first($0) } : first(x)
                let y = checkpointed ? checkpoint(h) { second($0) } : second(h)
                (y * y).sum().backward()
                let grads = (first.parameters() + second.parameters()).map { $0.grad! }
                return (grads, Tensor.normal([3]), generator.state)
            }
        }
        let plain = run(checkpointed: false), saved = run(checkpointed: true)
        #expect(plain.grads.count == 6 && saved.grads.count == 6)
        for (a, b) in zip(saved.grads, plain.grads) { expectBitwiseEqual(a, b, "parameter gradient") }
        expectBitwiseEqual(saved.after, plain.after, "draws after backward")
        #expect(saved.state == plain.state)
    }

    @Test func aCheckpointedSegmentFeedsGradientsToItsInputAndParameters() throws {
        let lin = Linear(3, 2, dtype: .float64)
        let x = Tensor([1, 2, 3, 4, 5, 6] as [Double], shape: [2, 3]).requiringGrad()
        let y = checkpoint(x * 2) { lin($0).tanh() }
        #expect(y.gradFnName == "checkpoint")
        y.sum().backward()
        let viaCheckpoint = (try #require(x.grad), try #require(lin.weight.grad))
        x.grad = nil
        lin.weight.grad = nil
        lin(x * 2).tanh().sum().backward()
        expectBitwiseEqual(viaCheckpoint.0, x.grad!)
        expectBitwiseEqual(viaCheckpoint.1, lin.weight.grad!)
    }

    /// A layer used both inside and after a checkpointed segment: its weight gets gradients from
    /// the outer pass and from the segment's own pass, which runs inside the outer one.
    @Test func aParameterSharedInsideAndOutsideASegmentGetsBothGradients() throws {
        let lin = Linear(3, 3, dtype: .float64)
        let x = Tensor([1, 2, 3, -1, 0.5, 2] as [Double], shape: [2, 3])
        lin(checkpoint(x) { lin($0).tanh() }).sum().backward()
        let viaCheckpoint = try #require(lin.weight.grad)
        lin.weight.grad = nil
        lin(lin(x).tanh()).sum().backward()
        expectBitwiseEqual(viaCheckpoint, lin.weight.grad!)
    }

    /// A fused op differentiated again (batch normalization) on an intermediate result: the
    /// nested pass that does it must not touch the outer graph, so the first-order gradient with
    /// `createGraph` equals the ordinary one.
    @Test func createGraphThroughBatchNormOfAnIntermediateKeepsTheFirstOrderGradient() throws {
        let x = Tensor([0.5, -1, 2, 0.3, 1.5, -0.7, 0.9, 0.1] as [Double], shape: [4, 2]).requiringGrad()
        func f() -> Tensor {
            var rm: Tensor? = nil, rv: Tensor? = nil
            let h = (x * 2).tanh()
            return batchNorm(h, runningMean: &rm, runningVar: &rv, weight: nil, bias: nil, training: true,
                             momentum: 0.1, eps: 1e-5).pow(3).sum() + h.sum()
        }
        let plain = try #require(Autograd.grad(f(), [x])[0])
        let recorded = try #require(Autograd.grad(f(), [x], createGraph: true)[0])
        expectClose(recorded.detached(), plain, atol: 1e-12, rtol: 1e-12)
    }

    @Test func withoutRecordingASegmentJustRuns() {
        let lin = Linear(3, 2)
        var calls = 0
        let y = withNoGrad { checkpoint(Tensor.ones([1, 3])) { calls += 1; return lin($0) } }
        #expect(!y.requiresGrad && y.gradFnName == nil && calls == 1)
    }

    /// A sqrt of zero inside a named module gives an infinite gradient: the scope throws, naming
    /// the op and the module, and no leaf gradient was changed.
    @Test func anomalyDetectionNamesTheOpAndModuleAndKeepsGradients() throws {
        final class Root: Module {
            override func forward(_ x: Tensor) -> Tensor { (x * 0).sqrt() }
        }
        let model = Sequential(Linear(2, 2), Root())
        model.train()  // a traversal: modules learn their paths
        let x = Tensor.ones([1, 2])
        do {
            try detectAnomaly { model(x).sum().backward() }
            Issue.record("expected an AnomalyError")
        } catch let error as AnomalyError {
            #expect(error.op == "sqrt" && error.value == "inf" && error.inputIndex == 0)
            #expect(error.createdIn == "Root '1'", "\(error)")
            #expect(error.description.contains("the backward of 'sqrt' (created in Root '1') returned inf values"))
        }
        #expect((model.layers[0] as! Linear).weight.grad == nil, "the stopped pass accumulated nothing")
        #expect(!AnomalyDetection.isEnabled)
        try detectAnomaly { (model.layers[0](x).sum()).backward() }  // finite: no error
        #expect((model.layers[0] as! Linear).weight.grad != nil)
    }
}

/// Peak memory of a deep MLP's training step with and without checkpointing, each measured in its
/// own child process (the exit-test mechanism) from `VmHWM` in `/proc/self/status`.
///
/// 24 layers `Linear(256, 256) -> Tanh` at batch 1024 keep about 2 MB of activations per layer
/// for backward (Linear's input, Tanh's output): about 48 MB. In 6 checkpointed segments of 4
/// layers, backward holds the 6 segment inputs (6 MB) plus one segment recomputed (8 MB): about
/// 14 MB, a factor of about 3.4. The test asks for at least 2 (measurements: BENCHMARKS.md).
@Suite(.serialized) struct CheckpointMemoryTests {
    static func peakDelta(checkpointed: Bool) -> Int {
        func status(_ key: String) -> Int {
            let text = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
            let line = text.split(separator: "\n").first { $0.hasPrefix(key + ":") } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        let blocks = (0..<6).map { _ in Sequential((0..<4).flatMap { _ in [Linear(256, 256), Tanh()] as [Module] }) }
        let x = Tensor.normal([1024, 256])
        let before = status("VmRSS")
        var h = x
        for block in blocks { h = checkpointed ? checkpoint(h) { block($0) } : block(h) }
        h.sum().backward()
        return status("VmHWM") - before
    }

    @Test func checkpointingLowersPeakMemoryOfADeepMLP() async throws {
        #if os(Linux)
        let plain = await #expect(processExitsWith: .success, observing: [\.standardOutputContent]) {
            print("peak", CheckpointMemoryTests.peakDelta(checkpointed: false))
        }
        let saved = await #expect(processExitsWith: .success, observing: [\.standardOutputContent]) {
            print("peak", CheckpointMemoryTests.peakDelta(checkpointed: true))
        }
        func kilobytes(_ result: ExitTest.Result?) -> Int {
            let text = String(decoding: result?.standardOutputContent ?? [], as: UTF8.self)
            return Int(text.split(separator: "\n").first { $0.hasPrefix("peak ") }?.dropFirst(5) ?? "") ?? -1
        }
        let p = kilobytes(plain), c = kilobytes(saved)
        #expect(p > 30_000, "the plain step should hold about 48 MB of activations, measured \(p) kB")
        #expect(c > 0 && c * 2 < p, "checkpointed peak \(c) kB against \(p) kB without")
        print("checkpoint memory: \(p) kB without, \(c) kB with")
        #endif
    }
}
