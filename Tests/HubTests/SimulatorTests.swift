import Catalog
import Foundation
import HubCore
import HubServer
import HubTesting
import Hummingbird
import Imaging
import Simulator
import Testing

@Suite("the upload simulator", .serialized)
struct SimulatorTests {
    /// `count` generated photos per label, in label folders, as a phone's photo library.
    static func photoFolder(labels: [String], count: Int, seed: Int) throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-sim-\(UUID().uuidString)")
        for (l, label) in labels.enumerated() {
            let dir = root.appendingPathComponent(label)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for i in 0..<count {
                try Fixtures.image(.jpeg, width: 360, height: 270, seed: seed + l * 1000 + i).write(to: dir.appendingPathComponent("p\(i).jpg"))
            }
        }
        return root
    }

    /// Runs the simulator against `t` (served on a free port) on the photos in `folder`, as its supplier,
    /// polling every 100 ms, with `configure` setting the rest.
    static func simulate(_ t: TestHub, _ folder: URL, _ configure: (inout SimulationOptions) -> Void) async throws -> SimulationReport {
        try await t.serving { url in
            var options = SimulationOptions(target: url, key: t.keys[.supplier]!, photos: try Workload.folders(folder.path))
            options.pollInterval = .milliseconds(100)
            configure(&options)
            return try await Simulation.run(options)
        }
    }

    /// Every image the hub holds is in a final status, and they are exactly the ones the report followed.
    static func expectNothingLost(_ report: SimulationReport, _ t: TestHub) throws {
        #expect(report.lost == 0, "lost: \(report.lostIds)")
        #expect(report.gaveUp == 0)
        #expect(report.acknowledged + report.refused.values.reduce(0, +) == report.sent, "every upload ends acknowledged or refused")
        let counts = try t.hub.catalog.statusCounts()
        #expect(counts[.pending] ?? 0 == 0, "no image is left pending: \(counts)")
        #expect(counts.values.reduce(0, +) == report.final, "each acknowledged image was stored once: \(counts) vs \(report.final) final")
        // What the phones saw of each image's final status agrees with the hub's own catalog.
        var seen: [String: Int] = [:]
        for (outcome, n) in report.outcomes { seen[String(outcome.prefix { $0 != " " }), default: 0] += n }
        let stored = Dictionary(uniqueKeysWithValues: counts.filter { $0.value > 0 }.map { ($0.key.rawValue, $0.value) })
        #expect(seen == stored, "statuses the phones saw \(seen) vs the catalog \(stored)")
    }

    @Test("--follow-quests: the phones send what the quests ask for first, each photo once, then the rest")
    func followQuests() async throws {
        let t = try TestHub(labels: ["Daisy", "Tulip", "Rose"])
        defer { t.remove() }
        let folder = try Self.photoFolder(labels: ["Daisy", "Tulip", "Rose"], count: 6, seed: 9300)
        defer { try? FileManager.default.removeItem(at: folder) }
        // The newest model finds half the daisies: the quests want daisies (32 + 10), nothing else.
        _ = try QuestsTests.model(t.hub.catalog, labels: ["Daisy", "Tulip"], recall: [0.5, 1.0], confusion: [[5, 5], [0, 10]], createdAt: Date())
        let report = try await Self.simulate(t, folder) {
            $0.devices = 3
            $0.count = 9
            $0.followQuests = true
        }
        try Self.expectNothingLost(report, t)
        // The 6 daisies first (all the workload has), then photos of the other labels, none twice.
        #expect(report.questUploads == ["Daisy": 6], "\(String(describing: report.questUploads))")
        let tree = try t.hub.catalog.labelTree()
        let stored = Dictionary(uniqueKeysWithValues: tree.map { ($0.name, $0.counts.values.reduce(0, +)) })
        #expect(stored["Daisy"] == 6 && (stored["Tulip"] ?? 0) + (stored["Rose"] ?? 0) == 3, "\(stored)")
        #expect(report.outcomes.keys.allSatisfy { !$0.contains("duplicate") } && report.acknowledgedExisting == 0)
        #expect(report.table.contains("sent for collection quests") && report.table.contains("6 (Daisy 6)"))
    }

    @Test("20 phones × 10 uploads with 10% cut connections, multipart and tus: every acknowledged image ends final, none lost",
          arguments: [SimulationOptions.Transport.multipart, .tus])
    func flakyPhonesLoseNothing(transport: SimulationOptions.Transport) async throws {
        let t = try TestHub(labels: ["Banana", "Apple"])
        defer { t.remove() }
        let folder = try Self.photoFolder(labels: ["Banana", "Apple"], count: 25, seed: 9100)
        defer { try? FileManager.default.removeItem(at: folder) }
        let report = try await Self.simulate(t, folder) {
            $0.devices = 20
            $0.count = 200
            $0.flaky = 0.1
            $0.transport = transport
            $0.seed = 42
            $0.settleTimeout = .seconds(120)
        }
        print(report.table)
        #expect(report.sent == 200)
        #expect(report.cuts >= 10, "about one upload in ten is cut mid-body")
        try Self.expectNothingLost(report, t)
        #expect(report.acknowledged == 200 && report.final == 200)
        // At most one acceptance per distinct photo (the folder holds 50): a second copy accepted fails here.
        #expect((40...50).contains(report.outcomes["accepted", default: 0]), "\(report.outcomes)")
        // Photos used again (the folder holds 50) are new bytes with the same pixels: near duplicates.
        #expect(report.outcomes["quarantined duplicate.near", default: 0] >= 100, "\(report.outcomes)")
        if transport == .tus {
            #expect(report.resumes >= 1 && report.bytesKept > 0, "cut tus uploads resume from the bytes the server kept")
            #expect(try FileManager.default.contentsOfDirectory(atPath: t.hub.uploads.directory.path).isEmpty, "every resumable upload was finished")
        }
        // The phones' metadata arrived: devices, a batch per session, places around Berlin.
        let labels = try ["Banana", "Apple"].map { try #require(try t.hub.catalog.label(named: $0)?.id) }
        let images = try t.hub.catalog.images(labelIds: labels, status: nil, after: nil, limit: 1000)
        #expect(images.count == 200)
        #expect(images.allSatisfy { $0.device?.contains(" #") == true && $0.batchId != nil && $0.capturedAt != nil })
        #expect(images.allSatisfy { abs(($0.lat ?? 0) - 52.52) < 0.5 && abs(($0.lon ?? 0) - 13.405) < 0.5 })
        #expect(Set(images.compactMap(\.batchId)).count >= 20, "each phone opens at least one session")
        #expect(Set(images.compactMap(\.device)).count == 20)
    }

    @Test("--wait: phones ask for the verdict in the answer (Prefer: wait) and get it, final statuses agreeing with the hub")
    func phonesWaitForTheirVerdicts() async throws {
        let t = try TestHub(labels: ["Banana", "Apple"])
        defer { t.remove() }
        let folder = try Self.photoFolder(labels: ["Banana", "Apple"], count: 10, seed: 9200)
        defer { try? FileManager.default.removeItem(at: folder) }
        let report = try await Self.simulate(t, folder) {
            $0.devices = 4
            $0.count = 20
            $0.wait = 20
        }
        print(report.table)
        try Self.expectNothingLost(report, t)
        #expect(report.answeredWithVerdict == report.acknowledged && report.acknowledged == 20, "every upload was answered with its verdict")
        #expect(report.table.contains("answered with the verdict (Prefer: wait)  20 (100% of acknowledged)"))
        let plain = try await Self.simulate(t, folder) { $0.devices = 2; $0.count = 2 }
        #expect(plain.answeredWithVerdict == nil && !plain.table.contains("answered with the verdict"))
    }

    @Test("a full backlog answers 503 + Retry-After; the phones wait it out and still lose nothing")
    func backpressureIsHonoured() async throws {
        let t = try TestHub(labels: ["Banana"]) { $0.workers = 1; $0.backlogHighWater = 4; $0.retryAfterSeconds = 1 }
        defer { t.remove() }
        let folder = try Self.photoFolder(labels: ["Banana"], count: 60, seed: 9300)
        defer { try? FileManager.default.removeItem(at: folder) }
        let report = try await Self.simulate(t, folder) {
            $0.devices = 12
            $0.count = 60
        }
        print(report.table)
        #expect(report.backpressureWaits > 0, "with 12 phones and a high-water mark of 4 the hub must push back")
        try Self.expectNothingLost(report, t)
        #expect(report.acknowledged == 60)
    }

    @Test("open loop at a fixed rate: uploads are spread over the duration")
    func openLoopRate() async throws {
        let t = try TestHub(labels: ["Banana"])
        defer { t.remove() }
        let folder = try Self.photoFolder(labels: ["Banana"], count: 10, seed: 9400)
        defer { try? FileManager.default.removeItem(at: folder) }
        let report = try await Self.simulate(t, folder) {
            $0.devices = 5
            $0.rate = 10
            $0.duration = .seconds(3)
        }
        // Poisson arrivals at 10/s for 3 s: 30 expected; far outside 10…60 means the rate is not applied.
        #expect((10...60).contains(report.sent), "\(report.sent) uploads")
        #expect(report.loadSeconds >= 2, "the uploads are spread over the duration, not sent at once")
        try Self.expectNothingLost(report, t)
    }

    @Test("labels the hub lacks stop the run with a reason, unless --create-labels (admin) creates them")
    func missingLabels() async throws {
        let t = try TestHub(labels: [])
        defer { t.remove() }
        let folder = try Self.photoFolder(labels: ["Kiwi"], count: 2, seed: 9500)
        defer { try? FileManager.default.removeItem(at: folder) }
        try await t.serving { url in
            var options = SimulationOptions(target: url, key: t.keys[.supplier]!, photos: try Workload.folders(folder.path))
            let supplier = options
            let missing = await #expect(throws: HubError.self) { try await Simulation.run(supplier) }
            #expect(missing?.code == "labels.missing" && missing?.message.contains("Kiwi") == true)
            options.key = "not-a-key"
            let stranger = options
            let refused = await #expect(throws: HubError.self) { try await Simulation.run(stranger) }
            #expect(refused?.status == 401)
            options.key = t.keys[.admin]!
            options.createLabels = true
            let report = try await Simulation.run(options)
            #expect(report.acknowledged == 2 && report.lost == 0)
        }
        #expect(try t.hub.catalog.label(named: "Kiwi") != nil)
    }

    @Test("Open Images image-level labels: MIDs become names, negatives and missing files are skipped, one label per image")
    func openImagesWorkload() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-oi-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("imgs/sub"), withIntermediateDirectories: true)
        for name in ["a1", "sub/b2"] { try Fixtures.image(seed: 9600).write(to: dir.appendingPathComponent("imgs/\(name).jpg")) }
        try Data("/m/06m11,Rose\n/m/0c9ph5,Flower\n/m/01yrx,Cat\n".utf8).write(to: dir.appendingPathComponent("classes.csv"))
        try Data("""
            ImageID,Source,LabelName,Confidence
            a1,human,/m/06m11,1
            a1,human,/m/0c9ph5,1
            b2,human,/m/01yrx,0
            b2,human,/m/0c9ph5,1
            c3,human,/m/06m11,1

            """.utf8).write(to: dir.appendingPathComponent("labels.csv"))
        let (photos, missing) = try Workload.openImages(labels: dir.appendingPathComponent("labels.csv").path,
                                                        classes: dir.appendingPathComponent("classes.csv").path, images: dir.appendingPathComponent("imgs").path)
        #expect(photos.map(\.label) == ["Rose", "Flower"] && photos.map(\.mid) == ["/m/06m11", "/m/0c9ph5"])
        #expect(photos[1].file.lastPathComponent == "b2.jpg" && missing == 1)
        try Data("ImageID,Source,LabelName,Confidence\na1,human,/m/0xyz,1\n".utf8).write(to: dir.appendingPathComponent("bad.csv"))
        let unknown = #expect(throws: HubError.self) {
            try Workload.openImages(labels: dir.appendingPathComponent("bad.csv").path, classes: dir.appendingPathComponent("classes.csv").path,
                                    images: dir.appendingPathComponent("imgs").path)
        }
        #expect(unknown?.code == "labels.unknown_mid")
    }

    @Test("`imagehub simulate` as a real process on the shared photos' Open Images labels, with tus and cuts, prints JSON", needsSharedData)
    func commandLineOpenImages() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-simcli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let env = ["IMAGEHUB_EMBEDDING_ENABLED": "false"]
        let key = try #require(try await HubProcess.run(["keys", "create", "--role", "admin", "--data", dir.path], environment: env)
            .split(separator: "\n").last.map(String.init))
        let server = try HubProcess(data: dir, environment: env)
        defer { server.process.terminate() }
        try await server.waitUntilHealthy()
        let oi = SharedData.url("openimages")
        let (status, output) = try await runProgram(HubProcess.binary, [
            "simulate", "--target", server.base, "--key", key, "--devices", "8", "--count", "40", "--resumable", "--flaky", "0.2",
            "--openimages", oi.appendingPathComponent("shared-photos-imagelabels.csv").path,
            "--classes", oi.appendingPathComponent("oidv6-class-descriptions.csv").path,
            "--images", SharedData.url("photos").path, "--create-labels", "--json",
        ], environment: env)
        #expect(status == 0)
        let report = try #require(try JSONSerialization.jsonObject(with: output) as? [String: Any], "\(String(decoding: output, as: UTF8.self))")
        #expect(report["sent"] as? Int == 40 && report["acknowledged"] as? Int == 40 && report["lost"] as? Int == 0, "\(report)")
        #expect(report["transport"] as? String == "tus" && (report["cuts"] as? Int ?? 0) >= 1)
        let latency = try #require(report["acknowledgement_latency"] as? [String: Any])
        #expect((latency["p99"] as? Double ?? 0) > 0 && latency["count"] as? Int == 40)
        let catalog = try Catalog(path: dir.appendingPathComponent("catalog.sqlite").path)
        let names = Set(try catalog.labelTree().map(\.name))
        #expect(names.isSubset(of: ["Airplane", "Dog", "Rose", "Room"]) && names.count >= 3, "labels named from the MIDs: \(names)")
        #expect(try catalog.label(named: "Rose")?.mid == "/m/06m11" || !names.contains("Rose"))
    }
}
