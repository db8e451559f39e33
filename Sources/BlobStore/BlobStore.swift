import Foundation

/// Where image bytes live, addressed by the SHA-256 of their content.
public protocol BlobStore: Sendable {
    /// Stores `data` durably and returns its key (the lowercase hex SHA-256).
    func put(_ data: Data) throws -> String
    /// Moves a fully written, already-hashed temporary file into the store, durably.
    func adopt(temporaryFile: URL, sha256: String) throws -> String
    /// The bytes stored under `key`.
    func read(_ key: String) throws -> Data
    /// True when `key` is stored.
    func contains(_ key: String) -> Bool
    /// A fresh path for a temporary file on the same filesystem as the store, for streaming uploads.
    func temporaryFile() -> URL
    /// Stores `data`; with `durable: false` its bytes and directory entry wait for `syncAll()`, so a group
    /// of puts shares one sync (a bulk import's group commit).
    func put(_ data: Data, durable: Bool) throws -> String
    /// Makes every blob stored so far durable.
    func syncAll() throws
}

/// Errors of the blob store.
public enum BlobStoreError: Error, Sendable {
    case missing(String)
    case io(String)
}
