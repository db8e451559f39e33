import Catalog
import Foundation
import GRDB
import HubCore
import HubTesting
import Jobs
import Synchronization
import Testing

@Suite struct JobsTests {
    @Test(arguments: TestCatalogs.engines)
    func failingJobsRetryWithBackoffThenDeadLetter(engine: CatalogEngine) async throws {
        let t = try TestHub(engine: engine) { $0.maxAttempts = 3; $0.backoffSeconds = 0.01 }
        defer { t.remove() }
        try await t.withClient { client in
            let id = try await client.upload(try Fixtures.image(seed: 71), label: "Banana", as: t.bearer(.supplier)).json["id"] as! String
            // The stored original disappears (a broken disk): every attempt fails with an I/O error.
            let sha = try #require(try t.hub.catalog.image(id: id)).sha256
            try FileManager.default.removeItem(at: t.hub.blobs.path(for: sha))
            await t.drain()
            let image = try #require(try t.hub.catalog.image(id: id))
            #expect(image.status == .rejected && image.reasonCodes == ["internal.failed"])
            let jobs = try t.hub.catalog.jobs(imageId: id)
            #expect(jobs.count == 1 && jobs[0].state == .dead && jobs[0].attempts == 3)
            #expect(jobs[0].lastError?.isEmpty == false)
            #expect(try t.hub.catalog.deadJobs().map(\.imageId) == [id])
        }
    }

    @Test("a failing job waits jobs.backoffSeconds × 2^(attempt − 1) before each retry")
    func retryBackoffGrows() async throws {
        let t = try TestHub { $0.maxAttempts = 4; $0.backoffSeconds = 0.15 }
        defer { t.remove() }
        try await t.withClient { client in
            let id = try await client.upload(try Fixtures.image(seed: 73), label: "Banana", as: t.bearer(.supplier)).json["id"] as! String
            try FileManager.default.removeItem(at: t.hub.blobs.path(for: try #require(try t.hub.catalog.image(id: id)).sha256))
            let drain = Task { await t.drain() }
            // Each failure queues the job again with its next run time: watch the waits as they are written.
            var waits: [Int: Double] = [:]
            while !(try t.hub.catalog.jobs(imageId: id).first.map { $0.state == .dead } ?? false) {
                if let job = try t.hub.catalog.jobs(imageId: id).first, job.state == .queued, job.attempts > 0 {
                    waits[job.attempts] = job.runAfter.timeIntervalSince(job.updatedAt)
                }
                try await Task.sleep(for: .milliseconds(5))
            }
            await drain.value
            print("retry waits by attempt: \(waits.sorted { $0.key < $1.key })")
            for (attempt, expected) in [(1, 0.15), (2, 0.3), (3, 0.6)] {
                #expect(abs((waits[attempt] ?? -1) - expected) < 0.01, "attempt \(attempt): \(waits)")
            }
            #expect(try t.hub.catalog.jobs(imageId: id).first?.attempts == 4)
        }
    }

    @Test(arguments: TestCatalogs.engines)
    func anExpiredLeaseIsTakenOverAndTheStaleWorkerCannotCommit(engine: CatalogEngine) async throws {
        let t = try TestHub(engine: engine)
        defer { t.remove() }
        try await t.withClient { client in
            let id = try await client.upload(try Fixtures.image(seed: 72), label: "Banana", as: t.bearer(.supplier)).json["id"] as! String
            let c = t.hub.catalog
            // The clock is passed in, not waited out: a loaded machine cannot make the lease run out early.
            let now = Date()
            let first = try #require(try c.claimJob(worker: "a", lease: 30, now: now))
            #expect(try c.claimJob(worker: "b", lease: 60, now: now.addingTimeInterval(29)) == nil, "a held lease is respected")
            let second = try #require(try c.claimJob(worker: "b", lease: 60, now: now.addingTimeInterval(31)), "an expired lease is taken over")
            #expect(second.job.id == first.job.id && second.job.attempts == 2)
            let (verdict, _) = try t.hub.pipeline.process(first.image)
            #expect(try c.complete(job: first.job, worker: "a", verdict: verdict, nearDistance: 6) == nil)
            #expect(try c.complete(job: second.job, worker: "b", verdict: verdict, nearDistance: 6)?.status == .accepted)
            #expect(try c.image(id: id)?.status == .accepted)
            #expect(try c.backlog() == 0)
            // Claims and verdicts commit without an fsync; the next durable write (an upload) is flushed again.
            for durable in [false, true, false, true] {
                #expect(try c.commitWaitsForDisk(durable: durable) == durable)
            }
        }
    }

    @Test func settingsComeFromTheDataDirectoryFileAndTheEnvironment() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-settings-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let defaults = try await HubSettings.load(dataDirectory: dir.path, environment: [:])
        #expect(defaults == HubSettings())
        try Data(#"{"upload":{"maxBytes":1000},"quality":{"minSharpness":7.5},"workers":{"count":3}}"#.utf8)
            .write(to: dir.appendingPathComponent(HubSettings.fileName))
        let s = try await HubSettings.load(dataDirectory: dir.path, environment: ["IMAGEHUB_WORKERS_COUNT": "5"])
        #expect(s.maxUploadBytes == 1000 && s.minSharpness == 7.5)
        #expect(s.workers == 5, "the environment wins over the file")
        #expect(s.workersConfigured && !defaults.workersConfigured, "a bulk import picks its own count only where none was set")
        try Data(#"{"workers":{"count":3}}"#.utf8).write(to: dir.appendingPathComponent(HubSettings.fileName))
        let fromFile = try await HubSettings.load(dataDirectory: dir.path, environment: [:])
        #expect(fromFile.workers == 3 && fromFile.workersConfigured)
    }

    @Test("a drain told that uploads are still being stored processes them as they come and ends after the last")
    func drainWhileStoringStartsOnTheFirstUploads() async throws {
        let t = try TestHub()
        defer { t.remove() }
        let user = try t.hub.catalog.localUser()
        let storing = StoringFlag(), finished = StoringFlag()
        let drain = Task {
            await t.hub.workers.drain(while: { storing.isOn })
            finished.finish()
        }
        func store(_ seed: Int) throws -> String {
            let file = t.directory.appendingPathComponent("upload-\(seed).png")
            try Fixtures.image(.png, seed: seed).write(to: file)
            guard case .created(let image) = try t.hub.ingestor.accept(fileAt: file, meta: .init(label: "Banana"), user: user) else {
                throw HubError(500, "test", "not stored")
            }
            return image.id
        }
        func processed(_ id: String) async throws -> Bool {
            for _ in 0..<500 where try t.hub.catalog.image(id: id)?.status == .pending { try await Task.sleep(for: .milliseconds(20)) }
            return try t.hub.catalog.image(id: id)?.status != .pending
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(finished.isOn, "an empty backlog does not end the drain while uploads are being stored")
        let first = try store(81)
        #expect(try await processed(first), "the first upload is processed while the others are still coming")
        #expect(finished.isOn)
        let second = try store(82)
        storing.finish()
        await drain.value
        #expect(!finished.isOn)
        #expect(try t.hub.catalog.image(id: second)?.status == .accepted, "the last upload was processed before the drain ended")
        #expect(try t.hub.catalog.backlog() == 0)
    }

    @Test("near duplicates are looked up through the hash's bytes and agree with a scan of every accepted image",
          arguments: TestCatalogs.engines)
    func nearDuplicateLookupAgreesWithAScan(engine: CatalogEngine) throws {
        let (t, c, user, label) = try catalogFixture(engine)
        defer { t.remove() }
        var rng = SeededRandom(seed: 404)
        func flipped(_ h: UInt64, _ bits: Int) -> UInt64 {
            var out = h, positions = Set<Int>()
            while positions.count < bits { positions.insert(Int.random(in: 0..<64, using: &rng)) }
            for p in positions { out ^= 1 << UInt64(p) }
            return out
        }
        // 300 accepted images: random hashes, and families of hashes a few bits from each other.
        var stored: [(id: String, hash: UInt64)] = []
        for n in 0..<300 {
            let hash = n % 3 == 0 || stored.isEmpty ? UInt64.random(in: .min ... .max, using: &rng)
                : flipped(stored[Int.random(in: 0..<stored.count, using: &rng)].hash, Int.random(in: 1...9, using: &rng))
            stored.append((try acceptImage(in: c, number: n, phash: hash, label: label, user: user), hash))
        }
        func scan(_ hash: UInt64, _ distance: Int, excluding: String) -> String? {
            stored.filter { $0.id != excluding && ($0.hash ^ hash).nonzeroBitCount <= distance }
                .min { (($0.hash ^ hash).nonzeroBitCount, $0.id) < (($1.hash ^ hash).nonzeroBitCount, $1.id) }?.id
        }
        var found = 0
        for probe in 0..<200 {
            let base = stored[Int.random(in: 0..<stored.count, using: &rng)]
            let hash = probe % 10 == 0 ? UInt64.random(in: .min ... .max, using: &rng) : flipped(base.hash, Int.random(in: 0...9, using: &rng))
            let excluding = probe % 4 == 0 ? base.id : ""
            for distance in [0, 3, 6, 7, 8, 12] {
                let expected = scan(hash, distance, excluding: excluding)
                #expect(try c.nearDuplicate(of: hash, within: distance, excluding: excluding) == expected, "probe \(probe), distance \(distance)")
                if expected != nil { found += 1 }
            }
        }
        #expect(found > 300, "the probes find near duplicates often enough to test the lookup")
        // The hardest case for the bands: seven differing bits, one in each byte but one, so a single byte
        // (a different one each time) is all the two hashes share.
        for kept in 0..<8 {
            let base = stored[kept * 31]
            var hash = base.hash
            for byte in 0..<8 where byte != kept { hash ^= 1 << UInt64(8 * byte + Int.random(in: 0..<8, using: &rng)) }
            #expect(try c.nearDuplicate(of: hash, within: 7) == scan(hash, 7, excluding: ""), "byte \(kept) kept")
            #expect(try c.nearDuplicate(of: hash, within: 7) != nil)
        }
    }

    /// A test hub, its catalog, the local user and the id of the label "Banana", for catalog-level tests.
    func catalogFixture(_ engine: CatalogEngine = .sqlite) throws -> (TestHub, Catalog, UserRecord, Int64) {
        let t = try TestHub(engine: engine)
        let user = try t.hub.catalog.localUser()
        guard let label = try t.hub.catalog.label(named: "Banana")?.id else { throw HubError(500, "test", "no label") }
        return (t, t.hub.catalog, user, label)
    }

    /// Records a pending upload (its sha256 made from `number`; no bytes are stored) with its job.
    func recordUpload(in c: Catalog, number: Int, label: Int64, user: UserRecord) throws -> String {
        guard case .created(let image) = try c.recordUpload(.newUpload(sha256: String(format: "%064x", number), labelId: label,
                                                                      uploaderId: user.id!, batchId: nil, device: nil, lat: nil,
                                                                      lon: nil, capturedAt: nil, bytes: 1)) else {
            throw HubError(500, "test", "not recorded")
        }
        return image.id
    }

    /// Records an upload and commits an accepted verdict with `phash` through the job path.
    func acceptImage(in c: Catalog, number: Int, phash: UInt64, label: Int64, user: UserRecord) throws -> String {
        let id = try recordUpload(in: c, number: number, label: label, user: user)
        guard let leased = try c.claimJob(worker: "w", lease: 60) else { throw HubError(500, "test", "no job") }
        // Distance -1: nothing is a near duplicate, so every image is accepted.
        _ = try c.complete(job: leased.job, worker: "w", verdict: Verdict(status: .accepted, phash: phash), nearDistance: -1)
        return id
    }

    @Test("the migration that adds the hash bands fills them for images hashed before it")
    func bandMigrationFillsExistingImages() throws {
        let (t, _, user, label) = try catalogFixture()
        defer { t.remove() }
        var rng = SeededRandom(seed: 405)
        let images = try (0..<40).map { n in
            let hash = UInt64.random(in: .min ... .max, using: &rng)
            return (id: try acceptImage(in: t.hub.catalog, number: n, phash: hash, label: label, user: user), hash: hash)
        }
        // The catalog as a hub made before the bands had it: no table, the migration not yet run.
        let path = t.directory.appendingPathComponent("catalog.sqlite").path
        try DatabaseQueue(path: path).write { db in
            try db.execute(sql: "DROP TABLE phashBands")
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v7_phash_bands'")
        }
        let reopened = try Catalog(path: path)
        for (n, image) in images.enumerated() {
            // Seven bits off, one in each byte but one: found only through the bands the migration wrote.
            var probe = image.hash
            for byte in 0..<8 where byte != n % 8 { probe ^= 1 << UInt64(8 * byte + n % 7) }
            #expect(try reopened.nearDuplicate(of: probe, within: 7) == image.id)
        }
        let rows = try DatabaseQueue(path: path).read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM phashBands") }
        #expect(rows == 8 * images.count)
    }

    @Test("a verdict's transaction can claim the worker's next job", arguments: TestCatalogs.engines)
    func completeAndClaimTakesTheNextJob(engine: CatalogEngine) throws {
        let (t, c, user, label) = try catalogFixture(engine)
        defer { t.remove() }
        let ids = try (0..<2).map { try recordUpload(in: c, number: 500 + $0, label: label, user: user) }
        let first = try #require(try c.claimJob(worker: "w", lease: 60))
        #expect(first.image.id == ids[0])
        let (stored, next) = try c.completeAndClaim(job: first.job, worker: "w", verdict: Verdict(status: .accepted, phash: 1),
                                                    nearDistance: 6, lease: 60)
        #expect(stored?.id == ids[0] && stored?.status == .accepted)
        let second = try #require(next, "the next queued job is claimed in the same transaction")
        #expect(second.image.id == ids[1] && second.job.state == .running && second.job.leasedBy == "w" && second.job.attempts == 1)
        #expect(try c.claimJob(worker: "other", lease: 60) == nil, "the claimed job is leased")
        #expect(try c.backlog() == 1)
        // A worker whose lease was lost commits nothing, and with nothing left to claim gets nothing.
        let (lost, none) = try c.completeAndClaim(job: second.job, worker: "stale", verdict: Verdict(status: .accepted), nearDistance: 6, lease: 60)
        #expect(lost == nil && none == nil)
        let (last, after) = try c.completeAndClaim(job: second.job, worker: "w", verdict: Verdict(status: .rejected, reasons: ["test"]),
                                                   nearDistance: 6, lease: 60)
        #expect(last?.status == .rejected && after == nil)
        #expect(try c.backlog() == 0)
    }

    @Test("a committed embedding is handed to the worker with the sequence number the catalog gave it", arguments: TestCatalogs.engines)
    func aCommittedEmbeddingIsHandedOver(engine: CatalogEngine) throws {
        let (t, c, user, label) = try catalogFixture(engine)
        defer { t.remove() }
        let ids = try (0..<2).map { try recordUpload(in: c, number: 600 + $0, label: label, user: user) }
        let learned = Mutex<[EmbeddingRow]>([])
        let learn: @Sendable (EmbeddingRow) -> Void = { row in learned.withLock { $0.append(row) } }
        let vector = Data(repeating: 7, count: 16)
        func verdict(_ n: Int) -> Verdict {
            var v = Verdict(status: .accepted, phash: UInt64(n + 1) << 40)
            v.embedding = vector
            v.embeddingModel = "test-model"
            return v
        }
        // The first verdict's transaction claims the second job; the second commits alone.
        let first = try #require(try c.claimJob(worker: "w", lease: 60))
        let (_, next) = try c.completeAndClaim(job: first.job, worker: "w", verdict: verdict(0), nearDistance: 0, decide: { _, _ in },
                                               stored: learn, lease: 60)
        let second = try #require(next)
        #expect(try c.complete(job: second.job, worker: "w", verdict: verdict(1), nearDistance: 0, decide: { _, _ in }, stored: learn)?.id == ids[1])
        let rows = try c.embeddingRows(after: 0)
        let handed = learned.withLock { $0 }
        #expect(handed.map(\.seq) == rows.map(\.seq) && handed.map(\.imageId) == ids)
        #expect(handed.allSatisfy { $0.status == .accepted && $0.labelId == label && $0.model == "test-model" && $0.vector == vector })
        // A lost lease commits nothing and hands nothing over.
        let stale = try #require(try c.jobs(imageId: ids[0]).first)
        #expect(try c.complete(job: stale, worker: "w", verdict: Verdict(status: .accepted), nearDistance: 0,
                               stored: learn) == nil)
        #expect(learned.withLock { $0.count } == 2)
    }

    @Test("upload admission counts the backlog again only when the uploads admitted since could reach the limit",
          arguments: TestCatalogs.engines)
    func admissionCountsOnlyNearTheLimit(engine: CatalogEngine) throws {
        let (t, c, user, label) = try catalogFixture(engine)
        defer { t.remove() }
        let start = ContinuousClock.now
        #expect(!c.admitFromEstimate(under: 4, now: start), "nothing counted yet")
        #expect(try c.admitUpload(under: 4, now: start) == nil)
        _ = try recordUpload(in: c, number: 700, label: label, user: user)
        // Counted 0, one admitted: two more fit without counting, the third could reach the limit.
        #expect(c.admitFromEstimate(under: 4, now: start))
        _ = try recordUpload(in: c, number: 701, label: label, user: user)
        #expect(c.admitFromEstimate(under: 4, now: start))
        _ = try recordUpload(in: c, number: 702, label: label, user: user)
        #expect(!c.admitFromEstimate(under: 4, now: start))
        #expect(try c.admitUpload(under: 4, now: start) == nil, "3 wait: one more is admitted")
        _ = try recordUpload(in: c, number: 703, label: label, user: user)
        #expect(!c.admitFromEstimate(under: 4, now: start))
        #expect(try c.admitUpload(under: 4, now: start) == 4, "the count says the limit is reached")
        // A count older than its age limit is never gone on from.
        _ = try c.claimJob(worker: "w", lease: 60)
        #expect(try c.admitUpload(under: 100, now: start) == nil)
        #expect(c.admitFromEstimate(under: 100, maxAge: .seconds(1), now: start + .milliseconds(500)))
        #expect(!c.admitFromEstimate(under: 100, maxAge: .seconds(1), now: start + .seconds(2)))
    }
}
