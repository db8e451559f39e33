import BlobStore
import Catalog
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

    /// Opens (creating if needed) the hub stored in `dataDirectory`.
    public init(dataDirectory: URL, settings: HubSettings, logger: Logger = Logger(label: "imagehub")) throws {
        Vips.start(concurrency: settings.vipsConcurrency)
        HubMetrics.bootstrap()
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        self.dataDirectory = dataDirectory
        self.settings = settings
        catalog = try Catalog(path: dataDirectory.appendingPathComponent("catalog.sqlite").path)
        blobs = try FileBlobStore(root: dataDirectory.appendingPathComponent("blobs"))
        ingestor = Ingestor(catalog: catalog, blobs: blobs, settings: settings)
        pipeline = Pipeline(settings: settings, blobs: blobs)
        workers = WorkerPool(catalog: catalog, pipeline: pipeline, logger: logger)
        exporter = DatasetExporter(catalog: catalog, blobs: blobs)
    }

    /// Opens the hub in `path`, reading `imagehub.json` there and `IMAGEHUB_*` variables.
    public static func open(path: String) async throws -> Hub {
        let settings = try await HubSettings.load(dataDirectory: path)
        return try Hub(dataDirectory: URL(fileURLWithPath: path), settings: settings)
    }
}
