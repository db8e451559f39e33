import Catalog
import Foundation
import HubTesting
import Imaging
import Testing

@Suite struct CLITests {
    /// Generated images are noise to the backbone (each other's semantic duplicates): embed nothing here.
    static let plain = ["IMAGEHUB_EMBEDDING_ENABLED": "false"]

    @Test func ingestAFolderThenExportIt() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let photos = root.appendingPathComponent("photos"), data = root.appendingPathComponent("hub")
        for (label, seeds) in [("Banana", [401, 402, 403]), ("Apple", [404, 405])] {
            let dir = photos.appendingPathComponent(label)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for seed in seeds { try Fixtures.image(.jpeg, seed: seed).write(to: dir.appendingPathComponent("\(seed).jpg")) }
        }
        try Data("not an image".utf8).write(to: photos.appendingPathComponent("Apple/notes.jpg"))

        let refused = try await HubProcess.run(["ingest", photos.path, "--labels-from-folders", "--data", data.path], environment: Self.plain)
        #expect(refused.contains("refused label.unknown"), "labels must exist unless --create-labels: \(refused)")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: data.appendingPathComponent("blobs/tmp").path)
        #expect(leftovers.isEmpty, "a refused file leaves nothing behind")
        let summary = try await HubProcess.run(["ingest", photos.path, "--labels-from-folders", "--create-labels", "--data", data.path], environment: Self.plain)
        #expect(summary.contains("6 files: 5 new"), "\(summary)")
        #expect(summary.contains("accepted") && summary.contains("refused format.unsupported"), "\(summary)")
        let again = try await HubProcess.run(["ingest", photos.path, "--labels-from-folders", "--data", data.path], environment: Self.plain)
        #expect(again.contains("0 new, 5 already in the hub"), "re-running is idempotent: \(again)")

        let catalog = try Catalog(path: data.appendingPathComponent("catalog.sqlite").path)
        #expect(try catalog.statusCounts()[.accepted] == 5)
        let tar = root.appendingPathComponent("out.tar")
        let exported = try await HubProcess.run(["export", "--labels", "Banana,Apple", "--out", tar.path, "--data", data.path], environment: Self.plain)
        #expect(exported.contains("wrote 5 images"))
        let names = try untar(try Data(contentsOf: tar)).map(\.name)
        #expect(names.filter { $0.hasPrefix("Banana/") }.count == 3 && names.filter { $0.hasPrefix("Apple/") }.count == 2)
    }
}

@Suite struct TrainingCLITests {
    @Test("ingest real photos, train with --wait, list, export ONNX and predict from the command line", needsSharedData)
    func trainFromTheCommandLine() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let photos = root.appendingPathComponent("photos"), data = root.appendingPathComponent("hub")
        for label in ["airplanes", "flowers"] {
            let dir = photos.appendingPathComponent(label)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for path in try SharedData.photos(in: "photos/\(label)").prefix(12) {
                try FileManager.default.copyItem(at: SharedData.url(path), to: dir.appendingPathComponent(URL(fileURLWithPath: path).lastPathComponent))
            }
        }
        _ = try await HubProcess.run(["ingest", photos.path, "--labels-from-folders", "--create-labels", "--data", data.path])
        let trained = try await HubProcess.run(["train", "--labels", "airplanes,flowers", "--min-images", "5", "--wait", "--data", data.path])
        #expect(trained.contains("validation accuracy") && trained.contains("likely label errors"), "\(trained)")
        let listed = try await HubProcess.run(["models", "list", "--data", data.path])
        let modelId = try #require(listed.split(separator: "\n").dropFirst(2).first?.split(separator: " ").first.map(String.init), "\(listed)")
        #expect(trained.contains(modelId))
        let onnx = root.appendingPathComponent("model.onnx")
        let exported = try await HubProcess.run(["models", "export", modelId, "--format", "onnx", "--out", onnx.path, "--data", data.path])
        #expect(exported.contains("wrote"), "\(exported)")
        #expect(((try? FileManager.default.attributesOfItem(atPath: onnx.path)[.size]) as? Int ?? 0) > 1_000_000)
        let flower = try SharedData.photos(in: "photos/flowers")[20]
        let predicted = try await HubProcess.run(["predict", modelId, SharedData.url(flower).path, "--data", data.path])
        #expect(predicted.split(separator: "\n").dropFirst(2).first?.hasPrefix("flowers") == true, "\(predicted)")
    }
}
