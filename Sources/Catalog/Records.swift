import Foundation
import HubCore

/// A label images are filed under; labels form a tree through `parentId`.
public struct LabelRecord: Codable, Sendable, CatalogRecord, Equatable {
    static let table = "labels"
    public var id: Int64?
    public var name: String
    public var displayName: String
    /// Open Images machine id, for example `/m/09qck`.
    public var mid: String?
    public var parentId: Int64?
    public var createdAt: Date
}

/// A person or device holding an API key (stored as its SHA-256 only).
public struct UserRecord: Codable, Sendable, CatalogRecord, Equatable {
    /// Whether this user may see something owned by `owner`: readers see everything, suppliers their own.
    public func mayRead(ownedBy owner: Int64) -> Bool { role.canRead || owner == id }

    static let table = "users"
    public var id: Int64?
    public var name: String
    public var role: Role
    public var keyHash: String
    public var createdAt: Date
}

/// A submission session: one user, one device, an optional place.
public struct BatchRecord: Codable, Sendable, CatalogRecord, Equatable {
    static let table = "batches"
    public var id: String
    public var userId: Int64
    public var device: String?
    public var lat: Double?
    public var lon: Double?
    public var createdAt: Date
}

/// One uploaded image and everything the pipeline learnt about it.
public struct ImageRecord: Codable, Sendable, CatalogRecord, Equatable {
    static let table = "images"
    public var id: String
    /// SHA-256 of the uploaded bytes, also the key of the original blob.
    public var sha256: String
    public var labelId: Int64
    public var uploaderId: Int64
    public var batchId: String?
    public var device: String?
    public var status: ImageStatus
    /// Reason codes, JSON array text.
    public var reasons: String
    public var format: String?
    public var width: Int?
    public var height: Int?
    public var sharpness: Double?
    public var brightness: Double?
    public var contrast: Double?
    /// 64-bit perceptual hash, stored as its signed bit pattern.
    public var phash: Int64?
    public var duplicateOf: String?
    public var lat: Double?
    public var lon: Double?
    public var capturedAt: String?
    public var canonicalKey: String?
    public var thumbnailKey: String?
    public var bytes: Int
    public var createdAt: Date
    public var updatedAt: Date
    /// The backbone's top ImageNet classes, JSON `[{"name","probability"}]`.
    public var tags: String? = nil
    /// `verified`, `unverified` (the label has too few images to judge by yet) or `mismatch`.
    public var labelCheck: String? = nil
    public var labelScore: Double? = nil
    public var suggestedLabelId: Int64? = nil
    public var suggestedScore: Double? = nil
    /// The backbone that embedded the image (id/version/weights).
    public var embeddingModel: String? = nil

    /// Accepted, or quarantined for another reason, and not yet judged by a label model: `unverified`, or
    /// `verified` without a score (no other label could be told from its own when it came), and not
    /// `reviewed`. The background re-check looks at these (a quarantined one keeps its status and gains
    /// `label.mismatch` where its label looks wrong, for its reviewer).
    public var awaitsLabelCheck: Bool {
        (status == .accepted || status == .quarantined)
            && (labelCheck == "unverified" || (labelCheck == "verified" && labelScore == nil)) && !reviewed
    }

    /// Accepted as `verified` by a label model and not `reviewed`: what a second look at a stream's uploads may
    /// still move to quarantine (`Catalog.applyLabelChecks(reconsideringVerified:)`).
    public var reconsiderable: Bool { status == .accepted && labelCheck == "verified" && !reviewed }

    /// A reviewer decided on it (accepted it from quarantine, or moved it to the label it shows): a person's
    /// word, which no label re-check overrules (`Catalog.notReviewed` says the same in SQL).
    public var reviewed: Bool { reasonCodes.contains { $0.hasPrefix("review.") } }

    /// Reason codes as a list.
    public var reasonCodes: [String] {
        (try? JSONDecoder().decode([String].self, from: Data(reasons.utf8))) ?? []
    }

    public static func encodeReasons(_ codes: [String]) -> String {
        String(decoding: (try? JSONEncoder().encode(codes)) ?? Data("[]".utf8), as: UTF8.self)
    }
}

/// A durable unit of pipeline work with a lease, attempts and a dead-letter state.
public struct JobRecord: Codable, Sendable, CatalogRecord, Equatable {
    static let table = "jobs"
    public enum State: String, Codable, Sendable { case queued, running, done, dead }
    public var id: Int64?
    public var imageId: String
    public var kind: String
    public var state: State
    public var attempts: Int
    public var runAfter: Date
    public var leaseUntil: Date?
    public var leasedBy: String?
    public var lastError: String?
    public var createdAt: Date
    public var updatedAt: Date
}

extension ImageRecord {
    /// A freshly uploaded, not yet processed image.
    public static func newUpload(sha256: String, labelId: Int64, uploaderId: Int64, batchId: String?, device: String?,
                                 lat: Double?, lon: Double?, capturedAt: String?, bytes: Int, now: Date = Date()) -> ImageRecord {
        ImageRecord(id: UUID().uuidString.lowercased(), sha256: sha256, labelId: labelId, uploaderId: uploaderId,
                    batchId: batchId, device: device, status: .pending, reasons: "[]", format: nil,
                    width: nil, height: nil, sharpness: nil, brightness: nil, contrast: nil, phash: nil,
                    duplicateOf: nil, lat: lat, lon: lon, capturedAt: capturedAt,
                    canonicalKey: nil, thumbnailKey: nil, bytes: bytes, createdAt: now, updatedAt: now)
    }
}
