import ArgumentParser
import Catalog
import Embedding
import Foundation
import HubCore
import HubServer
import Jobs
import Training

struct TrainBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Time from training request to exported ONNX model: 400 images / 2 classes, 10,000 images / 100 classes, and the real photos, linear and fine-tuned.")

    @Argument(help: "Folder of class folders (real photos; embedded first, then augmented).") var directory: String
    @Option(help: "Seed of the augmentation and the training.") var seed: UInt64 = 1

    func run() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-bench-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var settings = try await HubSettings.load(dataDirectory: dir)
        settings.verifyMinImages = 1_000_000  // keep every real photo: this measures training, not label checks
        let hub = try Hub(dataDirectory: URL(fileURLWithPath: dir), settings: settings)
        guard let stage = hub.embedStage, let training = hub.training else { throw ValidationError("embedding is disabled") }
        let user = try hub.catalog.localUser()
        let clock = ContinuousClock()

        // Real embeddings of real photos, through the whole pipeline.
        let files = try ImageFiles.find(in: directory, say: ImageFiles.toStandardError)
        let ingestStart = clock.now
        for file in files {
            let name = file.deletingLastPathComponent().lastPathComponent
            if try hub.catalog.label(named: name) == nil { try hub.catalog.createLabel(name: name) }
            _ = try? hub.ingestor.accept(fileAt: file, meta: .init(label: name), user: user)
        }
        await hub.workers.drain()
        let ingested = clock.now - ingestStart
        let real = try hub.catalog.trainingImages(labels: try hub.catalog.labelsById().values.sorted { $0.name < $1.name }, descendants: false)
        let byLabel = Dictionary(grouping: real, by: \.label)
        print("bench train: \(real.count) real embeddings from \(files.count) photos in \(byLabel.count) labels "
              + "(ingest + embed \(IngestBench.rate(Double(files.count), ingested)) img/s), \(ProcessInfo.processInfo.activeProcessorCount) cores")

        var rng = SeededRandom(seed: seed)
        func augmented(_ v: Data, sigma: Double) -> Data {
            var x = Vectors.decode(v)
            for i in x.indices { x[i] += Float(sigma * rng.gaussian()) }
            Vectors.normalize(&x)
            return Vectors.encode(x)
        }
        var rows: [[String]] = []
        func measure(_ name: String, _ labels: [String], fineTune: Bool = false) async throws {
            let request = TrainingRequest(labels: labels, descendants: false, minImagesPerLabel: 2, seed: seed, fineTune: fineTune ? true : nil)
            let start = clock.now
            let job = try training.submit(request, requesterId: user.id!)
            while try training.runNext(worker: "bench") {}
            let trained = clock.now
            guard let done = try hub.catalog.trainingJob(id: job.id), let modelId = done.modelId, let model = try hub.catalog.model(id: modelId) else {
                throw ValidationError("training failed: \(try hub.catalog.trainingJob(id: job.id)?.error ?? "?")")
            }
            let onnx = try training.exportONNX(modelId: modelId)
            let total = clock.now - start
            let report = try TrainingReport(stored: model.report)
            rows.append([name, "\(report.trainImages + report.validationImages)", "\(labels.count)",
                         String(format: "%.3f", report.accuracy), "\(report.bestEpoch)/\(report.epochsRun)",
                         String(format: "%.2f", report.trainingSeconds), String(format: "%.2f", (clock.now - trained).seconds),
                         String(format: "%.2f", total.seconds), "\(onnx.count / 1024)"])
        }

        // 400 images / 2 classes: the two largest real labels, each photo's embedding plus augmented copies
        // (Gaussian noise, cosine ≈ 0.95 to the original) up to 200 per class.
        let two = byLabel.sorted { $0.value.count != $1.value.count ? $0.value.count > $1.value.count : $0.key < $1.key }.prefix(2)
        var small: [String] = []
        for (name, images) in two {
            let label = "bench-\(name)"
            let id = try hub.catalog.createLabel(name: label).id!
            let copies = (0..<200).map { augmented(images[$0 % images.count].vector, sigma: 0.0092) }
            try hub.catalog.insertSyntheticEmbeddedImages(labelId: id, uploaderId: user.id!, model: stage.backbone.id, vectors: copies)
            small.append(label)
        }
        try await measure("2 classes (real + augmented embeddings)", small)

        // 10,000 images / 100 classes: each class centred on one real photo's embedding, 100 noisy copies
        // (cosine ≈ 0.8 to the centre), so neighbouring classes overlap as real ones do.
        let centres = real.sorted { $0.imageId < $1.imageId }.prefix(100)
        guard centres.count == 100 else { throw ValidationError("need at least 100 real photos for the large case") }
        var large: [String] = []
        for (i, centre) in centres.enumerated() {
            let label = String(format: "bench-class-%03d", i)
            let id = try hub.catalog.createLabel(name: label).id!
            try hub.catalog.insertSyntheticEmbeddedImages(labelId: id, uploaderId: user.id!, model: stage.backbone.id,
                                                          vectors: (0..<100).map { _ in augmented(centre.vector, sigma: 0.021) })
            large.append(label)
        }
        try await measure("100 classes (augmented embeddings)", large)

        // The real photos themselves, with a linear head and with the last block fine-tuned (which reads
        // every photo's rendition again and runs the network over it).
        let realLabels = byLabel.keys.sorted()
        if realLabels.count >= 2 {
            try await measure("\(realLabels.count) real classes, linear head", realLabels)
            try await measure("\(realLabels.count) real classes, last block fine-tuned", realLabels, fineTune: true)
        }
        Table(headers: ["case", "images", "classes", "val accuracy", "best/run epochs", "train + evaluate + CV s", "ONNX export s",
                        "request → exported model s", "ONNX KB"], rows: rows).print()
    }
}
