import Crypto
import Foundation

/// Content-addressed files under `root/ab/cd/<sha256>`: write to a temporary file, fsync, rename,
/// fsync the directory. A crash leaves either the whole blob or nothing; the same bytes are stored once.
public struct FileBlobStore: BlobStore {
    public let root: URL
    private let tmp: URL

    public init(root: URL) throws {
        self.root = root
        self.tmp = root.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    public func path(for key: String) -> URL {
        let chars = Array(key)
        return root.appendingPathComponent(String(chars[0..<2]))
            .appendingPathComponent(String(chars[2..<4]))
            .appendingPathComponent(key)
    }

    public func temporaryFile() -> URL {
        tmp.appendingPathComponent(UUID().uuidString)
    }

    public func put(_ data: Data) throws -> String {
        let key = SHA256.hash(data: data).hexString
        if contains(key) { return key }
        let file = temporaryFile()
        guard FileManager.default.createFile(atPath: file.path, contents: nil) else {
            throw BlobStoreError.io("cannot create \(file.path)")
        }
        let handle = try FileHandle(forWritingTo: file)
        do {
            try handle.write(contentsOf: data)
            try handle.synchronize()
            try handle.close()
        } catch {
            try? FileManager.default.removeItem(at: file)
            throw error
        }
        return try adopt(temporaryFile: file, sha256: key)
    }

    public func adopt(temporaryFile: URL, sha256 key: String) throws -> String {
        let target = path(for: key)
        let dir = target.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        if FileManager.default.fileExists(atPath: target.path) {
            try? FileManager.default.removeItem(at: temporaryFile)
            return key
        }
        guard rename(temporaryFile.path, target.path) == 0 else {
            throw BlobStoreError.io("rename to \(target.path): \(String(cString: strerror(errno)))")
        }
        try Self.syncDirectory(dir)
        return key
    }

    public func read(_ key: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: path(for: key).path) else { throw BlobStoreError.missing(key) }
        return data
    }

    public func contains(_ key: String) -> Bool {
        key.count == 64 && FileManager.default.fileExists(atPath: path(for: key).path)
    }

    /// Makes a rename durable: the directory entry itself must reach the disk.
    static func syncDirectory(_ dir: URL) throws {
        let fd = open(dir.path, O_RDONLY)
        guard fd >= 0 else { throw BlobStoreError.io("open \(dir.path)") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw BlobStoreError.io("fsync \(dir.path)") }
    }
}

extension Digest {
    /// Lowercase hexadecimal digest.
    public var hexString: String { map { String(format: "%02x", $0) }.joined() }
}
