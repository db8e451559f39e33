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
    /// Perceptual-hash Hamming distance at or under which two images are near duplicates (`duplicates.maxHamming`).
    public var nearDuplicateDistance = 6
    /// Long side of the canonical image (`preprocess.canonicalSide`).
    public var canonicalSide = 1024
    /// Long side of the thumbnail (`preprocess.thumbnailSide`).
    public var thumbnailSide = 256
    /// JPEG quality of canonical images and thumbnails (`preprocess.jpegQuality`).
    public var jpegQuality = 88
    /// Concurrent pipeline workers (`workers.count`, default: the core count); 0 makes an API-only node
    /// that stores uploads and leaves the processing to other nodes.
    public var workers = ProcessInfo.processInfo.activeProcessorCount
    /// Attempts before a job is dead-lettered (`jobs.maxAttempts`).
    public var maxAttempts = 5
    /// Seconds a worker owns a job before another may take it over (`jobs.leaseSeconds`).
    public var leaseSeconds = 120.0
    /// First retry delay in seconds, doubled on each attempt (`jobs.backoffSeconds`).
    public var backoffSeconds = 1.0
    /// libvips worker threads per operation (`vips.concurrency`, default 1: jobs already run in parallel).
    public var vipsConcurrency = 1

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
        nearDuplicateDistance = c.int(forKey: "duplicates.maxHamming", default: d.nearDuplicateDistance)
        canonicalSide = c.int(forKey: "preprocess.canonicalSide", default: d.canonicalSide)
        thumbnailSide = c.int(forKey: "preprocess.thumbnailSide", default: d.thumbnailSide)
        jpegQuality = c.int(forKey: "preprocess.jpegQuality", default: d.jpegQuality)
        workers = max(0, c.int(forKey: "workers.count", default: d.workers))
        maxAttempts = max(1, c.int(forKey: "jobs.maxAttempts", default: d.maxAttempts))
        leaseSeconds = c.double(forKey: "jobs.leaseSeconds", default: d.leaseSeconds)
        backoffSeconds = c.double(forKey: "jobs.backoffSeconds", default: d.backoffSeconds)
        vipsConcurrency = max(1, c.int(forKey: "vips.concurrency", default: d.vipsConcurrency))
    }
}
