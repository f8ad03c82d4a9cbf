import Ember
import Foundation

/// A self-contained HTML page with inline SVG charts of a training run.
struct TrainingReport {
    var title: String
    var settings: [(String, String)]
    var epochs: [EpochRecord]
    /// Seconds per epoch, for the epochs this process trained (a resumed run has none for the
    /// earlier ones).
    var seconds: [Int: Double]
    var finalAccuracy: Double
    var summary: String

    func html() -> String {
        let lossChart = lineChart(
            title: "Loss per epoch",
            series: [("training loss (train mode, batch average)", "#d9534f", epochs.map(\.trainLoss)),
                     ("validation loss in eval mode", "#0275d8", epochs.map { $0.validationLoss ?? .nan }),
                     ("validation loss had eval() been forgotten", "#f0ad4e", epochs.map { $0.forgottenEvalLoss ?? .nan })],
            yLabel: "cross-entropy")
        let accuracyChart = lineChart(
            title: "Validation accuracy per epoch",
            series: [("eval mode", "#0275d8", epochs.map { ($0.validationAccuracy ?? .nan) * 100 }),
                     ("had eval() been forgotten", "#f0ad4e", epochs.map { ($0.forgottenEvalAccuracy ?? .nan) * 100 })],
            yLabel: "accuracy (%)")
        let rows = epochs.map { e in
            "<tr><td>\(e.epoch)</td><td>\(fmt(e.trainLoss))</td><td>\(fmt(e.validationLoss))</td><td>\(percent(e.validationAccuracy))</td><td>\(fmt(e.forgottenEvalLoss))</td><td>\(percent(e.forgottenEvalAccuracy))</td><td>\(fmt(seconds[e.epoch], 2))</td></tr>"
        }.joined(separator: "\n")
        let settingsRows = settings.map { "<tr><th>\(escape($0.0))</th><td>\(escape($0.1))</td></tr>" }.joined(separator: "\n")
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
        <style>
        body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 960px; color: #222; }
        h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
        table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
        th { background: #f5f5f5; text-align: left; } .note { color: #555; max-width: 52em; }
        pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
        svg text { font-size: 12px; fill: #333; }
        </style></head><body>
        <h1>\(escape(title))</h1>
        <p><strong>Final validation accuracy (eval mode): \(fmt(finalAccuracy * 100, 2))%</strong></p>
        <p class="note">The orange lines show the classic mistake made visible: the same validation data run with the model
        left in training mode, so dropout still drops and BatchNorm normalises with each validation batch's own statistics.
        They were measured on a copy of the model, so the real run's running statistics and random stream are untouched.</p>
        \(lossChart)
        \(accuracyChart)
        <h2>Per epoch</h2>
        <table><tr><th>epoch</th><th>train loss</th><th>val loss (eval)</th><th>val acc (eval)</th><th>val loss (eval forgotten)</th><th>val acc (eval forgotten)</th><th>seconds</th></tr>
        \(rows)
        </table>
        <h2>Settings</h2>
        <table>\(settingsRows)</table>
        <h2>Model</h2>
        <pre>\(escape(summary))</pre>
        </body></html>
        """
    }

    private func lineChart(title: String, series: [(String, String, [Double])], yLabel: String) -> String {
        let width = 900.0, height = 320.0, left = 60.0, right = 20.0, top = 30.0, bottom = 40.0
        let all = series.flatMap(\.2).filter(\.isFinite)
        guard let lo0 = all.min(), let hi0 = all.max(), !epochs.isEmpty else { return "<p>No data.</p>" }
        let pad = max((hi0 - lo0) * 0.08, 1e-6)
        let lo = lo0 - pad, hi = hi0 + pad
        let n = max(epochs.count - 1, 1)
        func x(_ i: Int) -> Double { left + (width - left - right) * Double(i) / Double(n) }
        func y(_ v: Double) -> Double { top + (height - top - bottom) * (1 - (v - lo) / (hi - lo)) }
        var svg = "<h2>\(escape(title))</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height + 24.0 * Double(series.count)))\" role=\"img\" aria-label=\"\(escape(title))\">"
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(width - left - right)\" height=\"\(height - top - bottom)\" fill=\"#fff\" stroke=\"#999\"/>"
        for k in 0...4 {
            let v = lo + (hi - lo) * Double(k) / 4
            svg += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(y(v))\" y2=\"\(y(v))\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(y(v) + 4)\" text-anchor=\"end\">\(fmt(v, hi - lo > 5 ? 1 : 3))</text>"
        }
        let step = max(1, epochs.count / 10)
        for i in stride(from: 0, to: epochs.count, by: step) {
            svg += "<text x=\"\(x(i))\" y=\"\(height - bottom + 16)\" text-anchor=\"middle\">\(epochs[i].epoch)</text>"
        }
        svg += "<text x=\"\(left + (width - left - right) / 2)\" y=\"\(height - 6)\" text-anchor=\"middle\">epoch</text>"
        svg += "<text x=\"14\" y=\"\(top + (height - top - bottom) / 2)\" transform=\"rotate(-90 14 \(top + (height - top - bottom) / 2))\" text-anchor=\"middle\">\(escape(yLabel))</text>"
        for (k, (name, color, values)) in series.enumerated() {
            let points = values.enumerated().filter { $0.element.isFinite }.map { "\(x($0.offset)),\(y($0.element))" }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2.5\" points=\"\(points)\"/>"
            for (i, v) in values.enumerated() where v.isFinite {
                svg += "<circle cx=\"\(x(i))\" cy=\"\(y(v))\" r=\"3\" fill=\"\(color)\"/>"
            }
            let ly = height + 18.0 * Double(k) + 4
            svg += "<line x1=\"\(left)\" x2=\"\(left + 24)\" y1=\"\(ly)\" y2=\"\(ly)\" stroke=\"\(color)\" stroke-width=\"3\"/>"
            svg += "<text x=\"\(left + 30)\" y=\"\(ly + 4)\">\(escape(name))</text>"
        }
        return svg + "</svg>"
    }
}

func fmt(_ v: Double, _ digits: Int = 4) -> String { String(format: "%.\(digits)f", v) }

/// A value for a table cell, "n/a" when it was not measured.
func fmt(_ v: Double?, _ digits: Int = 4) -> String { v.map { fmt($0, digits) } ?? "n/a" }

/// A fraction as a percentage with two decimals, "n/a" when it was not measured.
func percent(_ v: Double?) -> String { v.map { fmt($0 * 100, 2) + "%" } ?? "n/a" }

func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}
