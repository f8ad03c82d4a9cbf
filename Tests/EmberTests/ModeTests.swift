import Ember
import Testing
import _EmberTestSupport

final class TwoProbes: Module {
    var a = Probe()
    var b = Probe()
    var inner = [Probe()]
}

struct ScopeFailure: Error {}

@Suite struct ModeTests {
    @Test func freshModulesTrainAndEvalReturnsSelf() {
        let m = TwoProbes()
        #expect(m.isTraining && m.mode == .training)
        #expect(m.eval() === m)
        #expect(m.train() === m)
        #expect(m.train(false).mode == .evaluation)
    }

    @Test func pinnedModuleSurvivesAncestorTrain() {
        let m = TwoProbes()
        m.b.pin(.evaluation)
        #expect(!m.b.isTraining)
        m.train()
        #expect(!m.b.isTraining && m.a.isTraining)
        m.eval()
        m.train()
        #expect(!m.b.isTraining, "a pin holds through any number of train() calls")
        m.b.train()
        #expect(!m.b.isTraining, "a pinned module ignores train() on itself too")
        m.b.unpin()
        m.train()
        #expect(m.b.isTraining)
    }

    @Test func pinCoversSubtreeAndShowsInListing() {
        let m = TwoProbes()
        m.pin(.evaluation)
        #expect(m.modules().allSatisfy { !$0.isTraining })
        let rows = m.listing()
        #expect(rows.first?.pinnedMode == .evaluation)
        #expect(rows.map(\.path) == ["", "a", "b", "inner.0"])
        #expect(m.description.contains("[eval, pinned]"))
    }

    @Test func scopedEvaluationRestoresMixedModes() {
        let m = TwoProbes()
        m.a.eval()           // mixed: a eval, b train, inner train
        m.inner[0].pin(.training)
        let out = m.evaluating { () -> [Bool] in
            m.modules().map(\.isTraining)
        }
        #expect(out == [false, false, false, true], "everything eval except the module pinned to train")
        #expect(m.isTraining && !m.a.isTraining && m.b.isTraining && m.inner[0].isTraining)
    }

    @Test func scopedSwitchNestsAndRestoresOnThrow() {
        let m = TwoProbes()
        m.evaluating {
            #expect(!m.isTraining)
            m.training {
                #expect(m.a.isTraining)
            }
            #expect(!m.a.isTraining, "inner scope restored the outer scope's modes")
            #expect(throws: ScopeFailure.self) {
                try m.withMode(.training) { throw ScopeFailure() }
            }
            #expect(!m.a.isTraining && !m.b.isTraining, "restored after a throw")
        }
        #expect(m.modules().allSatisfy { $0.isTraining })
    }

    @Test func modeIsIndependentOfGradientRecording() {
        let p = Probe()
        p.eval()
        #expect(p.weight.requiresGrad, "eval() never touches requiresGrad")
        p.requiresGrad(false)
        #expect(!p.isTraining && !p.weight.requiresGrad)
        p.train()
        #expect(!p.weight.requiresGrad, "train() never touches requiresGrad")
        withNoGrad { #expect(p.isTraining, "no-grad never touches the mode") }
    }

    @Test func summaryListsModesPinsAndCounts() {
        let m = TwoProbes()
        m.b.pin(.evaluation)
        let text = m.summary()
        #expect(text.contains("parameters: 6 (6 trainable); modules: 4 (3 train, 1 eval, 1 pinned)"))
        #expect(text.contains("weight [2]"))
    }
}

@Suite struct ParameterTests {
    @Test func freezeAndUnfreezeKeepTheGradient() throws {
        let p = Parameter(Tensor([1, 2] as [Float]))
        (p.value * 3.0).sum().backward()
        #expect(p.grad?.floats == [3, 3])
        p.requiresGrad = false
        #expect(!p.requiresGrad && p.grad?.floats == [3, 3], "freezing keeps .grad, as in PyTorch")
        p.requiresGrad = true
        #expect(p.requiresGrad)
        (p.value * 2.0).sum().backward()
        #expect(p.grad?.floats == [5, 5], "unfrozen parameters accumulate again")
    }

    @Test func gradCanBeAssignedOnAFrozenParameter() {
        let p = Parameter(Tensor.zeros([2]), requiresGrad: false)
        p.grad = Tensor.ones([2])
        #expect(p.grad?.floats == [1, 1] && !p.requiresGrad)
        p.grad = nil
        #expect(p.grad == nil)
    }

    @Test func assigningValueKeepsFlagsAndGradient() {
        let p = Parameter(Tensor.zeros([2]))
        p.grad = Tensor.ones([2])
        p.value = Tensor([4, 5] as [Float])
        #expect(p.requiresGrad && p.grad?.floats == [1, 1] && p.value.floats == [4, 5])
    }
}
