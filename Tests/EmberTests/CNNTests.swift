import Ember
import Foundation
import SeedNetwork
import Testing
import _EmberTestSupport

/// The digits CNN of `ember train --model cnn`: its modes and its command line.
@Suite(.serialized) struct CNNTests {
    private func expectOneLineFailure(_ run: CLIRun, mentioning text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(run.status == 1 && !run.crashed && run.errorLines.count == 1, "stderr: \(run.stderr)", sourceLocation: sourceLocation)
        #expect(run.stderr.hasPrefix("ember: error: ") && run.stderr.contains(text), "stderr: \(run.stderr)", sourceLocation: sourceLocation)
    }

    @Test func evaluationIsRepeatableAndBatchIndependent() {
        let model = DigitCNN()
        let x = Tensor.normal([6, 64], generator: Generator(seed: 4))
        _ = model(x)  // one training step's statistics
        model.eval()
        let batch = withNoGrad { model(x) }
        expectBitwiseEqual(withNoGrad { model(x) }, batch, "repeated eval")
        for i in [0, 5] {
            let alone = withNoGrad { model(x[i..<(i + 1)]) }
            expectClose(alone, batch[i..<(i + 1)], atol: 1e-6, rtol: 1e-5, "sample \(i) alone vs in its batch")
        }
        model.train()
        #expect(!bitwiseEqual(model(x), batch), "training mode uses the batch's statistics and drops channels")
    }

    @Test func stateDictKeysAreThoseOfThePyTorchModule() {
        let keys = Set(DigitCNN().stateDict().keys)
        #expect(keys == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
                         "conv2.weight", "bn2.weight", "bn2.bias", "bn2.running_mean", "bn2.running_var", "bn2.num_batches_tracked",
                         "head.weight", "head.bias"])
    }

    @Test func trainsAndEvaluatesFromTheCommandLine() throws {
        let dir = try makeScratchFolder("cnn")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try runEmber(["train", "--model", "cnn", "--epochs", "1", "--output", "out"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("DigitCNN") && run.stdout.contains("eval forgotten"))
        let evaluated = try runEmber(["evaluate", "--checkpoint", "out/checkpoint.safetensors"], in: dir)
        #expect(evaluated.status == 0, "\(evaluated.stderr)")
    }

    @Test func refusesFeaturesThatAreNotASquareImage() throws {
        let dir = try makeScratchFolder("cnn")
        defer { try? FileManager.default.removeItem(at: dir) }
        let csv = "a,b,c,label\n" + (0..<20).map { "\($0),1,2,\($0 % 2)" }.joined(separator: "\n") + "\n"
        try csv.write(to: dir.appendingPathComponent("d.csv"), atomically: true, encoding: .utf8)
        expectOneLineFailure(try runEmber(["train", "--model", "cnn", "--data", "d.csv", "--label-column", "label"], in: dir),
                             mentioning: "square")
    }

    /// `ember demo`'s convolution section states its checks as yes/NO from the numbers it shows.
    @Test func demoShowsTheConvolutionalLayersModes() throws {
        let dir = try makeScratchFolder("demo")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try runEmber(["demo"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("9. Convolutional networks"))
        #expect(run.stdout.contains("sample 0 alone equals sample 0 in the batch of 8 bitwise: yes; repeated eval bitwise equal: yes"))
        #expect(run.stdout.contains("Dropout2d: whole channels") && !run.stdout.contains(": NO"))
    }

    /// Dropout3d zeroes whole channels `x[n, c, :, :, :]` in training (scaling the others by
    /// `1 / (1 - p)`) and nothing in eval.
    @Test func dropout3dZeroesWholeChannels() {
        let drop = Dropout3d(0.5, generator: Generator(seed: 11))
        let x = Tensor.ones([4, 6, 3, 2, 2])
        let y = withNoGrad { drop(x) }.doubles
        var zeroed = 0
        for channel in 0..<24 {
            let block = Array(y[(channel * 12)..<((channel + 1) * 12)])
            #expect(block.allSatisfy { $0 == 0 } || block.allSatisfy { $0 == 2 }, "channel \(channel): \(block)")
            if block[0] == 0 { zeroed += 1 }
        }
        #expect(zeroed > 0 && zeroed < 24)
        drop.eval()
        #expect(withNoGrad { drop(x) }.doubles.allSatisfy { $0 == 1 })
    }
}
