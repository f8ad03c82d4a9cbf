import ArgumentParser
import Ember
import Foundation

/// Trains a character-level language model on the first book of the King James Bible (shipped
/// with the example) and samples text from it in eval mode.
@main
struct CharLM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ember-charlm",
        abstract: "Train a small decoder-only Transformer on characters, then sample text from it in eval mode.",
        discussion: """
        The text is Genesis from the King James Version (1611; public domain, see Examples/CharLM/README.md), \
        or --text FILE (UTF-8; its characters form the vocabulary). Training stops after --steps steps or \
        --time-limit seconds, whichever comes first; sampling then runs in eval mode (no dropout) with \
        the given seed, temperature and top-k, so the same options give the same text.
        """)

    @Option(help: "Text to train on (default: the shipped Genesis).") var text: String?
    @Option(help: "Training steps (default 2000).") var steps: Int = 2000
    @Option(help: "Stop training after this many seconds (default 110).") var timeLimit: Double = 110
    @Option(help: "Sequences per step.") var batchSize: Int = 32
    @Option(help: "Characters of context.") var context: Int = 64
    @Option(help: "Token width (a multiple of --heads).") var width: Int = 64
    @Option(help: "Attention heads.") var heads: Int = 4
    @Option(help: "Transformer layers.") var layers: Int = 2
    @Option(help: "Dropout inside the layers during training.") var dropout: Double = 0.1
    @Option(help: "AdamW learning rate.") var learningRate: Double = 3e-3
    @Option(help: "Seed for the initial weights, the batches and the dropout.") var seed: UInt64 = 0
    @Option(help: "Seed for sampling.") var sampleSeed: UInt64 = 0
    @Option(help: "Sampling temperature (> 0; lower is more conservative).") var temperature: Double = 0.8
    @Option(help: "Sample only among the k most likely characters (0: all).") var topK: Int = 10
    @Option(help: "Characters to generate.") var length: Int = 400
    @Option(help: "Text the sample starts from (characters of the training text).") var prompt: String = "And God said"
    @Option(help: "Kernel threads.") var threads: Int = 1

    /// Every option checked (a message naming the option; `run` prints it as one line).
    func checkOptions() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
        guard timeLimit > 0 else { throw ValidationError("--time-limit must be positive, got \(timeLimit)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard (2...4096).contains(context) else { throw ValidationError("--context must be between 2 and 4096, got \(context)") }
        guard heads >= 1, width >= heads, width % heads == 0, width <= 4096 else {
            throw ValidationError("--width must be a multiple of --heads (at most 4096), got width \(width) and \(heads) heads")
        }
        guard (1...64).contains(layers) else { throw ValidationError("--layers must be between 1 and 64, got \(layers)") }
        guard dropout >= 0, dropout < 1 else { throw ValidationError("--dropout must be in [0, 1), got \(dropout)") }
        guard learningRate > 0, learningRate.isFinite else { throw ValidationError("--learning-rate must be positive, got \(learningRate)") }
        guard temperature > 0, temperature.isFinite else { throw ValidationError("--temperature must be positive, got \(temperature)") }
        guard topK >= 0 else { throw ValidationError("--top-k must be 0 (all) or positive, got \(topK)") }
        guard (0...1_000_000).contains(length) else { throw ValidationError("--length must be between 0 and 1000000, got \(length)") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be between 1 and 256, got \(threads)") }
        guard !prompt.isEmpty else { throw ValidationError("--prompt must not be empty") }
        guard (1...65_536).contains(batchSize) else { throw ValidationError("--batch-size must be between 1 and 65536, got \(batchSize)") }
        // Training memory, roughly: parameters with gradients and AdamW's two moments, and per
        // layer the activations kept for backward plus each head's context x context weights.
        let (b, t, w, h, n) = (Double(batchSize), Double(context), Double(width), Double(heads), Double(layers))
        let bytes = 4 * (4 * 12 * n * w * w + n * (20 * b * t * w + 3 * b * h * t * t))
        let available = Double(ProcessInfo.processInfo.physicalMemory)
        guard bytes <= available / 2 else {
            throw ValidationError(String(format: "this model and batch need about %.1f GB to train; this machine has %.1f GB (lower --batch-size, --context, --width or --layers)", bytes / 1e9, available / 1e9))
        }
    }

    func run() throws {
        do {
            try train()
        } catch let error as ValidationError {
            FileHandle.standardError.write(Data("ember-charlm: error: \(error.message)\n".utf8))
            throw ExitCode(1)
        }
    }

    private func train() throws {
        try checkOptions()
        let corpus = try loadText()
        let vocabulary = Vocabulary(corpus)
        guard let promptCodes = vocabulary.encode(prompt) else {
            throw ValidationError("--prompt uses characters that are not in the text")
        }
        let data = vocabulary.encode(corpus)!
        guard data.count > context + 1 else {
            throw ValidationError("the text has \(data.count) characters; it needs more than --context + 1 = \(context + 1)")
        }
        try Threading.withThreads(threads) {
            try withGenerator(Generator(seed: seed)) {
                let model = CharTransformer(vocabulary: vocabulary.count, context: context, width: width, heads: heads,
                                            layers: layers, dropout: dropout)
                print("text: \(corpus.count) characters, \(vocabulary.count) distinct; model: \(model.parameterCount) parameters, \(threads) thread(s)")
                print(String(format: "a uniform guess would score %.3f nats per character", Foundation.log(Double(vocabulary.count))))
                train(model, data)
                model.eval()
                print("\n--- sample (eval mode, seed \(sampleSeed), temperature \(temperature), top-k \(topK)) ---")
                print(sample(model, from: promptCodes, vocabulary: vocabulary))
            }
        }
    }

    private func loadText() throws -> String {
        if let text {
            guard let contents = try? String(contentsOfFile: text, encoding: .utf8) else {
                throw ValidationError("cannot read '\(text)' as UTF-8 text")
            }
            return contents
        }
        guard let url = Bundle.module.url(forResource: "genesis", withExtension: "txt"),
              let contents = try? String(contentsOf: url, encoding: .utf8) else {
            throw ValidationError("the shipped text is missing from the build (Examples/CharLM/genesis.txt)")
        }
        return contents
    }

    /// Random windows of the text: inputs `[B, T]` and the next characters as targets.
    private func batch(_ data: [Int64], generator: Generator) -> (Tensor, Tensor) {
        let starts = Tensor.randint(low: 0, high: data.count - context - 1, shape: [batchSize], generator: generator)
            .scalars(as: Int64.self)
        var x = [Int64](), y = [Int64]()
        x.reserveCapacity(batchSize * context)
        y.reserveCapacity(batchSize * context)
        for s in starts.map(Int.init) {
            x += data[s..<(s + context)]
            y += data[(s + 1)...(s + context)]
        }
        return (Tensor(x, shape: [batchSize, context]), Tensor(y, shape: [batchSize * context]))
    }

    private func train(_ model: CharTransformer, _ data: [Int64]) {
        let optimizer = AdamW(model.parameters(), lr: learningRate, weightDecay: 0.01)
        let batches = Generator(seed: seed &+ 1)
        let start = Date()
        var smoothed: Double?
        for step in 1...steps {
            let (x, y) = batch(data, generator: batches)
            optimizer.zeroGrad()
            let logits = model(x).reshaped([batchSize * context, -1])
            let loss = crossEntropy(logits, target: y)
            loss.backward()
            _ = clipGradNorm(model.parameters(), maxNorm: 1)
            optimizer.step()
            let value = loss.doubleValue
            smoothed = smoothed.map { 0.9 * $0 + 0.1 * value } ?? value
            let elapsed = Date().timeIntervalSince(start)
            let last = step == steps || elapsed >= timeLimit
            if step == 1 || step % 50 == 0 || last {
                print(String(format: "step %5d  loss %.3f  (smoothed %.3f)  %.1f s", step, value, smoothed!, elapsed))
            }
            if last { break }
        }
    }

    /// Generates `length` characters after `prompt`, one at a time, from the last `context` ones.
    private func sample(_ model: CharTransformer, from prompt: [Int64], vocabulary: Vocabulary) -> String {
        let generator = Generator(seed: sampleSeed)
        var codes = prompt
        withNoGrad {
            for _ in 0..<length {
                let window = Array(codes.suffix(context))
                let logits = model(Tensor(window, shape: [1, window.count]))
                var last = logits.select(axis: 1, index: -1).reshaped([-1]) / temperature
                if topK > 0 && topK < vocabulary.count {
                    let (values, _) = last.topk(topK)
                    let threshold = values.select(axis: 0, index: topK - 1)
                    last = last.maskedFill(last.lt(threshold), -Double.infinity)
                }
                let next = last.softmax(axis: 0).multinomial(numSamples: 1, generator: generator)
                codes.append(next.scalars(as: Int64.self)[0])
            }
        }
        return vocabulary.decode(codes)
    }
}

/// The characters of a text, numbered in sorted order.
struct Vocabulary {
    let characters: [Character]
    let index: [Character: Int64]

    init(_ text: String) {
        characters = Array(Set(text)).sorted()
        index = Dictionary(uniqueKeysWithValues: characters.enumerated().map { ($1, Int64($0)) })
    }

    var count: Int { characters.count }

    /// The indices of `text`'s characters, or `nil` if one is not in the vocabulary.
    func encode(_ text: String) -> [Int64]? {
        var out = [Int64]()
        out.reserveCapacity(text.count)
        for c in text {
            guard let i = index[c] else { return nil }
            out.append(i)
        }
        return out
    }

    func decode(_ codes: [Int64]) -> String { String(codes.map { characters[Int($0)] }) }
}
