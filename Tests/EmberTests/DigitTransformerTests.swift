import Ember
import Foundation
import SeedNetwork
import Testing
import _EmberTestSupport

/// The digits Transformer of `ember train --model transformer`: its modes, keys and command line.
@Suite(.serialized) struct DigitTransformerTests {
    @Test func evaluationIsRepeatableAndBatchIndependent() {
        let model = DigitTransformer()
        let x = Tensor.normal([6, 64], generator: Generator(seed: 4))
        model.eval()
        let batch = withNoGrad { model(x) }
        expectBitwiseEqual(withNoGrad { model(x) }, batch, "repeated eval")
        for i in [0, 5] {
            let alone = withNoGrad { model(x[i..<(i + 1)]) }
            expectClose(alone, batch[i..<(i + 1)], atol: 1e-5, rtol: 1e-5, "sample \(i) alone vs in its batch")
        }
        model.train()
        #expect(!bitwiseEqual(model(x), batch), "training mode drops inside the encoder layers")
    }

    /// The keys and parameter count of the equivalent PyTorch module (printed by PyTorch 2.13 for
    /// `nn.TransformerEncoder(nn.TransformerEncoderLayer(64, 4, 128, batch_first=True, norm_first=True), 2)`
    /// with `embed`, `position`, `norm` and `head` beside it).
    @Test func stateDictKeysAreThoseOfThePyTorchModule() {
        let model = DigitTransformer()
        var expected = ["position", "embed.weight", "embed.bias"]
        for l in 0..<2 {
            for name in ["self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight", "self_attn.out_proj.bias",
                         "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
                         "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"] {
                expected.append("encoder.layers.\(l).\(name)")
            }
        }
        expected += ["norm.weight", "norm.bias", "head.weight", "head.bias"]
        #expect(Set(model.stateDict().keys) == Set(expected))
        #expect(model.parameterCount == 68_810)
    }

    @Test func trainsAndEvaluatesFromTheCommandLine() throws {
        let dir = try makeScratchFolder("transformer")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try runEmber(["train", "--model", "transformer", "--epochs", "1", "--output", "out"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("DigitTransformer (68810 parameters)") && run.stdout.contains("eval forgotten"), "\(run.stdout)")
        let evaluated = try runEmber(["evaluate", "--checkpoint", "out/checkpoint.safetensors"], in: dir)
        #expect(evaluated.status == 0, "\(evaluated.stderr)")
    }

    @Test func refusesSizesItCannotSplit() throws {
        let dir = try makeScratchFolder("transformer")
        defer { try? FileManager.default.removeItem(at: dir) }
        let heads = try runEmber(["train", "--model", "transformer", "--hidden", "20"], in: dir)
        #expect(heads.status == 1 && heads.errorLines.count == 1 && heads.stderr.contains("multiple of 8"), "\(heads.stderr)")
        let csv = "a,b,c,label\n" + (0..<20).map { "\($0),1,2,\($0 % 2)" }.joined(separator: "\n") + "\n"
        try csv.write(to: dir.appendingPathComponent("d.csv"), atomically: true, encoding: .utf8)
        let tokens = try runEmber(["train", "--model", "transformer", "--data", "d.csv", "--label-column", "label"], in: dir)
        #expect(tokens.status == 1 && tokens.errorLines.count == 1 && tokens.stderr.contains("8 tokens"), "\(tokens.stderr)")
    }
}
