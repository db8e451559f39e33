import BlobStore
import Crypto
import Foundation
import Testing

@Suite struct BlobStoreTests {
    func temporaryRoot() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("blobs-\(UUID().uuidString)")
    }

    @Test("blobs are stored once under root/ab/<sha256>, whole, each fan-out directory made when first needed")
    func storesContentAddressedFiles() throws {
        let root = temporaryRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        let store = try FileBlobStore(root: root)
        func fanOut() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: root.path).filter { $0 != "tmp" }.sorted() }
        #expect(try fanOut().isEmpty)
        let data = Data((0..<100_000).map { UInt8($0 % 251) })
        let key = try store.put(data)
        #expect(try fanOut() == [String(key.prefix(2))])
        #expect(key == SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined())
        #expect(store.path(for: key).path == root.appendingPathComponent(String(key.prefix(2))).appendingPathComponent(key).path)
        #expect(try store.read(key) == data)
        #expect(try store.put(data) == key)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("tmp").path).isEmpty)
        #expect(throws: BlobStoreError.self) { try store.read(String(repeating: "0", count: 64)) }
        // A fan-out directory removed behind the store's back is made again.
        try FileManager.default.removeItem(at: root.appendingPathComponent(String(key.prefix(2))))
        #expect(try store.put(data) == key && store.read(key) == data)
        let other = Data("another blob".utf8)
        let otherKey = SHA256.hash(data: other).map { String(format: "%02x", $0) }.joined()
        #expect(try store.put(other) == otherKey)
        #expect(try store.read(otherKey) == other)
        // A put that cannot land (its fan-out directory is a file) fails and leaves no temporary file behind.
        let third = Data("a third blob".utf8)
        let thirdKey = SHA256.hash(data: third).map { String(format: "%02x", $0) }.joined()
        let blocked = root.appendingPathComponent(String(thirdKey.prefix(2)))
        try? FileManager.default.removeItem(at: blocked)
        try Data().write(to: blocked)
        #expect(throws: BlobStoreError.self) { try store.put(third) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("tmp").path).isEmpty)
    }

    @Test("blobs stored under the earlier two-level layout (root/ab/cd/<sha256>) are still found")
    func findsBlobsOfTheTwoLevelLayout() throws {
        let root = temporaryRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        let data = Data("stored by an earlier version".utf8)
        let key = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        let legacy = root.appendingPathComponent(String(key.prefix(2))).appendingPathComponent(String(key.dropFirst(2).prefix(2)))
        try FileManager.default.createDirectory(at: legacy, withIntermediateDirectories: true)
        try data.write(to: legacy.appendingPathComponent(key))
        let store = try FileBlobStore(root: root)
        #expect(store.contains(key))
        #expect(try store.read(key) == data)
        #expect(store.path(for: key).path == legacy.appendingPathComponent(key).path)
        // Storing the same bytes again finds them there and writes no second copy.
        #expect(try store.put(data) == key)
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent(String(key.prefix(2))).appendingPathComponent(key).path))
    }
}

/// What a bulk import's unsynced puts leave after a power cut.
@Suite struct UnsyncedPutTests {
    @Test("a blob a power cut left short is replaced by the next put of its bytes")
    func shortCopiesAreReplaced() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("groupsync-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let store = try FileBlobStore(root: root)
        let data = Data((0..<50_000).map { UInt8($0 % 199) })
        let key = try store.put(data, durable: false)
        try Data().write(to: store.path(for: key))
        #expect(try store.read(key).isEmpty)
        #expect(try store.put(data, durable: false) == key)
        #expect(try store.read(key) == data)
    }
}
