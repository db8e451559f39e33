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

    /// Whether evidence `ratio` (how much more likely the picture is under a wrong label than under a right
    /// one) makes a wrong label more likely than not at `prior`, by Bayes' rule: π·r > 1 − π. The rule the
    /// label model judges by, and the stream's second look.
    public static func wrongMoreLikely(_ ratio: Float, prior: Float) -> Bool { ratio * prior > 1 - prior }
}

/// The share of wrong labels that recent uploads carry, estimated from their label checks' evidence: the
/// share π of "wrong" that makes the recent judgements most likely, each weighted by its recency (halved
/// every `halfLife` judgements, the last 8 half-lives kept) — EM over their likelihood ratios r:
/// π ← (n₀·floor + Σ wᵢ·π·rᵢ / (π·rᵢ + 1 − π)) / (n₀ + Σ wᵢ) — with the configured prior counted as
/// `priorWeight` judgements so that a few do not swing it, never below the configured prior and at most a
/// half. A phone that starts swapping half its labels raises the prior towards a half within a few dozen
/// uploads, even after a long honest run, so its wrong labels need less evidence each to be caught; a
/// clean stream leaves the configured prior as it is.
public struct StreamPrior: Sendable {
    public let halfLife: Int
    /// The configured prior: the estimate's floor, and where it starts.
    public let floor: Float
    /// How many judgements the configured prior counts as.
    public static let priorWeight: Float = 10
    private var ratios: [Float] = []  // oldest first
    /// Recent uploads judged right, with their likelihood ratios (the last `2·halfLife`), for `doubtful`.
    private var passed: [(imageId: String, ratio: Float)] = []
    /// The prior to judge the next upload by: at least `floor`, at most a half (worked out as each
    /// judgement is recorded, not as each upload is judged).
    public private(set) var prior: Float

    public init(halfLife: Int, floor: Float) {
        self.halfLife = max(0, halfLife)
        self.floor = floor
        prior = floor
    }

    /// Records a judgement; with `imageId`, one of an upload as it arrived, kept for `doubtful` while it passed.
    public mutating func record(_ ratio: Float, imageId: String? = nil) {
        guard halfLife > 0, ratio.isFinite, ratio >= 0 else { return }
        if let imageId, !LabelCheck.wrongMoreLikely(ratio, prior: prior) {
            passed.append((imageId, ratio))
            if passed.count > 2 * halfLife { passed.removeFirst(passed.count - 2 * halfLife) }
        }
        ratios.append(ratio)
        // Beyond eight half-lives a judgement weighs under 0.4%: dropped.
        if ratios.count > 8 * halfLife { ratios.removeFirst(ratios.count - 8 * halfLife) }
        prior = estimate()
    }

    /// Recent uploads that passed at the prior of their arrival and that the current prior would call wrong,
    /// once the stream has shown at least twice the configured share of wrong labels (a phone filing a class
    /// under another one, say): its first swaps arrived while the prior was low. Each is returned once, to be
    /// judged again (`EmbedStage.recheckStream`). Empty while the prior is below twice its floor: on a stream
    /// with the expected share, a second look would flag honest photos about as often as wrong ones.
    public mutating func doubtful() -> [String] {
        guard halfLife > 0, prior >= 2 * floor else { return [] }
        let prior = self.prior
        var found: [String] = []
        passed.removeAll { entry in
            guard LabelCheck.wrongMoreLikely(entry.ratio, prior: prior) else { return false }
            found.append(entry.imageId)
            return true
        }
        return found
    }

    private func estimate() -> Float {
        let decay = powf(0.5, 1 / Float(halfLife))
        var weights = [Float](repeating: 0, count: ratios.count)
        var w: Float = 1
        for i in stride(from: ratios.count - 1, through: 0, by: -1) { weights[i] = w; w *= decay }
        let total = weights.reduce(0, +)
        let n0 = Self.priorWeight
        var share = floor
        for _ in 0..<100 {
            var sum: Float = 0
            for (r, w) in zip(ratios, weights) { sum += w * share * r / max(share * r + 1 - share, 1e-30) }
            let updated = (n0 * floor + sum) / (n0 + total)
            if abs(updated - share) < 1e-5 { share = updated; break }
            share = updated
        }
        return min(0.5, max(floor, share))
    }
}
