import Catalog
import Embedding
import Foundation
import HubCore
import Imaging
import Logging
import ONNX
import Synchronization
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
    /// `grouped` (default): near duplicates and bursts stay on one side of the split; `random`.
    public var split: String?
    /// Fine-tune the backbone's last block and head convolution with the head (`Trainer.fineTune`), for
    /// `fineTuneEpochs` passes (default 10), instead of a linear head on the frozen backbone.
    public var fineTune: Bool?
    public var fineTuneEpochs: Int?

    public init(labels: [String], descendants: Bool? = nil, minImagesPerLabel: Int? = nil, validationFraction: Double? = nil,
                seed: UInt64? = nil, maxEpochs: Int? = nil, split: String? = nil, fineTune: Bool? = nil, fineTuneEpochs: Int? = nil) {
        self.labels = labels; self.descendants = descendants; self.minImagesPerLabel = minImagesPerLabel
        self.validationFraction = validationFraction; self.seed = seed; self.maxEpochs = maxEpochs; self.split = split
        self.fineTune = fineTune; self.fineTuneEpochs = fineTuneEpochs
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
    /// The tail that predictions of fine-tuned models run through, with the id of the model whose weights it holds.
    let predictionTail = Mutex<(modelId: String, tail: Tail)?>(nil)
    /// Models as predictions use them, by id (a model never changes once made: decoded once, not per image).
    let trainedModels = Mutex<[String: TrainedModel]>([:])
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
        if let split = request.split, split != "grouped", split != "random" {
            throw HubError(400, "field.invalid", "`split` must be `grouped` or `random`")
        }
        if let epochs = request.fineTuneEpochs, !(1...100).contains(epochs) {
            throw HubError(400, "field.invalid", "`fine_tune_epochs` must be between 1 and 100")
        }
        if request.fineTune == true, !FileManager.default.fileExists(atPath: tailPath.path) {
            throw HubError(409, "training.fine_tune_unavailable", "fine-tuning needs the set-up's \(tailPath.path): run `make setup`")
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
        let examples = images.map {
            Example(imageId: $0.imageId, label: index[$0.label]!, vector: Vectors.decode($0.vector), phash: $0.phash, device: $0.device,
                    capturedAt: $0.capturedAt.flatMap { try? Date.ISO8601FormatStyle().parse($0) }, duplicateOf: $0.duplicateOf)
        }
        var options = TrainingOptions()
        options.split = request.split ?? "grouped"
        options.nearDuplicateCosine = settings.nearDuplicateCosine
        options.nearDuplicateHamming = settings.nearDuplicateDistance
        options.burstSeconds = settings.trainingBurstSeconds
        options.seed = request.seed ?? 1
        options.validationFraction = request.validationFraction ?? 0.2
        if let epochs = request.maxEpochs { options.maxEpochs = max(1, epochs) }
        options.fineTune = request.fineTune ?? false
        if let epochs = request.fineTuneEpochs { options.fineTuneEpochs = epochs }
        var curves: [EpochMetrics] = []
        let onSplit: ([String]) throws -> Void = { validation in try self.catalog.recordSplit(versionId: version.id, validation: validation) }
        // Each epoch's curves extend the job's lease; stretches without epochs (fine-tuning's frozen pass and
        // refit) extend it with the curves as they stand, so that no other node takes a job still running.
        let keepAlive: () -> Void = {
            let progress = String(decoding: (try? Self.snake.encode(curves)) ?? Data("[]".utf8), as: UTF8.self)
            try? self.catalog.recordTrainingProgress(id: job.id, worker: worker, epoch: curves.last?.epoch ?? 0, progress: progress,
                                                     lease: self.settings.leaseSeconds)
        }
        let onEpoch: (EpochMetrics) -> Void = { m in
            curves.append(m)
            keepAlive()
        }
        var classifier: LinearClassifier, report: TrainingReport
        if options.fineTune {
            let started = ContinuousClock.now
            let tail = try Tail(path: tailPath.path, inputSize: stage.backbone.input.size)
            let rows = try frozenRows(images, tail: tail, keepAlive: keepAlive)
            let frozenSeconds = (ContinuousClock.now - started).seconds
            // The linear start and the model's features alike come from the tail (libtorch, float32), not
            // from the cached embeddings of the inference engine.
            var tuned = examples
            for (i, descriptor) in try tail.descriptors(rows).enumerated() { tuned[i].vector = descriptor }
            (classifier, report) = try Trainer.fineTune(tuned, rows: rows, tail: tail, labels: names, options: options, onSplit: onSplit,
                                                        onEpoch: onEpoch, keepAlive: keepAlive)
            report.fineTuning?.frozenSeconds = frozenSeconds
            report.fineTuning?.tail = try stage.blobs.put(try tail.state().withUnsafeBytes { Data($0) })
            report.trainingSeconds += frozenSeconds
        } else {
            (classifier, report) = try Trainer.train(examples, labels: names, options: options, onSplit: onSplit, onEpoch: onEpoch)
        }
        report.datasetVersion = version.id
        return ModelRecord(id: UUID().uuidString.lowercased(), trainingJobId: job.id,
                           labels: String(decoding: try JSONEncoder().encode(names), as: UTF8.self),
                           datasetVersionId: version.id, backbone: stage.backbone.id, accuracy: report.accuracy,
                           report: String(decoding: try Self.snake.encode(report), as: UTF8.self),
                           head: String(decoding: try JSONEncoder().encode(classifier), as: UTF8.self), createdAt: Date())
    }

    /// The set-up's TorchScript descriptor, whose last block fine-tuning trains.
    var tailPath: URL { stage.backbone.directory.appendingPathComponent("features.pt") }

    /// The frozen rows of training images, from their canonical renditions (32 at a time; `keepAlive` after
    /// each 32).
    func frozenRows(_ images: [TrainingImage], tail: Tail, keepAlive: () -> Void) throws -> [[Float]] {
        var rows: [[Float]] = []
        rows.reserveCapacity(images.count)
        for start in stride(from: 0, to: images.count, by: 32) {
            let batch = images[start..<min(start + 32, images.count)]
            var inputs: [Float] = []
            for image in batch {
                guard let key = image.canonicalKey else {
                    throw TrainingError("image \(image.imageId) has no stored rendition: fine-tuning needs its pixels")
                }
                inputs += try Image.modelInput(try stage.blobs.read(key), spec: stage.backbone.input)
            }
            rows += try tail.frozen(inputs, count: batch.count)
            keepAlive()
        }
        return rows
    }

    /// What predicting with a model takes: its head, and for a fine-tuned model the blob of its tuned tail.
    struct TrainedModel: Sendable {
        let id: String
        let head: LinearClassifier
        let tail: String?
    }

    /// The model's head and tail, decoded from the registry's row the first time it is asked for.
    func trained(_ model: ModelRecord) throws -> TrainedModel {
        if let known = trainedModels.withLock({ $0[model.id] }) { return known }
        let made = TrainedModel(id: model.id, head: try JSONDecoder().decode(LinearClassifier.self, from: Data(model.head.utf8)),
                                tail: try TrainingReport(stored: model.report).fineTuning?.tail)
        trainedModels.withLock { models in
            if models.count >= 64 { models.removeAll() }
            models[model.id] = made
        }
        return made
    }

    /// A tail holding a fine-tuned model's weights (its blob read when another model's were held, the tail
    /// opened once).
    func withTail<T>(of model: TrainedModel, key: String, _ body: (Tail) throws -> T) throws -> T {
        try predictionTail.withLock { held in
            if held == nil { held = ("", try Tail(path: tailPath.path, inputSize: stage.backbone.input.size)) }
            if held!.modelId != model.id {
                let data = try stage.blobs.read(key)
                let state = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                try held!.tail.setState(state)
                held!.modelId = model.id
            }
            return try body(held!.tail)
        }
    }

    /// One ONNX file with the backbone, the trained head and Softmax (see `ModelExport`).
    public func exportONNX(modelId: String) throws -> Data {
        guard let model = try catalog.model(id: modelId) else { throw HubError(404, "model.unknown", "no model \(modelId)") }
        // The file is the running backbone with this model's head: a head trained on another backbone's
        // features would not fit it (or, with the same size, silently mean something else).
        guard model.backbone == stage.backbone.id else {
            throw HubError(409, "model.backbone_changed", "model \(modelId) was trained on \(model.backbone), the hub runs \(stage.backbone.id): train it again")
        }
        let trained = try trained(model), head = trained.head
        let url = stage.backbone.directory.appendingPathComponent("backbone.onnx")
        guard let backbone = try? Data(contentsOf: url) else {
            throw HubError(503, "export.backbone_missing", "\(url.path) is missing: run `make setup`")
        }
        let spec = stage.backbone.input
        // A fine-tuned model carries its own last block and head convolution (batch norms folded, as the
        // set-up's export has them).
        var convolutions: [String: (weight: [Float], bias: [Float])] = [:]
        if let key = trained.tail {
            for c in try withTail(of: trained, key: key, { try $0.foldedConvolutions() }) { convolutions[c.module] = (c.weight, c.bias) }
        }
        return try ModelExport.classifier(backbone: backbone, labels: head.labels, weights: head.weights, bias: head.bias,
                                          mean: [Double](repeating: spec.mean, count: 3), std: [Double](repeating: spec.std, count: 3),
                                          inputSize: spec.size, resize: spec.resize, modelId: model.id, card: try modelCard(of: model),
                                          convolutions: convolutions)
    }

    /// The model card an exported model carries (`model_card` in its metadata): what it tells apart and how
    /// well per class, what it was trained on (the dataset version and its hash), how the split was made,
    /// and the exact preprocessing, so an app feeds it what the hub fed it.
    public func modelCard(of model: ModelRecord) throws -> String {
        let report = try TrainingReport(stored: model.report)
        let version = try catalog.datasetVersion(id: model.datasetVersionId)?.0
        let spec = stage.backbone.input
        struct Card: Encodable {
            struct ClassFigures: Encodable {
                var label: String; var precision: Double; var recall: Double; var f1: Double; var validationImages: Int; var trainImages: Int
            }
            struct Version: Encodable { var id: String; var manifestHash: String?; var imageCount: Int? }
            struct Preprocessing: Encodable {
                var decode: String; var orientation: String; var colour: String; var resize: String; var shortSide: Int
                var crop: String; var cropSize: Int
                var scale: String; var mean: [Double]; var std: [Double]; var layout: String
            }
            struct Split: Encodable {
                var rule: String; var validationFraction: Double; var seed: UInt64; var nearDuplicateCosine: Double?
                var nearDuplicateHamming: Int?; var burstSeconds: Double?; var crossingPairs: Int?; var randomSplitAccuracy: Double?
            }
            var modelId: String; var createdAt: Date; var task: String; var labels: [String]; var output: String
            var validationAccuracy: Double; var macroF1: Double; var validationImages: Int; var trainImages: Int
            var deliveredModelImages: Int?; var perClass: [ClassFigures]
            var datasetVersion: Version; var backbone: String; var head: String; var preprocessing: Preprocessing; var split: Split
        }
        let grouped = report.options.split != "random"
        let card = Card(
            modelId: model.id, createdAt: model.createdAt, task: "single-label image classification", labels: report.labels,
            output: "probabilities: N×\(report.labels.count) softmax, in the order of labels",
            validationAccuracy: report.accuracy, macroF1: report.macroF1, validationImages: report.validationImages,
            trainImages: report.trainImages, deliveredModelImages: report.deliveredModelImages,
            perClass: report.perClass.map { .init(label: $0.label, precision: $0.precision, recall: $0.recall, f1: $0.f1,
                                                   validationImages: $0.support, trainImages: $0.trainImages) },
            datasetVersion: .init(id: model.datasetVersionId, manifestHash: version?.manifestHash, imageCount: version?.imageCount),
            backbone: model.backbone,
            head: report.fineTuning == nil ? "L2-normalised backbone features → linear layer → softmax"
                : "the backbone's last block and head convolution fine-tuned with it; L2-normalised features → linear layer → softmax",
            preprocessing: .init(
                decode: "JPEG, PNG, WebP or HEIC decoded to 8-bit",
                orientation: "EXIF orientation applied: pixels upright",
                colour: "converted to sRGB through an embedded ICC profile when there is one, alpha flattened onto white, greyscale expanded to 3 bands",
                resize: "scaled so the short side is \(spec.resize) px, bilinear, aspect ratio kept", shortSide: spec.resize,
                crop: "centre \(spec.size)×\(spec.size)", cropSize: spec.size,
                scale: "x / 255, then (x − mean) / std per channel",
                mean: [Double](repeating: spec.mean, count: 3), std: [Double](repeating: spec.std, count: 3),
                layout: "float32 N×3×\(spec.size)×\(spec.size), channels RGB, input name `image`"),
            split: .init(rule: report.options.split, validationFraction: report.options.validationFraction, seed: report.options.seed,
                         nearDuplicateCosine: grouped ? report.options.nearDuplicateCosine : nil,
                         nearDuplicateHamming: grouped ? report.options.nearDuplicateHamming : nil,
                         burstSeconds: grouped ? report.options.burstSeconds : nil,
                         crossingPairs: report.split?.crossingPairs, randomSplitAccuracy: report.split?.randomSplitAccuracy))
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(card), as: UTF8.self)
    }

    /// Class probabilities for an image, best first, through the same preprocessing as ingest.
    public func predict(modelId: String, bytes: Data) async throws -> [(label: String, probability: Float)] {
        guard let model = try catalog.model(id: modelId) else { throw HubError(404, "model.unknown", "no model \(modelId)") }
        guard model.backbone == stage.backbone.id else {
            throw HubError(409, "model.backbone_changed", "model \(modelId) was trained on \(model.backbone), the hub runs \(stage.backbone.id)")
        }
        let trained = try trained(model)
        let input: [Float]
        do {
            input = try await offload { try self.pipeline.modelInput(for: bytes, spec: self.stage.backbone.input) }
        } catch let r as Rejection {
            throw HubError(422, r.code, r.message)
        } catch {
            throw HubError(422, "predict.undecodable", "the image cannot be decoded: \(error)")
        }
        let vector: [Float]
        if let key = trained.tail {
            vector = try await offload { try self.withTail(of: trained, key: key) { tail in try tail.descriptors(try tail.frozen(input, count: 1))[0] } }
        } else {
            vector = try await stage.embedder.embed(input).vector
        }
        let p = try trained.head.probabilities(vector)[0]
        return zip(trained.head.labels, p).map { (label: $0, probability: $1) }.sorted { $0.probability > $1.probability }
    }
}
