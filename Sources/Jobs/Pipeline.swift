import BlobStore
import Catalog
import Foundation
import HubCore
import Imaging
import Metrics
import Preprocess
import Verify

/// An upload's decoded pixels, upright and in sRGB at the canonical size, and its thumbnail (both in memory).
public struct KeptPixels: Sendable {
    public let upright: Image
    public let thumbnail: Image
}

/// Verify → Preprocess for one stored upload: everything the pipeline decides about an image.
public struct Pipeline: Sendable {
    public let settings: HubSettings
    public let blobs: any BlobStore
    let verifier: Verifier
    let preprocessor: Preprocessor
    /// When set, `process` also returns the backbone's input for accepted and quarantined images.
    public var modelInput: ModelInputSpec?
    /// Each label's quality thresholds in force (learned per label); the global ones when nil.
    public var quality: QualityBook?
    /// Called with each stage's name and duration (the benchmark collects them; metrics always get them).
    public var onStage: (@Sendable (String, Duration) -> Void)?

    public init(settings: HubSettings, blobs: any BlobStore, modelInput: ModelInputSpec? = nil) {
        self.settings = settings
        self.modelInput = modelInput
        self.blobs = blobs
        self.verifier = Verifier(settings: settings)
        self.preprocessor = Preprocessor(canonicalSide: settings.canonicalSide, thumbnailSide: settings.thumbnailSide,
                                         quality: settings.jpegQuality)
    }

    /// The verdict for `image`, and the backbone's input when the image was not rejected and embedding is on.
    /// A `Rejection` becomes a final status; other errors are left to the job's retries.
    public func process(_ image: ImageRecord) throws -> (Verdict, [Float]?) {
        let (verdict, input, _) = try processKeepingPixels(image)
        return (verdict, input)
    }

    /// `process`, also handing back the decoded, upright sRGB image (at the canonical size) and its thumbnail
    /// when it has a model input: the near-duplicate check matches their local features against candidates'.
    public func processKeepingPixels(_ image: ImageRecord) throws -> (Verdict, [Float]?, KeptPixels?) {
        let bytes = try blobs.read(image.sha256)
        do {
            let header = try stage("header") { try verifier.checkHeader(bytes) }
            let (upright, warnings) = try stage("decode") {
                try verifier.decode(bytes, header: header, longSide: settings.canonicalSide, then: preprocessor.normalize)
            }
            let thumbnail = try stage("thumbnail") { try preprocessor.thumbnail(of: upright) }
            // Quality and hash are taken at `Image.measureSide`: from the thumbnail, unless a smaller thumbnail
            // size is configured than that.
            let measured = thumbnail.longSide < min(Image.measureSide, upright.longSide) ? upright : thumbnail
            let measures = try stage("measure") { try measured.measures() }
            let (metrics, phash) = (measures.quality, measures.hash)
            let renditions = try stage("encode") {
                try preprocessor.renditions(of: upright, thumbnail: thumbnail,
                                            canonical: preprocessor.passThrough(bytes, header: header, warnings: warnings))
            }
            let keys = try stage("store") { (try blobs.put(renditions.canonical), try blobs.put(renditions.thumbnail)) }
            let input = try modelInput.map { spec in try stage("model_input") { try upright.modelInput(spec) } }
            let reasons = warnings + verifier.qualityReasons(metrics, thresholds: quality?.thresholds(for: image.labelId))
            let turned = header.orientation >= 5
            return (Verdict(status: reasons.isEmpty ? .accepted : .quarantined, reasons: reasons, format: header.format.rawValue,
                           width: turned ? header.height : header.width, height: turned ? header.width : header.height,
                           sharpness: metrics.sharpness, brightness: metrics.brightness, contrast: metrics.contrast,
                           phash: phash, canonicalKey: keys.0, thumbnailKey: keys.1), input,
                    input == nil ? nil : KeptPixels(upright: upright, thumbnail: thumbnail))
        } catch let r as Rejection {
            return (Verdict(status: r.status, reasons: [r.code], format: ImageFormat.sniff(bytes.prefix(ImageFormat.sniffLength))?.rawValue), nil, nil)
        }
    }

    /// The backbone's input for arbitrary image bytes, made exactly as ingest makes it (verify's strict
    /// decode, the preprocess steps, then the model input): `predict` uses it.
    public func modelInput(for bytes: Data, spec: ModelInputSpec) throws -> [Float] {
        let header = try verifier.checkHeader(bytes)
        let (upright, _) = try verifier.decode(bytes, header: header, longSide: settings.canonicalSide, then: preprocessor.normalize)
        return try upright.modelInput(spec)
    }

    func stage<T>(_ name: String, _ body: () throws -> T) throws -> T {
        let start = ContinuousClock.now
        defer { record(stage: name, ContinuousClock.now - start) }
        return try body()
    }

    /// An asynchronous stage (the embedder, the commit), timed like the others.
    func timed<T>(_ name: String, _ body: () async throws -> T) async rethrows -> T {
        let start = ContinuousClock.now
        defer { record(stage: name, ContinuousClock.now - start) }
        return try await body()
    }

    /// Reports one stage's duration to `onStage` and to the `imagehub_stage_seconds` metric.
    func record(stage name: String, _ d: Duration) {
        onStage?(name, d)
        Timer(label: "imagehub_stage_seconds", dimensions: [("stage", name)]).recordSeconds(d.seconds)
    }
}
