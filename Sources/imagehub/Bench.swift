import ArgumentParser
import Catalog
import Embedding
import Foundation
import HubCore
import HubServer
import Ingest
import Jobs
import Synchronization

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Benchmarks that print a table.", subcommands: [IngestBench.self, EmbedBench.self, VerifyLabelsBench.self, NearDupsBench.self, TrainBench.self, NodesBench.self, CatalogBench.self, DashboardBench.self])
}

struct IngestBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Store, verify and preprocess every image under DIR (labels from folder names) in a fresh hub.")

    @Argument(help: "Folder of images; the parent folder name is the label.") var directory: String
    @Option(help: "Pipeline workers (default: the core count).") var workers: Int?
    @Option(help: "Data directory for the throw-away hub (default: a new temporary one).") var data: String?
    @Flag(help: "Leave the embed stage out (verify + preprocess only).") var noEmbed = false
    @Option(help: ArgumentHelp(
        "Instead: whole processes, as a user would time them. `imagehub ingest` with embeddings off (see --embeddings) against this script (run as PYTHON SCRIPT DIR OUTDIR, e.g. ../shared/bench/py_ingest_baseline.py) on the same folder, alternating, in the same run.",
        valueName: "script")) var compareScript: String?
    @Option(help: "With --compare-script: another folder to compare on (e.g. small phone photos and full-size camera photos).")
    var and: [String] = []
    @Flag(help: "With --compare-script: embeddings on in the hub, and the script run as PYTHON SCRIPT FEATURES DIR, FEATURES being the set-up's TorchScript feature extractor (for ../shared/bench/py_embed_baseline.py).")
    var embeddings = false
    @Option(help: "With --compare-script: the Python that runs it.") var python = "/usr/bin/python3"
    @Option(help: "With --compare-script: runs of each, alternating; the median is shown.") var rounds = 3

    func run() async throws {
        if let compareScript {
            // The hub runs on fresh data directories: its settings (the backbone's directory among them) are
            // the environment's alone, and the script gets the TorchScript features of that same backbone.
            let settings = try await HubSettings.load(dataDirectory: FileManager.default.temporaryDirectory
                .appendingPathComponent("imagehub-compare-\(UUID().uuidString)").path)
            return try compare(script: compareScript, models: Backbone.defaultDirectory(configured: settings.modelsDirectory))
        }
        let dir = data ?? FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-bench-\(UUID().uuidString)").path
        defer { if data == nil { try? FileManager.default.removeItem(atPath: dir) } }
        var settings = try await HubSettings.load(dataDirectory: dir)
        if let workers { settings.workers = workers }
        if noEmbed { settings.embeddingEnabled = false }
        let files = try ImageFiles.find(in: directory, say: ImageFiles.toStandardError)
        guard !files.isEmpty else { throw ValidationError("no files under \(directory)") }
        let bytes = files.reduce(0) { $0 + ((try? $1.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0) }
        let clock = ContinuousClock()

        // Phases one after the other, each timed on its own: every file stored, then every job processed.
        let hub = try Hub(dataDirectory: URL(fileURLWithPath: dir).appendingPathComponent("phases"), settings: settings)
        var storeTimes: [Duration] = []
        let storeStart = clock.now
        let user = try hub.catalog.localUser()
        for file in files { storeTimes.append(try Self.store(file, in: hub, as: user)) }
        let storeTime = clock.now - storeStart

        let stages = Mutex<[String: [Duration]]>([:])
        var pipeline = hub.pipeline
        pipeline.onStage = { name, d in stages.withLock { $0[name, default: []].append(d) } }
        let pool = WorkerPool(catalog: hub.catalog, pipeline: pipeline, embedStage: hub.embedStage)
        let processStart = clock.now
        await pool.drain()
        let processTime = clock.now - processStart

        // End to end as `imagehub ingest` runs, in a second fresh hub: the workers start on the first
        // upload while the rest are still being stored.
        // (It shares the first hub's backbone: one copy of the weights in memory.)
        let pipelined = try Hub(dataDirectory: URL(fileURLWithPath: dir).appendingPathComponent("pipelined"), settings: settings,
                                backbone: hub.embedStage?.backbone)
        let storing = StoringFlag()
        let endToEndStart = clock.now
        async let drained: Void = pipelined.workers.drain(while: { storing.isOn })
        let pipelinedUser = try pipelined.catalog.localUser()
        try await offload {
            defer { storing.finish() }
            for file in files { _ = try Self.store(file, in: pipelined, as: pipelinedUser) }
        }
        await drained
        let endToEnd = clock.now - endToEndStart

        let counts = try hub.catalog.statusCounts()
        let n = Double(files.count)
        print("bench ingest: \(files.count) files, \(String(format: "%.1f", Double(bytes) / 1_048_576)) MB, \(settings.workers) workers, \(ProcessInfo.processInfo.activeProcessorCount) cores, "
              + (hub.embedStage.map { "embedding with \($0.backbone.id) on \($0.backbone.engineDescription) (batch ≤ \(settings.embeddingBatchSize))" } ?? "no embedding"))
        print("outcomes: " + ImageStatus.allCases.map { "\($0.rawValue) \(counts[$0] ?? 0)" }.joined(separator: ", "))
        var rows: [[String]] = [
            ["store (sniff, hash, fsync, commit)", Self.rate(n, storeTime), Self.ms(Self.quantile(storeTimes, 0.5)), Self.ms(Self.quantile(storeTimes, 0.99))],
            [hub.embedStage == nil ? "verify + preprocess + store renditions" : "verify + preprocess + embed + store", Self.rate(n, processTime), "", ""],
            ["end to end (store and process at once)", Self.rate(n, endToEnd), "", ""],
        ]
        for (name, times) in stages.withLock({ $0 }).sorted(by: { Self.quantile($0.value, 0.5) > Self.quantile($1.value, 0.5) }) {
            rows.append(["  stage \(name)", "", Self.ms(Self.quantile(times, 0.5)), Self.ms(Self.quantile(times, 0.99))])
        }
        Table(headers: ["phase", "img/s", "median ms", "p99 ms"], rows: rows).print()
        if let stage = hub.embedStage {
            let sizes = await stage.embedder.batchSizes
            print("embedding batches: \(sizes.count), mean size \(String(format: "%.1f", Double(sizes.reduce(0, +)) / Double(max(1, sizes.count)))), largest \(sizes.max() ?? 0)")
        }
        print("peak RSS: \(Self.peakRSSMegabytes()) MB")
    }

    /// `imagehub ingest` (embeddings off, a fresh data directory each run) against the script, whole
    /// processes alternating on each folder: median wall time, CPU time and peak memory of each, and the ratio.
    func compare(script: String, models: URL) throws {
        guard FileManager.default.isExecutableFile(atPath: python) else { throw ValidationError("no Python at \(python)") }
        guard FileManager.default.fileExists(atPath: script) else { throw ValidationError("no script at \(script)") }
        // The hub's own configuration decides its engine and precision; the script gets the TorchScript
        // features the set-up converted from the same weights.
        let features = embeddings ? models.appendingPathComponent("features.pt").path : nil
        if let features, !FileManager.default.fileExists(atPath: features) {
            throw ValidationError("no TorchScript features at \(features) (make setup converts them)")
        }
        var rows: [[String]] = []
        for folder in [directory] + and {
            let files = try ImageFiles.find(in: folder, say: ImageFiles.toStandardError)
            guard !files.isEmpty else { throw ValidationError("no files under \(folder)") }
            var hub: [ChildProcess.Cost] = [], baseline: [ChildProcess.Cost] = []
            // Every run's output is removed after the last run, not between runs: on ext4 without a journal,
            // files made within seconds of thousands being deleted each pay for skipping the freed inodes
            // (`recently_deleted`), which no user importing a folder would see.
            var scratches: [URL] = []
            defer { for scratch in scratches { try? FileManager.default.removeItem(at: scratch) } }
            for round in 1...max(1, rounds) {
                let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-compare-\(UUID().uuidString)")
                scratches.append(scratch)
                // Each timed process starts with nothing left to write back on the file system: neither pays for
                // the other's (the script never syncs what it writes; the hub's group commit is one `syncfs`,
                // which would flush the script's files too).
                sync()
                let ours = try ChildProcess.measure(ChildProcess.imagehub, ["ingest", folder, "--labels-from-folders", "--create-labels",
                                                                            "--data", scratch.appendingPathComponent("hub").path],
                                                    environment: ["IMAGEHUB_EMBEDDING_ENABLED": embeddings ? "true" : "false"])
                sync()
                let arguments = features.map { [script, $0, folder] } ?? [script, folder, scratch.appendingPathComponent("script").path]
                let theirs = try ChildProcess.measure(URL(fileURLWithPath: python), arguments)
                guard ours.status == 0, theirs.status == 0 else {
                    throw ValidationError("a run failed (imagehub ingest: \(ours.status), script: \(theirs.status))")
                }
                hub.append(ours)
                baseline.append(theirs)
                FileHandle.standardError.write(Data("bench ingest: \(folder) round \(round): hub \(String(format: "%.2f", ours.seconds)) s, script \(String(format: "%.2f", theirs.seconds)) s\n".utf8))
            }
            func median(_ costs: [ChildProcess.Cost], _ value: (ChildProcess.Cost) -> Double) -> Double {
                NodesBench.median(costs.map(value))
            }
            let ratios = zip(hub, baseline).map { $1.seconds / max($0.seconds, 1e-9) }
            let n = Double(files.count)
            rows.append([URL(fileURLWithPath: folder).lastPathComponent, "\(files.count)",
                         String(format: "%.2f", median(hub) { $0.seconds }), String(format: "%.2f", median(baseline) { $0.seconds }),
                         String(format: "%.0f", n / median(hub) { $0.seconds }), String(format: "%.0f", n / median(baseline) { $0.seconds }),
                         String(format: "%.2f×", NodesBench.median(ratios)),
                         String(format: "%.1f", 1000 * median(hub) { $0.cpuSeconds } / n), String(format: "%.1f", 1000 * median(baseline) { $0.cpuSeconds } / n),
                         "\(Int(median(hub) { Double($0.peakRSS) }) / 1_048_576)", "\(Int(median(baseline) { Double($0.peakRSS) }) / 1_048_576)"])
        }
        print("bench ingest --compare-script: whole processes, median of \(max(1, rounds)) alternating runs; imagehub ingest with embeddings \(embeddings ? "on" : "off"); "
              + "\(ProcessInfo.processInfo.activeProcessorCount) cores; ratio = script time / hub time")
        Table(headers: ["photos", "images", "hub s", "script s", "hub img/s", "script img/s", "ratio", "hub CPU ms/img", "script CPU ms/img",
                        "hub peak MB", "script peak MB"], rows: rows).print()
    }

    /// Stores one file as the CLI's `ingest` does (its folder name is its label), returning how long it took.
    static func store(_ file: URL, in hub: Hub, as user: UserRecord) throws -> Duration {
        let name = file.deletingLastPathComponent().lastPathComponent
        if try hub.catalog.label(named: name) == nil { try hub.catalog.createLabel(name: name) }
        let clock = ContinuousClock(), start = clock.now
        _ = try? hub.ingestor.accept(fileAt: file, meta: .init(label: name), user: user)
        return clock.now - start
    }

    static func quantile(_ values: [Duration], _ q: Double) -> Duration {
        guard !values.isEmpty else { return .zero }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * q).rounded()))]
    }

    static func ms(_ d: Duration) -> String { String(format: "%.1f", d.seconds * 1000) }
    static func rate(_ n: Double, _ d: Duration) -> String { String(format: "%.1f", n / max(d.seconds, 1e-9)) }

    static func peakRSSMegabytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss / 1024
    }
}

