import Foundation

/// Whether an upload looks like its label, judged by the label model (see `LabelModel` in Training).
public struct LabelCheck: Sendable, Equatable {
    public enum State: String, Sendable, Codable {
        /// The label has too few accepted images to judge by yet; re-checked when it grows.
        case unverified
        /// Looks like its label.
        case verified
        /// Clearly closer to another label's images (`suggestedLabel`).
        case mismatch
    }
    public var state: State
    /// The calibrated probability of its own label (ancestors and descendants included), once judged.
    public var score: Float?
    /// The best other label and its score.
    public var suggestedLabel: Int64?
    public var suggestedScore: Float?
    /// How much more likely the picture is under a wrong label than under a right one (the likelihood ratio
    /// the prior is weighed against), once judged against other labels.
    public var evidence: Float?

    public init(state: State, score: Float? = nil, suggestedLabel: Int64? = nil, suggestedScore: Float? = nil,
                evidence: Float? = nil) {
        self.state = state
        self.score = score
        self.suggestedLabel = suggestedLabel
        self.suggestedScore = suggestedScore
        self.evidence = evidence
    }
}

/// The share of wrong labels that recent uploads carry, estimated from their label checks' evidence: the
/// share π of "wrong" that makes the last `window` judgements most likely (EM over their likelihood ratios r:
/// π ← (n₀·floor + Σ π·r / (π·r + 1 − π)) / (n₀ + n)), with the configured prior counted as `priorWeight`
/// judgements so that a few do not swing it, and never below the configured prior. A stream in which half
/// the labels are swapped raises the prior towards a half, so its wrong labels need less evidence each to be
/// caught; a clean stream leaves the configured prior as it is.
public struct StreamPrior: Sendable {
    public let window: Int
    /// How many judgements the configured prior counts as.
    public static let priorWeight: Float = 10
    private var ratios: [Float] = []
    private var next = 0

    public init(window: Int) { self.window = max(0, window) }

    public mutating func record(_ ratio: Float) {
        guard window > 0, ratio.isFinite, ratio >= 0 else { return }
        if ratios.count < window { ratios.append(ratio) } else { ratios[next] = ratio }
        next = (next + 1) % window
    }

    /// The prior to judge the next upload by: at least `floor`, at most a half.
    public func estimate(floor: Float) -> Float {
        guard !ratios.isEmpty else { return floor }
        let n0 = Self.priorWeight
        var share = floor
        for _ in 0..<100 {
            var sum: Float = 0
            for r in ratios { sum += share * r / max(share * r + 1 - share, 1e-30) }
            let updated = (n0 * floor + sum) / (n0 + Float(ratios.count))
            if abs(updated - share) < 1e-5 { share = updated; break }
            share = updated
        }
        return min(0.5, max(floor, share))
    }
}
