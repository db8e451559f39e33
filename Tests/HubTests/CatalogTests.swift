import Catalog
import Foundation
import HubCore
import HubTesting
import Synchronization
import Testing

/// One behaviour, two engines: every test here runs on SQLite and on PostgreSQL (the server `make test`
/// starts), through the same public methods, and expects the same answers.
@Suite struct CatalogTests {
    /// A fresh catalog with the label "Banana" and an admin user.
    struct Fixture {
        let catalog: Catalog
        let directory: URL
        let user: UserRecord
        let label: Int64

        init(_ engine: CatalogEngine) throws {
            (catalog, directory) = try TestCatalogs.make(engine)
            user = try catalog.createUser(name: "admin", role: .admin).user
            label = try #require(try catalog.createLabel(name: "Banana").id)
        }

        func remove() {
            catalog.close()
            try? FileManager.default.removeItem(at: directory)
        }

        /// Records a pending upload whose sha256 is made from `number`, with its job.
        @discardableResult
        func upload(_ number: Int, label: Int64? = nil, user: UserRecord? = nil) throws -> ImageRecord {
            let outcome = try catalog.recordUpload(.newUpload(sha256: String(format: "%064x", number), labelId: label ?? self.label,
                                                              uploaderId: (user ?? self.user).id!, batchId: nil, device: "Pixel 8",
                                                              lat: 52.5, lon: 13.4, capturedAt: nil, bytes: 100 + number))
            guard case .created(let image) = outcome else { throw HubError(500, "test", "upload \(number) was not new") }
            return image
        }

        /// Claims the next job and commits `verdict` for it.
        @discardableResult
        func process(_ verdict: Verdict, worker: String = "w", nearDistance: Int = 6,
                     decide: (@Sendable (inout Verdict, CommitContext) throws -> Void)? = nil) throws -> ImageRecord? {
            let leased = try #require(try catalog.claimJob(worker: worker, lease: 60))
            return try catalog.complete(job: leased.job, worker: worker, verdict: verdict, nearDistance: nearDistance, decide: decide)
        }
    }

    @Test("labels: unique without regard to case, a tree with counts, Open Images import", arguments: TestCatalogs.engines)
    func labels(engine: CatalogEngine) throws {
        let f = try Fixture(engine)
        defer { f.remove() }
        let c = f.catalog
        let fruit = try c.createLabel(name: "Fruit", mid: "/m/02xwb")
        try c.createLabel(name: "Apple", parent: "Fruit")
        try c.createLabel(name: "granny smith", displayName: "Granny Smith", parent: "apple")
        #expect(throws: HubError.self) { try c.createLabel(name: "APPLE") }
        #expect(throws: HubError.self) { try c.createLabel(name: "Pear", parent: "Nothing") }
        #expect(throws: HubError.self) { try c.createLabel(name: "Other fruit", mid: "/m/02xwb") }
        #expect(try c.label(named: "fRuIt")?.id == fruit.id)
        #expect(try c.label(named: "Nothing") == nil && (try c.labelId(named: "Nothing") == nil))
        #expect(try c.labelId(named: "FRUIT") == fruit.id && (try c.labelId(named: "fruit") == fruit.id))
        #expect(try c.labels(named: ["fruit"], descendants: true).map(\.name) == ["Apple", "Fruit", "granny smith"])
        #expect(throws: HubError.self) { try c.labels(named: ["Nothing"], descendants: false) }
        let apple = try #require(try c.label(named: "Apple")?.id)
        let granny = try #require(try c.label(named: "Granny Smith")?.id)
        #expect(try c.relatedLabelIds(apple) == [fruit.id!, granny])
        #expect(try c.labelsById().count == 4)

        try f.upload(1, label: apple)
        try f.upload(2, label: apple)
        let tree = try c.labelTree()
        #expect(tree.map(\.name) == ["Banana", "Fruit"])
        let appleNode = try #require(tree.last?.children.first)
        #expect(appleNode.name == "Apple" && appleNode.counts["pending"] == 2 && appleNode.counts["accepted"] == 0)
        #expect(appleNode.children.map(\.displayName) == ["Granny Smith"])

        // Open Images: a repeated display name is kept unique by its MID; a second import changes nothing.
        let classes = [(mid: "/m/014j1m", name: "Apple"), (mid: "/m/09qck", name: "Banana (fruit)"), (mid: "/m/0fszt", name: "Cake")]
        let edges = [(child: "/m/014j1m", parent: "/m/02xwb"), (child: "/m/09qck", parent: "/m/02xwb")]
        let first = try c.importLabels(classes: classes, edges: edges)
        #expect(first.created == 3 && first.linked == 2)
        #expect(try c.label(named: "Apple (/m/014j1m)")?.parentId == fruit.id)
        let again = try c.importLabels(classes: classes, edges: edges)
        #expect(again.created == 0 && again.linked == 0)
    }

    @Test("users: keys are stored hashed and found again; the local user is made once", arguments: TestCatalogs.engines)
    func users(engine: CatalogEngine) throws {
        let f = try Fixture(engine)
        defer { f.remove() }
        let (user, key) = try f.catalog.createUser(name: "field team", role: .supplier)
        #expect(user.keyHash != key && key.hasPrefix("ihk_"))
        #expect(try f.catalog.user(forKey: key)?.id == user.id)
        #expect(try f.catalog.user(forKey: key + "x") == nil)
        #expect(f.catalog.rememberedUser(forKey: key)?.id == user.id, "a key found is remembered")
        #expect(f.catalog.rememberedUser(forKey: key + "x") == nil, "a key not found is not")
        #expect(try f.catalog.userCount(role: .supplier) == 1 && (try f.catalog.userCount(role: .admin) == 1))
        let local = try f.catalog.localUser()
        #expect(try f.catalog.localUser().id == local.id)
        #expect(try f.catalog.userCount(role: .admin) == 2)
    }

    @Test("dashboard sessions: stored hashed, found until they expire, gone when signed out", arguments: TestCatalogs.engines)
    func sessions(engine: CatalogEngine) throws {
        let f = try Fixture(engine)
        defer { f.remove() }
        let now = Date()
        let (token, session) = try f.catalog.createSession(for: f.user, lifetime: 60, now: now)
        #expect(session.tokenHash != token && session.csrf.count == 64 && session.csrf != token)
        #expect(try f.catalog.session(token: token, now: now)?.user.id == f.user.id)
        #expect(try f.catalog.session(token: token, now: now)?.session.csrf == session.csrf)
        #expect(try f.catalog.session(token: token + "0", now: now) == nil)
        #expect(try f.catalog.session(token: token, now: now.addingTimeInterval(61)) == nil, "an expired session is no session")
        // A new sign-in clears expired sessions; a live one stays.
        let (other, _) = try f.catalog.createSession(for: f.user, lifetime: 3600, now: now.addingTimeInterval(120))
        #expect(try f.catalog.session(token: token, now: now) == nil, "cleared as expired")
        #expect(try f.catalog.session(token: other, now: now.addingTimeInterval(130)) != nil)
        try f.catalog.deleteSession(token: other)
        #expect(try f.catalog.session(token: other, now: now.addingTimeInterval(130)) == nil)
    }

    @Test("batches, devices and places summarised for the dashboard, and for a supplier its own only", arguments: TestCatalogs.engines)
    func batchAndDeviceSummaries(engine: CatalogEngine) throws {
        let f = try Fixture(engine)
        defer { f.remove() }
        let c = f.catalog
        let supplier = try c.createUser(name: "field", role: .supplier).user
        let batch = try c.createBatch(userId: supplier.id!, device: "Pixel 8", lat: 52.5, lon: 13.4)
        for n in 1...3 {
            _ = try c.recordUpload(.newUpload(sha256: String(format: "%064x", 900 + n), labelId: f.label, uploaderId: supplier.id!, batchId: batch.id,
                                              device: "Pixel 8", lat: 52.5 + Double(n) / 100, lon: 13.4, capturedAt: nil, bytes: 10))
        }
        try f.upload(1)
        try f.process(Verdict(status: .accepted, sharpness: 100))
        try f.process(Verdict(status: .rejected, reasons: ["quality.blurry"], sharpness: 10))
        let all = try c.batchSummaries()
        #expect(all.count == 1 && all[0].batch.id == batch.id && all[0].submitted == 3 && all[0].accepted == 1 && all[0].rejected == 1)
        #expect(all[0].pending == 1 && all[0].qualityScore == 0.5)
        let devices = try c.deviceSummaries()
        #expect(devices.map(\.device) == ["Pixel 8"] && devices[0].submitted == 4 && devices[0].acceptance == 0.5)
        #expect(devices[0].meanSharpness.map { abs($0 - 55) < 0.01 } == true, "the mean over the measured images")
        #expect(try c.places().count == 4)
        #expect(try c.batchSummaries(uploaderId: f.user.id!).isEmpty, "the admin opened no batch")
        #expect(try c.deviceSummaries(uploaderId: supplier.id!).first?.submitted == 3 && (try c.places(uploaderId: supplier.id!).count == 3))
    }

    @Test("uploads: the same bytes again return the image; another uploader's or label's copy is refused", arguments: TestCatalogs.engines)
    func uploads(engine: CatalogEngine) throws {
        let f = try Fixture(engine)
        defer { f.remove() }
        let c = f.catalog
        let image = try f.upload(7)
        #expect(image.status == .pending && image.lat == 52.5 && image.device == "Pixel 8")
        guard case .existing(let again) = try c.recordUpload(image) else { Issue.record("the same upload again is not the existing image"); return }
        #expect(again.id == image.id && again.sha256 == image.sha256)
        var other = ImageRecord.newUpload(sha256: image.sha256, labelId: f.label, uploaderId: try c.localUser().id!, batchId: nil,
                                          device: nil, lat: nil, lon: nil, capturedAt: nil, bytes: 1)
        #expect(throws: HubError.self) { try c.recordUpload(other) }
        other.uploaderId = f.user.id!
        other.labelId = try #require(try c.createLabel(name: "Apple").id)
        #expect(throws: HubError.self) { try c.recordUpload(other) }
        #expect(try c.image(id: image.id)?.sha256 == image.sha256)
        #expect(try c.images(ids: [image.id, "missing"]).map(\.id) == [image.id])
        #expect(try c.jobs(imageId: image.id).count == 1)
        #expect(try c.backlog() == 1)
    }

    @Test("jobs: leases, verdicts, retries with backoff, the dead letter", arguments: TestCatalogs.engines)
    func jobs(engine: CatalogEngine) throws {
        let f = try Fixture(engine)
        defer { f.remove() }
        let c = f.catalog
        let a = try f.upload(1), b = try f.upload(2)
        let first = try #require(try c.claimJob(worker: "w1", lease: 60))
        #expect(first.image.id == a.id && first.job.state == .running && first.job.leasedBy == "w1" && first.job.attempts == 1)
        let second = try #require(try c.claimJob(worker: "w2", lease: 60))
        #expect(second.image.id == b.id)
        #expect(try c.claimJob(worker: "w3", lease: 60) == nil, "both jobs are leased")
        #expect(try c.complete(job: first.job, worker: "w2", verdict: Verdict(status: .accepted), nearDistance: 6) == nil,
                "a worker that does not hold the lease commits nothing")
        let verdict = Verdict(status: .accepted, format: "jpeg", width: 640, height: 480, sharpness: 80, brightness: 120,
                              contrast: 40, phash: 0x0123_4567_89ab_cdef, canonicalKey: "c", thumbnailKey: "t")
        let stored = try #require(try c.complete(job: first.job, worker: "w1", verdict: verdict, nearDistance: 6))
        #expect(stored.status == .accepted && stored.width == 640 && stored.phash == Int64(bitPattern: 0x0123_4567_89ab_cdef))
        let fetched = try #require(try c.image(id: a.id))
        #expect(fetched.status == .accepted && fetched.phash == stored.phash && fetched.canonicalKey == "c" && fetched.contrast == 40)

        // The second job fails: retried after its delay, then dead-lettered with the image rejected.
        #expect(try c.fail(job: second.job, worker: "w2", error: "disk", retryAfter: 3600, maxAttempts: 2) == false)
        let queued = try #require(try c.jobs(imageId: b.id).first)
        #expect(queued.state == .queued && queued.lastError == "disk" && queued.runAfter > Date().addingTimeInterval(3000))
        #expect(try c.claimJob(worker: "w2", lease: 60) == nil, "not before its delay")
        let retried = try #require(try c.claimJob(worker: "w2", lease: 60, now: Date().addingTimeInterval(3601)))
        #expect(retried.job.attempts == 2)
        #expect(try c.fail(job: retried.job, worker: "w2", error: "disk again", retryAfter: 1, maxAttempts: 2) == true)
        #expect(try c.deadJobs().map(\.imageId) == [b.id])
        let rejected = try #require(try c.image(id: b.id))
        #expect(rejected.status == .rejected && rejected.reasonCodes == ["internal.failed"])
        #expect(try c.backlog() == 0)
        #expect(try c.statusCounts() == [.accepted: 1, .rejected: 1])
        #expect(try c.backlog(upTo: 5) == 0)
        try f.upload(3)
        try f.upload(4)
        #expect(try c.backlog(upTo: 5) == 2 && (try c.backlog(upTo: 1) == 1), "counted no further than the limit")
        #expect(try c.images(labelIds: [f.label], status: .accepted, after: nil, limit: 10).map(\.id) == [a.id])
        #expect(try c.images(labelIds: [f.label], status: nil, after: nil, limit: 1).count == 1)
    }

    @Test("near duplicates: a later copy within the distance is quarantined, and a review decides it", arguments: TestCatalogs.engines)
    func nearDuplicatesAndReview(engine: CatalogEngine) throws {
        let f = try Fixture(engine)
        defer { f.remove() }
        let c = f.catalog
        let original = try f.upload(1), copy = try f.upload(2), other = try f.upload(3)
        try f.process(Verdict(status: .accepted, phash: 0xF0F0_F0F0_F0F0_F0F0))
        let quarantined = try #require(try f.process(Verdict(status: .accepted, phash: 0xF0F0_F0F0_F0F0_F0F3)))
        #expect(quarantined.id == copy.id && quarantined.status == .quarantined)
        #expect(quarantined.reasonCodes == ["duplicate.near"] && quarantined.duplicateOf == original.id)
        #expect(try f.process(Verdict(status: .accepted, phash: 0x0F0F_0F0F_0F0F_0F0F))?.status == .accepted)
        #expect(try c.nearDuplicate(of: 0xF0F0_F0F0_F0F0_F0F1, within: 6) == original.id)
        #expect(try c.nearDuplicate(of: 0xF0F0_F0F0_F0F0_F0F1, within: 9) == original.id, "a distance past the bands scans")
        #expect(try c.nearDuplicate(of: 0xF0F0_F0F0_F0F0_F0F0, within: 6, excluding: original.id) == nil)

        #expect(throws: HubError.self) { try c.review(imageId: other.id, accept: true, reason: nil) }
        #expect(throws: HubError.self) { try c.review(imageId: "missing", accept: true, reason: nil) }
        let reviewed = try c.review(imageId: copy.id, accept: false, reason: nil)
        #expect(reviewed.status == .rejected && reviewed.reasonCodes == ["duplicate.near", "review.rejected"])
    }

    @Test("activity: uploads and verdicts per minute, hub-wide, minutes without any included", arguments: TestCatalogs.engines)
    func activity(engine: CatalogEngine) throws {
        let f = try Fixture(engine)
        defer { f.remove() }
        let c = f.catalog
        for n in 1...3 { try f.upload(n) }
        // An upload from an hour ago is outside the window.
        var old = ImageRecord.newUpload(sha256: String(format: "%064x", 99), labelId: f.label, uploaderId: f.user.id!, batchId: nil,
                                        device: nil, lat: nil, lon: nil, capturedAt: nil, bytes: 1)
        old.createdAt = Date().addingTimeInterval(-3600)
        old.updatedAt = old.createdAt
        _ = try c.recordUpload(old)
        try f.process(Verdict(status: .accepted, phash: 1))
        try f.process(Verdict(status: .rejected, reasons: ["quality.blurry"]))
        // Asked after everything happened (a minute's edge may fall anywhere in between).
        let now = Date()
        let minutes = try c.activity(minutes: 5, now: now)
        #expect(minutes.count == 6 && minutes.last!.minute <= now && now.timeIntervalSince(minutes.last!.minute) < 61)
        #expect(zip(minutes, minutes.dropFirst()).allSatisfy { $1.minute.timeIntervalSince($0.minute) == 60 })
        #expect(minutes.map(\.uploads).reduce(0, +) == 3, "\(minutes)")
        #expect(minutes.map(\.decided).reduce(0, +) == 2)
        let later = try c.activity(minutes: 5, now: now.addingTimeInterval(3600))
        #expect(later.allSatisfy { $0.uploads == 0 && $0.decided == 0 })
    }

    @Test("relabel: a quarantined image is accepted under the label it shows, an accepted one keeps its status; rejected ones stay",
          arguments: TestCatalogs.engines)
    func relabel(engine: CatalogEngine) throws {
        let f = try Fixture(engine)
        defer { f.remove() }
        let c = f.catalog
        let cherry = try #require(try c.createLabel(name: "Cherry").id)
        for n in 1...3 { try f.upload(n) }
        var mismatch = Verdict(status: .quarantined, reasons: ["label.mismatch"], phash: 1)
        mismatch.embedding = Data(repeating: 1, count: 8)
        mismatch.embeddingModel = "m"
        mismatch.labelCheck = "mismatch"
        mismatch.suggestedLabelId = cherry
        mismatch.suggestedScore = 0.9
        let quarantined = try #require(try f.process(mismatch))
        let accepted = try #require(try f.process(Verdict(status: .accepted, phash: 1 << 40)))
        let rejected = try #require(try f.process(Verdict(status: .rejected, reasons: ["quality.blurry"])))
        let before = try c.embeddingRows(after: 0).map(\.seq).max() ?? 0

        let moved = try c.relabel(imageId: quarantined.id, to: cherry)
        #expect(moved.status == .accepted && moved.labelId == cherry && moved.reasonCodes == ["label.mismatch", "review.relabelled"])
        #expect(moved.labelCheck == "verified" && moved.suggestedLabelId == nil && moved.suggestedScore == nil)
        let rows = try c.embeddingRows(after: before)
        #expect(rows.map(\.imageId) == [quarantined.id] && rows.first?.labelId == cherry && rows.first?.status == .accepted,
                "the indexes learn its new label")
        #expect(try c.relabel(imageId: accepted.id, to: cherry).status == .accepted)
        #expect(try c.image(id: accepted.id)?.labelId == cherry)
        #expect(throws: HubError.self) { try c.relabel(imageId: rejected.id, to: cherry) }
        #expect(throws: HubError.self) { try c.relabel(imageId: accepted.id, to: 9999) }
        #expect(throws: HubError.self) { try c.relabel(imageId: "missing", to: cherry) }
        #expect(try c.image(id: rejected.id)?.labelId == f.label)
    }

    @Test("embeddings: stored with the verdict, followed by sequence number, rewritten when the status moves", arguments: TestCatalogs.engines)
    func embeddings(engine: CatalogEngine) throws {
        let f = try Fixture(engine)
        defer { f.remove() }
        let c = f.catalog
        let vector = Data((0..<64).map { UInt8($0) })
        for n in 0..<3 { try f.upload(n) }
        let seen = Mutex<[Int]>([])
        for n in 0..<3 {
            var verdict = Verdict(status: .accepted, phash: UInt64(n) << 40 | 0xFFFF)
            verdict.embedding = vector + Data([UInt8(n)])
            verdict.embeddingModel = "test/1"
            verdict.labelCheck = "unverified"
            try f.process(verdict, nearDistance: -1) { v, context in
                seen.withLock { $0.append(context.newRows.count) }
                if context.newRows.count == 2 { v.labelCheck = "verified"; v.labelScore = 0.9 }
            }
        }
        #expect(seen.withLock { $0 } == [0, 1, 2], "each commit sees the embeddings committed before it")
        let rows = try c.embeddingRows(after: 0)

        // The commit also sees the label's ancestors and descendants, and finds a near duplicate by hash in
        // the same pass (on PostgreSQL the lookups after the commit lock are one statement).
        let fruit = try #require(try c.createLabel(name: "Fruit").id)
        let plantain = try #require(try c.createLabel(name: "Plantain", parent: "Fruit").id)
        let cavendish = try #require(try c.createLabel(name: "Cavendish", parent: "Plantain").id)
        let unrelated = try #require(try c.createLabel(name: "Cherry").id)
        #expect(try c.relatedLabelIds(plantain) == [fruit, cavendish])
        let copy = try f.upload(3, label: plantain)
        let context = Mutex<CommitContext?>(nil)
        var copied = Verdict(status: .accepted, phash: UInt64(1) << 40 | 0xFFFF)
        copied.embedding = vector + Data([9])
        copied.embeddingModel = "test/1"
        let stored = try f.process(copied) { _, seen in context.withLock { $0 = seen } }
        #expect(stored?.id == copy.id && stored?.status == .quarantined && stored?.duplicateOf == rows[1].imageId)
        #expect(context.withLock { $0?.relatedLabels } == [fruit, cavendish], "not \(unrelated), the unrelated label")
        #expect(context.withLock { $0?.newRows.map(\.seq) } == rows.map(\.seq), "every embedding in order, beside the duplicate")
        #expect(rows.count == 3 && rows.map(\.seq) == rows.map(\.seq).sorted() && rows.allSatisfy { $0.model == "test/1" })
        #expect(rows.map { $0.vector.last! } == [0, 1, 2] && rows.allSatisfy { $0.status == .accepted && $0.labelId == f.label })
        let last = rows[2]
        #expect(try c.embedding(imageId: last.imageId)?.vector == vector + Data([2]))
        #expect(try c.image(id: last.imageId)?.labelCheck == "verified")

        // Two images are still unverified; a re-check moves one to quarantine and rewrites its row.
        // (Oldest first; two uploads in the same millisecond may come in either order.)
        #expect(try Set(c.unverifiedImages(labelId: f.label).map(\.id)) == [rows[0].imageId, rows[1].imageId])
        #expect(try Set(c.unverifiedImages(labelId: f.label, includingUnscored: true).map(\.id)) == [rows[0].imageId, rows[1].imageId],
                "an image a model judged verified (it has a score) is not looked at again")
        #expect(try c.labelsWithUnverifiedImages().map { [$0.labelId, Int64($0.accepted)] } == [[f.label, 3]])
        let watermark = try #require(try c.embeddingRows(after: 0).last?.seq)
        func check(_ id: String, _ state: String, _ score: Double) -> Catalog.LabelCheckResult {
            .init(imageId: id, state: state, score: score, suggestedLabelId: nil, suggestedScore: nil)
        }
        #expect(try c.applyLabelChecks([check(rows[0].imageId, "mismatch", 0.1)]) == 1)
        #expect(try c.applyLabelChecks([check(rows[0].imageId, "mismatch", 0.1), check(rows[2].imageId, "mismatch", 0.1)]) == 0,
                "only an accepted image no model has judged is re-checked")
        #expect(try c.applyLabelChecks([check(rows[1].imageId, "verified", 0.8)]) == 1)
        let moved = try c.embeddingRows(after: watermark)
        #expect(moved.map(\.imageId) == [rows[0].imageId] && moved[0].status == .quarantined && moved[0].seq > watermark)
        #expect(try c.image(id: rows[0].imageId)?.reasonCodes == ["label.mismatch"])
        #expect(try c.unverifiedImages(labelId: f.label).isEmpty)

        // A second look at a stream's uploads (the stream's prior rose) may move a verified image to quarantine,
        // only when asked to and never one a reviewer decided on.
        #expect(try c.applyLabelChecks([check(rows[2].imageId, "mismatch", 0.2)]) == 0, "verified: not re-checked")
        #expect(try c.applyLabelChecks([check(rows[2].imageId, "mismatch", 0.2)], reconsideringVerified: true) == 1)
        #expect(try c.image(id: rows[2].imageId).map { [$0.status.rawValue] + $0.reasonCodes } == ["quarantined", "label.mismatch"])
        _ = try c.relabel(imageId: rows[2].imageId, to: unrelated)  // a person's word: accepted, verified
        #expect(try c.image(id: rows[2].imageId).map { [$0.status.rawValue, $0.labelCheck ?? ""] } == ["accepted", "verified"])
        // Relabelled images carry no model's score, and no model overrules them: not re-checked either.
        #expect(try c.unverifiedImages(labelId: unrelated, includingUnscored: true).isEmpty)
        #expect(try c.labelsWithUnverifiedImages(includingUnscored: true).allSatisfy { $0.labelId != unrelated })
        #expect(try c.applyLabelChecks([check(rows[2].imageId, "mismatch", 0.2)]) == 0)
        #expect(try c.applyLabelChecks([check(rows[2].imageId, "mismatch", 0.2)], reconsideringVerified: true) == 0, "reviewed: left alone")
        // So is an image a reviewer accepted from quarantine before any model could judge its label.
        let blurred = try f.upload(7)
        var held = Verdict(status: .quarantined, phash: UInt64(7) << 40 | 0xFFFF)
        held.reasons = ["quality.blurry"]
        held.labelCheck = "unverified"
        held.embedding = vector + Data([7])
        held.embeddingModel = "test/1"
        try f.process(held, nearDistance: -1)
        // Quarantined before any model could judge its label, it waits for a label check too (its reviewer
        // then sees both reasons) ...
        #expect(try c.unverifiedImages(labelId: f.label).map(\.id).contains(blurred.id))
        let doubtful = try f.upload(8)
        var second = held
        second.embedding = vector + Data([8])
        (second.sharpness, second.brightness, second.contrast) = (300, 25, 40)
        try f.process(second, nearDistance: -1)
        let waitingSince = try #require(try c.image(id: doubtful.id)?.updatedAt)
        let mark = try #require(try c.embeddingRows(after: 0).last?.seq)
        #expect(try c.applyLabelChecks([check(doubtful.id, "mismatch", 0.05)]) == 1)
        #expect(try c.image(id: doubtful.id).map { [$0.status.rawValue, $0.labelCheck ?? ""] + $0.reasonCodes }
                == ["quarantined", "mismatch", "quality.blurry", "label.mismatch"])
        #expect(try c.image(id: doubtful.id)?.updatedAt == waitingSince, "its place in the review queue kept")
        #expect(try c.embeddingRows(after: mark).isEmpty, "still out of the index: its row is not rewritten")
        #expect(try c.applyLabelChecks([check(doubtful.id, "mismatch", 0.05)]) == 0, "judged once")
        // A reviewer's rejection of it may be the label's doing: it teaches the quality thresholds nothing.
        _ = try c.review(imageId: doubtful.id, accept: false, reason: nil)
        // ... until a reviewer decides.
        let dark = try f.upload(9)
        var tooDark = held
        tooDark.reasons = ["quality.too_dark"]
        tooDark.embedding = vector + Data([9])
        (tooDark.sharpness, tooDark.brightness, tooDark.contrast) = (300, 18, 40)
        try f.process(tooDark, nearDistance: -1)
        _ = try c.review(imageId: dark.id, accept: false, reason: nil)
        #expect(try c.qualityEvidence(labelId: f.label).rejected.map(\.brightness) == [18], "the rejection for its quality alone")
        _ = try c.review(imageId: blurred.id, accept: true, reason: nil)
        #expect(try c.image(id: blurred.id).map { [$0.status.rawValue, $0.labelCheck ?? ""] } == ["accepted", "unverified"])
        #expect(try c.unverifiedImages(labelId: f.label, includingUnscored: true).allSatisfy { $0.id != blurred.id })
        #expect(try c.applyLabelChecks([check(blurred.id, "mismatch", 0.2)]) == 0)

        // A label's clustering is stored and replaced.
        var clusters = LabelClustersRecord(labelId: f.label, imageCount: 3, k: 2, silhouette: 0.5, clusters: "[]", outliers: "[]",
                                           model: "test/1", computedAt: Date())
        try c.saveLabelClusters(clusters)
        clusters.k = 3
        try c.saveLabelClusters(clusters)
        #expect(try c.labelClusters(labelId: f.label)?.k == 3)
        #expect(try c.allLabelClusters().keys.sorted() == [f.label])
    }

    @Test("training: jobs leased and taken over, dataset versions frozen, models registered", arguments: TestCatalogs.engines)
    func training(engine: CatalogEngine) throws {
        let f = try Fixture(engine)
        defer { f.remove() }
        let c = f.catalog
        let banana = try #require(try c.label(named: "Banana"))
        try c.insertSyntheticEmbeddedImages(labelId: f.label, uploaderId: f.user.id!, model: "test/1",
                                            vectors: (0..<3).map { Data([UInt8($0)]) })
        let images = try c.trainingImages(labels: [banana], descendants: true)
        #expect(images.count == 3 && images.allSatisfy { $0.label == "Banana" && $0.model == "test/1" })

        let job = try c.createTrainingJob(requesterId: f.user.id!, request: #"{"labels":["Banana"]}"#)
        let claimed = try #require(try c.claimTrainingJob(worker: "n1", lease: 60))
        #expect(claimed.id == job.id && claimed.state == .running && claimed.attempts == 1)
        #expect(try c.claimTrainingJob(worker: "n2", lease: 60) == nil)
        let takenOver = try #require(try c.claimTrainingJob(worker: "n2", lease: 60, now: Date().addingTimeInterval(61)),
                                     "a node that stopped renewing its lease loses the job")
        #expect(takenOver.attempts == 2 && takenOver.leasedBy == "n2")
        try c.recordTrainingProgress(id: job.id, worker: "n1", epoch: 9, progress: "[9]", lease: 60)
        #expect(try c.trainingJob(id: job.id)?.epoch == 0, "the old holder's progress is ignored")
        try c.recordTrainingProgress(id: job.id, worker: "n2", epoch: 3, progress: "[1,2,3]", lease: 60)
        #expect(try c.trainingJob(id: job.id)?.epoch == 3)

        let version = try c.freezeDatasetVersion(jobId: job.id, labels: ["Banana"], images: images)
        let (stored, members) = try #require(try c.datasetVersion(id: version.id))
        #expect(stored.manifestHash == version.manifestHash && stored.imageCount == 3 && members.count == 3)
        let model = ModelRecord(id: UUID().uuidString.lowercased(), trainingJobId: job.id, labels: #"["Banana"]"#,
                                datasetVersionId: version.id, backbone: "test/1", accuracy: 0.5, report: "{}", head: "{}", createdAt: Date())
        try c.finishTrainingJob(id: job.id, worker: "n1", model: model, error: nil)
        #expect(try c.trainingJob(id: job.id)?.state == .running, "only the holder finishes the job")
        try c.finishTrainingJob(id: job.id, worker: "n2", model: model, error: nil)
        let done = try #require(try c.trainingJob(id: job.id))
        #expect(done.state == .succeeded && done.modelId == model.id && done.datasetVersionId == version.id)
        #expect(try c.models().map(\.id) == [model.id] && (try c.model(id: model.id)?.accuracy == 0.5))
    }

    @Test("the watch-list fires once, and deliveries are retried, then delivered or failed", arguments: TestCatalogs.engines)
    func watches(engine: CatalogEngine) throws {
        let f = try Fixture(engine)
        defer { f.remove() }
        let c = f.catalog
        let hooked = try c.watch(labelId: f.label, threshold: 2, webhookUrl: "http://example.test/hook", userId: f.user.id!)
        #expect(try c.watch(labelId: f.label, threshold: 2, webhookUrl: "http://example.test/hook", userId: f.user.id!).id == hooked.id)
        let quiet = try c.watch(labelId: f.label, threshold: 2, webhookUrl: nil, userId: f.user.id!)
        #expect(try c.watch(labelId: f.label, threshold: 2, webhookUrl: nil, userId: f.user.id!).id == quiet.id, "asking again without a URL too")
        #expect(try c.watches().count == 2)
        try f.upload(1)
        try f.process(Verdict(status: .accepted, phash: 1), nearDistance: -1)
        #expect(try c.fireWatches { _, _, _ in "{}" }.isEmpty)
        try f.upload(2)
        try f.process(Verdict(status: .accepted, phash: 2), nearDistance: -1)
        #expect(try c.fireWatches { w, name, count in "\(name) \(count) \(w.threshold)" }.count == 2)
        #expect(try c.fireWatches { _, _, _ in "{}" }.isEmpty, "a fired watch does not fire again")
        let delivery = try #require(try c.deliveries(watchId: hooked.id!).first)
        #expect(try delivery.payload == "Banana 2 2" && delivery.state == .pending && (try c.deliveries().count == 1))
        #expect(try c.dueDeliveries().map(\.1) == ["http://example.test/hook"])
        try c.recordDelivery(id: delivery.id!, status: 500, error: nil, retryAfter: 3600, maxAttempts: 3)
        #expect(try c.dueDeliveries().isEmpty && (try c.dueDeliveries(now: Date().addingTimeInterval(3601)).count == 1))
        try c.recordDelivery(id: delivery.id!, status: nil, error: "timed out", retryAfter: 0, maxAttempts: 3)
        try c.recordDelivery(id: delivery.id!, status: 200, error: nil, retryAfter: 0, maxAttempts: 3)
        let delivered = try #require(try c.deliveries().first)
        #expect(delivered.state == .delivered && delivered.attempts == 3 && delivered.responseStatus == 200)
    }

    @Test("a periodic pass is held by one node until its lease runs out", arguments: TestCatalogs.engines)
    func passes(engine: CatalogEngine) throws {
        let f = try Fixture(engine)
        defer { f.remove() }
        let c = f.catalog, now = Date()
        #expect(try c.takePass("maintenance", holder: "a", for: 60, now: now))
        #expect(try c.takePass("maintenance", holder: "b", for: 60, now: now) == false, "a's lease is running")
        #expect(try c.takePass("webhooks", holder: "b", for: 60, now: now), "passes are held apart")
        #expect(try c.takePass("maintenance", holder: "a", for: 60, now: now.addingTimeInterval(30)), "the holder renews")
        #expect(try c.takePass("maintenance", holder: "b", for: 60, now: now.addingTimeInterval(89)) == false)
        #expect(try c.takePass("maintenance", holder: "b", for: 60, now: now.addingTimeInterval(91)), "a stopped renewing: b takes over")
        #expect(try c.takePass("maintenance", holder: "a", for: 60, now: now.addingTimeInterval(92)) == false)
    }

    @Test("resumable uploads and batches", arguments: TestCatalogs.engines)
    func resumableUploadsAndBatches(engine: CatalogEngine) throws {
        let f = try Fixture(engine)
        defer { f.remove() }
        let c = f.catalog
        let upload = ResumableUploadRecord(id: "u1", userId: f.user.id!, length: 100, offset: 0, metadata: "{}", rawMetadata: nil,
                                           imageId: nil, createdAt: Date(), expiresAt: Date().addingTimeInterval(60))
        try c.createResumableUpload(upload)
        #expect(try c.advanceResumableUpload(id: "u1", from: 0, to: 40))
        #expect(try c.advanceResumableUpload(id: "u1", from: 0, to: 60) == false, "the offset moved meanwhile")
        #expect(try c.resumableUpload(id: "u1")?.offset == 40)
        try c.finishResumableUpload(id: "u1", imageId: "image")
        #expect(try c.resumableUpload(id: "u1")?.imageId == "image")
        #expect(try c.expiredResumableUploads().isEmpty && (try c.expiredResumableUploads(now: Date().addingTimeInterval(61)).map(\.id) == ["u1"]))
        try c.deleteResumableUpload(id: "u1")
        #expect(try c.resumableUpload(id: "u1") == nil)

        let batch = try c.createBatch(userId: f.user.id!, device: "Pixel 8", lat: 1, lon: 2)
        let image = ImageRecord.newUpload(sha256: "b1", labelId: f.label, uploaderId: f.user.id!, batchId: batch.id, device: nil,
                                          lat: nil, lon: nil, capturedAt: nil, bytes: 1)
        _ = try c.recordUpload(image)
        try f.process(Verdict(status: .rejected, reasons: ["quality.blurry"]))
        let summary = try #require(try c.batchSummary(id: batch.id))
        #expect(summary.batch.id == batch.id && summary.batch.device == "Pixel 8" && summary.submitted == 1 && summary.rejected == 1 && summary.qualityScore == 0)
        #expect(try c.batchSummary(id: "missing") == nil && (try c.batch(id: "missing") == nil))
        #expect(try c.batch(id: batch.id)?.userId == f.user.id)
    }
    @Test("a statement that comes again on a connection runs prepared, typed as its arguments; one run once does not", arguments: TestCatalogs.engines.filter { $0 == .postgres })
    func statementsArePrepared(engine: CatalogEngine) throws {
        let f = try Fixture(engine)
        defer { f.remove() }
        let prepared = try #require(try f.catalog.statementsPrepared(running: [
            ("SELECT count(*) FROM images WHERE status = ? AND labelId = ?", [SQLValue.text("accepted"), .integer(f.label)], 2),
            ("SELECT count(*) FROM images WHERE status = ? AND labelId = ?", [.text("accepted"), .null], 2),
            ("SELECT count(*) FROM labels WHERE name = ?", [.text("Banana")], 1),
        ]))
        let counted = prepared.filter { $0.contains("FROM images WHERE status = $1 AND labelId = $2") }
        // Once with a typed second argument, once with an untyped NULL: two statements.
        #expect(counted.count == 2, "\(prepared)")
        #expect(!prepared.contains { $0.contains("FROM labels") }, "\(prepared)")
    }

    @Test("a prepared statement whose table changed on another node is run again unnamed, in reads and in writes", arguments: TestCatalogs.engines.filter { $0 == .postgres })
    func stalePreparedStatements(engine: CatalogEngine) throws {
        let f = try Fixture(engine)
        defer { f.remove() }
        let image = try f.upload(1)
        try f.process(Verdict(status: .accepted))
        // Several connections at once, each preparing the statement on its second run.
        let catalog = f.catalog, id = image.id
        for _ in 0..<3 { #expect(try Array(0..<6).concurrentMap { _ in try catalog.image(id: id)?.id }.allSatisfy { $0 == id }) }
        // `SELECT *` now returns another row type: PostgreSQL refuses the cached plans (0A000), on every one
        // of those connections.
        try f.catalog.executeForTests("ALTER TABLE images ADD COLUMN addedByAnotherNode BIGINT")
        for _ in 0..<3 { #expect(try Array(0..<6).concurrentMap { _ in try catalog.image(id: id)?.id }.allSatisfy { $0 == id }) }
        // A write: its transaction fails on the stale statement and runs again.
        let other = try #require(try f.catalog.createLabel(name: "Cherry").id)
        for target in [other, f.label, other] { #expect(try f.catalog.relabel(imageId: image.id, to: target).labelId == target) }
        try f.catalog.executeForTests("ALTER TABLE images ADD COLUMN addedLater BIGINT")
        #expect(try f.catalog.relabel(imageId: image.id, to: f.label).labelId == f.label)
        #expect(try f.catalog.image(id: image.id)?.labelId == f.label)
    }
}

/// Two nodes on one PostgreSQL catalog: what must hold when they work at the same moment.
@Suite struct SharedCatalogTests {
    static let postgres: [CatalogEngine] = TestCatalogs.engines.filter { $0 == .postgres }

    /// Two catalogs (two nodes) on one fresh database, with a label and a user.
    func twoNodes() throws -> (Catalog, Catalog, UserRecord, Int64) {
        let url = try #require(try TestCatalogs.url(for: .postgres))
        let nodes = try [0, 1, 2].concurrentMap { _ in try Catalog(url: url) }
        let user = try nodes[0].createUser(name: "admin", role: .admin).user
        let label = try #require(try nodes[1].createLabel(name: "Banana").id)
        nodes[2].close()
        return (nodes[0], nodes[1], user, label)
    }

    @Test("nodes that start together migrate once; two nodes never hold the same job", arguments: postgres)
    func claimsAreExclusive(engine: CatalogEngine) throws {
        let (a, b, user, label) = try twoNodes()
        defer { a.close(); b.close() }
        for n in 0..<40 {
            _ = try a.recordUpload(.newUpload(sha256: "claim-\(n)", labelId: label, uploaderId: user.id!, batchId: nil, device: nil,
                                              lat: nil, lon: nil, capturedAt: nil, bytes: 1))
        }
        let claimed = try [a, b, a, b].concurrentMap { node in
            var ids: [String] = []
            while let leased = try node.claimJob(worker: UUID().uuidString, lease: 60) { ids.append(leased.image.id) }
            return ids
        }
        let all = claimed.flatMap { $0 }
        #expect(all.count == 40 && Set(all).count == 40, "every job claimed exactly once")
    }

    @Test("two near-duplicate copies committed on two nodes at the same moment: exactly one is accepted", arguments: postgres)
    func nearDuplicatesAcrossNodes(engine: CatalogEngine) throws {
        let (a, b, user, label) = try twoNodes()
        defer { a.close(); b.close() }
        for round in 0..<10 {
            for n in 0..<2 {
                _ = try a.recordUpload(.newUpload(sha256: "copy-\(round)-\(n)", labelId: label, uploaderId: user.id!, batchId: nil,
                                                  device: nil, lat: nil, lon: nil, capturedAt: nil, bytes: 1))
            }
            let hash = UInt64(round + 1) * 0x0101_0101_0101_0101
            let leases = try [a, b].map { try #require(try $0.claimJob(worker: "w", lease: 60)) }
            let stored = try [(a, leases[0]), (b, leases[1])].concurrentMap { pair in
                let (node, leased) = pair
                return try node.complete(job: leased.job, worker: "w", verdict: Verdict(status: .accepted, phash: hash ^ UInt64(leased.job.id! & 1)),
                                  nearDistance: 6)
            }
            #expect(stored.compactMap { $0?.status }.sorted { $0.rawValue < $1.rawValue } == [.accepted, .quarantined], "round \(round)")
        }
    }

    @Test("nodes racing for a pass: exactly one gets it", arguments: postgres)
    func onePassHolderAcrossNodes(engine: CatalogEngine) throws {
        let (a, b, _, _) = try twoNodes()
        defer { a.close(); b.close() }
        let taken = try [a, b, a, b, a, b].enumerated().map { ($0.offset, $0.element) }.concurrentMap { pair in
            try pair.1.takePass("maintenance", holder: "node-\(pair.0)", for: 60)
        }
        #expect(taken.filter { $0 }.count == 1)
    }

    @Test("connections the server ends answer 503 catalog.unavailable, never an engine error, and the pool recovers", arguments: postgres)
    func endedConnectionsAreUnavailable(engine: CatalogEngine) async throws {
        let url = try #require(try TestCatalogs.url(for: .postgres))
        let c = try Catalog(url: url)
        defer { c.close() }
        _ = try c.labelsById()
        // An administrator (or a restarting server) ends every session of the database: 57P01.
        let (status, out) = try await runProgram(URL(fileURLWithPath: "/usr/bin/psql"), [
            url, "-c", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        ], mergeErrors: true)
        #expect(status == 0, "\(String(decoding: out, as: UTF8.self))")
        var answered = false
        for _ in 0..<20 where !answered {
            do {
                _ = try c.labelsById()
                answered = true
            } catch let error as HubError {
                #expect(error.status == 503 && error.code == "catalog.unavailable", "\(error)")
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(answered, "the pool connects again by itself")
    }

    @Test("while PostgreSQL is out of reach, one caller at a time waits for a connection and the others are answered 503 at once; those waiting when the outage is found are answered then")
    func outageIsAnsweredAtOnce() async throws {
        let (socket, port) = try Self.silentServer()
        defer { close(socket) }
        // The waits run on threads of their own: a blocked cooperative thread (two on CI) could delay the
        // test's own steps past a wait's end.
        let c = try Catalog(unmigratedURL: "postgres://hub@127.0.0.1:\(port)/hub", leaseTimeout: 4)
        defer { c.close() }
        /// "503: " and the message of the `catalog.unavailable` that pinging throws, or what else happened.
        @Sendable func refusal() -> String {
            do {
                try c.ping()
                return "answered"
            } catch let error as HubError where error.status == 503 && error.code == "catalog.unavailable" {
                return "503: " + error.message
            } catch {
                return "\(error)"
            }
        }
        /// A ping on a thread of its own.
        func pinging() -> Task<String, Never> {
            Task { await withCheckedContinuation { done in Thread { done.resume(returning: refusal()) }.start() } }
        }
        // The first caller finds the outage by waiting (out the lease's time, or until the pool gives up on
        // connecting); a caller that came while it waited is answered when it is.
        let first = pinging()
        try await waitUntil(seconds: 10) { c.waitingForConnections == 1 }
        // Halfway through the first wait, so that the two waits do not end together.
        try await Task.sleep(for: .seconds(2))
        let meanwhile = await pinging().value
        #expect(meanwhile.hasPrefix("503: ") && meanwhile.contains("another request's wait ended"), "\(meanwhile)")
        let found = await first.value
        #expect(found.hasPrefix("503: the catalog (PostgreSQL)") && !found.contains("another request"), "the first waited: \(found)")
        // The next waits again, as the outage's probe; while it does, every other caller is answered at once.
        let probe = pinging()
        try await waitUntil(seconds: 10) { c.probingOutage }
        var others: [String] = []
        for _ in 0..<8 { others.append(await pinging().value) }
        #expect(others.allSatisfy { $0.hasPrefix("503: ") && $0.contains("another request is waiting") }, "\(others)")
        let probed = await probe.value
        #expect(probed.hasPrefix("503: the catalog (PostgreSQL)") && !probed.contains("another request"), "the probe waited: \(probed)")
        #expect(!c.probingOutage, "the probe's turn ends with its lease")
    }

    @Test("a lease that failed declares an outage unless it only waited while other leases were granted (a busy pool)")
    func busyPoolIsNoOutage() {
        let now = ContinuousClock.now
        func outage(timedOut: Bool, granted: Duration?) -> Bool {
            Catalog.leaseFailureIsOutage(timedOut: timedOut, lastGranted: granted.map { now - $0 }, now: now, leaseTimeout: 5)
        }
        #expect(outage(timedOut: false, granted: .milliseconds(10)), "the pool's own error (it cannot connect)")
        #expect(outage(timedOut: true, granted: nil), "no connection ever granted")
        #expect(outage(timedOut: true, granted: .seconds(6)), "none granted for longer than the wait")
        #expect(!outage(timedOut: true, granted: .seconds(1)), "others got connections meanwhile: a busy pool")
    }

    /// A TCP port that takes connections and never answers: a PostgreSQL server that hangs.
    static func silentServer() throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(fd, address, length) == 0 && listen(fd, 64) == 0 && getsockname(fd, address, &length) == 0
            }
        }
        try #require(fd >= 0 && bound, "a listening socket")
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    @Test("a watch fires once when two nodes check it at the same moment", arguments: postgres)
    func watchFiresOnceAcrossNodes(engine: CatalogEngine) throws {
        let (a, b, user, label) = try twoNodes()
        defer { a.close(); b.close() }
        try a.watch(labelId: label, threshold: 1, webhookUrl: "http://example.test/hook", userId: user.id!)
        try a.insertSyntheticEmbeddedImages(labelId: label, uploaderId: user.id!, model: "test/1", vectors: [Data([1])])
        let fired = try [a, b, a, b].concurrentMap { node in try node.fireWatches { _, _, _ in "{}" }.count }
        #expect(try fired.reduce(0, +) == 1 && (try a.deliveries().count == 1))
    }

    @Test("an idle worker is woken by another node's new job, not by its slow poll", arguments: postgres)
    func newJobsWakeIdleWorkers(engine: CatalogEngine) async throws {
        let (a, b, user, label) = try twoNodes()
        defer { a.close(); b.close() }
        // The first wait starts the listener; a wait that times out proves nothing arrived meanwhile.
        await b.waitForWork(on: Catalog.jobsChannel, idle: .milliseconds(300))
        let start = ContinuousClock.now
        let waiting = Task { await b.waitForWork(on: Catalog.jobsChannel, idle: .seconds(60)) }
        try await Task.sleep(for: .milliseconds(200))
        _ = try a.recordUpload(.newUpload(sha256: "wake", labelId: label, uploaderId: user.id!, batchId: nil, device: nil,
                                          lat: nil, lon: nil, capturedAt: nil, bytes: 1))
        await waiting.value
        #expect(ContinuousClock.now - start < .seconds(30), "woken by NOTIFY long before the 60 s poll")
    }

    @Test("a new job wakes one idle worker, not all of them (the others would ask the queue for nothing)", arguments: postgres)
    func aNewJobWakesOneWorker(engine: CatalogEngine) async throws {
        let (a, b, user, label) = try twoNodes()
        defer { a.close(); b.close() }
        await b.waitForWork(on: Catalog.jobsChannel, idle: .milliseconds(300))
        final class Count: Sendable { let value = Atomic<Int>(0) }
        let count = Count()
        let waiters = (0..<3).map { _ in
            Task {
                await b.waitForWork(on: Catalog.jobsChannel, idle: .seconds(60))
                count.value.add(1, ordering: .relaxed)
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        func upload(_ n: Int) throws {
            _ = try a.recordUpload(.newUpload(sha256: "wake-one-\(n)", labelId: label, uploaderId: user.id!, batchId: nil, device: nil,
                                              lat: nil, lon: nil, capturedAt: nil, bytes: 1))
        }
        func settle(at expected: Int) async throws {
            let deadline = ContinuousClock.now + .seconds(30)
            while count.value.load(ordering: .relaxed) < expected, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            try await Task.sleep(for: .milliseconds(500))
        }
        try upload(1)
        try await settle(at: 1)
        #expect(count.value.load(ordering: .relaxed) == 1, "one job, one worker woken")
        try upload(2)
        try upload(3)
        try await settle(at: 3)
        #expect(count.value.load(ordering: .relaxed) == 3, "each job wakes a worker of its own")
        for waiter in waiters { waiter.cancel() }
        // A job announced while nobody waits is kept for the next waiter...
        try upload(4)
        try await Task.sleep(for: .milliseconds(500))
        var start = ContinuousClock.now
        await b.waitForWork(on: Catalog.jobsChannel, idle: .seconds(60))
        #expect(ContinuousClock.now - start < .seconds(30), "a kept notification answers the next wait at once")
        // ...unless a claim that began after it has already looked at the queue.
        try upload(5)
        try await Task.sleep(for: .milliseconds(500))
        _ = try b.claimJob(worker: "w", lease: 60)
        start = ContinuousClock.now
        await b.waitForWork(on: Catalog.jobsChannel, idle: .seconds(1))
        #expect(ContinuousClock.now - start >= .milliseconds(900), "a claim since answered the notification: the wait runs its course")
    }
}

extension Array where Element: Sendable {
    /// Maps on one thread per element at once (the catalog blocks, as it does on the hub's blocking pool).
    func concurrentMap<T: Sendable>(_ transform: @escaping @Sendable (Element) throws -> T) throws -> [T] {
        let results = Mutex<[Int: Result<T, any Error>]>([:])
        let group = DispatchGroup()
        for (index, element) in enumerated() {
            group.enter()
            Thread.detachNewThread {
                let result = Result { try transform(element) }
                results.withLock { $0[index] = result }
                group.leave()
            }
        }
        group.wait()
        return try results.withLock { r in try (0..<count).map { try r[$0]!.get() } }
    }
}
