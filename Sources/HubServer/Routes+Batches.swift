import Catalog
import Foundation
import HubCore
import Hummingbird

extension HubRoutes {
    func addBatchRoutes(to router: RouteRecorder) {
        router.post("/v1/batches") { request, context in
            let user = try context.require(.supplier)
            struct NewBatch: Decodable { var device: String?; var lat: Double?; var lon: Double? }
            let body = try await JSON.decode(NewBatch.self, from: request, context: context, emptyIsObject: true)
            if let lat = body.lat, abs(lat) > 90 { throw HubError(400, "field.invalid", "`lat` must be within ±90") }
            if let lon = body.lon, abs(lon) > 180 { throw HubError(400, "field.invalid", "`lon` must be within ±180") }
            let batch = try await offload { try hub.catalog.createBatch(userId: user.id!, device: body.device, lat: body.lat, lon: body.lon) }
            return try JSON.response(batch, status: .created)
        }
        router.get("/v1/batches/:id") { _, context in
            let user = try context.require(.supplier, .requester, .trainer)
            let id = try context.parameters.require("id")
            guard let summary = try await offload({ try hub.catalog.batchSummary(id: id) }),
                  user.mayRead(ownedBy: summary.batch.userId) else {
                throw HubError(404, "batch.unknown", "no batch \(id)")
            }
            return try JSON.response(summary)
        }
    }
}
