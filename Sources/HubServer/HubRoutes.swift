import Catalog
import Foundation
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

    /// Backpressure: 503 + Retry-After for new uploads while the processing backlog is over the high-water mark.
    func admitUpload() async throws {
        let backlog = try await offload { try hub.catalog.backlog() }
        if backlog >= hub.settings.backlogHighWater {
            Counter(label: "imagehub_backpressure_total").increment()
            throw HubError(503, "backpressure.busy", "\(backlog) images wait for processing (high-water mark \(hub.settings.backlogHighWater)); retry later",
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

/// Every route the API serves, as (method, path) with `:param` placeholders: the OpenAPI test reads it.
public func routeTable(hub: Hub) -> [(method: String, path: String)] {
    buildRoutes(hub: hub).entries
}

func buildRoutes(hub: Hub) -> RouteRecorder {
    let router = Router(context: HubContext.self)
    router.add(middleware: ErrorMiddleware())
    router.add(middleware: AuthMiddleware(catalog: hub.catalog))
    let recorder = RouteRecorder(router: router)
    let routes = HubRoutes(hub: hub)
    routes.addSystemRoutes(to: recorder)
    routes.addImageRoutes(to: recorder)
    routes.addBatchRoutes(to: recorder)
    routes.addLabelRoutes(to: recorder)
    routes.addClusterRoutes(to: recorder)
    routes.addTrainingRoutes(to: recorder)
    routes.addDatasetRoutes(to: recorder)
    routes.addResumableUploadRoutes(to: recorder)
    return recorder
}

/// Registers routes on the router and remembers them, so the OpenAPI document can be checked against them.
final class RouteRecorder {
    typealias Handler = @Sendable (Request, HubContext) async throws -> Response
    let router: Router<HubContext>
    private(set) var entries: [(method: String, path: String)] = []

    init(router: Router<HubContext>) { self.router = router }

    func get(_ path: String, _ handler: @escaping Handler) {
        entries.append(("get", path))
        router.get(RouterPath(path), use: handler)
    }

    func post(_ path: String, _ handler: @escaping Handler) {
        entries.append(("post", path))
        router.post(RouterPath(path), use: handler)
    }

    func head(_ path: String, _ handler: @escaping Handler) {
        entries.append(("head", path))
        router.head(RouterPath(path), use: handler)
    }

    func patch(_ path: String, _ handler: @escaping Handler) {
        entries.append(("patch", path))
        router.patch(RouterPath(path), use: handler)
    }

    func delete(_ path: String, _ handler: @escaping Handler) {
        entries.append(("delete", path))
        router.delete(RouterPath(path), use: handler)
    }

    func options(_ path: String, _ handler: @escaping Handler) {
        entries.append(("options", path))
        router.on(RouterPath(path), method: .options, use: handler)
    }
}
