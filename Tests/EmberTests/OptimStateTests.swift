import Ember
import Foundation
import Testing
import _EmberTestSupport

/// Optimizer state: capture, write as a checkpoint would (JSON header + safetensors), load into a
/// new optimizer over new parameters, continue: bitwise the same as never stopping.
@Suite struct OptimStateTests {
    let fx = try! Fixture("optim")

    @Test(arguments: OptimConfig.all)
    func resumeIsBitwiseIdentical(_ cfg: OptimConfig) throws {
        let split = 3
        // Uninterrupted run.
        let params = cfg.makeParameters(fx)
        let optimizer = try makeOptimizer(cfg.optimizer, params, groups: cfg.pytorchGroups(fx))
        var reference: [[Tensor]] = []
        for step in 0..<cfg.steps {
            cfg.setGradients(fx, params, step: step)
            optimizer.step()
            reference.append(params.map(\.value))
        }

        // Interrupted run: stop after `split` steps, save, rebuild everything, load, continue.
        let first = cfg.makeParameters(fx)
        let before = try makeOptimizer(cfg.optimizer, first, groups: cfg.pytorchGroups(fx))
        for step in 0..<split {
            cfg.setGradients(fx, first, step: step)
            before.step()
        }
        let saved = try roundTrip(before.state())
        let resumed = copies(first)
        // Built with other hyperparameters: loading must restore the saved ones.
        var other = cfg.pytorchGroups(fx)
        for g in other.indices { other[g]["lr"] = .number(0.123) }
        let after = try makeOptimizer(cfg.optimizer, resumed, groups: other)
        try after.load(saved)
        #expect(after.learningRates == before.learningRates)
        for step in split..<cfg.steps {
            cfg.setGradients(fx, resumed, step: step)
            after.step()
            for (i, p) in resumed.enumerated() {
                expectBitwiseEqual(p.value, reference[step][i], "\(cfg.name) parameter \(i) after step \(step)")
            }
        }
    }

    /// A captured state is a snapshot: later steps do not change it.
    @Test func capturedStateIsASnapshot() throws {
        let p = Parameter(Tensor([Float(1), -2, 3]))
        let adam = Adam([p], lr: 0.1, amsgrad: true)
        p.grad = Tensor([Float(0.3), 0.2, -0.1])
        adam.step()
        let state = adam.state()
        let copy = state.parameters[0]!.buffers.mapValues { Tensor($0.doubles, shape: $0.shape) }
        p.grad = Tensor([Float(-1), 2, 5])
        adam.step()
        adam.step()
        for (name, t) in state.parameters[0]!.buffers {
            expectBitwiseEqual(t.to(.float64), copy[name]!, name)
        }
        #expect(state.parameters[0]!.step == 1)
        #expect(adam.state().parameters[0]!.step == 3)
    }

    /// The header reads like PyTorch's `param_groups`, and tensors use `state.<index>.<name>`.
    @Test func headerAndTensorKeys() throws {
        let a = Parameter(Tensor([Float(1), 2])), b = Parameter(Tensor([Float(3)])), c = Parameter(Tensor([Float(4)]))
        let sgd = SGD([a, b], lr: 0.1, momentum: 0.9)
        sgd.addParameterGroup([c]) { $0.learningRate = 0.01; $0.nesterov = true }
        a.grad = Tensor([Float(1), 1])
        c.grad = Tensor([Float(2)])
        sgd.step()
        _ = StepLR(sgd, stepSize: 2)
        let state = sgd.state()
        #expect(Set(state.tensors().keys) == ["state.0.momentum_buffer", "state.2.momentum_buffer"])
        let json = String(decoding: try JSONEncoder().encode(state.header), as: UTF8.self)
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        #expect(object["optimizer"] as? String == "SGD")
        let groups = try #require(object["param_groups"] as? [[String: Any]])
        #expect(groups.count == 2)
        #expect(groups[0]["params"] as? [Int] == [0, 1])
        #expect(groups[1]["params"] as? [Int] == [2])
        #expect(groups[1]["nesterov"] as? Bool == true)
        #expect(groups[1]["initial_lr"] as? Double == 0.01)
        #expect(groups[0]["lr"] as? Double == 0.1 && groups[0]["momentum"] as? Double == 0.9)
        #expect(state.groups[0].hyperparameters["lr"] == .number(0.1))
        #expect(state.groups[0].hyperparameters["weight_decay"] == .number(0))
        #expect(state.groups[1].hyperparameters["initial_lr"] == .number(0.01))

        let adam = Adam([a], lr: 0.1)
        a.grad = Tensor([Float(1), 1])
        adam.step()
        let t = adam.state().tensors()
        #expect(Set(t.keys) == ["state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq"])
        #expect(t["state.0.step"]?.dtype == .int64)
        #expect(t["state.0.step"]?.item(as: Int64.self) == 1)
    }

    /// PyTorch writes `step` as a float32 tensor: it loads too.
    @Test func stepTensorOfAnyDtypeLoads() throws {
        let p = Parameter(Tensor([Float(1), 2]))
        let adam = Adam([p])
        p.grad = Tensor([Float(1), 1])
        adam.step()
        var tensors = adam.state().tensors()
        tensors["state.0.step"] = Tensor(Float(7))
        let state = try OptimizerState(header: adam.state().header, tensors: tensors)
        try adam.load(state)
        #expect(adam.state().parameters[0]?.step == 7)
    }

    /// Buffers saved in float64 load into a float32 parameter's state as float32 (PyTorch casts).
    @Test func buffersAreConvertedToTheParameterDtype() throws {
        let p = Parameter(Tensor([Float(1), 2]))
        let sgd = SGD([p], lr: 0.1, momentum: 0.5)
        var state = sgd.state()
        state.parameters[0] = .init(buffers: ["momentum_buffer": Tensor([0.25, 0.5])])
        try sgd.load(state)
        #expect(sgd.state().parameters[0]?.buffers["momentum_buffer"]?.dtype == .float32)
        p.grad = Tensor([Float(1), 1])
        sgd.step()
        // b = 0.5 * b + g; p -= 0.1 * b
        expectClose(p.value, Tensor([Float(1 - 0.1 * 1.125), 2 - 0.1 * 1.25]), atol: 1e-7, rtol: 1e-6)
    }

    @Test func loadErrorsNameTheProblemAndChangeNothing() throws {
        let a = Parameter(Tensor([Float(1), 2])), b = Parameter(Tensor([Float(3)]))
        let adam = Adam([a, b], lr: 0.1)
        a.grad = Tensor([Float(1), 1])
        b.grad = Tensor([Float(1)])
        adam.step()
        let good = adam.state()
        let before = adam.state().tensors()

        func expectError(_ state: OptimizerState, _ expected: OptimizerStateError, _ text: String,
                         sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                try adam.load(state)
                Issue.record("loaded an invalid state", sourceLocation: sourceLocation)
            } catch {
                #expect(error == expected, sourceLocation: sourceLocation)
                #expect(error.description.contains(text), "\(error.description)", sourceLocation: sourceLocation)
            }
            // Nothing changed.
            let now = adam.state().tensors()
            #expect(Set(now.keys) == Set(before.keys), sourceLocation: sourceLocation)
            for (k, t) in before { expectBitwiseEqual(now[k]!, t, k, sourceLocation: sourceLocation) }
            #expect(adam.learningRates == [0.1], sourceLocation: sourceLocation)
        }

        var s = good
        s.optimizer = "SGD"
        expectError(s, .wrongOptimizer(expected: "Adam", found: "SGD"), "saved from SGD and cannot be loaded into Adam")

        s = good
        s.groups.append(s.groups[0])
        expectError(s, .groupCountMismatch(expected: 1, found: 2), "loaded state dict has a different number of parameter groups")

        s = good
        s.groups[0].parameterIndices = [0]
        expectError(s, .groupSizeMismatch(group: 0, expected: 2, found: 1),
                    "loaded state dict contains a parameter group that doesn't match the size of optimizer's group")

        s = good
        s.groups[0].hyperparameters["lr"] = .number(0.5)
        s.groups[0].hyperparameters["betas"] = nil
        expectError(s, .invalidHyperparameters(group: 0, detail: "missing key 'betas'"), "missing key 'betas'")

        s = good
        s.groups[0].hyperparameters["betas"] = .numbers([0.9, 1.5])
        expectError(s, .invalidHyperparameters(group: 0, detail: "Invalid beta parameter at index 1: 1.5"),
                    "Invalid beta parameter at index 1: 1.5")

        s = good
        s.groups[0].hyperparameters["betas"] = .numbers([0.9, 0.99, 0.999])
        expectError(s, .invalidHyperparameters(group: 0, detail: "key 'betas': betas must hold 2 numbers, got 3"),
                    "betas must hold 2 numbers, got 3")

        s = good
        s.groups[0].hyperparameters["amsgrad"] = .number(1)
        do {
            try adam.load(s)
            Issue.record("a number for a flag loaded")
        } catch {
            guard case .invalidHyperparameters(0, let detail) = error else { Issue.record("\(error)"); return }
            #expect(detail.contains("amsgrad"), "\(detail)")
        }

        s = good
        s.parameters[5] = s.parameters[0]
        expectError(s, .unknownParameter(index: 5), "state for parameter 5, which no parameter group lists")

        s = good
        s.parameters[1]!.buffers["exp_avg"] = Tensor([Float(1), 2, 3])
        expectError(s, .shapeMismatch(parameter: 1, buffer: "exp_avg", expected: [1], found: [3]),
                    "buffer 'exp_avg' has shape [3] but the parameter has shape [1]")

        s = good
        s.parameters[0]!.buffers["exp_avg_sq"] = nil
        expectError(s, .invalidBuffers(parameter: 0, detail: "missing buffer 'exp_avg_sq'"), "missing buffer 'exp_avg_sq'")

        s = good
        s.parameters[0]!.buffers["momentum_buffer"] = Tensor([Float(1), 2])
        expectError(s, .invalidBuffers(parameter: 0, detail: "unexpected buffer 'momentum_buffer' (this optimizer keeps [\"exp_avg\", \"exp_avg_sq\", \"max_exp_avg_sq\"])"),
                    "unexpected buffer 'momentum_buffer'")

        s = good
        s.parameters[0]!.step = nil
        expectError(s, .invalidStep(parameter: 0, detail: "missing step"), "missing step")
    }

    /// PyTorch before 2.6 saved no `decoupled_weight_decay`: such a group loads as plain Adam, and
    /// AdamW keeps its weight decay decoupled.
    @Test func adamStateWithoutDecoupledWeightDecayLoads() throws {
        let p = Parameter(Tensor([Float(1)]))
        var state = Adam([p], lr: 0.1, weightDecay: 0.1, decoupledWeightDecay: true).state()
        state.groups[0].hyperparameters["decoupled_weight_decay"] = nil
        let adam = Adam([p])
        try adam.load(state)
        #expect(!adam.parameterGroups[0].decoupledWeightDecay)
        #expect(adam.parameterGroups[0].learningRate == 0.1 && adam.parameterGroups[0].weightDecay == 0.1)
        state.optimizer = "AdamW"
        let adamW = AdamW([p], weightDecay: 0)
        try adamW.load(state)
        #expect(adamW.parameterGroups[0].decoupledWeightDecay)
        #expect(adamW.parameterGroups[0].weightDecay == 0.1)
    }

    @Test func malformedTensorsThrow() {
        let header = OptimizerState.Header(optimizer: "SGD", groups: [])
        #expect(throws: OptimizerStateError.malformedKey("state.x.exp_avg")) {
            try OptimizerState(header: header, tensors: ["state.x.exp_avg": Tensor([Float(1)])])
        }
        #expect(throws: OptimizerStateError.malformedKey("exp_avg")) {
            try OptimizerState(header: header, tensors: ["exp_avg": Tensor([Float(1)])])
        }
        #expect(throws: OptimizerStateError.invalidStep(parameter: 0, detail: "a step must be a whole non-negative number, got 1.5")) {
            try OptimizerState(header: header, tensors: ["state.0.step": Tensor(1.5)])
        }
        #expect(throws: OptimizerStateError.invalidStep(parameter: 2, detail: "a step tensor must hold one value, this one has shape [2]")) {
            try OptimizerState(header: header, tensors: ["state.2.step": Tensor([Float(1), 2])])
        }
    }

    /// Non-finite hyperparameters survive a plain JSONEncoder (written as strings).
    @Test func nonFiniteHyperparametersRoundTripThroughJSON() throws {
        let p = Parameter(Tensor([Float(1)]))
        let sgd = SGD([p], lr: .infinity)
        let data = try JSONEncoder().encode(sgd.state().header)
        #expect(String(decoding: data, as: UTF8.self).contains(#""lr":"inf""#))
        let header = try JSONDecoder().decode(OptimizerState.Header.self, from: data)
        try sgd.load(OptimizerState(header: header, tensors: [:]))
        #expect(sgd.learningRates == [.infinity])
    }
}
