import Catalog
import Foundation
import HubCore
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Workers that take pipeline jobs from the catalog. Jobs are leased, so a worker that dies (kill -9)
/// leaves its job to be taken over when the lease expires; a verdict commits only while the lease is held.
public final class WorkerPool: Service, Sendable {
    let catalog: Catalog
    public let pipeline: Pipeline
    let settings: HubSettings
    let logger: Logger
    let name: String
    /// Embeds accepted uploads and judges them by their embedding; nil when embedding is off.
    public let embedStage: EmbedStage?
    /// Runs training jobs on this node (nil without embeddings).
    public let training: TrainingService?
    public let webhooks: Webhooks
    /// Each label's quality thresholds (learnt by the maintenance pass, used by the pipeline).
    public let quality: QualityBook
    /// Other periodic chores of this node (expired resumable uploads).
    let housekeeping: @Sendable () throws -> Void
    private let stopping = Atomic<Bool>(false)
    /// Jobs this pool's workers are handling now: a drain's idle worker waiting for them looks again soon.
    private let inFlight = Atomic<Int>(0)
    /// Requests of this process waiting for verdicts (`Prefer: wait`), told as each verdict commits.
    public let verdicts = VerdictWaiters()

    public init(catalog: Catalog, pipeline: Pipeline, embedStage: EmbedStage? = nil, logger: Logger = Logger(label: "imagehub.jobs"),
                housekeeping: @escaping @Sendable () throws -> Void = {}) {
        self.housekeeping = housekeeping
        self.catalog = catalog
        let quality = pipeline.quality ?? QualityBook(catalog: catalog, settings: pipeline.settings)
        self.quality = quality
        var pipeline = pipeline
        pipeline.quality = quality
        self.pipeline = pipeline
        self.embedStage = embedStage
        self.training = embedStage.map { TrainingService(catalog: catalog, stage: $0, pipeline: pipeline, settings: pipeline.settings) }
        self.webhooks = Webhooks(catalog: catalog, settings: pipeline.settings)
        self.settings = pipeline.settings
        self.logger = logger
        self.name = "\(ProcessInfo.processInfo.hostName)-\(getpid())-\(UUID().uuidString.prefix(8))"
    }

    /// Runs workers until graceful shutdown; in-flight jobs finish before it returns (drain).
    public func run() async throws {
        if settings.workers == 0 {
            // An API-only node: nothing to run, but returning early would stop the whole service group.
            try? await gracefulShutdown()
            return
        }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<settings.workers {
                    group.addTask { await self.loop(worker: "\(self.name)/\(index)", untilIdle: false) }
                }
                group.addTask { await self.maintenanceLoop() }
                if training != nil { group.addTask { await self.trainingLoop(worker: "\(self.name)/training") } }
            }
        } onGracefulShutdown: {
            self.stopping.store(true, ordering: .relaxed)
        }
        logger.info("workers drained")
    }

    /// Processes jobs until the backlog is empty (the CLI's `ingest` and tests use it). With `producing`,
    /// an empty backlog only ends the drain once `producing` says no more uploads are coming: the workers
    /// start on the first uploads while the rest are still being stored.
    public func drain(while producing: (@Sendable () -> Bool)? = nil) async {
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<max(1, settings.workers) {
                group.addTask { await self.loop(worker: "\(self.name)/drain\(index)", untilIdle: true, producing: producing) }
            }
        }
    }

    /// Background re-checks, clustering, watch-list notifications and tus expiry, every
    /// `maintenance.intervalSeconds`, on the one node that holds the maintenance pass; the others only bring
    /// their similarity index up to date.
    private func maintenanceLoop() async {
        let ttl = max(60, 3 * settings.maintenanceInterval)
        while !stopping.load(ordering: .relaxed), !Task.isCancelled {
            let holder = (try? await offloadProcessing { try self.catalog.takePass("maintenance", holder: self.name, for: ttl) }) ?? false
            if holder {
                do { try await maintainOnce() } catch { logger.error("maintenance failed: \(error)") }
            } else {
                do {
                    if let embedStage { try await offloadProcessing { try embedStage.follow() } }
                    try await offloadProcessing { try self.quality.reload() }
                } catch { logger.error("following the catalog failed: \(error)") }
            }
            let deadline = ContinuousClock.now + .seconds(settings.maintenanceInterval)
            while !stopping.load(ordering: .relaxed), !Task.isCancelled, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(100)) }
        }
    }

    /// Takes queued training jobs one at a time.
    private func trainingLoop(worker: String) async {
        guard let training else { return }
        while !stopping.load(ordering: .relaxed), !Task.isCancelled {
            let ran = (try? await offloadProcessing { try training.runNext(worker: worker) }) ?? false
            if !ran { await catalog.waitForWork(on: Catalog.trainingChannel, embedded: .milliseconds(200)) }
        }
    }

    /// One pass of the background work (tests and the CLI call it instead of waiting for the loop).
    public func maintainOnce() async throws {
        if let embedStage { try await offloadProcessing { try embedStage.maintain() } }
        try await webhooks.run()
        try await offloadProcessing { try self.housekeeping() }
        try await offloadProcessing { try self.quality.learn() }
    }

    private func loop(worker: String, untilIdle: Bool, producing: (@Sendable () -> Bool)? = nil) async {
        // The job the last verdict's transaction claimed: it is handled even if a stop came meanwhile (it
        // is held under a lease; handling it is the drain's "finish what is in flight").
        var next: LeasedJob?
        while true {
            if next == nil {
                guard !stopping.load(ordering: .relaxed), !Task.isCancelled else { return }
                do {
                    let start = ContinuousClock.now
                    next = try await offloadProcessing { try self.catalog.claimJob(worker: worker, lease: self.settings.leaseSeconds) }
                    if next != nil { pipeline.record(stage: "claim", ContinuousClock.now - start) }
                } catch {
                    logger.error("claiming a job failed: \(error)")
                }
            }
            if let claimed = next {
                inFlight.add(1, ordering: .relaxed)
                next = await handle(claimed, worker: worker)
                inFlight.subtract(1, ordering: .relaxed)
                continue
            }
            let stillStoring = producing?() ?? false
            if untilIdle, !stillStoring, ((try? await offloadProcessing { try self.catalog.backlog() }) ?? 0) == 0 { return }
            // Uploads still arriving are picked up quickly, and so is the end of a drain whose last jobs
            // this pool's other workers are finishing (a 20 ms look was a twentieth of importing 15 phone
            // photos); otherwise idle workers wait for a new job's notification (PostgreSQL) or poll less
            // often (SQLite).
            if stillStoring || untilIdle {
                let soon = stillStoring || inFlight.load(ordering: .relaxed) > 0
                try? await Task.sleep(for: .milliseconds(soon ? 2 : 20))
            } else {
                await catalog.waitForWork(on: Catalog.jobsChannel)
            }
        }
    }

    /// A committed verdict's image as stored (nil when the lease was lost) and the next job claimed with it.
    struct Committed: Sendable {
        var stored: ImageRecord?
        var next: LeasedJob?
    }

    private func commit(_ job: JobRecord, worker: String, verdict: Verdict, watermark: Int64,
                        decide: (@Sendable (inout Verdict, CommitContext) throws -> Void)?, claimNext: Bool) throws -> Committed {
        let distance = settings.nearDuplicateDistance
        var learn: (@Sendable (EmbeddingRow) -> Void)?
        if let stage = embedStage { learn = { row in stage.learn(row) } }
        guard claimNext else {
            return Committed(stored: try catalog.complete(job: job, worker: worker, verdict: verdict, nearDistance: distance,
                                                          watermark: watermark, decide: decide, stored: learn))
        }
        let (stored, next) = try catalog.completeAndClaim(job: job, worker: worker, verdict: verdict, nearDistance: distance,
                                                          watermark: watermark, decide: decide, stored: learn,
                                                          lease: settings.leaseSeconds)
        return Committed(stored: stored, next: next)
    }

    /// Processes one job and commits its verdict; unless the pool is stopping, the verdict's transaction also
    /// claims the worker's next job, which is returned.
    private func handle(_ leased: LeasedJob, worker: String) async -> LeasedJob? {
        let job = leased.job
        do {
            var (verdict, input, upright) = try await offloadProcessing { try self.pipeline.processKeepingPixels(leased.image) }
            var decide: (@Sendable (inout Verdict, CommitContext) throws -> Void)?
            var watermark: Int64 = 0
            if let input, let stage = embedStage {
                let vector = try await pipeline.timed("embed") { try await stage.embed(input, into: &verdict) }
                // Candidates the index knows now are judged by their local features before the commit; the
                // commit judges only rows that arrived since, by cosine.
                let checked = try await pipeline.timed("near_duplicate") { [verdict, upright] in
                    try await offloadProcessing { try stage.checkNearDuplicates(leased.image, verdict: verdict, vector: vector, pixels: upright) }
                }
                watermark = stage.index.watermark
                decide = { v, context in stage.decide(&v, context, vector: vector, checked: checked) }
            }
            let committed = verdict
            let claimNext = !stopping.load(ordering: .relaxed) && !Task.isCancelled
            let outcome: Committed = try await pipeline.timed("commit") {
                try await whileCatalogUnavailable {
                    try await offloadProcessing { [decide, watermark] in
                        try self.commit(job, worker: worker, verdict: committed, watermark: watermark, decide: decide, claimNext: claimNext)
                    }
                }
            }
            let (stored, next) = (outcome.stored, outcome.next)
            if let stored {
                verdicts.finished(stored.id)
                Timer(label: "imagehub_processing_latency_seconds").recordSeconds(Date().timeIntervalSince(stored.createdAt))
                let reasons = stored.reasonCodes
                Counter(label: "imagehub_outcomes_total", dimensions: [("status", stored.status.rawValue), ("reason", reasons.first ?? "ok")]).increment()
            }
            return next
        } catch {
            let delay = settings.backoffSeconds * pow(2, Double(max(0, job.attempts - 1)))
            logger.warning("job \(job.id ?? 0) for image \(job.imageId) failed (attempt \(job.attempts)): \(error)")
            let dead = try? await offloadProcessing {
                try self.catalog.fail(job: job, worker: worker, error: "\(error)", retryAfter: delay, maxAttempts: self.settings.maxAttempts)
            }
            if dead == true {
                Counter(label: "imagehub_outcomes_total", dimensions: [("status", "rejected"), ("reason", "internal.failed")]).increment()
            }
            return nil
        }
    }
}

extension WorkerPool {
    /// Runs `body`, again every second while the catalog is unavailable (PostgreSQL restarting), for at
    /// most half a lease: a verdict already worked out is committed once the catalog is back, instead of the
    /// job waiting for its lease to run out on a node that is still alive.
    func whileCatalogUnavailable<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + .seconds(settings.leaseSeconds / 2)
        while true {
            do {
                return try await body()
            } catch let error as HubError where error.code == "catalog.unavailable" && ContinuousClock.now < deadline {
                logger.warning("the catalog is unavailable; retrying in a second: \(error.message)")
                try await Task.sleep(for: .seconds(1))
            }
        }
    }
}

/// Says whether uploads are still being stored, for `WorkerPool.drain(while:)`: on until `finish()`.
public final class StoringFlag: Sendable {
    private let on = Atomic<Bool>(true)

    public init() {}

    public var isOn: Bool { on.load(ordering: .acquiring) }

    public func finish() { on.store(false, ordering: .releasing) }
}
