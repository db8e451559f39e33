import ArgumentParser
import Catalog
import Embedding
import Foundation
import HubCore
import HubServer
import Imaging
import Jobs

struct EmbedBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Backbone throughput (img/s) by batch size, thread count and memory layout, on model inputs made from DIR's images.")

    @Argument(help: "Folder of images (searched recursively).") var directory: String
    @Option(help: "Comma-separated batch sizes.") var batches: String = "1,8,16,32,64"
    @Option(help: "Comma-separated libtorch thread counts.") var threads: String = "1,\(ProcessInfo.processInfo.activeProcessorCount)"
    @Option(help: "Memory layouts to try: channels-last, nchw, or both.") var layout: String = "both"
    @Option(help: "Images per measurement (inputs are reused round-robin).") var images: Int = 256
    @Option(help: "Backbone directory (default: models/efficientnet-lite0).") var models: String?

    func run() async throws {
        let files = try ImageFiles.find(in: directory)
        guard !files.isEmpty else { throw ValidationError("no images under \(directory)") }
        let batchSizes = batches.split(separator: ",").compactMap { Int($0) }
        let threadCounts = threads.split(separator: ",").compactMap { Int($0) }
        let layouts: [Bool] = layout == "both" ? [true, false] : [layout != "nchw"]
        let dir = Backbone.defaultDirectory(configured: models)

        // Inputs first, timed on their own: decode with shrink-on-load, resize, crop, normalise (libvips).
        var spec = ModelInputSpec()
        let clock = ContinuousClock()
        var inputs: [[Float]] = []
        let prepStart = clock.now
        for file in files.prefix(images) {
            if let input = try? Image.modelInput(try Data(contentsOf: file), spec: spec) { inputs.append(input) }
        }
        let prep = clock.now - prepStart
        guard !inputs.isEmpty else { throw ValidationError("no decodable images under \(directory)") }
        print("bench embed: \(inputs.count) inputs from \(directory), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        print("model input (decode + resize + crop + normalise, 1 thread): \(IngestBench.rate(Double(inputs.count), prep)) img/s")

        var rows: [[String]] = []
        for channelsLast in layouts {
            let backbone = try Backbone(directory: dir, threads: threadCounts.first ?? 1, channelsLast: channelsLast)
            spec = backbone.input
            for t in threadCounts {
                Backbone.setThreads(t)
                for batch in batchSizes {
                    var pixels = [Float]()
                    pixels.reserveCapacity(batch * spec.count)
                    for i in 0..<batch { pixels.append(contentsOf: inputs[i % inputs.count]) }
                    _ = try backbone.embed(pixels, count: batch, topK: 0)  // warm-up
                    let rounds = max(1, images / batch)
                    let start = clock.now
                    for _ in 0..<rounds { _ = try backbone.embed(pixels, count: batch, topK: 5) }
                    let elapsed = clock.now - start
                    rows.append([channelsLast ? "channels-last" : "nchw", "\(t)", "\(batch)",
                                 IngestBench.rate(Double(rounds * batch), elapsed),
                                 IngestBench.ms(elapsed / rounds)])
                }
            }
        }
        Table(headers: ["layout", "threads", "batch", "img/s", "ms/batch"], rows: rows).print()
    }
}

struct VerifyLabelsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-labels",
        abstract: "Ingest DIR (labels from folder names) into a fresh hub with a fraction of labels flipped; print how well label checks find them.")

    @Argument(help: "Folder of class folders.") var directory: String
    @Option(help: "Fraction of uploads given a wrong label.") var flip: Double = 0.1
    @Option(help: "Seed for the upload order and the flips.") var seed: UInt64 = 7
    @Option(help: "Accepted images a label needs before uploads are checked (labels.verifyMinImages).") var minImages: Int?
    @Option(help: "Score margin for a mismatch (labels.verifyMargin).") var margin: Double?

    func run() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-bench-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var settings = try await HubSettings.load(dataDirectory: dir)
        if let minImages { settings.verifyMinImages = minImages }
        if let margin { settings.verifyMargin = margin }
        let hub = try Hub(dataDirectory: URL(fileURLWithPath: dir), settings: settings)
        guard let stage = hub.embedStage else { throw ValidationError("embedding is disabled") }
        let files = try ImageFiles.find(in: directory)
        let classes = Array(Set(files.map { $0.deletingLastPathComponent().lastPathComponent })).sorted()
        guard classes.count >= 2 else { throw ValidationError("need at least two class folders under \(directory)") }
        for name in classes { try hub.catalog.createLabel(name: name) }
        let user = try hub.catalog.localUser()

        // A seeded shuffle, so the order of arrival (and which labels are judged early) is reproducible.
        var rng = SeededRandom(seed: seed)
        let order = files.shuffled(using: &rng)
        var truth: [String: (given: String, actual: String)] = [:]
        var seen: [String: Int] = [:]
        var earlyFlips: Set<String> = []
        for file in order {
            let actual = file.deletingLastPathComponent().lastPathComponent
            var given = actual
            if Double(rng.next() % 10_000) / 10_000 < flip {
                given = classes.filter { $0 != actual }.randomElement(using: &rng)!
            }
            guard case .created(let image) = try hub.ingestor.accept(fileAt: file, meta: .init(label: given), user: user) else { continue }
            truth[image.id] = (given, actual)
            seen[given, default: 0] += 1
            if given != actual, seen[given]! <= settings.verifyMinImages { earlyFlips.insert(image.id) }
        }
        let clock = ContinuousClock()
        let start = clock.now
        await hub.workers.drain()
        let atIngest = try outcome(hub, truth)
        try stage.maintain()  // background re-check of what was accepted unverified
        let final = try outcome(hub, truth)
        let elapsed = clock.now - start

        let flipped = truth.filter { $0.value.given != $0.value.actual }.count
        print("bench verify-labels: \(truth.count) images in \(classes.count) labels, \(flipped) given a wrong label (flip \(flip), seed \(seed)), "
              + "min images \(settings.verifyMinImages), margin \(settings.verifyMargin)")
        var rows: [[String]] = []
        for (name, o) in [("at ingest", atIngest), ("after background re-check", final)] {
            let precision = o.flagged == 0 ? 1 : Double(o.correct) / Double(o.flagged)
            let recall = flipped == 0 ? 1 : Double(o.correct) / Double(flipped)
            rows.append([name, "\(o.flagged)", "\(o.correct)", String(format: "%.3f", precision), String(format: "%.3f", recall),
                         "\(o.rightSuggestion)/\(o.correct)", "\(o.unverified)"])
        }
        Table(headers: ["when", "flagged", "truly wrong", "precision", "recall", "right suggestion", "still unverified"], rows: rows).print()
        let earlyCaught = try earlyFlips.filter { try hub.catalog.image(id: $0)?.reasonCodes.contains("label.mismatch") == true }.count
        print("wrong labels among a label's first \(settings.verifyMinImages) uploads: \(earlyFlips.count), accepted unverified at ingest, "
              + "\(earlyCaught) caught by the re-check; \(String(format: "%.1f", Double(truth.count) / elapsed.seconds)) img/s")
    }

    struct Outcome { var flagged = 0, correct = 0, rightSuggestion = 0, unverified = 0 }

    func outcome(_ hub: Hub, _ truth: [String: (given: String, actual: String)]) throws -> Outcome {
        let names = try hub.catalog.labelsById()
        var o = Outcome()
        for (id, t) in truth {
            guard let image = try hub.catalog.image(id: id) else { continue }
            if image.labelCheck == "unverified" { o.unverified += 1 }
            guard image.reasonCodes.contains("label.mismatch") else { continue }
            o.flagged += 1
            if t.given != t.actual {
                o.correct += 1
                if image.suggestedLabelId.flatMap({ names[$0]?.name }) == t.actual { o.rightSuggestion += 1 }
            }
        }
        return o
    }
}

