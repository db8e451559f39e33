import ArgumentParser
import Catalog
import Embedding
import Foundation
import HubCore
import HubServer
import Imaging
import Jobs
import Logging

struct EmbedBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Backbone throughput (img/s) by engine (OpenVINO f32, bf16 and the int8 copy, libtorch), batch size and thread count, on model inputs made from DIR's images.")

    @Argument(help: "Folder of images (searched recursively).") var directory: String
    @Option(help: "Comma-separated engines: openvino (f32), openvino-bf16, openvino-int8 (the set-up's int8 copy), libtorch.") var engines: String = "openvino,openvino-bf16,openvino-int8,libtorch"
    @Option(help: "Comma-separated batch sizes.") var batches: String = "1,8,32"
    @Option(help: "Comma-separated thread counts.") var threads: String = "\(ProcessInfo.processInfo.activeProcessorCount)"
    @Option(help: "libtorch memory layouts to try: channels-last, nchw, or both.") var layout: String = "channels-last"
    @Option(help: "Images per measurement (inputs are reused round-robin).") var images: Int = 256
    @Option(help: "Rounds: every configuration is measured once a round, rounds interleaved (the table shows each one's best).") var rounds: Int = 2
    @Option(help: "Backbone directory (default: models/efficientnet-lite0).") var models: String?

    struct Configuration {
        let engine: InferenceEngine
        let precision: String
        let channelsLast: Bool
        let threads: Int
        var name: String {
            engine == .openvino ? "openvino \(precision)" : "libtorch \(channelsLast ? "channels-last" : "nchw")"
        }
    }

    func run() async throws {
        let files = try ImageFiles.find(in: directory, say: ImageFiles.toStandardError)
        guard !files.isEmpty else { throw ValidationError("no images under \(directory)") }
        let batchSizes = batches.split(separator: ",").compactMap { Int($0) }
        let threadCounts = threads.split(separator: ",").compactMap { Int($0) }
        let layouts: [Bool] = layout == "both" ? [true, false] : [layout != "nchw"]
        let dir = Backbone.defaultDirectory(configured: models)
        var configurations: [Configuration] = []
        for engine in engines.split(separator: ",") {
            for t in threadCounts {
                switch engine {
                case "openvino": configurations.append(.init(engine: .openvino, precision: "f32", channelsLast: true, threads: t))
                case "openvino-bf16": configurations.append(.init(engine: .openvino, precision: "bf16", channelsLast: true, threads: t))
                case "openvino-int8": configurations.append(.init(engine: .openvino, precision: "int8", channelsLast: true, threads: t))
                case "libtorch": configurations += layouts.map { .init(engine: .libtorch, precision: "f32", channelsLast: $0, threads: t) }
                default: throw ValidationError("unknown engine \(engine): openvino, openvino-bf16, openvino-int8 or libtorch")
                }
            }
        }

        // Inputs first, timed on their own: decode with shrink-on-load, resize, crop, normalise (libvips).
        let spec = try BackboneManifest.read(directory: dir).inputSpec
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

        // One backbone per configuration, loaded up front; then the rounds interleave them, so that a noisy
        // minute on a shared machine hits every engine alike.
        var backbones: [Backbone] = []
        for c in configurations {
            backbones.append(try Backbone(directory: dir, threads: c.threads, channelsLast: c.channelsLast, engine: c.engine, precision: c.precision))
        }
        let reference = try backbones[0].embed(Array(inputs.prefix(8).joined()), count: min(8, inputs.count), topK: 0)
        var best = [[Duration?]](repeating: [Duration?](repeating: nil, count: batchSizes.count), count: configurations.count)
        for _ in 0..<max(1, rounds) {
            for (ci, c) in configurations.enumerated() {
                let backbone = backbones[ci]
                if c.engine == .libtorch { Backbone.setThreads(c.threads) }
                for (bi, batch) in batchSizes.enumerated() {
                    var pixels = [Float]()
                    pixels.reserveCapacity(batch * spec.count)
                    for i in 0..<batch { pixels.append(contentsOf: inputs[i % inputs.count]) }
                    _ = try backbone.embed(pixels, count: batch, topK: 0)  // warm-up (OpenVINO builds kernels per batch size)
                    let repeats = max(1, images / batch)
                    let start = clock.now
                    for _ in 0..<repeats { _ = try backbone.embed(pixels, count: batch, topK: 5) }
                    let perBatch = (clock.now - start) / repeats
                    if best[ci][bi].map({ perBatch < $0 }) ?? true { best[ci][bi] = perBatch }
                }
            }
        }
        var rows: [[String]] = []
        for (ci, c) in configurations.enumerated() {
            // How far this engine's vectors are from the first configuration's, on the same photos.
            let vectors = try backbones[ci].embed(Array(inputs.prefix(8).joined()), count: min(8, inputs.count), topK: 0)
            let cosine = zip(vectors, reference).map { Vectors.dot($0.vector, $1.vector) }.min() ?? 1
            for (bi, batch) in batchSizes.enumerated() {
                guard let perBatch = best[ci][bi] else { continue }
                rows.append([c.name, "\(c.threads)", "\(batch)", IngestBench.rate(Double(batch), perBatch), IngestBench.ms(perBatch),
                             String(format: "%.7f", cosine)])
            }
        }
        Table(headers: ["engine", "threads", "batch", "img/s", "ms/batch", "min cosine to \(configurations[0].name)"], rows: rows).print()
    }
}

struct VerifyLabelsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-labels",
        abstract: "How well label checks catch wrong labels: honest uploads first, then a stream with a fraction of labels flipped, into a fresh hub.",
        discussion: """
            DIR holds one folder of photos per label. Phase 1 uploads --bootstrap photos of every label with their \
            true label (at most two thirds of the smallest folder) and lets the hub fit its label model. Phase 2 \
            uploads the remaining photos (at most --stream) in a seeded order, each given a wrong label with \
            probability --flip. Printed: precision and recall of label.mismatch on the stream, at ingest and after \
            the background re-check, and the share of honest uploads quarantined.
            """)

    @Argument(help: "Folder of class folders.") var directory: String
    @Option(help: "Honest photos per label before the stream.") var bootstrap: Int = 40
    @Option(help: "Photos in the stream (default: all the others).") var stream: Int?
    @Option(help: "Fraction of stream uploads given a wrong label.") var flip: Double = 0.1
    @Option(help: "Seed for the order and the flips.") var seed: UInt64 = 7
    @Option(help: "Accepted images a label needs before uploads are checked (labels.verifyMinImages).") var minImages: Int?
    @Option(help: "Share of uploads expected to carry a wrong label, the label check's prior (labels.wrongPrior).") var wrongPrior: Double?

    func run() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-bench-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = try ImageFiles.find(in: directory, say: ImageFiles.toStandardError)
        let byClass = Dictionary(grouping: files) { $0.deletingLastPathComponent().lastPathComponent }
        let classes = byClass.keys.sorted()
        guard classes.count >= 2 else { throw ValidationError("need at least two class folders under \(directory)") }
        let perLabel = min(bootstrap, byClass.values.map(\.count).min()! * 2 / 3)
        var settings = try await HubSettings.load(dataDirectory: dir)
        settings.verifyMinImages = min(minImages ?? settings.verifyMinImages, perLabel)
        if let wrongPrior { settings.labelWrongPrior = wrongPrior }
        let hub = try Hub(dataDirectory: URL(fileURLWithPath: dir), settings: settings)
        guard let stage = hub.embedStage else { throw ValidationError("embedding is disabled") }
        for name in classes { try hub.catalog.createLabel(name: name) }
        let user = try hub.catalog.localUser()

        // Phase 1: honest photos of every label; the background pass fits the label model on them.
        var rng = SeededRandom(seed: seed)
        var rest: [URL] = []
        for name in classes {
            let shuffled = byClass[name]!.sorted { $0.path < $1.path }.shuffled(using: &rng)
            for file in shuffled.prefix(perLabel) { _ = try hub.ingestor.accept(fileAt: file, meta: .init(label: name), user: user) }
            rest += shuffled.dropFirst(perLabel)
        }
        await hub.workers.drain()
        let clock = ContinuousClock()
        let fitStart = clock.now
        try stage.maintain()
        let fit = clock.now - fitStart

        // Phase 2: the stream, some of it mislabelled.
        rest = Array(rest.shuffled(using: &rng).prefix(stream ?? rest.count))
        var truth: [String: Upload] = [:]
        for file in rest {
            let actual = file.deletingLastPathComponent().lastPathComponent
            var given = actual
            if Double(rng.next() % 10_000) / 10_000 < flip {
                given = classes.filter { $0 != actual }.randomElement(using: &rng)!
            }
            guard case .created(let image) = try hub.ingestor.accept(fileAt: file, meta: .init(label: given), user: user) else { continue }
            truth[image.id] = Upload(given: given, actual: actual, file: "\(actual)/\(file.lastPathComponent)")
        }
        let start = clock.now
        await hub.workers.drain()
        let streamPrior = stage.wrongLabelPrior
        let atIngest = try outcome(hub, truth)
        try stage.maintain()  // refit, and re-check what was accepted unverified
        let final = try outcome(hub, truth)
        let elapsed = clock.now - start
        for line in final.missed.sorted() { print(line) }

        let flipped = truth.filter { $0.value.given != $0.value.actual }.count, honest = truth.count - flipped
        let model = stage.currentLabelModel
        print("bench verify-labels: \(classes.count) labels, \(perLabel) honest photos each, then a stream of \(truth.count) "
              + "with \(flipped) wrong labels (flip \(flip), seed \(seed)); min images \(settings.verifyMinImages), wrong-label prior \(settings.labelWrongPrior)")
        if let model {
            print("label model: \(model.labelIds.count) labels, out-of-fold accuracy \(String(format: "%.3f", model.outOfFoldAccuracy)), temperature \(String(format: "%.2f", model.temperature)), "
                  + "wrong labels among its images about \(String(format: "%.1f", 100 * model.labelNoise))%, "
                  + "fitted in \(String(format: "%.2f", fit.seconds)) s")
        }
        var rows: [[String]] = []
        for (name, o) in [("at ingest", atIngest), ("after background re-check", final)] {
            let precision = o.flagged == 0 ? 1 : Double(o.correct) / Double(o.flagged)
            let recall = flipped == 0 ? 1 : Double(o.correct) / Double(flipped)
            rows.append([name, "\(o.flagged)", "\(o.correct)", String(format: "%.3f", precision), String(format: "%.3f", recall),
                         "\(o.flagged - o.correct)/\(honest) (\(String(format: "%.1f", 100 * Double(o.flagged - o.correct) / Double(max(1, honest))))%)",
                         "\(o.rightSuggestion)/\(o.correct)", "\(o.unverified)"])
        }
        Table(headers: ["when", "flagged", "truly wrong", "precision", "recall", "honest flagged", "right suggestion", "unverified"], rows: rows).print()
        print("stream processed at \(String(format: "%.1f", Double(truth.count) / elapsed.seconds)) img/s; the stream's prior after it "
              + String(format: "%.2f", streamPrior))
    }

    struct Upload { let given: String, actual: String, file: String }

    /// `missed`: each wrong label the checks let through, as the hub holds it (the other reasons an image can be
    /// in quarantine, or a label check that could not decide).
    struct Outcome { var flagged = 0, correct = 0, rightSuggestion = 0, unverified = 0, missed: [String] = [] }

    func outcome(_ hub: Hub, _ truth: [String: Upload]) throws -> Outcome {
        let names = try hub.catalog.labelsById()
        var o = Outcome()
        for (id, t) in truth {
            guard let image = try hub.catalog.image(id: id) else { continue }
            if image.labelCheck == "unverified" { o.unverified += 1 }
            guard image.reasonCodes.contains("label.mismatch") else {
                if t.given != t.actual {
                    o.missed.append("missed: \(t.file) labelled \(t.given): \(image.status.rawValue)"
                                    + (image.reasonCodes.isEmpty ? "" : " \(image.reasonCodes.joined(separator: ","))")
                                    + ", label check \(image.labelCheck ?? "-")" + (image.labelScore.map { String(format: " (score %.3f)", $0) } ?? ""))
                }
                continue
            }
            o.flagged += 1
            if t.given != t.actual {
                o.correct += 1
                if image.suggestedLabelId.flatMap({ names[$0]?.name }) == t.actual { o.rightSuggestion += 1 }
            }
        }
        return o
    }
}


struct NearDupsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "near-dups",
        abstract: "How well near duplicates are found: resized, cropped, recompressed copies of accepted photos against unseen distinct photos of the same labels.",
        discussion: """
            DIR holds one folder of photos per label. Every label's photos are split in two (seeded): the first \\
            half is uploaded and accepted; then a copy of each of those (resized by a random factor in \\
            --min-scale…--max-scale, cropped by --crop of each side, re-encoded as JPEG at a random quality in \\
            60–80) and the second half (distinct photos of the same labels) are uploaded. A copy counts as found \\
            when it is quarantined as a duplicate of its original; a distinct photo quarantined as a duplicate \\
            is a false alarm.
            """)

    @Argument(help: "Folder of class folders.") var directory: String
    @Option(help: "Seed for the split and the transformations.") var seed: UInt64 = 7
    @Option(help: "Smallest resize factor of a copy.") var minScale: Double = 0.6
    @Option(help: "Largest resize factor of a copy.") var maxScale: Double = 1.2
    @Option(help: "Fraction cropped from each side of a copy.") var crop: Double = 0.06

    func run() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-bench-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = try ImageFiles.find(in: directory, say: ImageFiles.toStandardError)
        let byClass = Dictionary(grouping: files) { $0.deletingLastPathComponent().lastPathComponent }
        let classes = byClass.keys.sorted()
        let settings = try await HubSettings.load(dataDirectory: dir)
        let hub = try Hub(dataDirectory: URL(fileURLWithPath: dir), settings: settings)
        guard hub.embedStage != nil else { throw ValidationError("embedding is disabled") }
        for name in classes { try hub.catalog.createLabel(name: name) }
        let user = try hub.catalog.localUser()

        var rng = SeededRandom(seed: seed)
        var originals: [(file: URL, label: String, id: String)] = []
        var distinct: [(file: URL, label: String)] = []
        for name in classes {
            let shuffled = byClass[name]!.sorted { $0.path < $1.path }.shuffled(using: &rng)
            let half = shuffled.count / 2
            for file in shuffled.prefix(half) {
                if case .created(let image) = try hub.ingestor.accept(fileAt: file, meta: .init(label: name), user: user) {
                    originals.append((file, name, image.id))
                }
            }
            distinct += shuffled.dropFirst(half).map { ($0, name) }
        }
        await hub.workers.drain()
        let accepted = try originals.filter { try hub.catalog.image(id: $0.id)?.status == .accepted }

        // Copies of the accepted originals, and the distinct photos, in one seeded order.
        var uploads: [(bytes: Data, label: String, original: String?, name: String)] = []
        for o in accepted {
            let image = try Image.load(try Data(contentsOf: o.file)).autoRotated()
            let scale = minScale + (maxScale - minScale) * Double(rng.next() % 10_000) / 10_000
            let quality = 60 + Int(rng.next() % 21)
            let cx = Int(Double(image.width) * crop), cy = Int(Double(image.height) * crop)
            let cropped = try image.cropped(left: cx, top: cy, width: image.width - 2 * cx, height: image.height - 2 * cy)
            let side = max(32, Int((Double(cropped.longSide) * scale).rounded()))
            let resized = side <= cropped.longSide ? try cropped.fitted(longSide: side)
                : try cropped.resized(width: cropped.width * side / cropped.longSide, height: cropped.height * side / cropped.longSide)
            uploads.append((try resized.encoded(as: .jpeg, quality: quality), o.label, o.id, "copy of \(o.file.lastPathComponent)"))
        }
        for d in distinct { uploads.append((try Data(contentsOf: d.file), d.label, nil, d.file.lastPathComponent)) }
        var names = Dictionary(uniqueKeysWithValues: originals.map { ($0.id, $0.file.lastPathComponent) })
        uploads.shuffle(using: &rng)
        var sent: [(id: String, original: String?)] = []
        for u in uploads {
            if case .created(let image) = try hub.ingestor.accept(u.bytes, meta: .init(label: u.label), user: user) {
                sent.append((image.id, u.original))
                names[image.id] = u.name
            }
        }
        await hub.workers.drain()

        var found = 0, wrongOriginal = 0, copies = 0, falseAlarms = 0, others = 0
        var reasons: [String: Int] = [:]
        for s in sent {
            guard let image = try hub.catalog.image(id: s.id) else { continue }
            let duplicate = image.reasonCodes.first { $0.hasPrefix("duplicate.") }
            if let original = s.original {
                copies += 1
                if let duplicate {
                    reasons[duplicate, default: 0] += 1
                    if image.duplicateOf == original { found += 1 } else { wrongOriginal += 1 }
                } else {
                    print("missed: \(names[image.id] ?? image.id) (\(image.id) of \(original))")
                }
            } else {
                others += 1
                if let duplicate {
                    falseAlarms += 1
                    print("false alarm: \(names[image.id] ?? image.id) quarantined \(duplicate) of \(image.duplicateOf.flatMap { names[$0] } ?? "-") (\(image.id) of \(image.duplicateOf ?? "-"))")
                }
            }
        }
        let flagged = found + wrongOriginal + falseAlarms
        print("bench near-dups: \(classes.count) labels, \(accepted.count) accepted originals; \(copies) copies (scale \(minScale)–\(maxScale), "
              + "crop \(crop) a side, JPEG 60–80) and \(others) distinct photos of the same labels (seed \(seed))")
        Table(headers: ["copies found", "recall", "false alarms on distinct photos", "precision", "found by"], rows: [[
            "\(found)/\(copies)", String(format: "%.3f", Double(found) / Double(max(1, copies))),
            "\(falseAlarms)/\(others)", String(format: "%.3f", flagged == 0 ? 1 : Double(found) / Double(flagged)),
            reasons.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "),
        ]]).print()
    }
}
