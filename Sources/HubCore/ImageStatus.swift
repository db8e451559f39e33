/// Where an image stands in the pipeline.
public enum ImageStatus: String, Sendable, Codable, CaseIterable {
    case pending, accepted, quarantined, rejected

    /// True once the pipeline has decided.
    public var isFinal: Bool { self != .pending }
}
