import Ember
import Foundation
import Testing
import _EmberTestSupport

/// Gradients of gradients (`Autograd.grad(createGraph: true)`) against PyTorch: Hessian-vector
/// products through each family of ops, second derivatives through linear layers and losses, and
/// a gradient-penalty training step (`Tools/fixtures/gen_autograd.py`).
@Suite struct HigherOrderGradientTests {
    nonisolated(unsafe) static let fixture = try! Fixture("autograd")

    /// The scalar functions of `gen_autograd.py`'s `FUNCS`, written with Ember's ops.
    nonisolated(unsafe) static let functions: [String: (Tensor) -> Tensor] = [
        "poly": { x in (x * x * x).sum() + (x * 2.5).pow(2).mean() },
        "exp_log": { x in (x.exp() + (x * x + 1).log()).sum() },
        "sqrt_rsqrt": { x in ((x * x + 0.5).sqrt() + (x * x + 0.7).rsqrt()).sum() },
        "tanh_sigmoid": { x in (x.tanh() * x.sigmoid()).sum() },
        "silu_softplus_elu": { x in (x.silu() + (x * 1.5).softplus(beta: 2) + (x * 3).elu()).sum() },
        "relu_abs_clamp": { x in (x.relu() * x + x.abs() * x + x.clamp(min: -0.5, max: 0.5) * x).sum() },
        "softmax": { x in
            (x.softmax(axis: 1) * Tensor([0, 1, 2, 3] as [Double], shape: [4])).sum() + x.logSoftmax(axis: 1).pow(2).sum()
        },
        "reductions": { x in
            x.variance(axis: 1).sum() + x.std(axis: 0).sum() + x.logsumexp(axis: 1).pow(2).sum()
                + x.amax(axes: [1]).pow(2).sum() + x.max(axis: 0).values.pow(3).sum()
        },
        "matmul": { x in (x • x.transposed(0, 1)).tanh().sum() + (x.transposed(0, 1) • x).pow(2).mean() },
        "shapes": { x in
            let t = x.transposed(0, 1)
            let a = x.reshaped([12]).sliced(axis: 0, start: 2, end: 9).pow(2).sum()
            let b = (t.unsqueezed(axis: 0).expanded(to: [2, 4, 3]) * t).pow(2).sum()
            let c = (x.select(axis: 0, index: 1) * x.select(axis: 1, index: 2).sum()).pow(2).sum()
            let d = Tensor.cat([x, x * x], axis: 1).pow(2).sum()
            let e = Tensor.stack([x, x.exp()]).sum(axis: 0).pow(2).sum()
            return a + b + c + d + e
        },
        "gelu": { x in ((x * 1.7).gelu() * x).sum() + ((x * 1.3).gelu(approximate: .tanh) * x).sum() },
        "pooling": { x in
            maxPool2d(x.reshaped([1, 1, 3, 4]), kernelSize: 2, stride: 1).pow(2).sum()
                + avgPool2d((x * x).reshaped([1, 1, 3, 4]), kernelSize: 2, stride: 1, padding: 1).pow(2).sum()
                + lpPool1d(x.abs().reshaped([1, 3, 4]) + 0.1, normType: 2, kernelSize: 2).pow(3).sum()
        },
        "pad_embedding": { x in
            pad(x.reshaped([1, 3, 4]), [1, 2], mode: .reflect).pow(3).sum()
                + (pad(x, [1, 1, 2, 0], value: 0.5) * x.sum()).tanh().pow(2).sum()  // the border's gradient depends on x
                + (embedding(Tensor([0, 2, 2, 1, 0] as [Int64], shape: [5]), weight: x, paddingIdx: 1) * x.sum()).tanh().pow(2).sum()
        },
        "pow_tensor": { x in (x.abs() + 0.2).pow(x * 0.5 + 1).sum() + (x * x + 0.5).pow(x).pow(2).sum() },
        "prod": { x in
            let mask = Tensor([1, 0, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1] as [Double], shape: [3, 4])
            return x.prod(axes: [1]).pow(2).sum() + (x * mask).prod(axes: [0]).sum()
                + x.reshaped([12]).sliced(axis: 0, start: 0, end: 5).prod()
        },
        "fold_unpool": { x in
            let image = x.reshaped([1, 1, 3, 4])
            let columns = unfold(image, kernelSize: 2)
            let (pooled, indices) = maxPool2dWithIndices(image, kernelSize: 2)
            return fold(columns * columns, outputSize: [3, 4], kernelSize: 2).pow(2).sum()
                + maxUnpool2d(pooled, indices: indices, kernelSize: 2, outputSize: [3, 4]).tanh().pow(2).sum()
        },
        "div_where": { x in
            (x / (x * x + 1)).sum() + Tensor.where(x.gt(0), x * x, x * 3).pow(2).sum() + x.maximum(x * 0.5).pow(2).sum()
        },
    ]

    static var functionNames: [String] {
        (try? JSONDecoder().decode([String].self, from: Data(fixture.metadata["hvp"]!.utf8))) ?? []
    }

    @Test func everyFixtureFunctionHasASwiftVersion() {
        #expect(Self.functionNames.count == 17, "the fixture's function list decodes")
        #expect(Set(Self.functionNames) == Set(Self.functions.keys))
    }

    @Test(arguments: functionNames)
    func hessianVectorProductMatchesPyTorch(_ name: String) throws {
        let f = try #require(Self.functions[name], "no Swift version of \(name)")
        let x = Self.fixture["hvp/x"].requiringGrad()
        let v = Self.fixture["hvp/v"]
        let gx = try #require(Autograd.grad(f(x), [x], createGraph: true)[0])
        #expect(gx.requiresGrad, "a gradient computed with createGraph records its own graph")
        expectClose(gx.detached(), Self.fixture["hvp/\(name)/grad"], atol: 1e-10, rtol: 1e-9, "\(name) gradient")
        let hv = try #require(Autograd.grad((gx * v).sum(), [x])[0])
        expectClose(hv, Self.fixture["hvp/\(name)/hv"], atol: 1e-9, rtol: 1e-8, "\(name) Hessian-vector product")
    }

    /// The normalizations of `gen_autograd.py`'s `NORMS`: each a scalar of the input and weight.
    nonisolated(unsafe) static let norms: [String: (Tensor, Tensor) -> Tensor] = [
        "batch_train": { x, w in
            var rm: Tensor? = nil, rv: Tensor? = nil
            return batchNorm(x, runningMean: &rm, runningVar: &rv, weight: w, bias: fixture["norms/b3"],
                             training: true, momentum: 0.1, eps: 1e-5).tanh().pow(2).sum()
        },
        "batch_eval": { x, w in
            var rm: Tensor? = fixture["norms/rm"], rv: Tensor? = fixture["norms/rv"]
            return batchNorm(x, runningMean: &rm, runningVar: &rv, weight: w, bias: fixture["norms/b3"],
                             training: false, momentum: 0.1, eps: 1e-5).tanh().pow(2).sum()
        },
        "layer": { x, w in layerNorm(x, normalizedShape: [5], weight: w, bias: fixture["norms/b5"]).tanh().pow(2).sum() },
        "group": { x, w in groupNorm(x, numGroups: 3, weight: w, bias: fixture["norms/b3"]).tanh().pow(2).sum() },
    ]

    /// Second derivatives through batch (training and eval), layer and group normalization, with
    /// respect to the input and the weight together.
    @Test(arguments: ["batch_train", "batch_eval", "layer", "group"])
    func secondDerivativeThroughNormalizationMatchesPyTorch(_ name: String) throws {
        let fx = Self.fixture
        let wKey = name == "layer" ? "5" : "3"
        let x = fx["norms/x"].requiringGrad(), w = fx["norms/w\(wKey)"].requiringGrad()
        let first = Autograd.grad(Self.norms[name]!(x, w), [x, w], createGraph: true)
        let gx = try #require(first[0]), gw = try #require(first[1])
        expectClose(gx.detached(), fx["norms/\(name)/gx"], atol: 1e-10, rtol: 1e-9, "\(name) dx")
        expectClose(gw.detached(), fx["norms/\(name)/gw"], atol: 1e-10, rtol: 1e-9, "\(name) dweight")
        let second = Autograd.grad((gx * fx["norms/vx"]).sum() + (gw * fx["norms/vw\(wKey)"]).sum(), [x, w])
        expectClose(try #require(second[0]), fx["norms/\(name)/hx"], atol: 1e-9, rtol: 1e-8, "\(name) Hessian-vector product, input")
        expectClose(try #require(second[1]), fx["norms/\(name)/hw"], atol: 1e-9, rtol: 1e-8, "\(name) Hessian-vector product, weight")
    }

    nonisolated(unsafe) static let losses: [String: (Tensor) -> Tensor] = [
        "mse": { out in mseLoss(out, target: fixture["mlp/y"]) },
        "l1_tanh": { out in l1Loss(out.tanh(), target: fixture["mlp/y"]).pow(2) },
        "cross_entropy": { out in crossEntropy(out, target: fixture["mlp/target"]).pow(2) },
        "nll_log_softmax": { out in nllLoss(out.logSoftmax(axis: 1), target: fixture["mlp/target"]).pow(2) },
        "smooth_l1": { out in smoothL1Loss(out, target: fixture["mlp/y"], beta: 0.7).pow(2) },
        "huber": { out in huberLoss(out, target: fixture["mlp/y"], delta: 0.6).pow(2) },
        "bce": { out in binaryCrossEntropy(out.sigmoid(), target: fixture["mlp/y"].sigmoid()).pow(2) },
        "bce_logits": { out in binaryCrossEntropyWithLogits(out, target: fixture["mlp/y"].sigmoid()).pow(2) },
        "bce_logits_pos_weight": { out in
            binaryCrossEntropyWithLogits(out, target: fixture["mlp/y"].sigmoid(), posWeight: Tensor([0.5, 2.0, 3.0] as [Double], shape: [3])).pow(2)
        },
        "kl": { out in klDiv(out.logSoftmax(axis: 1), target: fixture["mlp/y"].softmax(axis: 1), reduction: .sum).pow(2) },
        "kl_learned_target": { out in klDiv(out.logSoftmax(axis: 1), target: (out * 0.5).sigmoid(), reduction: .sum).pow(2) },
        "kl_learned_log_target": { out in
            klDiv(out.logSoftmax(axis: 1), target: out * 0.5 - 1, reduction: .sum, logTarget: true).pow(2)
        },
        "kl_log_target": { out in
            klDiv(out.logSoftmax(axis: 1), target: fixture["mlp/y"].logSoftmax(axis: 1), reduction: .sum, logTarget: true).pow(2)
        },
    ]

    /// d^2 loss / d w1^2 times a vector, and the mixed d^2 loss / dx dw1, through linear, tanh
    /// and each loss.
    @Test(arguments: ["mse", "l1_tanh", "cross_entropy", "nll_log_softmax", "smooth_l1", "huber", "bce", "bce_logits", "bce_logits_pos_weight", "kl", "kl_log_target", "kl_learned_target", "kl_learned_log_target"])
    func secondDerivativeThroughLinearLayersAndLossMatchesPyTorch(_ name: String) throws {
        let fx = Self.fixture
        let w1 = fx["mlp/w1"].requiringGrad(), x = fx["mlp/x"].requiringGrad()
        let out = linear(linear(x, weight: w1, bias: fx["mlp/b1"]).tanh(), weight: fx["mlp/w2"], bias: fx["mlp/b2"])
        let loss = Self.losses[name]!(out)
        let gw = try #require(Autograd.grad(loss, [w1], createGraph: true)[0])
        expectClose(gw.detached(), fx["mlp/\(name)/grad"], atol: 1e-10, rtol: 1e-9, "\(name) gradient")
        let second = Autograd.grad((gw * fx["mlp/v"]).sum(), [w1, x])
        expectClose(try #require(second[0]), fx["mlp/\(name)/hv"], atol: 1e-9, rtol: 1e-8, "\(name) Hessian-vector product")
        expectClose(try #require(second[1]), fx["mlp/\(name)/hx"], atol: 1e-9, rtol: 1e-8, "\(name) mixed derivative d2L/dx dw1")
    }

    /// Second derivatives through convolutions (strided, padded, grouped, dilated; 1-D and 2-D),
    /// with respect to the input and the weight together.
    @Test(arguments: ["conv2d", "conv2d_dil", "conv1d", "conv_transpose2d"])
    func secondDerivativeThroughConvolutionMatchesPyTorch(_ name: String) throws {
        let fx = Self.fixture
        let p = "conv/\(name)/"
        let x = fx[p + "x"].requiringGrad(), w = fx[p + "w"].requiringGrad(), b = fx[p + "b"]
        let y: Tensor
        switch name {
        case "conv2d": y = conv2d(x, weight: w, bias: b, stride: 2, padding: 1, groups: 2)
        case "conv2d_dil": y = conv2d(x, weight: w, bias: b, stride: 1, padding: 2, dilation: 2)
        case "conv_transpose2d": y = convTranspose2d(x, weight: w, bias: b, stride: 2, padding: 1, outputPadding: 1, groups: 2)
        default: y = conv1d(x, weight: w, bias: b, stride: 2, padding: 1)
        }
        let first = Autograd.grad(y.tanh().pow(2).sum(), [x, w], createGraph: true)
        let gx = try #require(first[0]), gw = try #require(first[1])
        expectClose(gx.detached(), fx[p + "gx"], atol: 1e-10, rtol: 1e-9, "\(name) dx")
        expectClose(gw.detached(), fx[p + "gw"], atol: 1e-10, rtol: 1e-9, "\(name) dweight")
        let second = Autograd.grad((gx * fx[p + "vx"]).sum() + (gw * fx[p + "vw"]).sum(), [x, w])
        expectClose(try #require(second[0]), fx[p + "hx"], atol: 1e-9, rtol: 1e-8, "\(name) Hessian-vector product, input")
        expectClose(try #require(second[1]), fx[p + "hw"], atol: 1e-9, rtol: 1e-8, "\(name) Hessian-vector product, weight")
    }

    /// Two SGD steps on `mse + 10 * mean((|dD/dx| - 1)^2)`: the penalty's gradient flows through
    /// the gradient of the discriminator with respect to its input.
    @Test func gradientPenaltyTrainingStepsMatchPyTorch() throws {
        let fx = Self.fixture
        var w1 = fx["gp/w1"].requiringGrad(), b1 = fx["gp/b1"].requiringGrad()
        var w2 = fx["gp/w2"].requiringGrad(), b2 = fx["gp/b2"].requiringGrad()
        let x = fx["gp/x"].requiringGrad(), y = fx["gp/y"]
        for step in 0..<2 {
            let out = linear(linear(x, weight: w1, bias: b1).tanh(), weight: w2, bias: b2)
            let gx = try #require(Autograd.grad(out.sum(), [x], createGraph: true)[0])
            let penalty = ((gx.pow(2).sum(axis: 1) + 1e-12).sqrt() - 1).pow(2).mean()
            let loss = mseLoss(out, target: y) + 10 * penalty
            loss.backward()
            expectClose(loss.detached(), fx["gp/step\(step)/loss"], atol: 1e-12, rtol: 1e-10, "loss at step \(step)")
            expectClose(try #require(w1.grad), fx["gp/step\(step)/dw1"], atol: 1e-10, rtol: 1e-9, "dw1 at step \(step)")
            func sgd(_ p: Tensor) -> Tensor { (p.detached() - p.grad! * 0.05).requiringGrad() }
            (w1, b1, w2, b2) = (sgd(w1), sgd(b1), sgd(w2), sgd(b2))
        }
        for (name, p) in [("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)] {
            expectClose(p.detached(), fx["gp/after/\(name)"], atol: 1e-10, rtol: 1e-9, name)
        }
    }

    /// `backward(createGraph: true)` leaves gradients that are themselves differentiable.
    @Test func backwardWithCreateGraphAccumulatesDifferentiableGradients() throws {
        let x = Tensor([1.5, -2.0], shape: [2]).to(.float64).requiringGrad()
        (x * x * x).sum().backward(createGraph: true)
        let g = try #require(x.grad)
        #expect(g.requiresGrad)
        let h = try #require(Autograd.grad(g.sum(), [x])[0])
        #expect(h.doubles == [9.0, -12.0])  // d/dx 3x^2 = 6x
    }

    @Test func gradReturnsWithoutTouchingLeafGradients() throws {
        let a = Tensor([2.0], shape: [1]).to(.float64).requiringGrad()
        let b = Tensor([3.0], shape: [1]).to(.float64).requiringGrad()
        let unused = Tensor([1.0], shape: [1]).to(.float64).requiringGrad()
        let grads = Autograd.grad((a * b).sum(), [b, unused], allowUnused: true)
        #expect(grads[0]?.doubles == [2.0])
        #expect(grads[1] == nil)
        #expect(a.grad == nil && b.grad == nil)
    }

    @Test func anUnusedInputStopsWithoutAllowUnused() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let a = Tensor([2.0], shape: [1]).requiringGrad()
            let unused = Tensor([1.0], shape: [1]).requiringGrad()
            _ = Autograd.grad((a * a).sum(), [unused])
        }
        #expect(standardErrorText(result).contains("One of the differentiated Tensors appears to not have been used in the graph"))
    }

    @Test func createGraphThroughAnOpWithoutDoubleBackwardStopsNamingIt() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let x = Tensor.ones([1, 1, 2, 2]).requiringGrad()
            _ = Autograd.grad(interpolate(x, scaleFactor: [2, 2], mode: .nearest).sum(), [x], createGraph: true)
        }
        let text = standardErrorText(result)
        #expect(text.contains("is not implemented") && text.contains("createGraph"), "\(text)")
    }
}
