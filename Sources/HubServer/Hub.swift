import BlobStore
import Catalog
import Embedding
import Foundation
import HubCore
import Imaging
import Ingest
import Jobs
import Logging
import Organize

/// Everything one hub process runs on, assembled from a data directory and its settings.
public struct Hub: Sendable {
    public let dataDirectory: URL
    public let settings: HubSettings
    public let catalog: Catalog
    public let blobs: FileBlobStore
    public let ingestor: Ingestor
    public let pipeline: Pipeline
    public let workers: WorkerPool
    public let exporter: DatasetExporter
    /// tus resumable uploads in progress (bytes in `DATA/uploads`).
    public let uploads: ResumableUploads
    /// The backbone and what uses it; nil when `embedding.enabled` is false.
    public let embedStage: EmbedStage?
    /// Training jobs, models, predictions and ONNX export; nil without embeddings.
    public var training: TrainingService? { workers.training }
    public var webhooks: Webhooks { workers.webhooks }

    /// Opens (creating if needed) the hub stored in `dataDirectory`. With embedding on, `backbone` is
    /// used if given (tests share one), else loaded from `embedding.models`: on a thread of its own with
    /// `backgroundBackbone` (the first embedding waits for it; `embedStage.backbone.waitUntilLoaded()`
    /// says whether it loaded), which lets a bulk import store and decode its first photos meanwhile.
    public init(dataDirectory: URL, settings: HubSettings, backbone: Backbone? = nil, backgroundBackbone: Bool = false,
                logger: Logger = Logger(label: "imagehub")) throws {
        Vips.start(concurrency: settings.vipsConcurrency)
        HubMetrics.bootstrap()
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        self.dataDirectory = dataDirectory
        self.settings = settings
        catalog = try Catalog.open(dataDirectory: dataDirectory, url: settings.catalogURL)
        blobs = try FileBlobStore(root: dataDirectory.appendingPathComponent("blobs"))
        ingestor = Ingestor(catalog: catalog, blobs: blobs, settings: settings)
        uploads = try ResumableUploads(catalog: catalog, ingestor: ingestor, settings: settings,
                                       directory: dataDirectory.appendingPathComponent("uploads"))
        if settings.embeddingEnabled {
            guard let engine = InferenceEngine(rawValue: settings.embeddingEngine) else {
                throw HubError(400, "embedding.engine_invalid", "embedding.engine is \(settings.embeddingEngine); expected auto, openvino or libtorch")
            }
            let announce: @Sendable (Result<Backbone.EngineInfo, any Error>) -> Void = { [logger] loaded in
                switch loaded {
                case .success(let engine):
                    if let reason = engine.fallbackReason { logger.warning("embeddings run on libtorch: \(reason)") }
                    logger.info("backbone \(engine.id) on \(engine.description)")
                case .failure(let error):
                    logger.error("the backbone could not be loaded: \(error)")
                }
            }
            let model = try backbone ?? Backbone(directory: Backbone.defaultDirectory(configured: settings.modelsDirectory),
                                                 threads: settings.embeddingThreads, streams: settings.embeddingStreams,
                                                 channelsLast: settings.embeddingChannelsLast,
                                                 engine: engine, precision: settings.embeddingPrecision, inBackground: backgroundBackbone,
                                                 whenLoaded: announce)
            if let backbone { announce(.success(.init(id: backbone.id, description: backbone.engineDescription, fallbackReason: backbone.fallbackReason))) }
            embedStage = EmbedStage(backbone: model, catalog: catalog, blobs: blobs, settings: settings)
        } else {
            embedStage = nil
        }
        pipeline = Pipeline(settings: settings, blobs: blobs, modelInput: embedStage?.backbone.input)
        let uploads = self.uploads
        workers = WorkerPool(catalog: catalog, pipeline: pipeline, embedStage: embedStage, logger: logger,
                             housekeeping: { try uploads.expire() })
        exporter = DatasetExporter(catalog: catalog, blobs: blobs)
    }

    /// Opens the hub in `path`, reading `imagehub.json` there and `IMAGEHUB_*` variables.
    /// `processing: false` (catalog-only commands) skips loading the backbone.
    public static func open(path: String, processing: Bool = true, backgroundBackbone: Bool = false,
                            configure: (inout HubSettings) -> Void = { _ in }) async throws -> Hub {
        var settings = try await HubSettings.load(dataDirectory: path)
        if !processing { settings.embeddingEnabled = false }
        configure(&settings)
        return try Hub(dataDirectory: URL(fileURLWithPath: path), settings: settings, backgroundBackbone: backgroundBackbone)
    }
}
