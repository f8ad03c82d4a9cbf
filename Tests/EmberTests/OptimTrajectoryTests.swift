import Ember
import Foundation
import Testing
import _EmberTestSupport

/// Every optimizer and option against PyTorch: the same gradients replayed step by step, the
/// parameters compared after every step, then the final state buffers.
@Suite struct OptimTrajectoryTests {
    let fx = try! Fixture("optim")

    @Test(arguments: OptimConfig.all)
    func trajectoryMatchesPyTorch(_ cfg: OptimConfig) throws {
        let params = cfg.makeParameters(fx)
        let groups = cfg.pytorchGroups(fx)
        #expect(groups.count == cfg.groups)
        let optimizer = try makeOptimizer(cfg.optimizer, params, groups: groups)
        #expect(optimizer.name == cfg.optimizer)
        #expect(optimizer.learningRates.count == cfg.groups)
        let (atol, rtol) = cfg.tolerance
        for step in 0..<cfg.steps {
            cfg.setGradients(fx, params, step: step)
            optimizer.step()
            for (i, p) in params.enumerated() {
                #expect(p.value.dtype == cfg.dtypeValue)
                expectClose(p.value, cfg.tensor(fx, "params", row: step + 1, parameter: i), atol: atol, rtol: rtol,
                            "\(cfg.name) parameter \(i) after step \(step)")
            }
        }
    }

    @Test(arguments: OptimConfig.all)
    func finalStateMatchesPyTorch(_ cfg: OptimConfig) throws {
        let params = cfg.makeParameters(fx)
        let optimizer = try makeOptimizer(cfg.optimizer, params, groups: cfg.pytorchGroups(fx))
        for step in 0..<cfg.steps {
            cfg.setGradients(fx, params, step: step)
            optimizer.step()
        }
        let state = optimizer.state()
        let prefix = "\(cfg.name)/state/"
        let expected = fx.keys(withPrefix: prefix)
        // Same parameters with state, same buffer names and step counts as PyTorch's state_dict.
        var actualKeys: [String] = []
        for (index, s) in state.parameters {
            for name in s.buffers.keys { actualKeys.append("\(prefix)\(index)/\(name)") }
            if s.step != nil { actualKeys.append("\(prefix)\(index)/step") }
        }
        #expect(actualKeys.sorted() == expected, "\(cfg.name): state entries differ from PyTorch's")
        let (atol, rtol) = cfg.tolerance
        for key in expected {
            let parts = key.dropFirst(prefix.count).split(separator: "/")
            let index = Int(parts[0])!, name = String(parts[1])
            let s = try #require(state.parameters[index], "\(key)")
            if name == "step" {
                #expect(s.step == Int(fx[key].item(as: Int64.self)), "\(key)")
            } else {
                let actual = try #require(s.buffers[name], "\(key)")
                expectClose(actual, fx[key], atol: atol, rtol: rtol * 10, key)
            }
        }
    }

    /// Each optimizer's defaults, encoded under PyTorch's keys, equal PyTorch's `defaults`.
    @Test func defaultsMatchPyTorch() throws {
        let pytorch = try JSONDecoder().decode([String: Hyperparameters].self,
                                               from: Data(fx.metadata["defaults"]!.utf8))
        let p = [Parameter(Tensor.zeros([1]))]
        let ours: [String: Hyperparameters] = [
            "SGD": hyperparameters(of: SGD(p).defaults),
            "Adam": hyperparameters(of: Adam(p).defaults),
            "AdamW": hyperparameters(of: AdamW(p).defaults),
            "RMSprop": hyperparameters(of: RMSprop(p).defaults),
            "Adagrad": hyperparameters(of: Adagrad(p).defaults),
        ]
        #expect(Set(pytorch.keys) == Set(ours.keys))
        for (name, expected) in pytorch {
            #expect(ours[name] == expected, "\(name) defaults")
        }
    }

    /// The JSON kinds survive: 0 stays a number, false a flag, betas a list.
    @Test func hyperparameterKindsDecodeAsWritten() throws {
        let h = try JSONDecoder().decode(Hyperparameters.self,
                                         from: Data(#"{"a": 0, "b": false, "c": [0.9, 1], "d": 1e-08, "e": "inf"}"#.utf8))
        #expect(h["a"] == .number(0))
        #expect(h["b"] == .flag(false))
        #expect(h["c"] == .numbers([0.9, 1]))
        #expect(h["d"] == .number(1e-8))
        #expect(h["e"] == .number(.infinity))
    }

    /// Parameter groups keep their own learning rates: the fixture's second group (lr 0.01 vs
    /// 0.1) moves ten times less on its first SGD step.
    @Test func groupsUseTheirOwnLearningRate() throws {
        let cfg = try #require(OptimConfig.all.first { $0.name == "sgd_groups" })
        let params = cfg.makeParameters(fx)
        let optimizer = try makeOptimizer(cfg.optimizer, params, groups: cfg.pytorchGroups(fx))
        #expect(optimizer.learningRates == [0.1, 0.01])
        let sgd = try #require(optimizer as? SGD)
        #expect(sgd.parameterGroups[1].momentum == 0.5)
        #expect(sgd.parameterGroups[0].momentum == 0.9)
        cfg.setGradients(fx, params, step: 0)
        let before = params.map(\.value)
        optimizer.step()
        for (i, lr) in [0.1, 0.01].enumerated() {
            let expected = before[i] - params[i].grad! * lr
            expectClose(params[i].value, expected, atol: 1e-7, rtol: 1e-6, "group \(i)")
        }
    }

    /// A parameter without a gradient keeps its value and gets no state (Adam's step count, and
    /// so its bias correction, does not advance).
    @Test func nilGradientIsSkipped() throws {
        let a = Parameter(Tensor([Float(1), 2])), b = Parameter(Tensor([Float(3), 4]))
        let adam = Adam([a, b], lr: 0.1)
        a.grad = Tensor([Float(0.5), -0.5])
        adam.step()
        #expect(b.value.floats == [3, 4])
        #expect(adam.state().parameters[1] == nil)
        #expect(adam.state().parameters[0]?.step == 1)
        b.grad = Tensor([Float(0.5), -0.5])
        a.grad = nil
        adam.step()
        #expect(adam.state().parameters[0]?.step == 1)
        #expect(adam.state().parameters[1]?.step == 1)
        // b's first step equals a's first step (same gradient, fresh state): lr * sign(g).
        expectClose(b.value, Tensor([Float(2.9), 4.1]), atol: 1e-6, rtol: 1e-6)
        expectClose(a.value, Tensor([Float(0.9), 2.1]), atol: 1e-6, rtol: 1e-6)
    }

    /// A frozen parameter is skipped even by an optimizer that lists it.
    @Test func frozenParameterIsSkipped() {
        let a = Parameter(Tensor([Float(1), 2])), frozen = Parameter(Tensor([Float(3), 4]))
        let x = Tensor([Float(1), 1])
        let sgd = SGD([a, frozen], lr: 0.5, momentum: 0.9)
        ((a.value * x).sum() + (frozen.value * x).sum()).backward()
        frozen.requiresGrad = false
        sgd.step()
        #expect(a.value.floats == [0.5, 1.5])
        #expect(frozen.value.floats == [3, 4])
        #expect(sgd.state().parameters[1] == nil)
    }

    /// Updates are in place: the parameter keeps its storage (when not shared) and its gradient;
    /// a copy of the value taken before the step does not change (copy-on-write).
    @Test func updatesInPlaceWithoutAliasing() {
        let p = Parameter(Tensor([Float(1), 2, 3]))
        let sgd = SGD([p], lr: 0.1)
        p.grad = Tensor([Float(1), 1, 1])
        sgd.step()
        let address = p.value.storage.baseAddress
        sgd.step()
        #expect(p.value.storage.baseAddress == address, "the second step reallocated the value")
        #expect(p.grad?.floats == [1, 1, 1])
        let snapshot = p.value
        sgd.step()
        expectClose(snapshot, Tensor([Float(0.8), 1.8, 2.8]), atol: 1e-6, rtol: 1e-6)
        expectClose(p.value, Tensor([Float(0.7), 1.7, 2.7]), atol: 1e-6, rtol: 1e-6)
        #expect(p.requiresGrad)
    }

    /// Large parameters are updated in parallel chunks with the same result as one thread.
    @Test func parallelChunksMatchSingleThread() {
        let n = 200_003
        let values = (0..<n).map { Float(sin(Double($0))) }
        let grads = (0..<n).map { Float(cos(Double($0) * 0.7)) }
        func run(threads: Int) -> [Float] {
            Threading.withThreads(threads) {
                let p = Parameter(Tensor(values))
                let adam = Adam([p], lr: 0.01, amsgrad: true)
                for _ in 0..<3 {
                    p.grad = Tensor(grads)
                    adam.step()
                }
                return p.value.floats
            }
        }
        let one = run(threads: 1), many = run(threads: 4)
        #expect(one == many)
        #expect(one != values)
    }

    /// Eight-element lanes and single elements give bitwise the same updates: one parameter of 19
    /// elements (two wide lanes and a tail) against 19 one-element parameters.
    @Test(arguments: ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"], [DType.float32, .float64])
    func wideAndNarrowLanesAgreeBitwise(_ kind: String, _ dtype: DType) throws {
        let n = 19
        let values = (0..<n).map { sin(Double($0) + 1) }
        let whole = Parameter(Tensor(values).to(dtype))
        let singles = values.map { Parameter(Tensor([$0]).to(dtype)) }
        func make(_ params: [Parameter]) -> any Optimizer {
            switch kind {
            case "SGD": SGD(params, lr: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov: true, maximize: true)
            case "Adam": Adam(params, lr: 0.05, betas: (0.3, 0.9), weightDecay: 0.1, amsgrad: true)
            case "AdamW": AdamW(params, lr: 0.05, amsgrad: true, maximize: true)
            case "RMSprop": RMSprop(params, lr: 0.01, alpha: 0.3, weightDecay: 0.1, momentum: 0.5, centered: true)
            default: Adagrad(params, lr: 0.1, lrDecay: 0.1, weightDecay: 0.1, initialAccumulatorValue: 0.2)
            }
        }
        let a = make([whole]), b = make(singles)
        for step in 0..<4 {
            let grads = (0..<n).map { cos(Double($0 * (step + 2))) * Double(step + 1) }
            whole.grad = Tensor(grads).to(dtype)
            for (p, g) in zip(singles, grads) { p.grad = Tensor([g]).to(dtype) }
            a.step()
            b.step()
            let joined = Tensor(singles.flatMap { $0.value.doubles }).to(dtype)
            expectBitwiseEqual(whole.value, joined, "\(kind) \(dtype) step \(step)")
        }
        #expect(whole.value.doubles != Tensor(values).to(dtype).doubles, "the parameters moved")
    }

    @Test func zeroGradSetsNilOrZerosInPlace() {
        let a = Parameter(Tensor([Float(1), 2])), b = Parameter(Tensor([Float(3)]))
        let opt = RMSprop([a, b])
        a.grad = Tensor([Float(5), 6])
        opt.zeroGrad(setToNil: false)
        #expect(a.grad?.floats == [0, 0])
        #expect(b.grad == nil)
        opt.zeroGrad()
        #expect(a.grad == nil)
    }

    @Test func addParameterGroupStartsFromDefaults() {
        let a = Parameter(Tensor([Float(1)])), b = Parameter(Tensor([Float(2)]))
        let adam = AdamW([a], lr: 0.01, weightDecay: 0.2)
        adam.addParameterGroup([b]) { $0.learningRate = 0.5 }
        #expect(adam.parameterGroups.count == 2)
        #expect(adam.parameterGroups[1].learningRate == 0.5)
        #expect(adam.parameterGroups[1].weightDecay == 0.2)
        #expect(adam.parameterGroups[1].decoupledWeightDecay)
        #expect(adam.parameters.map { ObjectIdentifier($0) } == [ObjectIdentifier(a), ObjectIdentifier(b)])
        adam.setLearningRate(0.25, group: 0)
        #expect(adam.learningRates == [0.25, 0.5])
    }

    /// AdamW built from groups decays weights directly in every group, whatever the groups'
    /// options say, as AdamW built from parameters does.
    @Test func adamWFromGroupsDecouplesWeightDecay() {
        let a = Parameter(Tensor([Double(1), -2])), b = Parameter(Tensor([Double(1), -2]))
        let coupled = Adam.Options(learningRate: 0.1, weightDecay: 0.5)
        let fromGroups = AdamW(groups: [ParameterGroup([a], options: coupled)])
        #expect(fromGroups.parameterGroups[0].decoupledWeightDecay)
        #expect(fromGroups.defaults.decoupledWeightDecay)
        let fromParameters = AdamW([b], lr: 0.1, weightDecay: 0.5)
        for _ in 0..<3 {
            for p in [a, b] { p.grad = Tensor([Double(0.25), 0.5]) }
            fromGroups.step()
            fromParameters.step()
        }
        #expect(a.value.doubles == b.value.doubles)
    }
}

/// The whole loop with autograd: forward, backward, step, zeroGrad, against PyTorch (float64).
@Suite struct OptimEndToEndTests {
    struct Case: Decodable, CustomTestStringConvertible, Sendable {
        var name: String
        var optimizer: String
        var kwargs: Hyperparameters
        var testDescription: String { name }
        static let all: [Case] = try! JSONDecoder().decode(
            [Case].self, from: Data(Fixture("optim").metadata["e2e"]!.utf8))
    }

    let fx = try! Fixture("optim")

    @Test(arguments: Case.all)
    func leastSquaresFitMatchesPyTorch(_ c: Case) throws {
        let expected = fx["e2e/\(c.name)"]
        let x = fx["e2e/x"], y = fx["e2e/y"]
        let rows = expected.scalars(as: Double.self), width = expected.shape[1]
        let w = Parameter(Tensor(Array(rows[0..<3]), shape: [3])), b = Parameter(Tensor([0.0]))
        // PyTorch's defaults for this optimizer, overridden by the case's arguments.
        let defaults = try JSONDecoder().decode([String: Hyperparameters].self, from: Data(fx.metadata["defaults"]!.utf8))
        let group = try #require(defaults[c.optimizer]).merging(c.kwargs) { _, given in given }
        let optimizer = try makeOptimizer(c.optimizer, [w, b], groups: [group])
        #expect(optimizer.name == c.optimizer)
        for step in 1..<expected.shape[0] {
            optimizer.zeroGrad()
            let r = x.matmul(w.value) + b.value - y
            ((r * r).sum() * 0.125).backward()
            optimizer.step()
            let row = Array(rows[step * width..<(step + 1) * width])
            expectClose(w.value, Tensor(Array(row[0..<3]), shape: [3]), atol: 1e-13, rtol: 1e-11, "\(c.name) w after step \(step)")
            expectClose(b.value, Tensor([row[3]]), atol: 1e-13, rtol: 1e-11, "\(c.name) b after step \(step)")
        }
    }
}
