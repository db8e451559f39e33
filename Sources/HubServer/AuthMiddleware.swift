import Catalog
import HubCore
import Hummingbird

/// Resolves `Authorization: Bearer KEY` to a user; every route but `/healthz` and tus's OPTIONS needs one.
/// A dashboard session cookie stands for its user as the key would: on the dashboard's pages (which send
/// a visitor without one to sign in) and on the API, where a state-changing request must also carry the
/// session's CSRF token (`X-CSRF-Token`).
struct AuthMiddleware: RouterMiddleware {
    typealias Context = HubContext
    let catalog: Catalog

    func handle(_ request: Request, context: HubContext, next: (Request, HubContext) async throws -> Response) async throws -> Response {
        if request.uri.path == "/healthz" { return try await next(request, context) }
        // tus discovery (OPTIONS) tells capabilities only; clients send it without credentials.
        if request.method == .options, request.uri.path.hasPrefix("/v1/uploads") { return try await next(request, context) }
        if Dashboard.isPage(request.uri.path) {
            var context = context
            if let token = Dashboard.token(request), let found = try await offload({ try catalog.session(token: token) }) {
                context.user = found.user
                context.session = found.session
            }
            return try await next(request, context)
        }
        if request.headers[.authorization] == nil, let token = Dashboard.token(request) {
            guard let found = try await offload({ try catalog.session(token: token) }) else {
                throw HubError(401, "auth.session_expired", "the dashboard session has ended; sign in again")
            }
            if ![.get, .head, .options].contains(request.method) {
                guard request.headers[Dashboard.csrfHeader] == found.session.csrf else {
                    throw HubError(403, "auth.csrf", "a request made with a dashboard session must carry its X-CSRF-Token")
                }
            }
            var context = context
            context.user = found.user
            context.session = found.session
            return try await next(request, context)
        }
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            throw HubError(401, "auth.missing", "send `Authorization: Bearer KEY` (create one with `imagehub keys create`)")
        }
        let key = String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
        // A key seen lately is answered from memory, without a hop to a blocking thread.
        var found = catalog.rememberedUser(forKey: key)
        if found == nil { found = try await offload { try catalog.user(forKey: key) } }
        guard let user = found else {
            throw HubError(401, "auth.invalid", "the API key is not valid")
        }
        var context = context
        context.user = user
        return try await next(request, context)
    }
}

extension HubContext {
    /// The caller, who must hold one of `roles` (admin always may).
    func require(_ roles: Role...) throws -> UserRecord {
        guard let user else { throw HubError(401, "auth.missing", "an API key is required") }
        guard user.role == .admin || roles.contains(user.role) else {
            throw HubError(403, "auth.forbidden", "role \(user.role.rawValue) may not do this (needs \(roles.map(\.rawValue).joined(separator: " or ")))")
        }
        return user
    }
}
