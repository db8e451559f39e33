import ArgumentParser
import Catalog
import Foundation
import HubCore
import HubServer
import Jobs
import Training

struct Train: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a classifier on labels' cached embeddings (queued for `serve`'s workers, or run here with --wait).")

    @OptionGroup var data: DataOption
    @Option(help: "Comma-separated label names (two or more).") var labels: String
    @Flag(inversion: .prefixedNo, help: "Count images of labels below the named ones.") var descendants = true
    @Option(help: "Accepted images each label needs.") var minImages: Int?
    @Option(help: "Fraction held out for validation.") var validationFraction: Double = 0.2
    @Option(help: "Seed of the split and the shuffling.") var seed: UInt64 = 1
    @Flag(help: "Fine-tune the backbone's last block and head convolution with the head (slower; reads every image's pixels).")
    var fineTune = false
    @Option(help: "Passes over the images when fine-tuning (1–100).") var fineTuneEpochs: Int?
    @Flag(help: "Train in this process and print the report (otherwise a running `serve` picks the job up).") var wait = false

    func run() async throws {
        let hub = try await Hub.open(path: data.data)
        guard let training = hub.training else { throw ValidationError("embedding is disabled in this hub: nothing to train on") }
        let request = TrainingRequest(labels: labels.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) },
                                      descendants: descendants, minImagesPerLabel: minImages, validationFraction: validationFraction, seed: seed,
                                      fineTune: fineTune ? true : nil, fineTuneEpochs: fineTuneEpochs)
        let job: TrainingJobRecord
        do { job = try training.submit(request, requesterId: try hub.catalog.localUser().id!) } catch let e as HubError {
            throw ValidationError("\(e.code): \(e.message)")
        }
        guard wait else {
            print("queued training job \(job.id); `serve` runs it (GET /v1/training-jobs/\(job.id))")
            return
        }
        let progress = Progress(title: "training", total: TrainingOptions().maxEpochs + (fineTune ? fineTuneEpochs ?? TrainingOptions().fineTuneEpochs : 0))
        let worker = "cli-\(getpid())"
        let jobId = job.id
        let run = Task {
            // Earlier queued jobs run first; stop once ours is done.
            while try await offload({ try training.runNext(worker: worker) }) {
                if let state = try hub.catalog.trainingJob(id: jobId)?.state, state == .succeeded || state == .failed { break }
            }
        }
        while true {
            let current = try hub.catalog.trainingJob(id: job.id)
            progress.update(current?.epoch ?? 0)
            if let state = current?.state, state == .succeeded || state == .failed { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        try await run.value
        progress.finish()
        guard let done = try hub.catalog.trainingJob(id: job.id) else { return }
        guard let modelId = done.modelId, let model = try hub.catalog.model(id: modelId) else {
            throw ValidationError("training job \(job.id) \(done.state.rawValue): \(done.error ?? "")")
        }
        try ModelsCommand.printReport(model)
    }
}

struct ModelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "models", abstract: "The model registry.",
                                                    subcommands: [List.self, ExportModel.self])

    static func printReport(_ model: ModelRecord) throws {
        let r = try TrainingReport(stored: model.report)
        print("model \(model.id): validation accuracy \(String(format: "%.3f", r.accuracy)), macro F1 \(String(format: "%.3f", r.macroF1)), "
              + "\(r.trainImages) train / \(r.validationImages) validation images, best epoch \(r.bestEpoch) of \(r.epochsRun), "
              + (r.deliveredModelImages.map { $0 > r.trainImages ? "model then trained on all \($0) images, " : "" } ?? "")
              + "\(String(format: "%.2f", r.trainingSeconds)) s; dataset version \(model.datasetVersionId)")
        if let f = r.fineTuning {
            print("fine-tuned the last block: validation accuracy \(String(format: "%.3f", r.accuracy)) against \(String(format: "%.3f", f.linearAccuracy)) "
                  + "for a linear head on the same split; "
                  + (f.bestEpoch == 0 ? "no epoch of \(f.epochs) beat it, so the backbone stays as it was" : "epoch \(f.bestEpoch) of \(f.epochs) kept")
                  + "; frozen part \(String(format: "%.1f", f.frozenSeconds)) s, tuning \(String(format: "%.1f", f.tuningSeconds)) s")
        }
        Table(headers: ["label", "precision", "recall", "F1", "support"], rows: r.perClass.map {
            [$0.label, String(format: "%.3f", $0.precision), String(format: "%.3f", $0.recall), String(format: "%.3f", $0.f1), "\($0.support)"]
        }).print()
        print("likely label errors: \(r.likelyLabelErrors.count)" + r.likelyLabelErrors.prefix(10).map {
            "\n  \($0.imageId): labelled \($0.givenLabel), looks like \($0.suggestedLabel) (\(String(format: "%.2f", $0.confidence)))"
        }.joined())
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List trained models.")
        @OptionGroup var data: DataOption

        func run() async throws {
            let hub = try await Hub.open(path: data.data, processing: false)
            Table(headers: ["id", "labels", "accuracy", "images", "created"], rows: try hub.catalog.models().map { m in
                let r = try TrainingReport(stored: m.report)
                return [m.id, r.labels.joined(separator: ","), String(format: "%.3f", r.accuracy),
                        "\(r.trainImages + r.validationImages)", ISO8601DateFormatter().string(from: m.createdAt)]
            }).print()
        }
    }

    struct ExportModel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "export", abstract: "Write a model as one ONNX file a phone can run.")
        @OptionGroup var data: DataOption
        @Argument(help: "Model id.") var id: String
        @Option(help: "onnx") var format: String = "onnx"
        @Option(help: "Output file.") var out: String

        func run() async throws {
            guard format == "onnx" else { throw ValidationError("only onnx is supported") }
            let hub = try await Hub.open(path: data.data)
            guard let training = hub.training, let stage = hub.embedStage else { throw ValidationError("embedding is disabled in this hub") }
            let bytes = try training.exportONNX(modelId: id)
            try bytes.write(to: URL(fileURLWithPath: out))
            let size = stage.backbone.input.size
            print("wrote \(out) (\(bytes.count / 1024) KB): input `image` float32 N×3×\(size)×\(size), output `probabilities` N×C")
        }
    }
}

struct Predict: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Classify an image with a trained model.")
    @OptionGroup var data: DataOption
    @Argument(help: "Model id.") var id: String
    @Argument(help: "Image file.") var image: String

    func run() async throws {
        let hub = try await Hub.open(path: data.data)
        guard let training = hub.training else { throw ValidationError("embedding is disabled in this hub") }
        let predictions: [(label: String, probability: Float)]
        do { predictions = try await training.predict(modelId: id, bytes: try Data(contentsOf: URL(fileURLWithPath: image))) } catch let e as HubError {
            throw ValidationError("\(e.code): \(e.message)")
        }
        Table(headers: ["label", "probability"], rows: predictions.map { [$0.label, String(format: "%.4f", $0.probability)] }).print()
    }
}
