import ArgumentParser
import Ember
import Foundation

/// The `ember` command. Until training lands, its default action runs a short tensor-and-gradient
/// example that shows Ember's core: tensors, broadcasting, matrix products and backward.
@main
struct EmberCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ember",
        abstract: "Ember: PyTorch's torch.nn way of building networks, in Swift.",
        subcommands: [Train.self, Evaluate.self, Summary.self, Inspect.self, Demo.self, Example.self],
        defaultSubcommand: Train.self
    )
}

/// `ember example`: a tiny linear regression fitted by gradient descent, printed step by step.
struct Example: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fit y = 2x - 1 with a one-weight linear model, by hand-written gradient descent.")

    @Option(help: "Number of gradient-descent steps (1...10000).")
    var steps: Int = 100

    @Option(help: "Learning rate (positive).")
    var learningRate: Double = 0.1

    func validate() throws {
        guard (1...10_000).contains(steps) else { throw ValidationError("--steps must be between 1 and 10000, got \(steps)") }
        guard learningRate > 0, learningRate.isFinite else {
            throw ValidationError("--learning-rate must be a positive number, got \(learningRate)")
        }
    }

    func run() throws {
        let x = Tensor.linspace(-1, 1, steps: 8).reshaped([8, 1])
        let y = x * 2.0 - 1.0
        print("inputs x (8x1):\n\(x.t)")
        print("targets y = 2x - 1:\n\(y.t)")
        var w = Tensor.zeros([1, 1]).requiringGrad()
        var b = Tensor.zeros([1]).requiringGrad()
        for step in 1...steps {
            let prediction = x.matmul(w) + b
            let diff = prediction - y
            let loss = (diff * diff).mean()
            loss.backward()
            if step == 1 || step % max(1, steps / 5) == 0 || step == steps {
                print(String(format: "step %4d  loss %.6f  w %.4f  b %.4f  dL/dw %.4f",
                             step, loss.doubleValue, w.doubleValue, b.doubleValue, w.grad!.doubleValue))
            }
            withNoGrad {
                w = (w - w.grad! * learningRate).requiringGrad()
                b = (b - b.grad! * learningRate).requiringGrad()
            }
        }
        print(String(format: "fitted: y = %.4f x %+.4f (true: y = 2x - 1)", w.doubleValue, b.doubleValue))
    }
}
