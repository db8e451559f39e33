import Foundation
import HubCore
import Hummingbird
import Metrics
import NIOCore

extension HubRoutes {
    func addSystemRoutes(to router: RouteRecorder) {
        // Open to anyone (load balancers, systemd): whether this node can reach its catalog.
        router.get("/healthz") { _, _ in
            let reachable = (try? await offload { try hub.catalog.ping() }) != nil
            var response = try JSON.response(Health(status: reachable ? "ok" : "degraded", catalog: hub.catalog.engine.rawValue,
                                                    catalogReachable: reachable),
                                             status: reachable ? .ok : .serviceUnavailable)
            if !reachable { response.headers[.retryAfter] = "2" }
            return response
        }
        router.get("/metrics") { _, context in
            _ = try context.require(.supplier, .requester, .trainer)
            let (backlog, counts) = try await offload { (try hub.catalog.backlog(), try hub.catalog.statusCounts()) }
            Gauge(label: "imagehub_backlog").record(backlog)
            if let stage = hub.embedStage { Gauge(label: "imagehub_label_wrong_prior").record(Double(stage.wrongLabelPrior)) }
            for status in ImageStatus.allCases {
                Gauge(label: "imagehub_images", dimensions: [("status", status.rawValue)]).record(counts[status] ?? 0)
            }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                            body: .init(byteBuffer: ByteBuffer(bytes: HubMetrics.registry.emitToBuffer())))
        }
        router.get("/openapi.yaml") { _, context in
            _ = try context.require(.supplier, .requester, .trainer)
            return Response(status: .ok, headers: [.contentType: "application/yaml"],
                            body: .init(byteBuffer: ByteBuffer(string: OpenAPI.document)))
        }
    }
}

/// `/healthz`: whether this node can reach its catalog.
struct Health: Encodable {
    var status: String
    var catalog: String
    var catalogReachable: Bool
}
