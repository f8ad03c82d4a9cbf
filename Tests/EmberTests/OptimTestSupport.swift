import Ember
import Foundation
import Testing
import _EmberTestSupport

typealias Hyperparameters = [String: OptimizerState.Hyperparameter]

/// One optimizer trajectory of `optim.safetensors` (see `Tools/fixtures/gen_optim.py`).
struct OptimConfig: Decodable, CustomTestStringConvertible, Sendable {
    var name: String
    var optimizer: String
    var dtype: String
    var shapes: [[Int]]
    var steps: Int
    var groups: Int
    /// `(step, parameter)` pairs whose gradient is `nil` at that step.
    var skip: [[Int]]

    var testDescription: String { name }
    var dtypeValue: DType { dtype == "float64" ? .float64 : .float32 }

    static let all: [OptimConfig] = try! JSONDecoder().decode(
        [OptimConfig].self, from: Data(Fixture("optim").metadata["configs"]!.utf8))

    /// PyTorch's resolved `param_groups` (hyperparameters under PyTorch's keys, and `params`).
    func pytorchGroups(_ fx: Fixture) -> [Hyperparameters] {
        try! JSONDecoder().decode([Hyperparameters].self, from: Data(fx.metadata["param_groups/\(name)"]!.utf8))
    }

    /// Element ranges of each parameter in the flattened rows.
    var ranges: [Range<Int>] {
        var out: [Range<Int>] = []
        var start = 0
        for s in shapes {
            let n = s.reduce(1, *)
            out.append(start..<start + n)
            start += n
        }
        return out
    }

    /// Parameter `i` as stored in row `row` of `<name>/<key>`.
    func tensor(_ fx: Fixture, _ key: String, row: Int, parameter i: Int) -> Tensor {
        let t = fx["\(name)/\(key)"]
        let shape = Shape(shapes[i])
        let r = ranges[i]
        if t.dtype == .float64 {
            let all = t.scalars(as: Double.self)
            let width = t.shape[1]
            return Tensor(Array(all[row * width + r.lowerBound..<row * width + r.upperBound]), shape: shape)
        }
        let all = t.scalars(as: Float.self)
        let width = t.shape[1]
        return Tensor(Array(all[row * width + r.lowerBound..<row * width + r.upperBound]), shape: shape)
    }

    /// Fresh parameters holding the initial values.
    func makeParameters(_ fx: Fixture) -> [Parameter] {
        shapes.indices.map { Parameter(tensor(fx, "params", row: 0, parameter: $0)) }
    }

    /// Sets each parameter's gradient for `step` (nil where the fixture skips it).
    func setGradients(_ fx: Fixture, _ params: [Parameter], step: Int) {
        for (i, p) in params.enumerated() {
            p.grad = skip.contains([step, i]) ? nil : tensor(fx, "grads", row: step, parameter: i)
        }
    }

    /// Tolerances for comparing with PyTorch: float32 results may differ in the last bits
    /// (PyTorch fuses multiply-adds and takes MKL square roots).
    var tolerance: (atol: Double, rtol: Double) { dtypeValue == .float64 ? (1e-14, 1e-12) : (1e-6, 1e-6) }
}

/// Builds the optimizer a fixture configuration describes, through the public initializers:
/// group 0 with every hyperparameter passed explicitly, later groups with `addParameterGroup`.
func makeOptimizer(_ kind: String, _ params: [Parameter], groups: [Hyperparameters]) throws -> any Optimizer {
    // Each group holds the parameters its `params` indices name.
    func members(_ g: Hyperparameters) -> [Parameter] {
        guard case .numbers(let indices) = g["params"] else { return params }
        return indices.map { params[Int($0)] }
    }
    let first = members(groups[0])
    func addRest<O: Optimizer>(_ o: O) throws -> O {
        for g in groups.dropFirst() {
            let decoded = try options(O.Options.self, from: g)
            o.addParameterGroup(members(g)) { $0 = decoded }
        }
        return o
    }
    switch kind {
    case "SGD":
        let o = try options(SGD.Options.self, from: groups[0])
        return try addRest(SGD(first, lr: o.learningRate, momentum: o.momentum, dampening: o.dampening,
                               weightDecay: o.weightDecay, nesterov: o.nesterov, maximize: o.maximize))
    case "Adam":
        let o = try options(Adam.Options.self, from: groups[0])
        return try addRest(Adam(first, lr: o.learningRate, betas: o.betas, eps: o.eps, weightDecay: o.weightDecay,
                                amsgrad: o.amsgrad, maximize: o.maximize, decoupledWeightDecay: o.decoupledWeightDecay))
    case "AdamW":
        let o = try options(AdamW.Options.self, from: groups[0])
        #expect(o.decoupledWeightDecay, "PyTorch's AdamW groups say decoupled_weight_decay: true")
        return try addRest(AdamW(first, lr: o.learningRate, betas: o.betas, eps: o.eps, weightDecay: o.weightDecay,
                                 amsgrad: o.amsgrad, maximize: o.maximize))
    case "RMSprop":
        let o = try options(RMSprop.Options.self, from: groups[0])
        return try addRest(RMSprop(first, lr: o.learningRate, alpha: o.alpha, eps: o.eps, weightDecay: o.weightDecay,
                                   momentum: o.momentum, centered: o.centered, maximize: o.maximize))
    case "Adagrad":
        let o = try options(Adagrad.Options.self, from: groups[0])
        return try addRest(Adagrad(first, lr: o.learningRate, lrDecay: o.lrDecay, weightDecay: o.weightDecay,
                                   initialAccumulatorValue: o.initialAccumulatorValue, eps: o.eps, maximize: o.maximize))
    default:
        Issue.record("unknown optimizer \(kind)")
        throw CancellationError()
    }
}

/// A parameter's value copied into a new parameter (for resuming on "another machine").
func copies(_ params: [Parameter]) -> [Parameter] {
    params.map { Parameter(Tensor($0.value.doubles, shape: $0.shape).to($0.value.dtype)) }
}

/// `state` written as a checkpoint would be: header through JSON, tensors through safetensors
/// bytes, then read back.
func roundTrip(_ state: OptimizerState) throws -> OptimizerState {
    let header = try JSONEncoder().encode(state.header)
    let bytes = Safetensors.encode(state.tensors().sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    let tensors = try Safetensors.decode(bytes).tensors
    return try OptimizerState(header: JSONDecoder().decode(OptimizerState.Header.self, from: header), tensors: tensors)
}
