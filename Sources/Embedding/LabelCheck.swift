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

    public init(state: State, score: Float? = nil, suggestedLabel: Int64? = nil, suggestedScore: Float? = nil) {
        self.state = state
        self.score = score
        self.suggestedLabel = suggestedLabel
        self.suggestedScore = suggestedScore
    }
}
