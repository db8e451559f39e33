/// A failure to read or decode image bytes, with the stable reason code it maps to.
public struct ImagingError: Error, Sendable, CustomStringConvertible {
    /// Stable machine code, for example `decode.truncated`.
    public let code: String
    /// What libvips said, without its internal prefixes trimmed away.
    public let message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
