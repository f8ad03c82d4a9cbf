import Ember
import Testing
import _EmberTestSupport

/// A fresh float32 parameter.
private func param(_ n: Int = 2) -> Parameter { Parameter(Tensor.zeros([n])) }

/// Programmer errors in EmberOptim, each with (part of) the message it must print: PyTorch's text
/// where PyTorch has one, prefixed by the optimizer or schedule.
let optimErrorCases: [String: (message: String, body: @Sendable () -> Void)] = [
    "sgd.nesterovWithoutMomentum": ("SGD: Nesterov momentum requires a momentum and zero dampening",
                                    { _ = SGD([param()], lr: 0.1, nesterov: true) }),
    "sgd.nesterovWithDampening": ("SGD: Nesterov momentum requires a momentum and zero dampening",
                                  { _ = SGD([param()], lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true) }),
    "sgd.negativeLR": ("SGD: Invalid learning rate: -0.1", { _ = SGD([param()], lr: -0.1) }),
    "sgd.negativeMomentum": ("SGD: Invalid momentum value: -0.5", { _ = SGD([param()], momentum: -0.5) }),
    "sgd.negativeWeightDecay": ("SGD: Invalid weight_decay value: -0.01", { _ = SGD([param()], weightDecay: -0.01) }),
    "sgd.emptyParameterList": ("SGD: optimizer got an empty parameter list", { _ = SGD([], lr: 0.1) }),
    "adam.negativeLR": ("Adam: Invalid learning rate: -0.001", { _ = Adam([param()], lr: -1e-3) }),
    "adam.negativeEps": ("Adam: Invalid epsilon value: -1e-08", { _ = Adam([param()], eps: -1e-8) }),
    "adam.beta0": ("Adam: Invalid beta parameter at index 0: 1.0", { _ = Adam([param()], betas: (1.0, 0.999)) }),
    "adam.beta1": ("Adam: Invalid beta parameter at index 1: -0.1", { _ = Adam([param()], betas: (0.9, -0.1)) }),
    "adam.weightDecay": ("Adam: Invalid weight_decay value: -0.1", { _ = Adam([param()], weightDecay: -0.1) }),
    "adamw.beta0": ("AdamW: Invalid beta parameter at index 0: 1.5", { _ = AdamW([param()], betas: (1.5, 0.999)) }),
    "rmsprop.alpha": ("RMSprop: Invalid alpha value: -0.9", { _ = RMSprop([param()], alpha: -0.9) }),
    "rmsprop.momentum": ("RMSprop: Invalid momentum value: -0.9", { _ = RMSprop([param()], momentum: -0.9) }),
    "rmsprop.eps": ("RMSprop: Invalid epsilon value: -1.0", { _ = RMSprop([param()], eps: -1) }),
    "adagrad.lrDecay": ("Adagrad: Invalid lr_decay value: -0.5", { _ = Adagrad([param()], lrDecay: -0.5) }),
    "adagrad.initialAccumulator": ("Adagrad: Invalid initial_accumulator_value value: -1.0",
                                   { _ = Adagrad([param()], initialAccumulatorValue: -1) }),
    "adagrad.eps": ("Adagrad: Invalid epsilon value: -1e-10", { _ = Adagrad([param()], eps: -1e-10) }),
    "group.invalidOptions": ("SGD: Nesterov momentum requires a momentum and zero dampening", {
        let sgd = SGD([param()], lr: 0.1)
        sgd.addParameterGroup([param()]) { $0.nesterov = true }
    }),
    "group.sharedParameter": ("Adam: some parameters appear in more than one parameter group", {
        let p = param()
        let adam = Adam([p])
        adam.addParameterGroup([param(), p])
    }),
    "group.duplicateInGroup": ("SGD: parameter group 0 contains a parameter (shape [2]) more than once", {
        let p = param()
        _ = SGD([p, p], lr: 0.1)
    }),
    "grad.shape": ("Parameter.grad: assigned gradient has shape [3] but the parameter has shape [2]", {
        let p = param()
        let adam = Adam([p])
        p.grad = Tensor.zeros([3])
        adam.step()
    }),
    "step.gradientDtype": ("RMSprop.step: a torch.float32 parameter of shape [2] has a torch.float64 gradient", {
        let p = param()
        let opt = RMSprop([p])
        p.grad = Tensor.zeros([2], dtype: .float64)
        opt.step()
    }),
    "setLearningRate.group": ("SGD.setLearningRate: group 1 out of range (the optimizer has 1 groups)", {
        SGD([param()], lr: 0.1).setLearningRate(0.1, group: 1)
    }),
    "linearLR.startFactor": ("LinearLR: Starting multiplicative factor expected to be greater than 0 and less or equal to 1.", {
        _ = LinearLR(SGD([param()], lr: 0.1), startFactor: 0)
    }),
    "linearLR.endFactor": ("LinearLR: Ending multiplicative factor expected to be between 0 and 1.", {
        _ = LinearLR(SGD([param()], lr: 0.1), endFactor: 1.5)
    }),
    "stepLR.stepSize": ("StepLR: stepSize must be positive, got 0", { _ = StepLR(SGD([param()], lr: 0.1), stepSize: 0) }),
    "cosine.tMax": ("CosineAnnealingLR: tMax must be positive, got 0", {
        _ = CosineAnnealingLR(SGD([param()], lr: 0.1), tMax: 0)
    }),
    "oneCycle.noMomentum": ("OneCycleLR: optimizer must support momentum or beta1 with `cycle_momentum` option enabled", {
        _ = OneCycleLR(Adagrad([param()]), maxLR: 0.1, totalSteps: 10)
    }),
    "oneCycle.totalSteps": ("OneCycleLR: Expected positive integer total_steps, but got 0", {
        _ = OneCycleLR(SGD([param()], lr: 0.1), maxLR: 0.1, totalSteps: 0)
    }),
    "oneCycle.pctStart": ("OneCycleLR: Expected float between 0 and 1 pct_start, but got 1.5", {
        _ = OneCycleLR(SGD([param()], lr: 0.1), maxLR: 0.1, totalSteps: 10, pctStart: 1.5)
    }),
    "oneCycle.maxLRs": ("OneCycleLR: max_lr must have the same length as optimizer.param_groups. max_lr has 2 values, param_groups has 1.", {
        _ = OneCycleLR(SGD([param()], lr: 0.1), maxLRs: [0.1, 0.2], totalSteps: 10)
    }),
    "oneCycle.divisionByZero": ("OneCycleLR: float division by zero", {
        _ = OneCycleLR(SGD([param()], lr: 0.1), maxLR: 0.1, totalSteps: 10, pctStart: 0.1)
    }),
    "plateau.factor": ("ReduceLROnPlateau: Factor should be < 1.0.", {
        _ = ReduceLROnPlateau(SGD([param()], lr: 0.1), factor: 1.0)
    }),
    "plateau.minLRs": ("ReduceLROnPlateau: expected 1 min_lrs, got 2", {
        _ = ReduceLROnPlateau(SGD([param()], lr: 0.1), minLRs: [0, 0])
    }),
    "plateau.groupAdded": ("ReduceLROnPlateau: The number of param groups in the `optimizer` (2) differs from when `ReduceLROnPlateau` was initialized (1)", {
        let sgd = SGD([param()], lr: 0.1)
        let s = ReduceLROnPlateau(sgd, patience: 0, minLRs: [0])
        sgd.addParameterGroup([param()])
        s.step(metric: 1)
        s.step(metric: 2)
    }),
    "clip.normType": ("clipGradNorm: normType must be positive or .infinity, got 0.0", {
        let p = param()
        p.grad = Tensor.ones([2])
        clipGradNorm([p], maxNorm: 1, normType: 0)
    }),
]

@Suite struct OptimErrorTests {
    /// Runs the case in a child process and checks it stops with its message. `precondition`
    /// prints messages only in debug builds, so optimized builds check the exit status alone.
    @Test(arguments: optimErrorCases.keys.sorted())
    func stopsWithMessage(_ key: String) async throws {
        let expected = try #require(optimErrorCases[key]).message
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) { [key] in
            optimErrorCases[key]!.body()
        }
        #if DEBUG
            let text = standardErrorText(result)
            #expect(text.contains(expected), "expected \"\(expected)\" in: \(text.prefix(600))")
        #endif
    }

    /// The same values that stop construction pass at the boundary (PyTorch's inclusive bounds).
    @Test func boundaryValuesAreValid() {
        _ = Adam([param()], lr: 0, betas: (0, 0), eps: 0, weightDecay: 0)
        _ = SGD([param()], lr: 0, momentum: 0.1, nesterov: true)
        _ = RMSprop([param()], lr: 0, alpha: 0, eps: 0, weightDecay: 0, momentum: 0)
        _ = Adagrad([param()], lr: 0, lrDecay: 0, weightDecay: 0, initialAccumulatorValue: 0, eps: 0)
        _ = LinearLR(SGD([param()], lr: 0.1), startFactor: 1, endFactor: 0)
        _ = OneCycleLR(SGD([param()], lr: 0.1), maxLR: 0.1, totalSteps: 10, pctStart: 0)
    }
}
