import Ember
import Foundation
import Testing
import _EmberTestSupport

/// `log(cosh x)`, stable for large `|x|`, as a custom function (the DocC article's example).
struct LogCosh: AutogradFunction {
    func forward(_ ctx: FunctionContext, _ inputs: [Tensor]) -> [Tensor] {
        let x = inputs[0]
        ctx.saveForBackward(x)
        return [x.abs() + (x.abs() * -2).exp().log1p() - Foundation.log(2.0)]
    }
    func backward(_ ctx: FunctionContext, _ gradOutputs: [Tensor]) -> [Tensor?] {
        [gradOutputs[0] * ctx.savedTensors[0].tanh()]
    }
}

/// Custom functions, `gradcheck`, tensor and module hooks, against PyTorch where it has an answer.
@Suite struct AutogradExtensionTests {
    nonisolated(unsafe) static let fixture = try! Fixture("autograd")

    @Test func customFunctionMatchesPyTorchToSecondOrder() throws {
        let fx = Self.fixture
        let x = fx["custom/x"].requiringGrad()
        let y = LogCosh()(x)
        #expect(y.gradFnName == "LogCosh")
        expectClose(y.detached(), fx["custom/y"], atol: 1e-12, rtol: 1e-12)
        let g = try #require(Autograd.grad(y.sum(), [x], createGraph: true)[0])
        expectClose(g.detached(), fx["custom/grad"], atol: 1e-12, rtol: 1e-12)
        let g2 = try #require(Autograd.grad(g.sum(), [x])[0])
        expectClose(g2, fx["custom/grad2"], atol: 1e-12, rtol: 1e-10)
    }

    @Test func gradcheckPassesARightBackwardAndNamesTheEntryOfAWrongOne() throws {
        let x = Tensor([0.3, -1.2, 2.5, 0.01], shape: [4]).to(.float64).requiringGrad()
        try Autograd.gradcheck([x]) { LogCosh()($0[0]) }
        struct WrongLogCosh: AutogradFunction {
            func forward(_ ctx: FunctionContext, _ inputs: [Tensor]) -> [Tensor] {
                ctx.saveForBackward(inputs[0])
                return [LogCosh()(inputs[0])]
            }
            func backward(_ ctx: FunctionContext, _ gradOutputs: [Tensor]) -> [Tensor?] {
                [gradOutputs[0] * ctx.savedTensors[0].sigmoid()]  // not the derivative
            }
        }
        #expect(throws: GradcheckError.self) { try Autograd.gradcheck([x]) { WrongLogCosh()($0[0]) } }
    }

    /// Two outputs share one node: backward runs once and sees both gradients (zeros for an
    /// output that received none); a non-differentiable output requires no gradient.
    @Test func severalOutputsRunBackwardOnceWithEveryGradient() throws {
        final class Calls { var count = 0; var seen: [[Double]] = [] }
        struct SquareAndDouble: AutogradFunction {
            let calls: Calls
            func forward(_ ctx: FunctionContext, _ inputs: [Tensor]) -> [Tensor] {
                ctx.saveForBackward(inputs[0])
                ctx.markNonDifferentiable(outputAt: 2)
                return [inputs[0] * inputs[0], inputs[0] * 2, inputs[0].argmax()]
            }
            func backward(_ ctx: FunctionContext, _ gradOutputs: [Tensor]) -> [Tensor?] {
                calls.count += 1
                calls.seen = gradOutputs.map(\.doubles)
                #expect(ctx.needsInputGrad == [true])
                return [gradOutputs[0] * ctx.savedTensors[0] * 2 + gradOutputs[1] * 2]
            }
        }
        let calls = Calls()
        let x = Tensor([1.0, 3.0], shape: [2]).to(.float64).requiringGrad()
        let outs = SquareAndDouble(calls: calls).apply([x])
        #expect(outs[0].requiresGrad && outs[1].requiresGrad && !outs[2].requiresGrad)
        (outs[0].sum() + outs[1].sum() * 3).backward()
        #expect(calls.count == 1)
        #expect(calls.seen == [[1, 1], [3, 3]])
        #expect(x.grad?.doubles == [8, 12])
        let only = SquareAndDouble(calls: calls).apply([x])
        only[0].sum().backward()
        #expect(calls.seen == [[1, 1], [0, 0]], "an output without a gradient gets zeros")
    }

    @Test func tensorHookSeesTheTotalGradientAndCanReplaceIt() throws {
        let x = Tensor([1.0, 2.0], shape: [2]).to(.float64).requiringGrad()
        var seen: [[Double]] = []
        let handle = x.registerHook { g in seen.append(g.doubles); return g * 10 }
        (x * 3 + x * x).sum().backward()  // two paths into x: the hook sees their sum once
        #expect(seen == [[5, 7]])
        #expect(x.grad?.doubles == [50, 70])
        handle.remove()
        handle.remove()
        x.grad = nil
        (x * 3).sum().backward()
        #expect(seen.count == 1 && x.grad?.doubles == [3, 3])
        // A hook on an intermediate result changes what flows to the leaves.
        let y = x * 2
        y.registerHook { g in g * 0 + 1 }
        x.grad = nil
        (y * 5).sum().backward()
        #expect(x.grad?.doubles == [2, 2])
    }

    /// Forward pre, forward and full backward hooks on a Sequential's layers and on the
    /// Sequential: PyTorch's order, the gradients the backward hooks see, and a backward hook's
    /// replacement of its input gradient.
    @Test func moduleHooksMatchPyTorchOrderAndValues() throws {
        let fx = Self.fixture
        let l1 = Linear(3, 4, dtype: .float64), l2 = Linear(4, 2, dtype: .float64)
        l1.weight.value = fx["hooks/w1"]; l1.bias!.value = fx["hooks/b1"]
        l2.weight.value = fx["hooks/w2"]; l2.bias!.value = fx["hooks/b2"]
        let seq = Sequential(l1, Tanh(), l2)
        var events: [String] = []
        var gout: [Int: Tensor] = [:], gin: [Int: Tensor] = [:]
        for (i, m) in seq.layers.enumerated() {
            m.registerForwardPreHook { _, _ in events.append("pre \(i)"); return nil }
            m.registerForwardHook { _, _, _ in events.append("forward \(i)"); return nil }
            m.registerFullBackwardHook { _, gradInput, gradOutput in
                events.append("backward \(i)")
                gout[i] = gradOutput[0]
                if let g = gradInput[0] { gin[i] = g }
                return i == 1 ? [gradInput[0]! * 3] : nil
            }
        }
        seq.registerForwardPreHook { _, _ in events.append("pre seq"); return nil }
        seq.registerForwardHook { _, _, _ in events.append("forward seq"); return nil }
        let x = fx["hooks/x"].requiringGrad()
        (seq(x) * fx["hooks/up"]).sum().backward()
        let expected = try JSONDecoder().decode([String].self, from: Data(fx.metadata["hook_events"]!.utf8))
        #expect(events == expected)
        for i in 0..<3 { expectClose(try #require(gout[i]), fx["hooks/gout\(i)"], atol: 1e-12, rtol: 1e-12, "gradOutput \(i)") }
        for i in 0..<3 { expectClose(try #require(gin[i]), fx["hooks/gin\(i)"], atol: 1e-12, rtol: 1e-12, "gradInput \(i)") }
        expectClose(try #require(x.grad), fx["hooks/dx"], atol: 1e-12, rtol: 1e-12)
        expectClose(try #require(l1.weight.grad), fx["hooks/dw1"], atol: 1e-12, rtol: 1e-12)
    }

    @Test func forwardHooksReplaceInputAndOutputSurviveModeSwitchesAndShowInTheListing() {
        let lin = Linear(2, 2, bias: false)
        lin.weight.value = Tensor([1, 0, 0, 1] as [Float], shape: [2, 2])
        let model = Sequential(lin, Dropout(0.5))
        let pre = lin.registerForwardPreHook { _, x in x * 2 }
        lin.registerForwardHook { _, _, y in y + 1 }
        model.eval()
        model.train()
        model.eval()
        #expect(model(Tensor([1, 2] as [Float], shape: [1, 2])).floats == [3, 5])
        #expect(model.description.contains("Linear(in_features=2, out_features=2, bias=False)  [eval, hooks: 1 forward pre, 1 forward]"),
                "\(model.description)")
        pre.remove()
        #expect(model(Tensor([1, 2] as [Float], shape: [1, 2])).floats == [2, 3])
        #expect(model.description.contains("[eval, hooks: 1 forward]"))
    }

    @Test func loadStateDictHooksRewriteKeysAndSeeIncompatibleKeys() throws {
        let model = Sequential(Linear(2, 3), ReLU())
        var prefixes: [String] = []
        model.layers[0].registerLoadStateDictPreHook { _, stateDict, prefix in
            prefixes.append(prefix)
            // An old checkpoint named the weight "w".
            if let w = stateDict["\(prefix)w"] { stateDict["\(prefix)weight"] = w; stateDict["\(prefix)w"] = nil }
        }
        var seenMissing: [String] = []
        model.registerLoadStateDictPostHook { _, keys in seenMissing = keys.missingKeys }
        let weight = Tensor.ones([3, 2])
        let keys = try model.loadStateDict(["0.w": weight, "0.bias": Tensor.zeros([3])])
        #expect(prefixes == ["0."])
        #expect(keys.missingKeys.isEmpty && seenMissing.isEmpty)
        #expect((model.layers[0] as! Linear).weight.value.floats == [1, 1, 1, 1, 1, 1])
        let partial = try model.loadStateDict(["0.w": weight], strict: false)
        #expect(seenMissing == ["0.bias"] && partial.missingKeys == ["0.bias"])
    }
}
