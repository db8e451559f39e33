/// An error the hub reports to a caller: a stable machine code, a human message and an HTTP status.
public struct HubError: Error, Sendable, CustomStringConvertible {
    /// Stable machine code, for example `label.unknown`.
    public let code: String
    /// What went wrong, for a person.
    public let message: String
    /// The HTTP status the API answers with.
    public let status: Int
    /// Extra fields for the error body, for example the id of an existing image.
    public let details: [String: String]

    public init(_ status: Int, _ code: String, _ message: String, details: [String: String] = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
    }

    public var description: String { "\(code): \(message)" }
}
