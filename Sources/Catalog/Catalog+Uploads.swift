import Foundation
import GRDB

/// A tus upload in progress (or finished: `imageId` set).
public struct ResumableUploadRecord: Codable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "resumableUploads"
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
        try write { db in try upload.insert(db) }
    }

    public func resumableUpload(id: String) throws -> ResumableUploadRecord? {
        try read { db in try ResumableUploadRecord.fetchOne(db, key: id) }
    }

    /// Moves the durable offset forward from `from` (refused when another request moved it meanwhile).
    public func advanceResumableUpload(id: String, from: Int, to: Int) throws -> Bool {
        try write { db in
            try db.execute(sql: "UPDATE resumableUploads SET offset = ? WHERE id = ? AND offset = ?", arguments: [to, id, from])
            return db.changesCount == 1
        }
    }

    public func finishResumableUpload(id: String, imageId: String) throws {
        try write { db in try db.execute(sql: "UPDATE resumableUploads SET imageId = ? WHERE id = ?", arguments: [imageId, id]) }
    }

    public func deleteResumableUpload(id: String) throws {
        try write { db in _ = try ResumableUploadRecord.deleteOne(db, key: id) }
    }

    /// Uploads whose expiry has passed (unfinished ones are abandoned; finished ones are only bookkeeping).
    public func expiredResumableUploads(now: Date = Date()) throws -> [ResumableUploadRecord] {
        try read { db in try ResumableUploadRecord.filter(Column("expiresAt") < now).fetchAll(db) }
    }
}
