import Configuration
import Foundation
import SystemPackage

/// Every limit and threshold of the hub, read once from `DATA/imagehub.json` and `IMAGEHUB_*`
/// environment variables (the environment wins), with the documented defaults below.
public struct HubSettings: Sendable, Equatable {
    /// Largest accepted upload body in bytes (`upload.maxBytes`, default 40 MB).
    public var maxUploadBytes = 40 * 1024 * 1024
    /// Formats accepted, by name (`verify.formats`, default jpeg,png,webp,heif).
    public var allowedFormats = ["jpeg", "png", "webp", "heif"]
    /// Largest accepted image in megapixels, checked from the header (`verify.maxMegapixels`).
    public var maxMegapixels = 100.0
    /// Largest accepted side in pixels (`verify.maxSide`).
    public var maxSide = 20_000
    /// Smallest accepted side in pixels (`verify.minSide`).
    public var minSide = 64
    /// Below this variance of the Laplacian an image is `quality.blurry` (`quality.minSharpness`).
    public var minSharpness = 25.0
    /// Below this mean luminance (0–255) an image is `quality.too_dark` (`quality.minBrightness`).
    public var minBrightness = 30.0
    /// Above this mean luminance an image is `quality.overexposed` (`quality.maxBrightness`).
    public var maxBrightness = 235.0
    /// Below this luminance standard deviation an image is `quality.low_contrast` (`quality.minContrast`).
    public var minContrast = 12.0
    /// The loosest thresholds a label may learn (`quality.floor.minSharpness`, `.minBrightness`,
    /// `.maxBrightness`, `.minContrast`): however dark a label's photos are by nature, nothing darker passes.
    public var qualityFloor = QualityThresholds(minSharpness: 5, minBrightness: 8, maxBrightness: 250, minContrast: 4)
    /// Accepted images a label needs before it learns its own quality thresholds (`quality.learn.minImages`;
    /// 0 turns learning off: every label keeps the global thresholds).
    public var qualityLearnMinImages = 20
    /// The share of a label's accepted images its learned thresholds may leave outside (`quality.learn.quantile`).
    public var qualityLearnQuantile = 0.05
    /// Perceptual-hash Hamming distance at or under which two images are near duplicates (`duplicates.maxHamming`).
    public var nearDuplicateDistance = 6
    /// Long side of the canonical image (`preprocess.canonicalSide`).
    public var canonicalSide = 1024
    /// Long side of the thumbnail (`preprocess.thumbnailSide`).
    public var thumbnailSide = 256
    /// JPEG quality of canonical images and thumbnails (`preprocess.jpegQuality`).
    public var jpegQuality = 88
    /// Concurrent pipeline workers (`workers.count`, default: twice the core count, since a job waits on
    /// the embedder for part of its time); 0 makes an API-only node that stores uploads and leaves the
    /// processing to other nodes.
    public var workers = 2 * ProcessInfo.processInfo.activeProcessorCount
    /// Whether `workers.count` was set (a bulk import picks its own count otherwise).
    public var workersConfigured = false
    /// Attempts before a job is dead-lettered (`jobs.maxAttempts`).
    public var maxAttempts = 5
    /// Seconds a worker owns a job before another may take it over (`jobs.leaseSeconds`).
    public var leaseSeconds = 120.0
    /// First retry delay in seconds, doubled on each attempt (`jobs.backoffSeconds`).
    public var backoffSeconds = 1.0
    /// libvips worker threads per operation (`vips.concurrency`, default 1: jobs already run in parallel).
    public var vipsConcurrency = 1
    /// Embed accepted uploads with the backbone (`embedding.enabled`); off, the hub runs without
    /// tags, label checks, semantic duplicates, clusters or similarity search.
    public var embeddingEnabled = true
    /// Directory of the converted backbone (`embedding.models`, default `models/efficientnet-lite0`
    /// under the working directory or the checkout the executable was built in).
    public var modelsDirectory: String? = nil
    /// Largest embedding batch (`embedding.batchSize`).
    public var embeddingBatchSize = 32
    /// Longest wait for a batch to fill, in milliseconds (`embedding.maxWaitMs`).
    public var embeddingMaxWaitMs = 10
    /// What runs the backbone (`embedding.engine`): `auto` (OpenVINO when `make setup` installed it, else
    /// libtorch), `openvino` or `libtorch`.
    public var embeddingEngine = "auto"
    /// OpenVINO's inference precision (`embedding.precision`): `auto` (the default: the set-up's int8 copy
    /// where it and OpenVINO are there, else bf16 where the CPU computes it natively, AVX-512 BF16 or AMX,
    /// else f32), `int8` (the int8 copy, with bf16 or f32 as `auto` picks for the layers left in float: its
    /// vectors are of a backbone id of their own, the checks measured on them), `f32` (the same vectors as
    /// libtorch) or `bf16` (vectors 0.998 cosine to f32's: the checks and thresholds hold, measured).
    public var embeddingPrecision = "auto"
    /// Inference threads (`embedding.threads`, default: the core count).
    public var embeddingThreads = ProcessInfo.processInfo.activeProcessorCount
    /// OpenVINO streams (`embedding.streams`): batches that run at once, the threads shared out among them;
    /// 0 (the default) is one a thread, each batch on one thread.
    public var embeddingStreams = 0
    /// Feed the network channels-last (NHWC) memory as libvips produces it (`embedding.channelsLast`).
    public var embeddingChannelsLast = true
    /// Cosine similarity at or above which an upload is a near duplicate of an accepted image of the same
    /// label where keypoints cannot judge (`duplicates.minCosine`). Distinct photos of one look-alike class
    /// reach 0.90 at most between descriptors, resized and recompressed copies 0.91 at the median.
    public var nearDuplicateCosine = 0.92
    /// Accepted images of the label at least this similar (cosine) are near-duplicate candidates, checked
    /// by local features (`duplicates.candidateCosine`).
    public var nearDuplicateCandidateCosine = 0.75
    /// Candidates checked per upload, nearest first (`duplicates.maxCandidates`).
    public var nearDuplicateMaxCandidates = 3
    /// Keypoint matches one similarity transform must explain for a copy (`duplicates.minInliers`).
    public var nearDuplicateMinInliers = 25
    /// Accepted images a label needs before uploads to it are checked against it (`labels.verifyMinImages`).
    public var verifyMinImages = 20
    /// The share of uploads expected to carry a wrong label before any is looked at (`labels.wrongPrior`):
    /// the label check quarantines an upload when, after looking, a wrong label is more likely than not.
    public var labelWrongPrior = 0.1
    /// The half-life, in judged uploads, of the evidence that estimates the share of wrong labels the stream
    /// carries (`labels.wrongPriorHalfLife`): the prior is that estimate where it is above
    /// `labels.wrongPrior` (`StreamPrior`). 0 keeps the prior fixed.
    public var labelWrongPriorHalfLife = 25
    /// Accepted images a label needs before it is clustered (`clusters.minImages`).
    public var clusterMinImages = 8
    /// Largest k tried when clustering (`clusters.maxK`).
    public var clusterMaxK = 8
    /// Fraction by which a label must change before its clusters are recomputed (`clusters.recomputeFraction`).
    public var clusterRecomputeFraction = 0.05
    /// Seconds between background passes (re-checks, clustering) (`maintenance.intervalSeconds`).
    public var maintenanceInterval = 5.0
    /// Accepted images each label needs before it can be trained on (`training.minImagesPerLabel`).
    public var trainingMinImages = 10
    /// Photos from one device whose capture times (`captured_at`) are at most this many seconds apart are
    /// one burst, kept on one side of a training split (`training.burstSeconds`).
    public var trainingBurstSeconds = 3.0
    /// Hosts webhooks may be sent to (`webhooks.allowedHosts`, comma-separated; `*` allows any public
    /// host). Loopback and private addresses are refused unless named here.
    public var webhookAllowedHosts: [String] = []
    /// Delivery attempts before a webhook is given up (`webhooks.maxAttempts`).
    public var webhookMaxAttempts = 6
    /// Longest wait for a webhook receiver's answer before the attempt counts as failed (`webhooks.timeoutSeconds`).
    public var webhookTimeoutSeconds = 10.0

    /// Seconds an unfinished resumable upload is kept (`uploads.expireSeconds`, default a day).
    public var uploadExpirySeconds = 86_400.0
    /// Processing backlog (queued + running jobs) above which new uploads get 503 + Retry-After
    /// (`backpressure.highWater`).
    public var backlogHighWater = 10_000
    /// The Retry-After value in seconds (`backpressure.retryAfterSeconds`).
    public var retryAfterSeconds = 5
    /// Seconds a node stopping on SIGTERM waits for the requests and jobs it holds (`server.drainSeconds`);
    /// past them it cancels what is left (a job's lease then hands it to another worker) and exits.
    public var drainSeconds = 30.0

    /// The PostgreSQL catalog many nodes share (`catalog.url`, for example
    /// `postgres://hub:secret@127.0.0.1:5432/hub`); unset, the catalog is SQLite in the data directory.
    public var catalogURL: String? = nil

    public init() {}

    /// The name of the optional configuration file inside the data directory.
    public static let fileName = "imagehub.json"

    /// Reads settings for the hub whose data lives in `dataDirectory`.
    public static func load(dataDirectory: String, environment: [String: String] = ProcessInfo.processInfo.environment) async throws -> HubSettings {
        let env = EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: ["imagehub"])
        let file = try await FileProvider<JSONSnapshot>(filePath: FilePath(dataDirectory + "/" + fileName), allowMissing: true)
        return HubSettings(reader: ConfigReader(providers: [env, file]))
    }

    /// Settings from any configuration reader, falling back to the defaults key by key.
    public init(reader c: ConfigReader) {
        let d = HubSettings()
        maxUploadBytes = c.int(forKey: "upload.maxBytes", default: d.maxUploadBytes)
        allowedFormats = c.stringArray(forKey: "verify.formats", default: d.allowedFormats)
        maxMegapixels = c.double(forKey: "verify.maxMegapixels", default: d.maxMegapixels)
        maxSide = c.int(forKey: "verify.maxSide", default: d.maxSide)
        minSide = c.int(forKey: "verify.minSide", default: d.minSide)
        minSharpness = c.double(forKey: "quality.minSharpness", default: d.minSharpness)
        minBrightness = c.double(forKey: "quality.minBrightness", default: d.minBrightness)
        maxBrightness = c.double(forKey: "quality.maxBrightness", default: d.maxBrightness)
        minContrast = c.double(forKey: "quality.minContrast", default: d.minContrast)
        qualityFloor = QualityThresholds(
            minSharpness: c.double(forKey: "quality.floor.minSharpness", default: d.qualityFloor.minSharpness),
            minBrightness: c.double(forKey: "quality.floor.minBrightness", default: d.qualityFloor.minBrightness),
            maxBrightness: c.double(forKey: "quality.floor.maxBrightness", default: d.qualityFloor.maxBrightness),
            minContrast: c.double(forKey: "quality.floor.minContrast", default: d.qualityFloor.minContrast))
        qualityLearnMinImages = max(0, c.int(forKey: "quality.learn.minImages", default: d.qualityLearnMinImages))
        qualityLearnQuantile = min(0.5, max(0, c.double(forKey: "quality.learn.quantile", default: d.qualityLearnQuantile)))
        nearDuplicateDistance = c.int(forKey: "duplicates.maxHamming", default: d.nearDuplicateDistance)
        canonicalSide = c.int(forKey: "preprocess.canonicalSide", default: d.canonicalSide)
        thumbnailSide = c.int(forKey: "preprocess.thumbnailSide", default: d.thumbnailSide)
        jpegQuality = c.int(forKey: "preprocess.jpegQuality", default: d.jpegQuality)
        workers = max(0, c.int(forKey: "workers.count", default: d.workers))
        workersConfigured = c.int(forKey: "workers.count") != nil
        maxAttempts = max(1, c.int(forKey: "jobs.maxAttempts", default: d.maxAttempts))
        leaseSeconds = c.double(forKey: "jobs.leaseSeconds", default: d.leaseSeconds)
        backoffSeconds = c.double(forKey: "jobs.backoffSeconds", default: d.backoffSeconds)
        vipsConcurrency = max(1, c.int(forKey: "vips.concurrency", default: d.vipsConcurrency))
        embeddingEnabled = c.bool(forKey: "embedding.enabled", default: d.embeddingEnabled)
        modelsDirectory = c.string(forKey: "embedding.models")
        embeddingBatchSize = max(1, c.int(forKey: "embedding.batchSize", default: d.embeddingBatchSize))
        embeddingMaxWaitMs = max(0, c.int(forKey: "embedding.maxWaitMs", default: d.embeddingMaxWaitMs))
        embeddingEngine = c.string(forKey: "embedding.engine", default: d.embeddingEngine)
        embeddingPrecision = c.string(forKey: "embedding.precision", default: d.embeddingPrecision)
        embeddingThreads = max(1, c.int(forKey: "embedding.threads", default: d.embeddingThreads))
        embeddingStreams = max(0, c.int(forKey: "embedding.streams", default: d.embeddingStreams))
        embeddingChannelsLast = c.bool(forKey: "embedding.channelsLast", default: d.embeddingChannelsLast)
        nearDuplicateCosine = c.double(forKey: "duplicates.minCosine", default: d.nearDuplicateCosine)
        nearDuplicateCandidateCosine = c.double(forKey: "duplicates.candidateCosine", default: d.nearDuplicateCandidateCosine)
        nearDuplicateMaxCandidates = max(0, c.int(forKey: "duplicates.maxCandidates", default: d.nearDuplicateMaxCandidates))
        nearDuplicateMinInliers = max(4, c.int(forKey: "duplicates.minInliers", default: d.nearDuplicateMinInliers))
        verifyMinImages = max(1, c.int(forKey: "labels.verifyMinImages", default: d.verifyMinImages))
        labelWrongPrior = min(0.5, max(0.001, c.double(forKey: "labels.wrongPrior", default: d.labelWrongPrior)))
        labelWrongPriorHalfLife = max(0, c.int(forKey: "labels.wrongPriorHalfLife", default: d.labelWrongPriorHalfLife))
        clusterMinImages = max(4, c.int(forKey: "clusters.minImages", default: d.clusterMinImages))
        clusterMaxK = max(2, c.int(forKey: "clusters.maxK", default: d.clusterMaxK))
        clusterRecomputeFraction = c.double(forKey: "clusters.recomputeFraction", default: d.clusterRecomputeFraction)
        maintenanceInterval = c.double(forKey: "maintenance.intervalSeconds", default: d.maintenanceInterval)
        trainingMinImages = max(2, c.int(forKey: "training.minImagesPerLabel", default: d.trainingMinImages))
        trainingBurstSeconds = max(0, c.double(forKey: "training.burstSeconds", default: d.trainingBurstSeconds))
        webhookAllowedHosts = c.stringArray(forKey: "webhooks.allowedHosts", default: d.webhookAllowedHosts)
        webhookMaxAttempts = max(1, c.int(forKey: "webhooks.maxAttempts", default: d.webhookMaxAttempts))
        webhookTimeoutSeconds = max(0.1, c.double(forKey: "webhooks.timeoutSeconds", default: d.webhookTimeoutSeconds))
        uploadExpirySeconds = c.double(forKey: "uploads.expireSeconds", default: d.uploadExpirySeconds)
        backlogHighWater = max(1, c.int(forKey: "backpressure.highWater", default: d.backlogHighWater))
        retryAfterSeconds = max(1, c.int(forKey: "backpressure.retryAfterSeconds", default: d.retryAfterSeconds))
        drainSeconds = max(1, c.double(forKey: "server.drainSeconds", default: d.drainSeconds))
        catalogURL = c.string(forKey: "catalog.url").flatMap { $0.isEmpty ? nil : $0 }
    }
}
