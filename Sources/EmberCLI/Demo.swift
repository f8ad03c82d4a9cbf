import ArgumentParser
import Ember
import Foundation
import SeedNetwork
import Synchronization

/// `ember demo`: shows, with real numbers, why `model.eval()` matters and what Ember adds.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Walk through the classic model.eval() example with real numbers.")

    @Option(help: "Seed for weights, inputs and dropout masks.")
    var seed: UInt64 = 0

    func run() throws {
        withGenerator(Generator(seed: seed)) {
            // Sections 1-7 run training mode under no-grad on purpose; section 8 shows the reports.
            withDiagnostics(.off) { runDemo() }
            runMistakesDemo()
            withDiagnostics(.off) { runConvolutionDemo() }
        }
    }
}

/// A network held by a plain class field, as an RL agent or a trainer often holds one.
final class Agent: Module {
    let network = SeedNetwork()
}

/// Networks kept in an array and a dictionary: PyTorch would not see these without
/// `ModuleList`/`ModuleDict`.
final class Ensemble: Module {
    let members = [SeedNetwork(), SeedNetwork()]
    let byName: [String: SeedNetwork] = ["small": SeedNetwork(hidden: 8), "wide": SeedNetwork(hidden: 32)]
}

private func row(_ t: Tensor, _ i: Int) -> String {
    let v = t.doubles
    let cols = t.shape[1]
    return "[" + (0..<cols).map { String(format: "%8.4f", v[i * cols + $0]) }.joined(separator: ", ") + "]"
}

private func maxDifference(_ a: Tensor, _ b: Tensor) -> Double {
    zip(a.doubles, b.doubles).map { abs($0 - $1) }.max() ?? 0
}

private func bitwiseEqual(_ a: Tensor, _ b: Tensor) -> Bool {
    a.shape == b.shape && zip(a.doubles, b.doubles).allSatisfy { $0.bitPattern == $1.bitPattern }
}

private func firstValues(_ t: Tensor, _ n: Int = 4) -> String {
    t.doubles.prefix(n).map { String(format: "%.4f", $0) }.joined(separator: ", ")
}

private func say(_ text: String = "") { print(text) }

func runDemo() {
    let model = SeedNetwork()
    let x = Tensor.normal([32, 10])
    say("Why model.eval() matters: a walk through the classic example")
    say("==============================================================")
    say("The network (each line shows the module's mode):")
    say(model.description)
    say()

    // 1. Same input, two modes.
    model.train()
    let trainOut = withNoGrad { model(x) }
    model.eval()
    let evalOut = withNoGrad { model(x) }
    say("1. One batch of 32 samples, run once in each mode.")
    say("   training mode output shape \(trainOut.shape), evaluation mode output shape \(evalOut.shape): the same shape,")
    say("   but different values. Sample 0:")
    say("     training:   \(row(trainOut, 0))")
    say("     evaluation: \(row(evalOut, 0))")
    say(String(format: "   The largest difference over the batch is %.4f. Dropout zeroed half the hidden units and", maxDifference(trainOut, evalOut)))
    say("   BatchNorm used this batch's statistics in training mode; in evaluation mode neither happens.")
    say()

    // 2. Repeatability.
    let evalRuns = (0..<5).map { _ in withNoGrad { model(x) } }
    let evalSame = evalRuns.allSatisfy { bitwiseEqual($0, evalRuns[0]) }
    model.train()
    let trainRuns = (0..<5).map { _ in withNoGrad { model(x) } }
    var trainPairsDiffer = 0
    for i in 0..<5 { for j in (i + 1)..<5 where !bitwiseEqual(trainRuns[i], trainRuns[j]) { trainPairsDiffer += 1 } }
    say("2. The same input five more times in each mode.")
    say("   evaluation: the 5 outputs are bitwise identical: \(evalSame ? "yes" : "NO")")
    say("   training:   \(trainPairsDiffer) of 10 pairs of outputs differ (a new dropout mask each call)")
    say("   Sample 0 over the five training passes:")
    for (i, out) in trainRuns.enumerated() { say("     pass \(i + 1): \(row(out, 0))") }
    say()

    // 3. Running statistics.
    let fresh = SeedNetwork()
    let bn = fresh.bn1
    say("3. BatchNorm's running statistics (first 4 channels of bn1.running_mean), on a fresh network:")
    say("     start:                  \(firstValues(bn.runningMean!.value))")
    for i in 1...3 {
        _ = withNoGrad { fresh(x) }
        say("     after training pass \(i):  \(firstValues(bn.runningMean!.value))")
    }
    let before = bn.runningMean!.value
    fresh.evaluating { for _ in 0..<5 { _ = withNoGrad { fresh(x) } } }
    say("     after 5 evaluation passes: \(firstValues(bn.runningMean!.value)) (unchanged: \(bitwiseEqual(before, bn.runningMean!.value) ? "yes" : "NO"))")
    say("   num_batches_tracked = \(bn.numBatchesTracked!.value.item(as: Int64.self)): only training passes update the statistics,")
    say("   even under withNoGrad (gradient recording and the mode are separate things).")
    say()

    // 4. Batch independence.
    model.eval()
    let alone = withNoGrad { model(x.narrow(axis: 0, start: 0, length: 1)) }
    let inBatch = withNoGrad { model(x) }.narrow(axis: 0, start: 0, length: 1)
    say("4. In evaluation mode a sample's output does not depend on the rest of its batch:")
    say("   sample 0 alone vs inside the batch of 32: bitwise identical: \(bitwiseEqual(alone, inBatch) ? "yes" : "NO")")
    say("   (in training mode BatchNorm would refuse a batch of one: one value per channel has no variance).")
    say()

    // 5. Wrappers.
    let agent = Agent()
    agent.eval()
    let ensemble = Ensemble()
    ensemble.eval()
    let agentModules = agent.modules(), ensembleModules = ensemble.modules()
    say("5. One eval() reaches every module, however it is stored:")
    say("   an Agent holding its network in a field: \(agentModules.filter { !$0.isTraining }.count) of \(agentModules.count) modules now in eval mode")
    say("   an Ensemble with networks in an array and a dictionary: \(ensembleModules.filter { !$0.isTraining }.count) of \(ensembleModules.count) modules in eval mode")
    say("   (PyTorch silently skips modules in plain lists and dicts; MLX Swift reaches arrays, String-keyed dictionaries,")
    say("   optionals and tuples of up to five; Flax NNX refuses plain lists. Ember also reaches structs, enums, sets,")
    say("   dictionaries with any key type and tuples of any length, and warns when a non-module object holds a module.)")
    say("   Their state-dict keys follow PyTorch's naming: \(ensemble.stateDict().keys.filter { $0.hasSuffix("running_mean") }.joined(separator: ", "))")
    say()

    // 6. Pins.
    let tuned = SeedNetwork()
    tuned.bn1.pin(.evaluation)
    tuned.train()
    let pinnedBefore = tuned.bn1.runningMean!.value
    _ = withNoGrad { tuned(x) }
    say("6. A pinned BatchNorm stays frozen: bn1.pin(.evaluation), then model.train() and a training pass.")
    say("   bn1 mode: \(tuned.bn1.mode), pinned: \(tuned.bn1.pinnedMode.map { "\($0)" } ?? "no"); fc1 mode: \(tuned.fc1.mode)")
    say("   bn1 running statistics unchanged by the training pass: \(bitwiseEqual(pinnedBefore, tuned.bn1.runningMean!.value) ? "yes" : "NO")")
    say("   (In PyTorch the next model.train() silently unfreezes it.)")
    say()

    // 7. Scoped switch.
    let mixed = SeedNetwork()
    mixed.dropout.eval()
    let modesBefore = mixed.listing().map { "\($0.path.isEmpty ? "(root)" : $0.path)=\($0.mode)" }
    let inside = mixed.evaluating { mixed.listing().filter { $0.mode == .evaluation }.count }
    let modesAfter = mixed.listing().map { "\($0.path.isEmpty ? "(root)" : $0.path)=\($0.mode)" }
    say("7. model.evaluating { ... } switches to eval for its body and then restores each module's own mode.")
    say("   before: \(modesBefore.joined(separator: " "))")
    say("   inside: \(inside) of \(modesBefore.count) modules in eval")
    say("   after:  \(modesAfter.joined(separator: " "))  (restored exactly: \(modesBefore == modesAfter ? "yes" : "NO"))")
    say()
    say("Summary of the network with modes, pins and parameter counts:")
    say(tuned.summary())
}

/// Section 8: the classic mistakes, each made once, and the line Ember prints for it.
func runMistakesDemo() {
    let captured = CapturedDiagnostics()
    let x = Tensor.normal([32, 10]), y = Tensor.randint(low: 0, high: 2, shape: [32])
    say()
    say("8. Ember notices the classic mistakes and says where (each once per model; silence with")
    say("   module.reportsModeMistakes = false, withDiagnostics(.off) { } or EMBER_DIAGNOSTICS=off).")
    withDiagnosticsHandler({ captured.add($0) }) {
        let model = SeedNetwork()
        let optimizer = SGD(model.parameters(), lr: 0.1)
        for _ in 0..<2 {
            optimizer.zeroGrad()
            crossEntropy(model(x), target: y).backward()
            optimizer.step()
        }
        say("   a) Validation with eval() forgotten: withNoGrad { model(x) } in training mode:")
        _ = withNoGrad { model(x) }
        captured.show()
        say("   b) Training with train() forgotten after validation: model.eval(), then a training step:")
        model.eval()
        optimizer.zeroGrad()
        crossEntropy(model(x), target: y).backward()
        optimizer.step()
        captured.show()
        say("   c) Weights loaded without BatchNorm's buffers (strict: false), then evaluated:")
        let weightsOnly = StateDict(model.stateDict().filter { !$0.key.contains("running") && !$0.key.contains("num_batches") })
        let restored = SeedNetwork()
        _ = try? restored.loadStateDict(weightsOnly, strict: false)
        captured.show()
        say("      and the eval-mode forward that follows:")
        restored.eval()
        _ = withNoGrad { restored(x) }
        captured.show()
        say("   The correct paths (model.evaluating { }, evaluate(...), Trainer, withNoGrad on an eval-mode model,")
        say("   a module pinned to training on purpose) print nothing.")
    }
}

/// The reports of section 8, printed as they arrive.
private final class CapturedDiagnostics: Sendable {
    private let pending = Mutex<[Diagnostic]>([])
    func add(_ d: Diagnostic) { pending.withLock { $0.append(d) } }
    func show() {
        let list = pending.withLock { list in defer { list = [] }; return list }
        for d in list { say("      [\(d.kind)] \(d.message)") }
        if list.isEmpty { say("      (nothing reported)") }
    }
}
