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

    /// Plain POSIX calls: Foundation's `FileManager` and `FileHandle` cost about as much again as the
    /// write and the two fsyncs for a thumbnail-sized blob.
    public func put(_ data: Data) throws -> String {
        let key = SHA256.hash(data: data).hexString
        if contains(key) { return key }
        let file = temporaryFile()
        let fd = open(file.path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BlobStoreError.io("cannot create \(file.path): \(Self.lastError)") }
        do {
            try data.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if written < 0, errno == EINTR { continue }
                    guard written > 0 else { throw BlobStoreError.io("write \(file.path): \(Self.lastError)") }
                    offset += written
                }
            }
            guard fsync(fd) == 0 else { throw BlobStoreError.io("fsync \(file.path): \(Self.lastError)") }
            guard close(fd) == 0 else { throw BlobStoreError.io("close \(file.path): \(Self.lastError)") }
        } catch {
            close(fd)
            unlink(file.path)
            throw error
        }
        return try adopt(temporaryFile: file, sha256: key)
    }

    /// Renames the file into place (replacing an identical copy is harmless: the name is the content's
    /// hash), creating the two fan-out directories the first time one is needed, then makes the new
    /// directory entries durable.
    public func adopt(temporaryFile: URL, sha256 key: String) throws -> String {
        let target = path(for: key)
        let dir = target.deletingLastPathComponent()
        if rename(temporaryFile.path, target.path) != 0 {
            guard errno == ENOENT else {
                throw BlobStoreError.io("rename to \(target.path): \(Self.lastError)")
            }
            try makeDirectories(dir)
            guard rename(temporaryFile.path, target.path) == 0 else {
                throw BlobStoreError.io("rename to \(target.path): \(Self.lastError)")
            }
        }
        try Self.syncDirectory(dir)
        return key
    }

    /// Creates `dir` and its parent under the root (`ab/cd`), syncing each parent whose entries changed.
    private func makeDirectories(_ dir: URL) throws {
        let parent = dir.deletingLastPathComponent()
        for (directory, container) in [(parent, root), (dir, parent)] {
            if mkdir(directory.path, 0o755) == 0 {
                try Self.syncDirectory(container)
            } else if errno != EEXIST {
                throw BlobStoreError.io("mkdir \(directory.path): \(Self.lastError)")
            }
        }
    }

    static var lastError: String { String(cString: strerror(errno)) }

    public func read(_ key: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: path(for: key).path) else { throw BlobStoreError.missing(key) }
        return data
    }

    public func contains(_ key: String) -> Bool {
        key.count == 64 && access(path(for: key).path, F_OK) == 0
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
