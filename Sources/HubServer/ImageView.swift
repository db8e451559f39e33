import Catalog
import Embedding
import Foundation

/// How an image is shown by the API.
struct ImageView: Codable {
    struct Quality: Codable { var sharpness: Double?; var brightness: Double?; var contrast: Double? }
    struct Hashes: Codable { var sha256: String; var phash: String? }
    var id: String
    var status: String
    var reasons: [String]
    var label: String
    var format: String?
    var width: Int?
    var height: Int?
    var bytes: Int
    var quality: Quality
    var hashes: Hashes
    var duplicateOf: String?
    var batch: String?
    var device: String?
    var lat: Double?
    var lon: Double?
    var capturedAt: String?
    var createdAt: Date
    var updatedAt: Date
    /// The backbone's top ImageNet classes.
    var tags: [Tag]?
    /// The label check: `verified`, `unverified` or `mismatch`, with scores.
    var labelCheck: LabelCheckView?
    /// The label the image looks like when it is a `label.mismatch`.
    var suggestedLabel: String?
    var embeddingModel: String?
    var links: [String: String]

    struct LabelCheckView: Codable {
        var state: String
        var score: Double?
        var suggestedLabel: String?
        var suggestedScore: Double?
    }

    init(_ r: ImageRecord, label: String, labelName: (Int64) -> String? = { _ in nil }) {
        id = r.id
        status = r.status.rawValue
        reasons = r.reasonCodes
        self.label = label
        format = r.format
        width = r.width
        height = r.height
        bytes = r.bytes
        quality = Quality(sharpness: r.sharpness, brightness: r.brightness, contrast: r.contrast)
        hashes = Hashes(sha256: r.sha256, phash: r.phash.map { String(format: "%016llx", UInt64(bitPattern: $0)) })
        duplicateOf = r.duplicateOf
        batch = r.batchId
        device = r.device
        lat = r.lat
        lon = r.lon
        capturedAt = r.capturedAt
        createdAt = r.createdAt
        updatedAt = r.updatedAt
        tags = r.tags.flatMap { try? JSONDecoder().decode([Tag].self, from: Data($0.utf8)) }
        let suggested = r.suggestedLabelId.flatMap(labelName)
        labelCheck = r.labelCheck.map { LabelCheckView(state: $0, score: r.labelScore, suggestedLabel: suggested, suggestedScore: r.suggestedScore) }
        suggestedLabel = r.labelCheck == "mismatch" ? suggested : nil
        embeddingModel = r.embeddingModel
        var links = ["self": "/v1/images/\(r.id)", "original": "/v1/images/\(r.id)/original"]
        if r.canonicalKey != nil { links["canonical"] = "/v1/images/\(r.id)/canonical" }
        if r.thumbnailKey != nil { links["thumbnail"] = "/v1/images/\(r.id)/thumbnail" }
        if r.embeddingModel != nil { links["similar"] = "/v1/images/\(r.id)/similar" }
        self.links = links
    }
}
