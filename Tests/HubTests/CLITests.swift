import Catalog
import Foundation
import HubTesting
import Imaging
import Testing

@Suite struct CLITests {
    /// Generated images are noise to the backbone (each other's semantic duplicates): embed nothing here.
    static let plain = ["IMAGEHUB_EMBEDDING_ENABLED": "false"]

    @Test func ingestAFolderThenExportIt() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let photos = root.appendingPathComponent("photos"), data = root.appendingPathComponent("hub")
        for (label, seeds) in [("Banana", [401, 402, 403]), ("Apple", [404, 405])] {
            let dir = photos.appendingPathComponent(label)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for seed in seeds { try Fixtures.image(.jpeg, seed: seed).write(to: dir.appendingPathComponent("\(seed).jpg")) }
        }
        try Data("not an image".utf8).write(to: photos.appendingPathComponent("Apple/notes.jpg"))

        let refused = try HubProcess.run(["ingest", photos.path, "--labels-from-folders", "--data", data.path], environment: Self.plain)
        #expect(refused.contains("refused label.unknown"), "labels must exist unless --create-labels: \(refused)")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: data.appendingPathComponent("blobs/tmp").path)
        #expect(leftovers.isEmpty, "a refused file leaves nothing behind")
        let summary = try HubProcess.run(["ingest", photos.path, "--labels-from-folders", "--create-labels", "--data", data.path], environment: Self.plain)
        #expect(summary.contains("6 files: 5 new"), "\(summary)")
        #expect(summary.contains("accepted") && summary.contains("refused format.unsupported"), "\(summary)")
        let again = try HubProcess.run(["ingest", photos.path, "--labels-from-folders", "--data", data.path], environment: Self.plain)
        #expect(again.contains("0 new, 5 already in the hub"), "re-running is idempotent: \(again)")

        let catalog = try Catalog(path: data.appendingPathComponent("catalog.sqlite").path)
        #expect(try catalog.statusCounts()[.accepted] == 5)
        let tar = root.appendingPathComponent("out.tar")
        let exported = try HubProcess.run(["export", "--labels", "Banana,Apple", "--out", tar.path, "--data", data.path], environment: Self.plain)
        #expect(exported.contains("wrote 5 images"))
        let names = try untar(try Data(contentsOf: tar)).map(\.name)
        #expect(names.filter { $0.hasPrefix("Banana/") }.count == 3 && names.filter { $0.hasPrefix("Apple/") }.count == 2)
    }
}
