import HubCore

/// Why the pipeline stopped with an image: a stable reason code and what it means for the image.
public struct Rejection: Error, Sendable, CustomStringConvertible {
    public let code: String
    public let message: String
    /// `rejected` for files that are not usable images, `quarantined` for ones a person may still accept.
    public let status: ImageStatus

    public init(_ code: String, _ message: String, status: ImageStatus = .rejected) {
        self.code = code
        self.message = message
        self.status = status
    }

    public var description: String { "\(code): \(message)" }
}
