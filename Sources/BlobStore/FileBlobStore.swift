import Crypto
import Foundation

/// Content-addressed files under `root/ab/<sha256>`: write to a temporary file, fsync, rename,
/// fsync the directory. A crash leaves either the whole blob or nothing; the same bytes are stored once.
/// A fan-out directory is made the first time a blob needs it (at most 256 of them, so a fresh hub pays
/// for each once: with the earlier two-level `ab/cd/` fan-out, directories made on the way were a third of
/// the CPU time of storing blobs; making all 256 when the store opened cost 12% of the CPU of a 15-photo
/// `imagehub ingest` on ext4, most of it finding free inodes). Blobs stored under the earlier two-level
/// layout (`root/ab/cd/<sha256>`) are still found where they are.
public struct FileBlobStore: BlobStore {
    public let root: URL
    /// `root` and its `tmp` folder as paths: the store works on strings (each `URL` component appended is
    /// parsed again, about 1% of an import's CPU when every blob path was made that way).
    private let rootPath: String
    private let tmpPath: String

    public init(root: URL) throws {
        self.root = root
        var rootPath = root.path
        while rootPath.count > 1, rootPath.hasSuffix("/") { rootPath.removeLast() }
        self.rootPath = rootPath
        self.tmpPath = rootPath + "/tmp"
        try FileManager.default.createDirectory(atPath: tmpPath, withIntermediateDirectories: true)
    }

    /// Where the blob `key` is: its place in the current layout, unless it was stored under the
    /// two-level layout and is only there.
    public func path(for key: String) -> URL {
        URL(fileURLWithPath: filePath(for: key))
    }

    func filePath(for key: String) -> String {
        storedPath(for: key) ?? place(for: key)
    }

    /// Where the blob `key` is stored (current layout first, then the two-level one), or nil.
    func storedPath(for key: String) -> String? {
        let current = place(for: key)
        if access(current, F_OK) == 0 { return current }
        return legacyPlace(for: key).flatMap { access($0, F_OK) == 0 ? $0 : nil }
    }

    /// Where a new blob goes: `root/ab/<key>`.
    func place(for key: String) -> String {
        "\(rootPath)/\(key.prefix(2))/\(key)"
    }

    /// `root/ab/cd/<key>`, the two-level layout of hubs made before the fan-out became one level.
    func legacyPlace(for key: String) -> String? {
        guard key.count >= 4 else { return nil }
        let chars = Array(key)
        return "\(rootPath)/\(String(chars[0..<2]))/\(String(chars[2..<4]))/\(key)"
    }

    public func temporaryFile() -> URL {
        URL(fileURLWithPath: temporaryPath())
    }

    func temporaryPath() -> String {
        "\(tmpPath)/\(UUID().uuidString)"
    }

    /// Plain POSIX calls: Foundation's `FileManager` and `FileHandle` cost about as much again as the
    /// write and the two fsyncs for a thumbnail-sized blob.
    public func put(_ data: Data) throws -> String { try put(data, durable: true) }

    /// `durable: false` skips the file's and the directory's fsync: `syncAll()` makes a whole group durable
    /// at once (one `syncfs` instead of two fsyncs a blob).
    ///
    /// A blob already stored under the key is kept when it has the data's size. One of another size can only
    /// be a copy a power cut left short (written without its fsync, renamed, never synced): it is replaced.
    public func put(_ data: Data, durable: Bool) throws -> String {
        let key = SHA256.hash(data: data).hexString
        if let existing = storedPath(for: key) {
            var info = stat()
            if stat(existing, &info) == 0, Int(info.st_size) == data.count { return key }
        }
        let path = temporaryPath()
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Self.failure("create", path) }
        var descriptorOpen = true
        do {
            try data.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if written < 0, errno == EINTR { continue }
                    guard written > 0 else { throw Self.failure("write", path) }
                    offset += written
                }
            }
            if durable { guard fsync(fd) == 0 else { throw Self.failure("fsync", path) } }
            // The descriptor is gone whatever close says: it is never closed twice.
            descriptorOpen = false
            guard close(fd) == 0 else { throw Self.failure("close", path) }
            return try adopt(temporaryPath: path, sha256: key, durable: durable, checked: true)
        } catch {
            if descriptorOpen { close(fd) }
            unlink(path)
            throw error
        }
    }

    /// Renames the file into place (replacing an identical copy is harmless: the name is the content's
    /// hash), then makes the new directory entry durable. Bytes already stored (in either layout) are
    /// kept, and the temporary file is removed.
    public func adopt(temporaryFile: URL, sha256 key: String) throws -> String {
        try adopt(temporaryPath: temporaryFile.path, sha256: key, durable: true)
    }

    /// `checked`: the caller has just found the key missing (`put`), so it is not looked up again.
    func adopt(temporaryPath from: String, sha256 key: String, durable: Bool, checked: Bool = false) throws -> String {
        if !checked, contains(key) {
            unlink(from)
            return key
        }
        let to = place(for: key)
        let dirPath = "\(rootPath)/\(key.prefix(2))"
        if rename(from, to) != 0 {
            let renameError = errno
            // The blob's fan-out directory is made when the first blob needs it (and again if it has gone
            // since); its entry in `root` is made durable with the blob (by `syncAll` for a group).
            guard renameError == ENOENT else { throw Self.failure("rename to", to, errno: renameError) }
            guard mkdir(dirPath, 0o755) == 0 || errno == EEXIST else { throw Self.failure("mkdir", dirPath) }
            if durable { try Self.syncDirectory(rootPath) }
            guard rename(from, to) == 0 else { throw Self.failure("rename to", to) }
        }
        if durable { try Self.syncDirectory(dirPath) }
        return key
    }

    /// One `syncfs(2)` of the store's file system: every blob written so far, its bytes and its directory
    /// entry, reaches the disk.
    public func syncAll() throws {
        let path = rootPath
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw Self.failure("open", path) }
        defer { close(fd) }
        guard linuxSyncfs(fd) == 0 else { throw Self.failure("syncfs", path) }
    }

    /// An I/O error naming the call, the path and `errno` (read before anything else can change it).
    static func failure(_ call: String, _ path: String, errno code: Int32 = errno) -> BlobStoreError {
        .io("\(call) \(path): \(String(cString: strerror(code)))")
    }

    public func read(_ key: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: filePath(for: key)) else { throw BlobStoreError.missing(key) }
        return data
    }

    public func contains(_ key: String) -> Bool {
        key.count == 64 && storedPath(for: key) != nil
    }

    /// Makes a rename durable: the directory entry itself must reach the disk.
    static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw failure("open", path) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw failure("fsync", path) }
    }
}

extension Digest {
    /// Lowercase hexadecimal digest.
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(Self.byteCount * 2)
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

/// glibc's `syncfs(2)`, which Swift's Glibc module leaves out (it is declared only under `_GNU_SOURCE`).
@_silgen_name("syncfs")
private func linuxSyncfs(_ fd: Int32) -> Int32
