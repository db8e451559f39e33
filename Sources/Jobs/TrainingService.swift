import Catalog
import Embedding
import Foundation
import HubCore
import Logging
import ONNX
import Training
import Verify

/// What `POST /v1/training-jobs` asks for.
public struct TrainingRequest: Codable, Sendable {
    public var labels: [String]
    public var descendants: Bool?
    public var minImagesPerLabel: Int?
    public var validationFraction: Double?
    public var seed: UInt64?
    public var maxEpochs: Int?

    public init(labels: [String], descendants: Bool? = nil, minImagesPerLabel: Int? = nil, validationFraction: Double? = nil,
                seed: UInt64? = nil, maxEpochs: Int? = nil) {
        self.labels = labels; self.descendants = descendants; self.minImagesPerLabel = minImagesPerLabel
        self.validationFraction = validationFraction; self.seed = seed; self.maxEpochs = maxEpochs
    }
}

/// Training on demand: validates requests, runs queued training jobs (leased, so another node takes over
/// a crashed one), and serves predictions of the models it made.
public final class TrainingService: Sendable {
    let catalog: Catalog
    let stage: EmbedStage
    let pipeline: Pipeline
    let settings: HubSettings
    let logger: Logger
    static let snake: JSONEncoder = {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        return e
    }()

    public init(catalog: Catalog, stage: EmbedStage, pipeline: Pipeline, settings: HubSettings,
                logger: Logger = Logger(label: "imagehub.training")) {
        self.catalog = catalog
        self.stage = stage
        self.pipeline = pipeline
        self.settings = settings
        self.logger = logger
    }

    /// Checks a request and queues its job. Labels short of images → 409 listing each with its count, and
    /// the requester is put on the watch-list for them (notified when they reach the minimum).
    public func submit(_ request: TrainingRequest, requesterId: Int64) throws -> TrainingJobRecord {
        let names = request.labels.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard Set(names.map { $0.lowercased() }).count >= 2, names.count == request.labels.count else {
            throw HubError(400, "field.invalid", "`labels` needs at least two distinct label names")
        }
        if let f = request.validationFraction, !(f > 0 && f < 1) {
            throw HubError(400, "field.invalid", "`validation_fraction` must be between 0 and 1")
        }
        var labels: [LabelRecord] = []
        for name in names {
            guard let label = try catalog.label(named: name) else { throw HubError(404, "label.unknown", "label '\(name)' does not exist") }
            labels.append(label)
        }
        let minimum = max(2, request.minImagesPerLabel ?? settings.trainingMinImages)
        let images = try catalog.trainingImages(labels: labels, descendants: request.descendants ?? true)
            .filter { $0.model == stage.backbone.id }
        let counts = Dictionary(grouping: images, by: \.label).mapValues(\.count)
        let short = labels.filter { (counts[$0.name] ?? 0) < minimum }
        if !short.isEmpty {
            for label in short { try catalog.watch(labelId: label.id!, threshold: minimum, webhookUrl: nil, userId: requesterId) }
            let list = short.map { "\($0.name) (\(counts[$0.name] ?? 0))" }.joined(separator: ", ")
            throw HubError(409, "training.not_enough_images",
                           "labels short of \(minimum) accepted images: \(list); you are on the watch-list for them",
                           details: Dictionary(uniqueKeysWithValues: short.map { ($0.name, "\(counts[$0.name] ?? 0)") }))
        }
        var normalised = request
        normalised.labels = labels.map(\.name)
        return try catalog.createTrainingJob(requesterId: requesterId,
                                             request: String(decoding: try JSONEncoder().encode(normalised), as: UTF8.self))
    }

    /// Runs one queued job if there is one; returns whether it did.
    @discardableResult
    public func runNext(worker: String) throws -> Bool {
        guard let job = try catalog.claimTrainingJob(worker: worker, lease: settings.leaseSeconds) else { return false }
        do {
            let model = try train(job, worker: worker)
            try catalog.finishTrainingJob(id: job.id, worker: worker, model: model, error: nil)
            logger.info("training job \(job.id) succeeded: model \(model.id), accuracy \(model.accuracy)")
        } catch {
            logger.warning("training job \(job.id) failed: \(error)")
            try catalog.finishTrainingJob(id: job.id, worker: worker, model: nil, error: "\(error)")
        }
        return true
    }

    func train(_ job: TrainingJobRecord, worker: String) throws -> ModelRecord {
        let request = try JSONDecoder().decode(TrainingRequest.self, from: Data(job.request.utf8))
        let labels = try request.labels.map { name in
            guard let label = try catalog.label(named: name) else { throw TrainingError("label '\(name)' no longer exists") }
            return label
        }
        let images = try catalog.trainingImages(labels: labels, descendants: request.descendants ?? true)
            .filter { $0.model == stage.backbone.id }
        let names = labels.map(\.name)
        let version = try catalog.freezeDatasetVersion(jobId: job.id, labels: names, images: images)
        let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        let examples = images.map { Example(imageId: $0.imageId, label: index[$0.label]!, vector: Vectors.decode($0.vector)) }
        var options = TrainingOptions()
        options.seed = request.seed ?? 1
        options.validationFraction = request.validationFraction ?? 0.2
        if let epochs = request.maxEpochs { options.maxEpochs = max(1, epochs) }
        var curves: [EpochMetrics] = []
        var (classifier, report) = try Trainer.train(examples, labels: names, options: options) { m in
            curves.append(m)
            let progress = String(decoding: (try? Self.snake.encode(curves)) ?? Data("[]".utf8), as: UTF8.self)
            try? self.catalog.recordTrainingProgress(id: job.id, worker: worker, epoch: m.epoch, progress: progress,
                                                     lease: self.settings.leaseSeconds)
        }
        report.datasetVersion = version.id
        return ModelRecord(id: UUID().uuidString.lowercased(), trainingJobId: job.id,
                           labels: String(decoding: try JSONEncoder().encode(names), as: UTF8.self),
                           datasetVersionId: version.id, backbone: stage.backbone.id, accuracy: report.accuracy,
                           report: String(decoding: try Self.snake.encode(report), as: UTF8.self),
                           head: String(decoding: try JSONEncoder().encode(classifier), as: UTF8.self), createdAt: Date())
    }

    /// One ONNX file with the backbone, the trained head and Softmax (see `ModelExport`).
    public func exportONNX(modelId: String) throws -> Data {
        guard let model = try catalog.model(id: modelId) else { throw HubError(404, "model.unknown", "no model \(modelId)") }
        let head = try classifier(of: model)
        let url = stage.backbone.directory.appendingPathComponent("backbone.onnx")
        guard let backbone = try? Data(contentsOf: url) else {
            throw HubError(503, "export.backbone_missing", "\(url.path) is missing: run `make setup`")
        }
        let spec = stage.backbone.input
        return try ModelExport.classifier(backbone: backbone, labels: head.labels, weights: head.weights, bias: head.bias,
                                          mean: [Double](repeating: spec.mean, count: 3), std: [Double](repeating: spec.std, count: 3),
                                          inputSize: spec.size, modelId: model.id)
    }

    /// The model's trained head.
    public func classifier(of model: ModelRecord) throws -> LinearClassifier {
        try JSONDecoder().decode(LinearClassifier.self, from: Data(model.head.utf8))
    }

    /// Class probabilities for an image, best first, through the same preprocessing as ingest.
    public func predict(modelId: String, bytes: Data) async throws -> [(label: String, probability: Float)] {
        guard let model = try catalog.model(id: modelId) else { throw HubError(404, "model.unknown", "no model \(modelId)") }
        guard model.backbone == stage.backbone.id else {
            throw HubError(409, "model.backbone_changed", "model \(modelId) was trained on \(model.backbone), the hub runs \(stage.backbone.id)")
        }
        let head = try classifier(of: model)
        let input: [Float]
        do {
            input = try await offload { try self.pipeline.modelInput(for: bytes, spec: self.stage.backbone.input) }
        } catch let r as Rejection {
            throw HubError(422, r.code, r.message)
        } catch {
            throw HubError(422, "predict.undecodable", "the image cannot be decoded: \(error)")
        }
        let embedding = try await stage.embedder.embed(input)
        let p = try head.probabilities(embedding.vector)[0]
        return zip(head.labels, p).map { (label: $0, probability: $1) }.sorted { $0.probability > $1.probability }
    }
}
