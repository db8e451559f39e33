import Foundation

/// Whether an upload looks like its label, judged against the accepted images of every label.
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
    /// Score against its own label (mean similarity to its nearest members), when the label has any.
    public var score: Float?
    /// The best other label and its score.
    public var suggestedLabel: Int64?
    public var suggestedScore: Float?
}

/// The rule: once the upload's label has `minImages` accepted images, an upload whose score for another
/// label (with at least `minImages` too, and not an ancestor or descendant of its own) beats its own
/// label's score by `margin` is a mismatch.
public struct LabelCheckPolicy: Sendable {
    public var minImages: Int
    public var neighbours: Int
    public var margin: Float

    public init(minImages: Int = 20, neighbours: Int = 10, margin: Float = 0.05) {
        self.minImages = minImages
        self.neighbours = neighbours
        self.margin = margin
    }

    public func check(_ vector: [Float], label: Int64, imageId: String?, in index: SimilarityIndex,
                      related: Set<Int64> = []) -> LabelCheck {
        let scores = index.labelScores(for: vector, k: neighbours, excluding: imageId)
        let own = scores.first { $0.labelId == label }
        let other = scores.first { $0.labelId != label && !related.contains($0.labelId) && $0.count >= minImages }
        guard let own, own.count >= minImages else {
            return LabelCheck(state: .unverified, score: own?.score, suggestedLabel: other?.labelId, suggestedScore: other?.score)
        }
        if let other, other.score - own.score >= margin {
            return LabelCheck(state: .mismatch, score: own.score, suggestedLabel: other.labelId, suggestedScore: other.score)
        }
        return LabelCheck(state: .verified, score: own.score, suggestedLabel: other?.labelId, suggestedScore: other?.score)
    }
}
