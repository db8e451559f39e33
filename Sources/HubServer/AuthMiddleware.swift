import Catalog
import HubCore
import Hummingbird

/// Resolves `Authorization: Bearer KEY` to a user; every route but `/healthz` and tus's OPTIONS needs one.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = HubContext
    let catalog: Catalog

    func handle(_ request: Request, context: HubContext, next: (Request, HubContext) async throws -> Response) async throws -> Response {
        if request.uri.path == "/healthz" { return try await next(request, context) }
        // tus discovery (OPTIONS) tells capabilities only; clients send it without credentials.
        if request.method == .options, request.uri.path.hasPrefix("/v1/uploads") { return try await next(request, context) }
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
