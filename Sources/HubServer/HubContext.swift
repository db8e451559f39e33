import Catalog
import Hummingbird
import NIOCore

/// Per-request context: the authenticated user, once the auth middleware has run.
public struct HubContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var user: UserRecord?
    /// The dashboard session the user was found by (nil for an API key).
    public var session: SessionRecord?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// Uploads stream to disk and enforce their own cap; this only bounds bodies collected in memory (JSON, CSV).
    public var maxUploadSize: Int { 16 * 1024 * 1024 }
}
