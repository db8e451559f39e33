import Catalog
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HubCore
import HubTesting
import Simulator
import Synchronization
import Testing

/// The hub spread over real processes: PostgreSQL, two API nodes and two worker nodes on one shared data
/// directory, with a worker killed, an API node restarted and the database taken away mid-run.
@Suite(.serialized) struct ScaleOutTests {
    static let postgres: [CatalogEngine] = TestCatalogs.engines.filter { $0 == .postgres }
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A port free now, for a node that must come back on the same address after a restart.
    func freePort() async throws -> Int {
        let (_, out) = try await runProgram(URL(fileURLWithPath: "/usr/bin/python3"), [
            "-c", "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])",
        ])
        return try #require(Int(String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    /// Stops or starts the test cluster (`scripts/with-postgres.sh --ctl`).
    func cluster(_ action: String) async throws {
        let ctl = try #require(ProcessInfo.processInfo.environment["IMAGEHUB_TEST_PG_CTL"], "make test sets IMAGEHUB_TEST_PG_CTL")
        let argv = ctl.split(separator: " ").map(String.init) + [action]
        let (status, output) = try await runProgram(URL(fileURLWithPath: argv[0]), Array(argv.dropFirst()), mergeErrors: true)
        #expect(status == 0, "postgres \(action) exited with \(status): \(String(decoding: output, as: UTF8.self))")
    }

    @Test("two API nodes and two workers on one PostgreSQL: kill -9, a restart and a database outage lose nothing",
          .timeLimit(.minutes(5)), arguments: postgres)
    func manyNodesLoseNothing(engine: CatalogEngine) async throws {
        #expect(FileManager.default.isExecutableFile(atPath: HubProcess.binary.path), "build the CLI first (make test does)")
        let url = try #require(try TestCatalogs.url(for: .postgres))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-nodes-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let env = ["IMAGEHUB_CATALOG_URL": url, "IMAGEHUB_EMBEDDING_ENABLED": "false", "IMAGEHUB_WORKERS_COUNT": "2",
                   "IMAGEHUB_JOBS_LEASE_SECONDS": "4", "IMAGEHUB_JOBS_BACKOFF_SECONDS": "0.2",
                   "IMAGEHUB_MAINTENANCE_INTERVAL_SECONDS": "1", "IMAGEHUB_UPLOADS_EXPIRE_SECONDS": "3600"]
        let key = try await HubProcess.run(["keys", "create", "--role", "admin", "--data", dir.path], environment: env)
            .split(separator: "\n").last.map(String.init) ?? ""
        for label in ["Banana", "Apple"] { _ = try await HubProcess.run(["labels", "create", label, "--data", dir.path], environment: env) }

        let ports = [try await freePort(), try await freePort()]
        var api = try ports.map { try HubProcess(data: dir, environment: env, arguments: ["--role", "api"], port: $0) }
        var workers = try (0..<2).map { _ in try HubProcess(data: dir, environment: env, arguments: ["--role", "worker"]) }
        defer { for node in api + workers { node.process.kill9() } }
        for node in api + workers { try await node.waitUntilHealthy() }
        let bases = api.map(\.base)
        let started = ContinuousClock.now
        print("scale-out: API nodes \(bases), two workers; phones start")

        // Photos the phones send: distinct generated pictures under two labels.
        let photos = dir.appendingPathComponent("photos")
        for (n, label) in ["Banana", "Apple"].enumerated() {
            let folder = photos.appendingPathComponent(label)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for i in 0..<20 { try Fixtures.image(width: 800, height: 600, seed: 7000 + 100 * n + i).write(to: folder.appendingPathComponent("\(i).jpg")) }
        }
        func options(_ transport: SimulationOptions.Transport, rate: Double, flaky: Double = 0.1, seed: UInt64) throws -> SimulationOptions {
            var o = SimulationOptions(targets: bases, key: key, photos: try Workload.folders(photos.path))
            o.transport = transport
            o.devices = 16
            o.rate = rate
            o.duration = .seconds(18)
            o.flaky = flaky
            o.seed = seed
            o.settleTimeout = .seconds(90)
            o.requestTimeout = .seconds(20)
            o.maxAttempts = 30
            return o
        }
        let multipart = Task { try await Simulation.run(try options(.multipart, rate: 4, seed: 11)) }
        let tus = Task { try await Simulation.run(try options(.tus, rate: 2, flaky: 0.2, seed: 12)) }

        // Mid-run: a worker dies with kill -9 and comes back; API node 1 restarts; PostgreSQL is away for 10 s.
        try await Task.sleep(for: .seconds(2))
        print("scale-out: kill -9 worker 1")
        workers[0].process.kill9()
        #expect(workers[0].process.waitUntilExit(timeout: 60), "the node ends")
        try await Task.sleep(for: .seconds(1))
        workers[0] = try HubProcess(data: dir, environment: env, arguments: ["--role", "worker"])
        try await Task.sleep(for: .seconds(1))
        print("scale-out: restart API node 1")
        api[0].process.terminate()
        #expect(api[0].process.waitUntilExit(timeout: 60), "the node ends")
        #expect(api[0].process.exitStatus == 0, "SIGTERM stops an API node cleanly")
        api[0] = try HubProcess(data: dir, environment: env, arguments: ["--role", "api"], port: ports[0])
        try await api[0].waitUntilHealthy()
        try await Task.sleep(for: .seconds(1))
        print("scale-out: PostgreSQL stops for 10 s, \(ContinuousClock.now - started) after the phones started")
        try await cluster("stop")
        try await Task.sleep(for: .seconds(2))
        let clock = ContinuousClock(), asked = clock.now
        let (downStatus, _) = try await api[1].get("/healthz")
        // An outage found, other callers are answered at once (one waits to see whether the catalog is back).
        print("scale-out: /healthz during the outage answered \(downStatus) in \(clock.now - asked)")
        #expect(downStatus == 503, "an API node says the catalog is unreachable")
        let sent = clock.now
        let (refused, refusal) = try await api[1].upload(try Fixtures.image(seed: 7999), label: "Banana", key: key)
        print("scale-out: an upload during the outage answered \(refused) in \(clock.now - sent)")
        #expect(refused == 503 && (refusal["error"] as? [String: Any])?["code"] as? String == "catalog.unavailable",
                "an upload while the catalog is down is refused with 503 catalog.unavailable, not lost: \(refusal)")
        try await Task.sleep(for: .seconds(8))
        try await cluster("start")
        print("scale-out: PostgreSQL is back")

        // The refused upload is sent again once the catalog is back, as a phone would.
        try await waitUntil(seconds: 30) { (try? Catalog(url: url))?.close() != nil }
        // As a phone would, it waits out 503s (the node's pool may still be backing off from the outage).
        var (retried, answer) = try await api[1].upload(try Fixtures.image(seed: 7999), label: "Banana", key: key)
        let patience = ContinuousClock.now + .seconds(30)
        while retried == 503, ContinuousClock.now < patience {
            try await Task.sleep(for: .seconds(2))
            (retried, answer) = try await api[1].upload(try Fixtures.image(seed: 7999), label: "Banana", key: key)
        }
        #expect(retried == 202, "\(answer)")

        let reports = [try await multipart.value, try await tus.value]
        print("scale-out: phones done")
        for report in reports {
            print(report.table)
            #expect(report.acknowledged > 15, "\(report.transport): the phones got their uploads through")
            #expect(report.lost == 0, "\(report.transport): every acknowledged upload reaches a final status")
            #expect(report.cuts > 0)
        }
        #expect(reports[1].resumes > 0, "cut tus uploads were resumed")
        for node in api + workers { try await node.waitUntilHealthy() }

        // Two near-duplicate copies (the same pixels as JPEG and as PNG) sent to the two API nodes at once.
        let jpeg = try Fixtures.image(.jpeg, width: 700, height: 500, seed: 8001), png = try Fixtures.image(.png, width: 700, height: 500, seed: 8001)
        async let first = Self.upload(jpeg, to: bases[0], label: "Apple", key: key)
        async let second = Self.upload(png, to: bases[1], label: "Apple", key: key)
        let copies = try await [first, second]

        // tuspy starts an upload through API node 1 and, after its connection is cut, resumes through node 2.
        let tusPhotos = try (0..<2).map { n -> String in
            let file = dir.appendingPathComponent("tus-\(n).jpg")
            try Fixtures.image(width: 1600, height: 1200, seed: 8100 + n).write(to: file)
            return file.path
        }
        let (tusStatus, tusOut) = try await runProgram(Self.root.appendingPathComponent(".venv/bin/python"), [
            Self.root.appendingPathComponent("scripts/tus_client_check.py").path, bases[0], key, tusPhotos[0], tusPhotos[1], "Banana", bases[1],
        ], mergeErrors: true)
        #expect(tusStatus == 0, "\(String(decoding: tusOut, as: UTF8.self))")

        let catalog = try Catalog(url: url)
        defer { catalog.close() }
        try await waitUntil(seconds: 60) { try catalog.backlog() == 0 }
        let decided = try copies.map { try #require(try catalog.image(id: $0)) }
        #expect(decided.map(\.status).sorted { $0.rawValue < $1.rawValue } == [.accepted, .quarantined],
                "exactly one of two near-duplicate copies is accepted: \(decided.map(\.reasons))")
        let tusResult = try #require(try? JSONSerialization.jsonObject(with: tusOut) as? [String: Any], "\(String(decoding: tusOut, as: UTF8.self))")
        let resumedId = try #require((tusResult["resumed_url"] as? String)?.split(separator: "/").last.map(String.init))
        #expect((tusResult["resumed_url"] as? String)?.hasPrefix(bases[1]) == true)
        let resumedImage = try #require(try catalog.resumableUpload(id: resumedId)?.imageId)
        #expect(try catalog.image(id: resumedImage)?.status == .accepted, "the upload resumed through node 2 is final")

        // Every image final, its one job done once; the catalog and the blob directory agree.
        let labels = try catalog.labelsById().keys.sorted()
        let images = try catalog.images(labelIds: labels, status: nil, after: nil, limit: 10_000)
        #expect(images.count > 40)
        var referenced = Set<String>()
        for image in images {
            #expect(image.status != .pending, "image \(image.id) is final")
            let jobs = try catalog.jobs(imageId: image.id)
            #expect(jobs.count == 1 && jobs[0].state == .done, "image \(image.id): one job, done")
            referenced.insert(image.sha256)
            referenced.formUnion([image.canonicalKey, image.thumbnailKey].compactMap { $0 })
            if image.status != .rejected {
                for rendition in [image.canonicalKey, image.thumbnailKey] {
                    let key = try #require(rendition, "image \(image.id) has its renditions")
                    #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("blobs/\(key.prefix(2))/\(key)").path),
                            "rendition \(key) of image \(image.id) is stored")
                }
            }
        }
        let stored = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("blobs").path)
            .filter { $0.count == 2 }
            .flatMap { try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("blobs/\($0)").path) }
        let orphans = Set(stored).subtracting(referenced)
        #expect(orphans.isEmpty, "every stored blob belongs to an image: \(orphans.sorted().prefix(5))")
    }
}

extension ScaleOutTests {
    /// Uploads through the node at `base` and returns the new image's id.
    static func upload(_ bytes: Data, to base: String, label: String, key: String) async throws -> String {
        let (status, json) = try await HubProcess.upload(bytes, to: base, label: label, key: key)
        return try #require(json["id"] as? String, "\(status): \(json)")
    }
}

extension HubProcess {
    /// `GET path` on this node: the status and the body's JSON (a node that has not answered within 30 s
    /// fails the test: a node whose catalog is away answers at once or after the catalog's lease timeout).
    func get(_ path: String) async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: URL(string: base + path)!)
        request.timeoutInterval = 30
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as! HTTPURLResponse).statusCode, (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
    }
}
