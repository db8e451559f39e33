import ArgumentParser
import Catalog
import Foundation
import HubCore
import HubServer
import Ingest
import Jobs
import Synchronization

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Benchmarks that print a table.", subcommands: [IngestBench.self, EmbedBench.self, VerifyLabelsBench.self, TrainBench.self])
}

struct IngestBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Store, verify and preprocess every image under DIR (labels from folder names) in a fresh hub.")

    @Argument(help: "Folder of images; the parent folder name is the label.") var directory: String
    @Option(help: "Pipeline workers (default: the core count).") var workers: Int?
    @Option(help: "Data directory for the throw-away hub (default: a new temporary one).") var data: String?
    @Flag(help: "Leave the embed stage out (verify + preprocess only).") var noEmbed = false

    func run() async throws {
        let dir = data ?? FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-bench-\(UUID().uuidString)").path
        defer { if data == nil { try? FileManager.default.removeItem(atPath: dir) } }
        var settings = try await HubSettings.load(dataDirectory: dir)
        if let workers { settings.workers = workers }
        if noEmbed { settings.embeddingEnabled = false }
        let hub = try Hub(dataDirectory: URL(fileURLWithPath: dir), settings: settings)
        let files = try ImageFiles.find(in: directory)
        guard !files.isEmpty else { throw ValidationError("no files under \(directory)") }
        let bytes = files.reduce(0) { $0 + ((try? $1.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0) }
        let user = try hub.catalog.localUser()

        var storeTimes: [Duration] = []
        let clock = ContinuousClock()
        let storeStart = clock.now
        for file in files {
            let name = file.deletingLastPathComponent().lastPathComponent
            if try hub.catalog.label(named: name) == nil { try hub.catalog.createLabel(name: name) }
            let t = clock.now
            _ = try? hub.ingestor.accept(fileAt: file, meta: .init(label: name), user: user)
            storeTimes.append(clock.now - t)
        }
        let storeTime = clock.now - storeStart

        let stages = Mutex<[String: [Duration]]>([:])
        var pipeline = hub.pipeline
        pipeline.onStage = { name, d in stages.withLock { $0[name, default: []].append(d) } }
        let pool = WorkerPool(catalog: hub.catalog, pipeline: pipeline, embedStage: hub.embedStage)
        let processStart = clock.now
        await pool.drain()
        let processTime = clock.now - processStart

        let counts = try hub.catalog.statusCounts()
        let n = Double(files.count)
        print("bench ingest: \(files.count) files, \(String(format: "%.1f", Double(bytes) / 1_048_576)) MB, \(settings.workers) workers, \(ProcessInfo.processInfo.activeProcessorCount) cores, "
              + (hub.embedStage.map { "embedding with \($0.backbone.id) (batch ≤ \(settings.embeddingBatchSize), \(settings.embeddingThreads) threads)" } ?? "no embedding"))
        print("outcomes: " + ImageStatus.allCases.map { "\($0.rawValue) \(counts[$0] ?? 0)" }.joined(separator: ", "))
        var rows: [[String]] = [
            ["store (sniff, hash, fsync, commit)", Self.rate(n, storeTime), Self.ms(Self.quantile(storeTimes, 0.5)), Self.ms(Self.quantile(storeTimes, 0.99))],
            [hub.embedStage == nil ? "verify + preprocess + store renditions" : "verify + preprocess + embed + store", Self.rate(n, processTime), "", ""],
            ["end to end", Self.rate(n, storeTime + processTime), "", ""],
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
