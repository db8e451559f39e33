import Catalog
import Foundation
import HTTPTypes
import HubCore
import Hummingbird
import Metrics
import Jobs

/// The hub's HTTP API, route group by route group.
struct HubRoutes: Sendable {
    let hub: Hub

    func labelName(_ id: Int64) throws -> String {
        try hub.catalog.label(id: id)?.name ?? "?"
    }

    /// Backpressure: 503 + Retry-After for new uploads while the processing backlog is over the high-water mark
    /// (counted again only when the uploads admitted since the last count could have reached it).
    func admitUpload() async throws {
        let limit = hub.settings.backlogHighWater
        if hub.catalog.admitFromEstimate(under: limit) { return }
        if let backlog = try await offload({ try hub.catalog.admitUpload(under: limit) }) {
            Counter(label: "imagehub_backpressure_total").increment()
            throw HubError(503, "backpressure.busy", "at least \(backlog) images wait for processing (high-water mark \(hub.settings.backlogHighWater)); retry later",
                           details: ["retry_after": "\(hub.settings.retryAfterSeconds)"])
        }
    }

    /// The embed stage, or 503 when this hub runs without embeddings.
    func embedStage() throws -> EmbedStage {
        guard let stage = hub.embedStage else {
            throw HubError(503, "embedding.disabled", "this hub runs without embeddings (embedding.enabled = false)")
        }
        return stage
    }
}

/// The router with every route and middleware, for `buildApplication` and for router tests.
public func buildRouter(hub: Hub) -> Router<HubContext> {
    buildRoutes(hub: hub).router
}

/// The router of a worker node: `/healthz`, `/metrics` and `/openapi.yaml` only.
public func buildSystemRouter(hub: Hub) -> Router<HubContext> {
    let router = Router(context: HubContext.self)
    let errors = ErrorMiddleware()
    router.add(middleware: errors)
    router.add(middleware: AuthMiddleware(catalog: hub.catalog))
    HubRoutes(hub: hub).addSystemRoutes(to: RouteRecorder(router: router, known: errors.routes))
    return router
}

/// Every route the API serves, as (method, path) with `:param` placeholders: the OpenAPI test reads it.
public func routeTable(hub: Hub) -> [(method: String, path: String)] {
    buildRoutes(hub: hub).entries
}

func buildRoutes(hub: Hub) -> RouteRecorder {
    let router = Router(context: HubContext.self)
    let errors = ErrorMiddleware()
    router.add(middleware: errors)
    router.add(middleware: AuthMiddleware(catalog: hub.catalog))
    let recorder = RouteRecorder(router: router, known: errors.routes)
    let routes = HubRoutes(hub: hub)
    routes.addSystemRoutes(to: recorder)
    routes.addImageRoutes(to: recorder)
    routes.addBatchRoutes(to: recorder)
    routes.addLabelRoutes(to: recorder)
    routes.addClusterRoutes(to: recorder)
    routes.addTrainingRoutes(to: recorder)
    routes.addDatasetRoutes(to: recorder)
    routes.addResumableUploadRoutes(to: recorder)
    routes.addDashboardRoutes(to: recorder)
    return recorder
}

/// Registers routes on the router and remembers them, so the OpenAPI document can be checked against them.
final class RouteRecorder {
    typealias Handler = @Sendable (Request, HubContext) async throws -> Response
    let router: Router<HubContext>
    private(set) var entries: [(method: String, path: String)] = []
    let known: KnownRoutes

    init(router: Router<HubContext>, known: KnownRoutes) {
        self.router = router
        self.known = known
    }

    /// Registers `handler` for `method` on `path` and remembers the pair.
    func on(_ method: HTTPRequest.Method, _ path: String, _ handler: @escaping Handler) {
        entries.append((method.rawValue.lowercased(), path))
        known.add(method.rawValue, path)
        router.on(RouterPath(path), method: method, use: handler)
    }

    func get(_ path: String, _ handler: @escaping Handler) { on(.get, path, handler) }
    func post(_ path: String, _ handler: @escaping Handler) { on(.post, path, handler) }
    func head(_ path: String, _ handler: @escaping Handler) { on(.head, path, handler) }
    func patch(_ path: String, _ handler: @escaping Handler) { on(.patch, path, handler) }
    func delete(_ path: String, _ handler: @escaping Handler) { on(.delete, path, handler) }
    func options(_ path: String, _ handler: @escaping Handler) { on(.options, path, handler) }
}
