// ember-rnn-bench: Ember's LSTM beside PyTorch's, in one run.
//
// Run: swift run -c release ember-rnn-bench [SAMPLES]
//
// Model: LSTM(64 -> 128, 2 layers, dropout 0.2, batchFirst), input [32, 50, 64] float32. For 1 and
// 2 threads it times, as medians of SAMPLES calls after a warm-up:
//   - forward in eval mode without recording,
//   - forward in training mode (recording the graph, dropout between the layers),
//   - a training step: zeroGrad, forward, MSE loss, backward, SGD step.
// The PyTorch figures come from Tools/bench/torch_rnn_bench.py (same model, same steps), run as a
// child process when `python3` with torch is available; otherwise only Ember's are printed.

import Ember
import Foundation

let samples = CommandLine.arguments.count > 1 ? max(3, Int(CommandLine.arguments[1]) ?? 21) : 21
let warmup = 3
let threadCounts = [1, 2]

/// Seconds since an arbitrary origin, from a monotonic clock.
func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

/// Median milliseconds of `samples` calls of `op`, after `warmup` calls.
func medianMilliseconds(_ op: () -> Void) -> Double {
    for _ in 0..<warmup { op() }
    var times: [Double] = []
    for _ in 0..<samples {
        let start = now()
        op()
        times.append((now() - start) * 1e3)
    }
    times.sort()
    return times[times.count / 2]
}

struct Figures: Decodable {
    var forward_eval_ms: Double
    var forward_train_ms: Double
    var train_step_ms: Double
}

struct TorchFigures: Decodable {
    var version: String
    var threads: Int
    var forward_eval_ms: Double
    var forward_train_ms: Double
    var train_step_ms: Double
    var figures: Figures { Figures(forward_eval_ms: forward_eval_ms, forward_train_ms: forward_train_ms, train_step_ms: train_step_ms) }
}

/// Ember's figures on `threads` threads.
func emberFigures(threads: Int) -> Figures {
    Threading.withThreads(threads) {
        withGenerator(Generator(seed: 0)) {
            let lstm = LSTM(64, 128, numLayers: 2, batchFirst: true, dropout: 0.2)
            let x = Tensor.normal([32, 50, 64]), target = Tensor.normal([32, 50, 128])
            let optimizer = SGD(lstm.parameters(), lr: 0.01)
            lstm.eval()
            let eval = medianMilliseconds { _ = withNoGrad { lstm(x).output } }
            lstm.train()
            let train = medianMilliseconds { _ = lstm(x).output }
            let step = medianMilliseconds {
                optimizer.zeroGrad()
                let (out, _) = lstm(x)
                let diff = out - target
                (diff * diff).mean().backward()
                optimizer.step()
            }
            return Figures(forward_eval_ms: eval, forward_train_ms: train, train_step_ms: step)
        }
    }
}

/// PyTorch's figures from torch_rnn_bench.py, or the reason there are none.
func torchFigures(threads: Int) -> Result<TorchFigures, BenchError> {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Tools/bench/torch_rnn_bench.py").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", script, String(threads), String(samples), String(warmup)]
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    do { try process.run() } catch { return .failure(BenchError(message: "could not start python3: \(error)")) }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let errorText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0, let figures = try? JSONDecoder().decode(TorchFigures.self, from: data) else {
        return .failure(BenchError(message: "torch_rnn_bench.py failed (\(process.terminationStatus)): \(errorText.suffix(300))"))
    }
    return .success(figures)
}

struct BenchError: Error { var message: String }

func format(_ ms: Double) -> String { String(format: "%8.2f ms", ms) }

print("ember-rnn-bench: LSTM(64 -> 128, 2 layers, dropout 0.2, batchFirst), batch 32, sequence 50, float32")
print("median of \(samples) calls after \(warmup) warm-up calls; ratio = Ember time / PyTorch time (below 1: Ember faster)")
var torchVersion: String?
for threads in threadCounts {
    // PyTorch first, then Ember, so neither runs while the other's process is busy.
    let torch = torchFigures(threads: threads)
    let ember = emberFigures(threads: threads)
    print("\n\(threads) thread\(threads == 1 ? "" : "s")")
    print("  \("".padding(toLength: 22, withPad: " ", startingAt: 0))       Ember      PyTorch    ratio   speed-up")
    let rows: [(String, KeyPath<Figures, Double>)] = [
        ("forward (eval)", \.forward_eval_ms), ("forward (training)", \.forward_train_ms), ("training step", \.train_step_ms),
    ]
    switch torch {
    case .success(let t):
        torchVersion = t.version
        for (name, key) in rows {
            let e = ember[keyPath: key], p = t.figures[keyPath: key]
            print("  \(name.padding(toLength: 22, withPad: " ", startingAt: 0)) \(format(e))  \(format(p))    \(String(format: "%.2f", e / p))     \(String(format: "%.2fx", p / e))")
        }
    case .failure(let error):
        for (name, key) in rows { print("  \(name.padding(toLength: 22, withPad: " ", startingAt: 0)) \(format(ember[keyPath: key]))") }
        print("  (no PyTorch figures: \(error.message))")
    }
}
if let torchVersion { print("\nPyTorch \(torchVersion)") }
