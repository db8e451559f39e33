/// What an API key may do.
public enum Role: String, Sendable, Codable, CaseIterable {
    /// Uploads images and sees its own.
    case supplier
    /// Reads everything and exports datasets.
    case requester
    /// Trains models (and reads like a requester).
    case trainer
    /// Everything, including reviews, label administration and originals.
    case admin

    /// True when this role may read every image and export datasets.
    public var canRead: Bool { self != .supplier }
}
