import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Training progress on standard output: a redrawn bar on a terminal (epoch, batch, loss,
/// samples/s, ETA), plain lines otherwise (logs, CI).
struct Progress {
    let isTerminal = isatty(STDOUT_FILENO) != 0
    let totalEpochs: Int
    let batchesPerEpoch: Int
    let start = Date()
    private var lastDraw = Date.distantPast

    init(totalEpochs: Int, batchesPerEpoch: Int) {
        self.totalEpochs = totalEpochs
        self.batchesPerEpoch = batchesPerEpoch
    }

    /// Called after each batch; redraws at most 20 times a second, and only on a terminal.
    mutating func batch(epoch: Int, batch: Int, loss: Double, samples: Int) {
        guard isTerminal else { return }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) > 0.05 || batch == batchesPerEpoch else { return }
        lastDraw = now
        let elapsed = now.timeIntervalSince(start)
        let done = Double((epoch - 1) * batchesPerEpoch + batch)
        let total = Double(totalEpochs * batchesPerEpoch)
        let eta = done > 0 ? elapsed / done * (total - done) : 0
        let width = 24
        let filled = Int(Double(width) * Double(batch) / Double(max(batchesPerEpoch, 1)))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let rate = Double(samples) / max(elapsed, 1e-9)
        let line = String(format: "epoch %d/%d %@ batch %d/%d  loss %.4f  %.0f samples/s  ETA %.1fs",
                          epoch, totalEpochs, bar, batch, batchesPerEpoch, loss, rate, eta)
        print("\r\u{1B}[2K" + line, terminator: "")
        fflush(nil)
    }

    /// Called at the end of an epoch with its summary line.
    func epochEnd(_ line: String) {
        if isTerminal { print("\r\u{1B}[2K", terminator: "") }
        print(line)
        fflush(nil)
    }
}
