import Catalog
import Foundation
import HubCore
import Hummingbird
import Ingest
import Jobs
import NIOCore
import Training

extension HubRoutes {
    func trainingService() throws -> TrainingService {
        guard let training = hub.training else {
            throw HubError(503, "embedding.disabled", "this hub runs without embeddings, so it cannot train (embedding.enabled = false)")
        }
        return training
    }

    func addTrainingRoutes(to router: RouteRecorder) {
        router.post("/v1/training-jobs") { request, context in
            let user = try context.require(.trainer)
            let training = try trainingService()
            let body = try await JSON.decode(TrainingRequest.self, from: request, context: context)
            let job = try await offload { try training.submit(body, requesterId: user.id!) }
            return try JSON.response(TrainingJobView(job), status: .accepted)
        }
        router.get("/v1/training-jobs/:id") { _, context in
            _ = try context.require(.trainer, .requester)
            let id = try context.parameters.require("id")
            guard let job = try await offload({ try hub.catalog.trainingJob(id: id) }) else {
                throw HubError(404, "training.unknown", "no training job \(id)")
            }
            return try JSON.response(TrainingJobView(job))
        }
        router.get("/v1/models") { _, context in
            _ = try context.require(.trainer, .requester)
            let models = try await offload { try hub.catalog.models() }
            return try JSON.response(["models": models.map(ModelView.init)])
        }
        router.get("/v1/models/:id") { _, context in
            _ = try context.require(.trainer, .requester)
            return try JSON.response(ModelView(try await model(context)))
        }
        router.get("/v1/models/:id/report") { _, context in
            _ = try context.require(.trainer, .requester)
            let model = try await model(context)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: model.report)))
        }
        router.get("/v1/models/:id/report.svg") { _, context in
            _ = try context.require(.trainer, .requester)
            let model = try await model(context)
            let report = try TrainingReport(stored: model.report)
            let svg = ReportSVG.render(report, title: "model \(model.id) · \(report.labels.joined(separator: ", "))")
            return Response(status: .ok, headers: [.contentType: "image/svg+xml"], body: .init(byteBuffer: ByteBuffer(string: svg)))
        }
        router.post("/v1/models/:id/predict") { request, context in
            _ = try context.require(.trainer, .requester, .supplier)
            let training = try trainingService()
            let id = try context.parameters.require("id")
            // The same streaming parser as uploads: type sniffed from the first bytes, size capped, body on disk.
            let upload = try MultipartUpload(contentType: request.headers[.contentType], verifier: hub.ingestor.verifier,
                                             blobs: hub.blobs, maxBytes: hub.settings.maxUploadBytes)
            for try await buffer in request.body { try upload.consume(buffer) }
            let received = try upload.finish()
            defer { try? FileManager.default.removeItem(at: received.file) }
            let bytes = try Data(contentsOf: received.file)
            let predictions = try await training.predict(modelId: id, bytes: bytes)
            struct Prediction: Encodable { var label: String; var probability: Float }
            return try JSON.response(["predictions": predictions.map { Prediction(label: $0.label, probability: $0.probability) }])
        }
        router.get("/v1/models/:id/download") { request, context in
            _ = try context.require(.trainer, .requester)
            let training = try trainingService()
            let id = try context.parameters.require("id")
            guard (request.uri.queryParameters.get("format") ?? "onnx") == "onnx" else {
                throw HubError(400, "field.invalid", "format must be onnx")
            }
            let data = try await offload { try training.exportONNX(modelId: id) }
            return Response(status: .ok, headers: [.contentType: "application/octet-stream",
                                                   .contentDisposition: "attachment; filename=\"model-\(id).onnx\""],
                            body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        router.get("/v1/datasets/versions/:id") { _, context in
            _ = try context.require(.trainer, .requester)
            let id = try context.parameters.require("id")
            guard let (version, images) = try await offload({ try hub.catalog.datasetVersion(id: id) }) else {
                throw HubError(404, "dataset.unknown", "no dataset version \(id)")
            }
            struct Item: Encodable { var id: String; var label: String; var split: String? }
            struct View: Encodable { var id: String; var manifestHash: String; var labels: [String]; var imageCount: Int; var createdAt: Date; var images: [Item] }
            return try JSON.response(View(id: version.id, manifestHash: version.manifestHash,
                                          labels: (try? JSONDecoder().decode([String].self, from: Data(version.labels.utf8))) ?? [],
                                          imageCount: version.imageCount, createdAt: version.createdAt,
                                          images: images.map { Item(id: $0.imageId, label: $0.label, split: $0.split) }))
        }
        router.post("/v1/watchlist") { request, context in
            let user = try context.require(.requester, .trainer)
            struct Body: Decodable { var label: String; var threshold: Int; var webhookUrl: String? }
            let body = try await JSON.decode(Body.self, from: request, context: context)
            guard body.threshold >= 1 else { throw HubError(400, "field.invalid", "threshold must be at least 1") }
            if let url = body.webhookUrl { _ = try hub.webhooks.check(url) }
            let watch = try await offload { () throws -> WatchRecord in
                guard let label = try hub.catalog.label(named: body.label) else {
                    throw HubError(404, "label.unknown", "label '\(body.label)' does not exist")
                }
                return try hub.catalog.watch(labelId: label.id!, threshold: body.threshold, webhookUrl: body.webhookUrl, userId: user.id!)
            }
            return try JSON.response(try await watchView(watch), status: .created)
        }
        router.get("/v1/watchlist") { _, context in
            _ = try context.require(.requester, .trainer)
            let watches = try await offload { try hub.catalog.watches() }
            var views: [WatchView] = []
            for w in watches { views.append(try await watchView(w)) }
            return try JSON.response(["watches": views])
        }
    }

    func model(_ context: HubContext) async throws -> ModelRecord {
        let id = try context.parameters.require("id")
        guard let model = try await offload({ try hub.catalog.model(id: id) }) else { throw HubError(404, "model.unknown", "no model \(id)") }
        return model
    }

    struct DeliveryView: Encodable { var id: Int64; var state: String; var attempts: Int; var responseStatus: Int?; var lastError: String?; var payload: String }
    struct WatchView: Encodable {
        var id: Int64; var label: String; var threshold: Int; var webhookUrl: String?; var firedAt: Date?; var deliveries: [DeliveryView]
    }

    func watchView(_ w: WatchRecord) async throws -> WatchView {
        let (name, deliveries) = try await offload { (try labelName(w.labelId), try hub.catalog.deliveries(watchId: w.id!)) }
        return WatchView(id: w.id!, label: name, threshold: w.threshold, webhookUrl: w.webhookUrl, firedAt: w.firedAt,
                         deliveries: deliveries.map { DeliveryView(id: $0.id!, state: $0.state.rawValue, attempts: $0.attempts,
                                                                   responseStatus: $0.responseStatus, lastError: $0.lastError, payload: $0.payload) })
    }
}

struct TrainingJobView: Encodable {
    var id: String
    var state: String
    var epoch: Int
    var metrics: [EpochMetrics]
    var datasetVersion: String?
    var modelId: String?
    var error: String?
    var createdAt: Date
    var updatedAt: Date
    var links: [String: String]

    init(_ job: TrainingJobRecord) {
        id = job.id
        state = job.state.rawValue
        epoch = job.epoch
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        metrics = (try? decoder.decode([EpochMetrics].self, from: Data(job.progress.utf8))) ?? []
        datasetVersion = job.datasetVersionId
        modelId = job.modelId
        error = job.error
        createdAt = job.createdAt
        updatedAt = job.updatedAt
        var links = ["self": "/v1/training-jobs/\(job.id)"]
        if let m = job.modelId { links["model"] = "/v1/models/\(m)"; links["report"] = "/v1/models/\(m)/report" }
        if let d = job.datasetVersionId { links["dataset_version"] = "/v1/datasets/versions/\(d)" }
        self.links = links
    }
}

struct ModelView: Encodable {
    var id: String
    var labels: [String]
    var accuracy: Double
    var backbone: String
    var datasetVersion: String
    var trainingJob: String
    var createdAt: Date
    var links: [String: String]

    init(_ m: ModelRecord) {
        id = m.id
        labels = (try? JSONDecoder().decode([String].self, from: Data(m.labels.utf8))) ?? []
        accuracy = m.accuracy
        backbone = m.backbone
        datasetVersion = m.datasetVersionId
        trainingJob = m.trainingJobId
        createdAt = m.createdAt
        links = ["report": "/v1/models/\(m.id)/report", "report_svg": "/v1/models/\(m.id)/report.svg",
                 "predict": "/v1/models/\(m.id)/predict", "onnx": "/v1/models/\(m.id)/download?format=onnx",
                 "dataset_version": "/v1/datasets/versions/\(m.datasetVersionId)"]
    }
}
