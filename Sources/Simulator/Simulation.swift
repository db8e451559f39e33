import AsyncHTTPClient
import Foundation
import HubCore
import NIOCore

/// How a simulation runs: where, how many phones, how fast, how flaky.
public struct SimulationOptions: Sendable {
    /// multipart `POST /v1/images`, or tus resumable uploads under `/v1/uploads/`.
    public enum Transport: String, Sendable, CaseIterable { case multipart, tus }

    /// The hub's base URL, for example `http://127.0.0.1:8080`: the first of `targets`.
    public var target: String { targets[0] }
    /// The API nodes the phones upload through (phone i uses `targets[i % count]`); status polls go to the
    /// first that answers.
    public var targets: [String]
    /// An API key with the supplier role (admin to create missing labels).
    public var key: String
    /// What the phones upload, in this order (shuffled by `seed`), again and again if the run is longer.
    public var photos: [SimulatedPhoto]
    /// Concurrent virtual phones.
    public var devices = 20
    /// Uploads per second over all phones (Poisson arrivals); nil runs closed loop (each phone uploads
    /// again as soon as its last upload is acknowledged or refused).
    public var rate: Double?
    /// Stop starting uploads after this long.
    public var duration: Duration?
    /// Stop after this many uploads (without `duration` or `count`: one pass over the photos).
    public var count: Int?
    public var transport = Transport.multipart
    /// Fraction of uploads whose first connection is cut mid-body.
    public var flaky = 0.0
    public var seed: UInt64 = 1
    /// Where the phones are (default Berlin).
    public var cityLat = 52.52
    public var cityLon = 13.405
    /// Create labels the hub lacks (needs an admin key) instead of stopping.
    public var createLabels = false
    /// Failed attempts (cuts, transport errors, 5xx) before a phone gives up on an upload.
    public var maxAttempts = 8
    /// How long to wait, after the last upload, for every acknowledged image to reach a final status.
    public var settleTimeout = Duration.seconds(300)
    /// How often acknowledged images are polled for their status.
    public var pollInterval = Duration.milliseconds(250)
    /// Longest wait for one HTTP answer.
    public var requestTimeout = Duration.seconds(120)
    /// tus `PATCH` size in bytes; 0 sends the rest of the file in one request.
    public var chunkSize = 0
    /// Seconds each multipart upload asks the hub to wait for its verdict (`Prefer: wait=N`); nil: none.
    public var wait: Int?
    /// Phones read the hub's collection quests (`GET /v1/quests`, every `questInterval`) and send the
    /// photos asked for first: each upload goes to a quest's label (chosen in proportion to what is still
    /// wanted) while one is open and the workload has a photo of that label not sent yet; every photo is
    /// sent at most once.
    public var followQuests = false
    public var questInterval = Duration.seconds(5)

    public init(target: String, key: String, photos: [SimulatedPhoto]) {
        self.init(targets: [target], key: key, photos: photos)
    }

    public init(targets: [String], key: String, photos: [SimulatedPhoto]) {
        precondition(!targets.isEmpty, "at least one target")
        self.targets = targets.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.key = key
        self.photos = photos
    }
}

/// Hands out uploads to phones: which photo, which pass over the photos, and (open loop) when it is due.
actor UploadQueue {
    struct Job: Sendable {
        var index: Int
        var photo: Int
        var pass: Int
        var scheduled: ContinuousClock.Instant?
    }

    let order: [Int]
    /// With quests: each label's photos in `order`, the photos sent, and what each label is still wanted for.
    let byLabel: [String: [Int]]
    let follow: Bool
    var sentPhotos = Set<Int>()
    var wanted: [String: Int] = [:]
    var questUploads: [String: Int] = [:]
    var cursor = 0
    let limit: Int?
    let deadline: ContinuousClock.Instant?
    let rate: Double?
    let start: ContinuousClock.Instant
    var next = 0
    var due = 0.0
    var rng: SeededRandom

    init(photos: Int, options: SimulationOptions, start: ContinuousClock.Instant) {
        var rng = SeededRandom(seed: options.seed)
        order = Array(0..<photos).shuffled(using: &rng)
        follow = options.followQuests
        var byLabel: [String: [Int]] = [:]
        if follow { for i in order { byLabel[options.photos[i].label, default: []].append(i) } }
        self.byLabel = byLabel
        self.rng = rng
        limit = options.count ?? (options.duration == nil ? photos : nil)
        deadline = options.duration.map { start + $0 }
        rate = options.rate
        self.start = start
    }

    /// The next upload, or nil when the run is over.
    func take() -> Job? {
        if let limit, next >= limit { return nil }
        var scheduled: ContinuousClock.Instant?
        if let rate {
            due += -log(Double.random(in: Double.ulpOfOne..<1, using: &rng)) / rate
            scheduled = start + .milliseconds(Int64(due * 1000))
            if let deadline, scheduled! > deadline { return nil }
        } else if let deadline, ContinuousClock.now >= deadline {
            return nil
        }
        defer { next += 1 }
        if follow { return Job(index: next, photo: questPhoto() ?? plainPhoto(), pass: 0, scheduled: scheduled) }
        return Job(index: next, photo: order[next % order.count], pass: next / order.count, scheduled: scheduled)
    }

    /// The quests' wants per label, as the hub published them (labels the workload has no photo of drop out).
    func setQuests(_ wants: [String: Int]) {
        wanted = wants.filter { byLabel[$0.key] != nil && $0.value > 0 }
    }

    func questCounts() -> [String: Int] { questUploads }

    /// A photo not sent yet of a label a quest wants, the label drawn in proportion to what is wanted.
    private func questPhoto() -> Int? {
        let open = wanted.filter { label, want in want > 0 && byLabel[label]!.contains { !sentPhotos.contains($0) } }.sorted { $0.key < $1.key }
        let total = open.reduce(0) { $0 + $1.value }
        guard total > 0 else { return nil }
        var pick = Int.random(in: 0..<total, using: &rng)
        for (label, want) in open {
            if pick < want {
                let photo = byLabel[label]!.first { !sentPhotos.contains($0) }!
                sentPhotos.insert(photo)
                wanted[label] = want - 1
                questUploads[label, default: 0] += 1
                return photo
            }
            pick -= want
        }
        return nil
    }

    /// The next photo in the run's order not sent yet (when all were sent, the order again).
    private func plainPhoto() -> Int {
        for _ in 0..<order.count {
            let photo = order[cursor % order.count]
            cursor += 1
            if !sentPhotos.contains(photo) { sentPhotos.insert(photo); return photo }
        }
        defer { cursor += 1 }
        return order[cursor % order.count]
    }
}

/// Plays `devices` phones uploading labelled photos to a hub over real HTTP, then follows every
/// acknowledged image until it reaches a final status, and reports what happened.
public enum Simulation {
    public static func run(_ options: SimulationOptions, log: @escaping @Sendable (String) -> Void = { _ in }) async throws -> SimulationReport {
        guard !options.photos.isEmpty else { throw HubError(400, "files.none", "no photos to upload") }
        guard options.devices >= 1 else { throw HubError(400, "field.invalid", "--devices must be at least 1") }
        var config = HTTPClient.Configuration()
        config.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: options.devices + 4)
        // Each request has its whole-request deadline (`requestTimeout`, in `HubClient`); only connecting is bounded here.
        config.timeout = .init(connect: .seconds(10))
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        do {
            let report = try await run(options, http: http, log: log)
            try await http.shutdown()
            return report
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    static func run(_ options: SimulationOptions, http: HTTPClient, log: @escaping @Sendable (String) -> Void) async throws -> SimulationReport {
        let tally = Tally()
        let clients = options.targets.map {
            HubClient(http: http, base: $0, key: options.key, timeout: .nanoseconds(Int64(options.requestTimeout.seconds * 1e9)), tally: tally)
        }
        let client = clients[0]
        try await prepareLabels(options, client: client, log: log)

        let start = ContinuousClock.now
        let queue = UploadQueue(photos: options.photos.count, options: options, start: start)
        let poller = Task { await poll(clients: clients, tally: tally, every: options.pollInterval, settle: options.settleTimeout) }
        let questReader: Task<Void, Never>? = options.followQuests ? Task {
            while !Task.isCancelled {
                if let wants = try? await client.questWants() { await queue.setQuests(wants) }
                try? await Task.sleep(for: options.questInterval)
            }
        } : nil
        if options.followQuests {
            // The first uploads already follow the quests.
            if let wants = try? await client.questWants() {
                await queue.setQuests(wants)
                log("quests: " + wants.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            }
        }
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<options.devices {
                group.addTask {
                    var device = VirtualDevice(index: i, client: clients[i % clients.count], options: options, tally: tally, queue: queue)
                    await device.run()
                }
            }
        }
        let loadEnd = ContinuousClock.now
        questReader?.cancel()
        let questUploads = options.followQuests ? await queue.questCounts() : nil
        tally.update { $0.loadOver = true }
        log("uploads done in \(tenths(loadEnd - start)) s; waiting for \(tally.pendingIds.count) images to reach a final status")
        await poller.value
        let end = ContinuousClock.now
        var made = report(options, tally: tally, load: loadEnd - start, settle: end - loadEnd, total: end - start)
        made.questUploads = questUploads
        return made
    }

    /// Checks the key and makes sure every label the photos carry exists (creating them if asked).
    static func prepareLabels(_ options: SimulationOptions, client: HubClient, log: (String) -> Void) async throws {
        let existing: Set<String>
        do { existing = try await client.labelNames() } catch let e as HubError {
            throw e.status == 401 || e.status == 403 ? HubError(e.status, e.code, "the hub refused the key: \(e.message)") : e
        } catch {
            throw HubError(503, "target.unreachable", "cannot reach the hub at \(options.target): \(error)")
        }
        var needed: [String: String?] = [:]
        for photo in options.photos where !existing.contains(photo.label) { needed[photo.label] = photo.mid }
        guard !needed.isEmpty else { return }
        guard options.createLabels else {
            throw HubError(422, "labels.missing", "the hub has no label \(needed.keys.sorted().joined(separator: ", ")): create them, or pass --create-labels with an admin key")
        }
        for (name, mid) in needed.sorted(by: { $0.key < $1.key }) {
            var body: [String: Any] = ["name": name]
            if let mid { body["mid"] = mid }
            let answer = try await client.json(.POST, "/v1/labels", body)
            guard answer.status == 201 || answer.errorCode == "label.exists" else { throw HubClient.failure("creating label \(name)", answer) }
        }
        log("created \(needed.count) labels")
    }

    /// Follows acknowledged images until each is final; after the load, until none is left or `settle` passes.
    /// Each page of ids is asked of the first target that answers (an API node may be restarting).
    static func poll(clients: [HubClient], tally: Tally, every interval: Duration, settle: Duration) async {
        var settleDeadline: ContinuousClock.Instant?
        while true {
            let over = tally.state.withLock { $0.loadOver }
            if over, settleDeadline == nil { settleDeadline = .now + settle }
            let pending = tally.pendingIds
            if over, pending.isEmpty { return }
            if let settleDeadline, ContinuousClock.now >= settleDeadline { return }
            var start = 0
            while start < pending.count {
                let ids = Array(pending[start..<min(pending.count, start + 100)])
                start += 100
                var answer: [String: (status: String, reasons: [String])]?
                for client in clients where answer == nil { answer = try? await client.statuses(ids) }
                guard let found = answer else { continue }
                var finals: [String: String] = [:]
                for (id, s) in found where s.status != "pending" {
                    finals[id] = s.reasons.isEmpty ? s.status : "\(s.status) \(s.reasons.joined(separator: ","))"
                }
                tally.finished(finals)
            }
            try? await Task.sleep(for: interval)
        }
    }

    static func report(_ o: SimulationOptions, tally: Tally, load: Duration, settle: Duration, total: Duration) -> SimulationReport {
        tally.state.withLock { s in
            var outcomes: [String: Int] = [:]
            for outcome in s.finals.values { outcomes[outcome, default: 0] += 1 }
            let lost = s.pending.keys.sorted()
            return SimulationReport(
                target: o.targets.joined(separator: ", "), transport: o.transport.rawValue, devices: o.devices,
                arrivals: o.rate.map { String(format: "open loop, %g uploads/s (Poisson)", $0) } ?? "closed loop",
                flaky: o.flaky, loadSeconds: tenths(load), settleSeconds: tenths(settle),
                sent: s.sent, acknowledged: s.acknowledged, acknowledgedExisting: s.acknowledgedExisting, refused: s.refused,
                gaveUp: s.gaveUp, outcomes: outcomes, final: s.finals.count, lost: lost.count, lostIds: Array(lost.prefix(20)),
                cuts: s.cuts, resumes: s.resumes, bytesKept: s.bytesKept, backpressureWaits: s.backpressureWaits,
                transportErrors: s.transportErrors, requests: s.requests, bytesAcknowledged: s.bytesAcknowledged,
                acknowledgedPerSecond: Double(s.acknowledged) / max(load.seconds, 1e-9),
                finalPerSecond: Double(s.finals.count) / max(total.seconds, 1e-9),
                acknowledgementLatency: .init(s.acknowledgement), finalStatusLatency: .init(s.finalStatus),
                answeredWithVerdict: o.wait == nil ? nil : s.answeredWithVerdict,
                pollMilliseconds: Int((o.pollInterval.seconds * 1000).rounded()))
        }
    }

    static func tenths(_ d: Duration) -> Double { (d.seconds * 10).rounded() / 10 }
}
