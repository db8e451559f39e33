import Foundation

/// A tus upload in progress (or finished: `imageId` set).
public struct ResumableUploadRecord: Codable, Sendable, CatalogRecord {
    static let table = "resumableUploads"
    public var id: String
    public var userId: Int64
    public var length: Int
    /// Bytes durably received (fsynced before this is written).
    public var offset: Int
    /// The decoded `Upload-Metadata` as JSON.
    public var metadata: String
    /// The header as the client sent it (echoed by HEAD).
    public var rawMetadata: String?
    public var imageId: String?
    public var createdAt: Date
    public var expiresAt: Date

    public init(id: String, userId: Int64, length: Int, offset: Int, metadata: String, rawMetadata: String?, imageId: String?,
                createdAt: Date, expiresAt: Date) {
        self.id = id; self.userId = userId; self.length = length; self.offset = offset; self.metadata = metadata
        self.rawMetadata = rawMetadata; self.imageId = imageId; self.createdAt = createdAt; self.expiresAt = expiresAt
    }
}

extension Catalog {
    public func createResumableUpload(_ upload: ResumableUploadRecord) throws {
        try write { db in try db.insert(upload) }
    }

    public func resumableUpload(id: String) throws -> ResumableUploadRecord? {
        try read { db in try db.find(ResumableUploadRecord.self, id) }
    }

    /// Moves the durable offset forward from `from` (refused when another request moved it meanwhile).
    public func advanceResumableUpload(id: String, from: Int, to: Int) throws -> Bool {
        try write { db in
            try !db.rows("UPDATE resumableUploads SET \"offset\" = ? WHERE id = ? AND \"offset\" = ? RETURNING id", [to, id, from]).isEmpty
        }
    }

    public func finishResumableUpload(id: String, imageId: String) throws {
        try write { db in try db.execute("UPDATE resumableUploads SET imageId = ? WHERE id = ?", [imageId, id]) }
    }

    public func deleteResumableUpload(id: String) throws {
        try write { db in try db.execute("DELETE FROM resumableUploads WHERE id = ?", [id]) }
    }

    /// Uploads whose expiry has passed (unfinished ones are abandoned; finished ones are only bookkeeping).
    public func expiredResumableUploads(now: Date = Date()) throws -> [ResumableUploadRecord] {
        try read { db in try db.all(ResumableUploadRecord.self, "SELECT * FROM resumableUploads WHERE expiresAt < ? ORDER BY id", [now]) }
    }
}
