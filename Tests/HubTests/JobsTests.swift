import Catalog
import Foundation
import HubCore
import HubTesting
import Jobs
import Testing

@Suite struct JobsTests {
    @Test func failingJobsRetryWithBackoffThenDeadLetter() async throws {
        let t = try TestHub { $0.maxAttempts = 3; $0.backoffSeconds = 0.01 }
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

    @Test func anExpiredLeaseIsTakenOverAndTheStaleWorkerCannotCommit() async throws {
        let t = try TestHub()
        defer { t.remove() }
        try await t.withClient { client in
            let id = try await client.upload(try Fixtures.image(seed: 72), label: "Banana", as: t.bearer(.supplier)).json["id"] as! String
            let c = t.hub.catalog
            let first = try #require(try c.claimJob(worker: "a", lease: 0.05))
            #expect(try c.claimJob(worker: "b", lease: 60) == nil, "a held lease is respected")
            try await Task.sleep(for: .milliseconds(100))
            let second = try #require(try c.claimJob(worker: "b", lease: 60), "an expired lease is taken over")
            #expect(second.job.id == first.job.id && second.job.attempts == 2)
            let (verdict, _) = try t.hub.pipeline.process(first.image)
            #expect(try c.complete(job: first.job, worker: "a", verdict: verdict, nearDistance: 6) == nil)
            #expect(try c.complete(job: second.job, worker: "b", verdict: verdict, nearDistance: 6)?.status == .accepted)
            #expect(try c.image(id: id)?.status == .accepted)
            #expect(try c.backlog() == 0)
            // Claims and verdicts commit without an fsync; the next durable write (an upload) is flushed again.
            #expect(try c.synchronousLevel(durable: false) == 1)
            #expect(try c.synchronousLevel(durable: true) == 2)
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
}
