import BlobStore
import Catalog
import Crypto
import Foundation
import HubCore
import HubTesting
import Imaging
import Testing

@Suite struct CLITests {
    /// Generated images are noise to the backbone (each other's semantic duplicates): embed nothing here.
    static let plain = ["IMAGEHUB_EMBEDDING_ENABLED": "false"]
    static let quickLeases = ["IMAGEHUB_EMBEDDING_ENABLED": "false", "IMAGEHUB_JOBS_LEASE_SECONDS": "2"]

    /// Writes generated JPEG photos (one per seed, named by it) into `root/photos/LABEL` and returns that folder.
    static func photos(in root: URL, label: String = "Banana", seeds: [Int], width: Int = 640, height: Int = 480) throws -> URL {
        let folder = root.appendingPathComponent("photos/\(label)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for seed in seeds { try Fixtures.image(.jpeg, width: width, height: height, seed: seed).write(to: folder.appendingPathComponent("\(seed).jpg")) }
        return folder
    }

    @Test func ingestAFolderThenExportIt() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let photos = root.appendingPathComponent("photos"), data = root.appendingPathComponent("hub")
        for (label, seeds) in [("Banana", [401, 402, 403]), ("Apple", [404, 405])] { _ = try Self.photos(in: root, label: label, seeds: seeds) }
        try Data("not an image".utf8).write(to: photos.appendingPathComponent("Apple/notes.jpg"))

        // A usage error (neither --label nor --labels-from-folders) exits 64, as ArgumentParser's validation errors do.
        _ = try await HubProcess.run(["ingest", photos.path, "--data", data.path], environment: Self.plain, status: 64)
        let refused = try await HubProcess.run(["ingest", photos.path, "--labels-from-folders", "--data", data.path], environment: Self.plain, status: 1)
        #expect(refused.contains("refused label.unknown"), "labels must exist unless --create-labels: \(refused)")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: data.appendingPathComponent("blobs/tmp").path)
        #expect(leftovers.isEmpty, "a refused file leaves nothing behind")
        let summary = try await HubProcess.run(["ingest", photos.path, "--labels-from-folders", "--create-labels", "--data", data.path],
                                               environment: Self.plain, status: 1)  // notes.jpg is refused
        #expect(summary.contains("6 files: 5 new"), "\(summary)")
        #expect(summary.contains("accepted") && summary.contains("refused format.unsupported"), "\(summary)")
        let again = try await HubProcess.run(["ingest", photos.path, "--labels-from-folders", "--data", data.path], environment: Self.plain, status: 1)
        #expect(again.contains("0 new, 5 already in the hub"), "re-running is idempotent: \(again)")

        let catalog = try Catalog(path: data.appendingPathComponent("catalog.sqlite").path)
        #expect(try catalog.statusCounts()[.accepted] == 5)
        let tar = root.appendingPathComponent("out.tar")
        let exported = try await HubProcess.run(["export", "--labels", "Banana,Apple", "--out", tar.path, "--data", data.path], environment: Self.plain)
        #expect(exported.contains("wrote 5 images"))
        let names = try untar(try Data(contentsOf: tar)).map(\.name)
        #expect(names.filter { $0.hasPrefix("Banana/") }.count == 3 && names.filter { $0.hasPrefix("Apple/") }.count == 2)
    }

    @Test("a bulk import killed with kill -9 inside its group commits and run again stores every file once, each with its bytes")
    func killedImportResumes() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-kill-import-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let photos = root.appendingPathComponent("photos/Banana"), data = root.appendingPathComponent("hub")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        // Enough files for several groups (32 a group).
        for seed in 0..<100 { try Fixtures.image(.png, width: 240, height: 180, seed: 7000 + seed).write(to: photos.appendingPathComponent("\(seed).png")) }
        let child = try ChildProcess(HubProcess.binary, ["ingest", photos.deletingLastPathComponent().path, "--labels-from-folders",
                                                          "--create-labels", "--data", data.path], environment: Self.quickLeases)
        // Killed once the first group has committed and before the import ends: its progress line counts
        // the files of every group committed. (Opening the catalog from here while the child creates and
        // migrates it could fail the child's own start.)
        var committed = 0
        for _ in 0..<3000 where child.isRunning {
            let counts = child.logText.matches(of: /storing \[[# ]*\] (\d+)\//).compactMap { Int($0.output.1) }
            committed = counts.last ?? 0
            if committed > 0 { break }
            try await Task.sleep(for: .milliseconds(2))
        }
        child.kill9()
        #expect(child.waitUntilExit(timeout: 30))
        print("killed after \(committed) images were committed")
        #expect(committed > 0 && committed < 100, "the kill fell inside the import")
        // The killed process's leased jobs are taken over once their (short) leases end.
        let again = try await HubProcess.run(["ingest", photos.deletingLastPathComponent().path, "--labels-from-folders", "--data", data.path],
                                             environment: Self.quickLeases)
        #expect(again.contains("100 files:"), "\(again)")
        let catalog = try Catalog(path: data.appendingPathComponent("catalog.sqlite").path)
        let counts = try catalog.statusCounts()
        #expect(counts.values.reduce(0, +) == 100 && (counts[.pending] ?? 0) == 0, "\(counts)")
        // Every image's original is there, byte for byte what its hash says.
        let blobs = try FileBlobStore(root: data.appendingPathComponent("blobs"))
        let banana = try #require(try catalog.labelId(named: "Banana"))
        let images = try catalog.images(labelIds: [banana], status: nil, after: nil, limit: 1000)
        #expect(images.count == 100)
        for image in images {
            #expect(SHA256.hash(data: try blobs.read(image.sha256)).hexString == image.sha256)
        }
    }

    @Test("the binary links neither libtorch nor OpenCV: libTorchKernels.so opens when training starts, libFeatureKernels.so on a thread of its own at start")
    func libtorchIsNotLinked() async throws {
        let (status, output) = try await runProgram(URL(fileURLWithPath: "/usr/bin/ldd"), [HubProcess.binary.path])
        let libraries = String(decoding: output, as: UTF8.self)
        #expect(status == 0 && libraries.contains("libvips"))
        #expect(!libraries.contains("libtorch") && !libraries.contains("libc10"), "\(libraries)")
        #expect(!libraries.contains("libopencv") && !libraries.contains("openblas"), "\(libraries)")
        for library in ["libTorchKernels.so", "libFeatureKernels.so"] {
            #expect(FileManager.default.fileExists(atPath: HubProcess.binary.deletingLastPathComponent().appendingPathComponent(library).path))
        }
    }

    @Test("bench ingest --compare-script runs whole imagehub ingest processes against the script, embeddings off, or on with the TorchScript features for the script")
    func compareScript() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-compare-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let photos = try Self.photos(in: root, seeds: [441, 442])
        // A stand-in for the Pillow scripts: it notes the arguments it was given.
        let script = root.appendingPathComponent("script.py"), calls = root.appendingPathComponent("calls.txt")
        try Data("import sys\nopen(\"\(calls.path)\", \"a\").write(\" \".join(sys.argv[1:]) + \"\\n\")\n".utf8).write(to: script)
        let off = try await HubProcess.run(["bench", "ingest", photos.deletingLastPathComponent().path, "--compare-script", script.path, "--rounds", "2"],
                                           environment: Self.plain)
        #expect(off.contains("imagehub ingest with embeddings off") && off.contains("ratio"), "\(off)")
        let on = try await HubProcess.run(["bench", "ingest", photos.deletingLastPathComponent().path, "--compare-script", script.path, "--rounds", "1",
                                           "--embeddings"], environment: Self.plain)
        #expect(on.contains("imagehub ingest with embeddings on"), "\(on)")
        let lines = try String(contentsOf: calls, encoding: .utf8).split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(lines.count == 3, "\(lines)")
        #expect(lines.prefix(2).allSatisfy { $0.count == 2 && $0[0] == photos.deletingLastPathComponent().path }, "embeddings off: DIR OUTDIR")
        #expect(lines.last?.count == 2 && lines.last?[0].hasSuffix("/features.pt") == true && lines.last?[1] == photos.deletingLastPathComponent().path,
                "embeddings on: FEATURES DIR")
        let rows = on.split(separator: "\n").filter { $0.hasPrefix("photos ") && $0.contains("×") }
        #expect(rows.count == 1 && rows[0].contains(" 2 "), "one row, two images: \(on)")
    }

    @Test("without libFeatureKernels.so (OpenCV) an import still makes every rendition, through libvips")
    func withoutOpenCV() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-no-opencv-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let photos = try Self.photos(in: root, seeds: [431], width: 1600, height: 1200), data = root.appendingPathComponent("hub")
        let environment = Self.plain.merging(["IMAGEHUB_FEATURE_KERNELS": root.appendingPathComponent("missing/libFeatureKernels.so").path]) { $1 }
        let summary = try await HubProcess.run(["ingest", photos.deletingLastPathComponent().path, "--labels-from-folders", "--create-labels",
                                                "--data", data.path], environment: environment)
        #expect(summary.contains("1 files: 1 new") && summary.contains("accepted"), "\(summary)")
        let catalog = try Catalog(path: data.appendingPathComponent("catalog.sqlite").path)
        let banana = try #require(try catalog.labelId(named: "Banana"))
        let image = try #require(try catalog.images(labelIds: [banana], status: nil, after: nil, limit: 10).first)
        let blobs = try FileBlobStore(root: data.appendingPathComponent("blobs"))
        let thumbnail = try Image.load(try blobs.read(try #require(image.thumbnailKey)))
        let canonical = try Image.load(try blobs.read(try #require(image.canonicalKey)))
        #expect(max(thumbnail.width, thumbnail.height) == 256 && max(canonical.width, canonical.height) == 1024)
    }

    @Test("an import re-checks its own labels without libtorch: the label model fits on OpenBLAS, and photos filed under the wrong label are quarantined", needsSharedData)
    func importRechecksWithoutLibtorch() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-recheck-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let photos = root.appendingPathComponent("photos"), data = root.appendingPathComponent("hub")
        let labels = ["airplanes", "flowers", "dogs"]
        let shared = try Dictionary(uniqueKeysWithValues: labels.map { ($0, try SharedData.photos(in: "photos/\($0)")) })
        var files: [(label: String, path: String)] = labels.flatMap { label in shared[label]!.prefix(25).map { (label, $0) } }
        // Filed under the wrong label: two flowers as airplanes, a dog as flowers. 25 a label: with 15 the
        // calibration's likelihood has two near-equal valleys (all labels right and a soft model, or three wrong
        // and a sharp one), and vectors 0.999 apart (bf16's, f32's) pick either.
        let wrong = shared["flowers"]!.dropFirst(25).prefix(2).map { ("airplanes", $0) } + shared["dogs"]!.dropFirst(25).prefix(1).map { ("flowers", $0) }
        files += wrong
        try SharedData.copy(files, into: photos)
        // Anything that reached for libtorch would fail: libTorchKernels.so is not where the hub looks.
        let summary = try await HubProcess.run(["ingest", photos.path, "--labels-from-folders", "--create-labels", "--data", data.path],
                                               environment: ["IMAGEHUB_TORCH_KERNELS": root.appendingPathComponent("missing/libTorchKernels.so").path,
                                                             "IMAGEHUB_LABELS_VERIFY_MIN_IMAGES": "10"])
        #expect(summary.contains("78 files: 78 new"), "\(summary)")
        let catalog = try Catalog(path: data.appendingPathComponent("catalog.sqlite").path)
        let ids = try Dictionary(uniqueKeysWithValues: labels.map { ($0, try #require(try catalog.labelId(named: $0))) })
        let images = try catalog.images(labelIds: Array(ids.values), status: nil, after: nil, limit: 100)
        #expect(images.count == 78)
        #expect(images.count { $0.status == .accepted } >= 65, "most photos accepted, so the checks below judge something")
        // Every accepted image judged by the model, including those passed before a second label could be told apart.
        #expect(images.filter { $0.status == .accepted }.allSatisfy { $0.labelCheck == "verified" && $0.labelScore != nil }, "\(images)")
        // Each misfiled photo is judged by the folds that did not see it; the suggestion names where it belongs.
        let truth = try Dictionary(uniqueKeysWithValues: wrong.map { (SHA256.hash(data: try Data(contentsOf: SharedData.url($0.1))).hexString,
                                                                       $0.1.hasPrefix("photos/flowers") ? "flowers" : "dogs") })
        #expect(images.count { truth[$0.sha256] != nil } == wrong.count, "every misfiled photo found in the catalog")
        // Every one of them scores low for its label with the right one suggested. The first flower filed as an
        // airplane sits near the bar (0.07 for its label, where a wrong label is more likely than not below 0.053
        // with two other labels and a prior of 0.1): it may go either way; the other two are quarantined.
        let nearBar = SHA256.hash(data: try Data(contentsOf: SharedData.url(wrong[0].1))).hexString
        for image in images {
            if let actual = truth[image.sha256] {
                #expect((image.labelScore ?? 1) < 0.1 && image.suggestedLabelId == ids[actual], "\(image)")
                if image.sha256 != nearBar {
                    #expect(image.status == .quarantined && image.reasonCodes.contains("label.mismatch"), "\(image)")
                }
            } else {
                #expect(!image.reasonCodes.contains("label.mismatch"), "an honest photo flagged: \(image)")
            }
        }
    }

    @Test("an import whose backbone cannot be loaded (it loads while the files are stored) stores them and ends with why")
    func importWithABrokenBackbone() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-broken-backbone-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let photos = try Self.photos(in: root, seeds: [461, 462]), data = root.appendingPathComponent("hub")
        let models = try TestModels.broken(in: root)  // the manifest reads; the network does not
        let (status, said) = try await runProgram(HubProcess.binary, ["ingest", photos.deletingLastPathComponent().path, "--labels-from-folders",
                                                                     "--create-labels", "--data", data.path],
                                                  environment: ["IMAGEHUB_EMBEDDING_MODELS": models.path, "IMAGEHUB_EMBEDDING_ENGINE": "openvino"],
                                                  mergeErrors: true)
        let output = String(decoding: said, as: UTF8.self)
        #expect(status == 1)
        #expect(output.contains("OpenVINO") && output.contains("embedder.onnx"), "\(output)")
        let catalog = try Catalog(path: data.appendingPathComponent("catalog.sqlite").path)
        let banana = try #require(try catalog.labelId(named: "Banana"))
        let images = try catalog.images(labelIds: [banana], status: nil, after: nil, limit: 10)
        #expect(images.count == 2 && images.allSatisfy { $0.status == .pending }, "both stored, their jobs untouched for a later run")
        #expect(try catalog.backlog() == 2)
    }

    @Test("IMAGEHUB_LOG_LEVEL sets every command's logging: ingest says which backbone runs at info, and not at warning")
    func logLevel() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-log-level-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let photos = try Self.photos(in: root, seeds: [471, 472])
        func ingest(_ level: String, into data: String) async throws -> String {
            let (_, said) = try await runProgram(HubProcess.binary, ["ingest", photos.deletingLastPathComponent().path, "--labels-from-folders",
                                                                    "--create-labels", "--data", root.appendingPathComponent(data).path],
                                                 environment: ["IMAGEHUB_LOG_LEVEL": level], mergeErrors: true)
            return String(decoding: said, as: UTF8.self)
        }
        // (Which debug lines an import writes depends on which upload's check runs first; info's are fixed.)
        let chatty = try await ingest("debug", into: "a")
        #expect(chatty.contains(" info ") && chatty.contains("backbone efficientnet-lite0/"), "\(chatty)")
        let quiet = try await ingest("warning", into: "b")
        #expect(quiet.contains("2 files: 2 new") && !quiet.contains(" info ") && !quiet.contains(" debug "), "\(quiet)")
    }

    @Test("a folder of links to a dataset is the dataset: links to folders and files are followed, a cycle once, and what is skipped is said")
    func foldersOfLinks() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-links-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        let real = root.appendingPathComponent("real"), linked = root.appendingPathComponent("linked")
        try fm.createDirectory(at: real.appendingPathComponent("bananas"), withIntermediateDirectories: true)
        try fm.createDirectory(at: real.appendingPathComponent("loose"), withIntermediateDirectories: true)
        try fm.createDirectory(at: linked.appendingPathComponent("Apple"), withIntermediateDirectories: true)
        for seed in [411, 412] { try Fixtures.image(.jpeg, seed: seed).write(to: real.appendingPathComponent("bananas/\(seed).jpg")) }
        try Fixtures.image(.png, seed: 413).write(to: real.appendingPathComponent("loose/413.png"))
        try Data("notes".utf8).write(to: real.appendingPathComponent("bananas/README.md"))
        // linked/Banana → a folder; linked/Apple/413.png → a file; a cycle back up; a link to nothing.
        try fm.createSymbolicLink(atPath: linked.appendingPathComponent("Banana").path, withDestinationPath: "../real/bananas")
        try fm.createSymbolicLink(atPath: linked.appendingPathComponent("Apple/413.png").path, withDestinationPath: real.appendingPathComponent("loose/413.png").path)
        try fm.createSymbolicLink(atPath: linked.appendingPathComponent("Apple/again").path, withDestinationPath: "..")
        try fm.createSymbolicLink(atPath: linked.appendingPathComponent("Apple/gone.jpg").path, withDestinationPath: "/nonexistent/gone.jpg")

        let scan = try ImageFiles.scan(linked.path)
        #expect(scan.files.map { $0.path.replacingOccurrences(of: linked.path + "/", with: "") } == ["Apple/413.png", "Banana/411.jpg", "Banana/412.jpg"])
        let why = Dictionary(uniqueKeysWithValues: scan.skipped.map { ($0.path.replacingOccurrences(of: linked.path + "/", with: ""), $0.why) })
        #expect(why["Banana/README.md"] == "not an image file name" && why["Apple/gone.jpg"] == "broken link")
        #expect(why["Apple/again"]?.hasPrefix("folder already walked") == true, "\(why)")
        #expect(scan.skippedSummary.contains { $0.hasPrefix("skipped 1 (broken link): ") })

        // A bulk import stores (and so processes) the largest files first; equal sizes keep the path order.
        try Data(count: 10).write(to: real.appendingPathComponent("loose/small.jpg"))
        try Data(count: 10).write(to: real.appendingPathComponent("loose/a-small.jpg"))
        let ordered = ImageFiles.largestFirst(try ImageFiles.scan(real.path).files)
        let sizes = try ordered.map { try Data(contentsOf: $0).count }
        #expect(ordered.map(\.lastPathComponent).suffix(2) == ["a-small.jpg", "small.jpg"] && sizes.count == 5, "\(ordered)")
        #expect(sizes == sizes.sorted(by: >), "\(sizes)")
        try fm.removeItem(at: real.appendingPathComponent("loose/small.jpg"))
        try fm.removeItem(at: real.appendingPathComponent("loose/a-small.jpg"))

        let data = root.appendingPathComponent("hub")
        let (status, output) = try await runProgram(HubProcess.binary, ["ingest", linked.path, "--labels-from-folders", "--create-labels", "--data", data.path],
                                                    environment: Self.plain, mergeErrors: true)
        let said = String(decoding: output, as: UTF8.self)
        #expect(status == 0)
        #expect(said.contains("3 files: 3 new") && said.contains("skipped 1 (broken link)") && said.contains("skipped 1 (not an image file name)"), "\(said)")
        let catalog = try Catalog(path: data.appendingPathComponent("catalog.sqlite").path)
        #expect(try catalog.label(named: "Banana") != nil && catalog.label(named: "Apple") != nil && catalog.label(named: "bananas") == nil,
                "labels are the folder names as reached")
    }
}

@Suite struct TrainingCLITests {
    @Test("bench near-dups and bench verify-labels measure the checks on a folder of labelled photos: copies found, wrong labels caught, what was missed named", needsSharedData)
    func benchTheChecks() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-bench-checks-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try SharedData.copyPhotos(labels: ["airplanes", "flowers"], count: 24, into: root)
        // Half of each label accepted, a resized, cropped, recompressed copy of each of those, and the other half.
        let dups = try await HubProcess.run(["bench", "near-dups", root.path, "--seed", "1"])
        let dupRow = try #require(dups.split(separator: "\n").last.map { $0.split(separator: " ", omittingEmptySubsequences: true) }, "\(dups)")
        let found = try #require(dupRow.first.flatMap { Int($0.split(separator: "/")[0]) }, "\(dups)")
        #expect(dups.contains("2 labels, 24 accepted originals; 24 copies") && found >= 22, "\(dups)")
        #expect(dupRow.count > 2 && dupRow[2] == "0/24", "no distinct photo taken for a copy: \(dups)")

        // 14 honest photos a label, then the other 20 with about half the labels swapped.
        let labels = try await HubProcess.run(["bench", "verify-labels", root.path, "--bootstrap", "14", "--flip", "0.5", "--seed", "1", "--min-images", "10"])
        let line = try #require(labels.split(separator: "\n").first { $0.hasPrefix("bench verify-labels:") }, "\(labels)")
        let wrong = try #require(line.split(separator: " ").firstIndex(of: "wrong").flatMap { Int(line.split(separator: " ")[$0 - 1]) }, "\(line)")
        let after = try #require(labels.split(separator: "\n").first { $0.hasPrefix("after background re-check") }, "\(labels)")
        let columns = after.dropFirst("after background re-check".count).split(separator: " ", omittingEmptySubsequences: true)
        let (flagged, caught) = (Int(columns[0]) ?? -1, Int(columns[1]) ?? -1)
        #expect(wrong >= 8 && caught >= wrong - 1 && flagged == caught, "airplanes and flowers: nearly every swap caught, no honest photo flagged: \(labels)")
        #expect(labels.split(separator: "\n").filter { $0.hasPrefix("missed: ") }.count == wrong - caught, "each miss is named: \(labels)")
    }

    @Test("ingest real photos, train with --wait, list, export ONNX and predict from the command line", needsSharedData)
    func trainFromTheCommandLine() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let photos = root.appendingPathComponent("photos"), data = root.appendingPathComponent("hub")
        try SharedData.copyPhotos(labels: ["airplanes", "flowers"], count: 12, into: photos)
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
