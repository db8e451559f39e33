import Catalog
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
    var links: [String: String]

    init(_ r: ImageRecord, label: String) {
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
        var links = ["self": "/v1/images/\(r.id)", "original": "/v1/images/\(r.id)/original"]
        if r.canonicalKey != nil { links["canonical"] = "/v1/images/\(r.id)/canonical" }
        if r.thumbnailKey != nil { links["thumbnail"] = "/v1/images/\(r.id)/thumbnail" }
        self.links = links
    }
}
