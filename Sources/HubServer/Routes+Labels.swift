import Catalog
import Embedding
import Foundation
import HubCore
import Hummingbird
import Ingest
import Jobs
import MultipartKit
import NIOCore
import Organize

extension HubRoutes {
    /// Creates a label as `POST /v1/labels` and the dashboard's Labels page both do it.
    func createLabel(name raw: String, displayName: String?, parent: String?, mid: String?) async throws -> LabelRecord {
        let name = raw.trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, name.count <= 200, !name.contains(",") else {
            throw HubError(400, "field.invalid", "`name` must be 1–200 characters without commas")
        }
        return try await offload { try hub.catalog.createLabel(name: name, displayName: displayName, parent: parent, mid: mid) }
    }

    func addLabelRoutes(to router: RouteRecorder) {
        router.get("/v1/labels") { _, context in
            _ = try context.require(.supplier, .requester, .trainer)
            let tree = try await offload { try hub.catalog.labelTree() }
            return try JSON.response(["labels": tree])
        }
        router.post("/v1/labels") { request, context in
            _ = try context.require(.admin)
            struct NewLabel: Decodable { var name: String; var displayName: String?; var parent: String?; var mid: String? }
            let body = try await JSON.decode(NewLabel.self, from: request, context: context)
            let label = try await createLabel(name: body.name, displayName: body.displayName, parent: body.parent, mid: body.mid)
            return try JSON.response(label, status: .created)
        }
        router.post("/v1/labels/import") { request, context in
            _ = try context.require(.admin)
            struct Files: Decodable { var classes: String; var hierarchy: String? }
            let buffer = try await request.body.collect(upTo: context.maxUploadSize)
            guard let type = request.headers[.contentType], type.lowercased().hasPrefix("multipart/form-data"), let boundary = MultipartUpload.boundary(of: type) else {
                throw HubError(400, "multipart.malformed", "send multipart/form-data with a `classes` CSV and an optional `hierarchy` JSON")
            }
            let files: Files
            do { files = try FormDataDecoder().decode(Files.self, from: buffer, boundary: boundary) } catch {
                throw HubError(400, "multipart.malformed", "expected a `classes` part (and optionally `hierarchy`)")
            }
            let result = try await importLabels(classes: files.classes, hierarchy: files.hierarchy)
            return try JSON.response(["classes": result.classes, "created": result.created, "linked": result.linked])
        }
        router.get("/v1/labels/:name/images") { request, context in
            let user = try context.require(.supplier, .requester, .trainer)
            let name = try Self.labelParameter(context)
            let q = request.uri.queryParameters
            let status = try q.get("status").map { s in
                guard let st = ImageStatus(rawValue: String(s)) else { throw HubError(400, "field.invalid", "unknown status '\(s)'") }
                return st
            }
            let limit = try Query.integer(q.get("limit").map { String($0) }, name: "limit", default: 100, in: 1...1000)
            let cursor: String? = q.get("cursor").map { String($0) }
            let page = try await offload { () throws -> [ImageRecord] in
                guard let label = try hub.catalog.label(named: name) else {
                    throw HubError(404, "label.unknown", "label '\(name)' does not exist")
                }
                return try hub.catalog.images(labelIds: [label.id!], status: status, uploaderId: user.role.canRead ? nil : user.id,
                                              after: cursor, limit: limit)
            }
            struct Page: Encodable { var images: [ImageView]; var nextCursor: String? }
            return try JSON.response(Page(images: page.map { ImageView($0, label: name) },
                                          nextCursor: page.count == limit ? page.last?.id : nil))
        }
    }

    /// Imports the Open Images class descriptions (CSV) and, if given, their hierarchy (JSON): the API's
    /// `POST /v1/labels/import` and the dashboard's Labels page share it. An empty hierarchy is none.
    func importLabels(classes csv: String, hierarchy: String?) async throws -> (classes: Int, created: Int, linked: Int) {
        let classes = try LabelImport.classes(csv: csv)
        let edges = try hierarchy.flatMap { $0.isEmpty ? nil : try LabelImport.edges(hierarchyJSON: Data($0.utf8)) } ?? []
        let result = try await offload { try hub.catalog.importLabels(classes: classes, edges: edges) }
        return (classes.count, result.created, result.linked)
    }

    func addClusterRoutes(to router: RouteRecorder) {
        router.get("/v1/labels/:name/clusters") { request, context in
            _ = try context.require(.requester, .trainer)
            let withMembers = try Query.boolean(request.uri.queryParameters.get("members").map { String($0) }, name: "members")
            let (label, record) = try await clusters(context)
            let clusters = try JSONDecoder().decode([Clustering.Cluster].self, from: Data(record.clusters.utf8))
            struct ClusterView: Encodable { var size: Int; var representatives: [String]; var members: [String]? }
            struct View: Encodable {
                var label: String; var k: Int; var silhouette: Double; var imageCount: Int; var model: String
                var computedAt: Date; var clusters: [ClusterView]
            }
            return try JSON.response(View(label: label, k: record.k, silhouette: record.silhouette, imageCount: record.imageCount,
                                          model: record.model, computedAt: record.computedAt,
                                          clusters: clusters.map { ClusterView(size: $0.members.count, representatives: $0.representatives,
                                                                               members: withMembers ? $0.members : nil) }))
        }
        router.get("/v1/labels/:name/outliers") { _, context in
            _ = try context.require(.requester, .trainer)
            let (label, record) = try await clusters(context)
            let outliers = try JSONDecoder().decode([Clustering.Outlier].self, from: Data(record.outliers.utf8))
            struct OutlierView: Encodable { var id: String; var distance: Float }
            struct View: Encodable { var label: String; var imageCount: Int; var computedAt: Date; var outliers: [OutlierView] }
            return try JSON.response(View(label: label, imageCount: record.imageCount, computedAt: record.computedAt,
                                          outliers: outliers.map { OutlierView(id: $0.imageId, distance: $0.distance) }))
        }
        router.get("/v1/quests") { _, context in
            let user = try context.require(.supplier, .requester, .trainer)
            let quests = try await offload { try Quests(catalog: hub.catalog).list { user.mayRead(ownedBy: $0.uploaderId) } }
            struct View: Encodable { var quests: [Quest]; var generatedAt: Date }
            return try JSON.response(View(quests: quests, generatedAt: Date()))
        }
        router.get("/v1/labels/:name/quality") { _, context in
            _ = try context.require(.supplier, .requester, .trainer)
            let name = try Self.labelParameter(context)
            let (label, quality) = try await offload { () throws -> (LabelRecord, LabelQuality) in
                guard let label = try hub.catalog.label(named: name) else { throw HubError(404, "label.unknown", "label '\(name)' does not exist") }
                return (label, try hub.workers.quality.inForce(labelId: label.id!))
            }
            struct View: Encodable {
                var label: String; var learning: Bool; var acceptedImages: Int; var reviewAccepted: Int; var reviewRejected: Int
                var computedAt: Date; var inForce: QualityThresholds; var thresholds: [LabelQuality.Threshold]
            }
            return try JSON.response(View(label: label.name, learning: quality.learning, acceptedImages: quality.acceptedImages,
                                          reviewAccepted: quality.reviewAccepted, reviewRejected: quality.reviewRejected,
                                          computedAt: quality.computedAt, inForce: quality.inForce, thresholds: quality.thresholds))
        }
    }

    /// The named label's clusters, fresh (computed now when the stored ones are stale).
    func clusters(_ context: HubContext) async throws -> (String, LabelClustersRecord) {
        let stage = try embedStage()
        let name = try Self.labelParameter(context)
        let minimum = hub.settings.clusterMinImages
        return try await offload {
            guard let label = try hub.catalog.label(named: name) else {
                throw HubError(404, "label.unknown", "label '\(name)' does not exist")
            }
            guard let record = try stage.clusters(labelId: label.id!) else {
                throw HubError(409, "label.too_small", "label '\(name)' has fewer than \(minimum) accepted, embedded images to cluster",
                               details: ["minimum": "\(minimum)"])
            }
            return (label.name, record)
        }
    }

    static func labelParameter(_ context: HubContext) throws -> String {
        let raw = try context.parameters.require("name")
        return raw.removingPercentEncoding ?? raw
    }
}
