import Foundation

/// The training report drawn for a person: loss and accuracy curves per epoch, and the confusion matrix
/// with counts (darker = more), as one standalone SVG.
public enum ReportSVG {
    public static func render(_ r: TrainingReport, title: String) -> String {
        let width = 980.0
        let n = r.labels.count
        let cell = min(48.0, 420.0 / Double(max(n, 1)))
        let matrixTop = 330.0
        let height = matrixTop + 40 + cell * Double(n) + 140
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="20" y="28" font-size="18" font-weight="bold">\(escape(title))</text>
        <text x="20" y="48">validation accuracy \(String(format: "%.3f", r.accuracy)) · macro F1 \(String(format: "%.3f", r.macroF1)) · \(r.trainImages) train / \(r.validationImages) validation images · best epoch \(r.bestEpoch) of \(r.epochsRun)\(r.deliveredModelImages.map { $0 > r.trainImages ? " · model trained on all \($0)" : "" } ?? "") · \(String(format: "%.2f", r.trainingSeconds)) s</text>

        """
        let epochs = r.history.map { Double($0.epoch) }
        svg += chart(x: 20, y: 70, w: 440, h: 220, title: "loss", epochs: epochs, series: [
            ("train", "#1f77b4", r.history.map(\.trainLoss)),
            ("validation", "#d62728", r.history.compactMap(\.validationLoss)),
        ])
        svg += chart(x: 520, y: 70, w: 440, h: 220, title: "accuracy", epochs: epochs, series: [
            ("train", "#1f77b4", r.history.map(\.trainAccuracy)),
            ("validation", "#d62728", r.history.compactMap(\.validationAccuracy)),
        ], fixed: (0, 1))
        // Confusion matrix: rows are true labels, columns predicted labels.
        let left = 200.0
        svg += "<text x=\"20\" y=\"\(matrixTop)\" font-size=\"14\" font-weight=\"bold\">confusion matrix (validation; rows: true label, columns: predicted)</text>\n"
        let top = matrixTop + 20
        let peak = Double(max(1, r.confusion.flatMap { $0 }.max() ?? 1))
        for (i, row) in r.confusion.enumerated() {
            let y = top + Double(i) * cell
            svg += "<text x=\"\(left - 8)\" y=\"\(y + cell / 2 + 4)\" text-anchor=\"end\">\(escape(r.labels[i]))</text>\n"
            for (j, count) in row.enumerated() {
                let x = left + Double(j) * cell
                let shade = Double(count) / peak
                let fill = i == j ? "rgba(44,160,44,\(0.15 + 0.85 * shade))" : "rgba(214,39,40,\(count == 0 ? 0.03 : 0.2 + 0.8 * shade))"
                svg += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cell - 2)\" height=\"\(cell - 2)\" fill=\"\(fill)\"/>"
                svg += "<text x=\"\(x + cell / 2 - 1)\" y=\"\(y + cell / 2 + 4)\" text-anchor=\"middle\">\(count)</text>\n"
            }
        }
        let bottom = top + Double(n) * cell
        for j in 0..<n {
            let x = left + Double(j) * cell + cell / 2
            svg += "<text x=\"\(x)\" y=\"\(bottom + 12)\" text-anchor=\"end\" transform=\"rotate(-45 \(x) \(bottom + 12))\">\(escape(r.labels[j]))</text>\n"
        }
        // Per-class table beside the matrix.
        let tx = left + Double(n) * cell + 40
        svg += "<text x=\"\(tx)\" y=\"\(top + 10)\" font-weight=\"bold\">label · precision · recall · F1 · support</text>\n"
        for (i, c) in r.perClass.prefix(20).enumerated() {
            svg += "<text x=\"\(tx)\" y=\"\(top + 28 + Double(i) * 16)\">\(escape(c.label)) · \(String(format: "%.2f", c.precision)) · \(String(format: "%.2f", c.recall)) · \(String(format: "%.2f", c.f1)) · \(c.support)</text>\n"
        }
        svg += "<text x=\"\(tx)\" y=\"\(top + 28 + Double(min(20, n)) * 16 + 10)\">likely label errors: \(r.likelyLabelErrors.count)</text>\n"
        return svg + "</svg>\n"
    }

    static func chart(x: Double, y: Double, w: Double, h: Double, title: String, epochs: [Double],
                      series: [(String, String, [Double])], fixed: (Double, Double)? = nil) -> String {
        let values = series.flatMap(\.2)
        let lo = fixed?.0 ?? min(0, values.min() ?? 0), hi = fixed?.1 ?? max(values.max() ?? 1, lo + 1e-9)
        let maxEpoch = max(epochs.max() ?? 1, 1)
        func px(_ e: Double) -> Double { x + 40 + (e - 1) / max(maxEpoch - 1, 1) * (w - 50) }
        func py(_ v: Double) -> Double { y + h - 20 - (v - lo) / (hi - lo) * (h - 40) }
        var s = "<g><text x=\"\(x)\" y=\"\(y)\" font-size=\"14\" font-weight=\"bold\">\(title) by epoch</text>\n"
        s += "<line x1=\"\(x + 40)\" y1=\"\(y + h - 20)\" x2=\"\(x + w - 10)\" y2=\"\(y + h - 20)\" stroke=\"#444\"/>"
        s += "<line x1=\"\(x + 40)\" y1=\"\(y + 20)\" x2=\"\(x + 40)\" y2=\"\(y + h - 20)\" stroke=\"#444\"/>\n"
        s += "<text x=\"\(x + 36)\" y=\"\(y + 24)\" text-anchor=\"end\">\(String(format: "%.2f", hi))</text>"
        s += "<text x=\"\(x + 36)\" y=\"\(y + h - 20)\" text-anchor=\"end\">\(String(format: "%.2f", lo))</text>"
        s += "<text x=\"\(x + w - 10)\" y=\"\(y + h - 4)\" text-anchor=\"end\">epoch \(Int(maxEpoch))</text>\n"
        for (i, (name, colour, points)) in series.enumerated() where !points.isEmpty {
            let path = points.enumerated().map { "\(px(Double($0.offset + 1))),\(py($0.element))" }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\" points=\"\(path)\"/>"
            s += "<text x=\"\(x + w - 100)\" y=\"\(y + 20 + Double(i) * 16)\" fill=\"\(colour)\">\(name)</text>\n"
        }
        return s + "</g>\n"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
