import Embedding
import Foundation
import HubCore
import HubServer
import HubTesting
import Imaging
import Jobs
import ONNX
import Testing
import Training

/// The trainable tail (libtorch): the set-up's descriptor split where its last block begins, trained, saved,
/// restored, and carried into an exported ONNX model that onnxruntime runs to the same answers.
@Suite("Fine-tuning", .serialized)
struct FineTuningTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let backbone: Backbone
    let tail: Tail

    init() throws {
        backbone = try TestModels.backbone.get()
        tail = try Tail(path: TestModels.directory.appendingPathComponent("features.pt").path, inputSize: backbone.input.size)
    }

    /// Model inputs of two skimage photos (a cat, coffee) and their mirror images: labels 0, 1, 0, 1.
    func inputs() throws -> [Float] {
        let size = backbone.input.size
        var photos: [[Float]] = []
        for name in ["chelsea.png", "coffee.png"] { photos.append(try Image.modelInput(try TestModels.skimagePhoto(name), spec: backbone.input)) }
        let mirrored = photos.map { p -> [Float] in
            var out = p
            for y in 0..<size {
                for x in 0..<size {
                    for c in 0..<3 { out[(y * size + x) * 3 + c] = p[(y * size + size - 1 - x) * 3 + c] }
                }
            }
            return out
        }
        return (photos + mirrored).flatMap { $0 }
    }

    func cosine(_ a: [Float], _ b: [Float]) -> Float { Vectors.dot(a, b) / (Vectors.dot(a, a) * Vectors.dot(b, b)).squareRoot() }

    @Test("the frozen part and the tail make the set-up's descriptor; training moves the tail, its state restores it, reset undoes it")
    func tailTrainsAndRestores() throws {
        let pixels = try inputs()
        let rows = try tail.frozen(pixels, count: 4)
        #expect(tail.dimensions == backbone.dimensions && rows.count == 4 && rows.allSatisfy { $0.count == tail.frozenWidth })
        let untouched = try tail.descriptors(rows)
        // The same descriptor as the inference engine's (int8 where the set-up quantised it: close, not equal).
        let engine = try backbone.embed(pixels, count: 4)
        for (d, e) in zip(untouched, engine) {
            #expect(abs(Vectors.dot(d, d) - 1) < 1e-4)
            #expect(cosine(d, e.vector) > 0.97, "\(cosine(d, e.vector))")
        }
        let original = try tail.state()
        #expect(original.count == tail.stateCount && original.count > 100_000)

        var options = TrainingOptions()
        options.fineTuneLearningRate = 1e-3
        options.fineTuneBatchSize = 4
        let start = LinearClassifier(labels: ["cat", "coffee"], dimensions: tail.dimensions,
                                     weights: [Float](repeating: 0, count: 2 * tail.dimensions), bias: [0, 0])
        var curve: [EpochMetrics] = []
        let (head, best) = try tail.train(rows: rows, labels: [0, 1, 0, 1], validationRows: [], validationLabels: [], start: start,
                                          classWeights: [1, 1], options: options, epochs: 3) { curve.append($0) }
        // Without validation rows the last epoch is kept.
        #expect(best == 3 && curve.map(\.epoch) == [1, 2, 3] && curve.allSatisfy { $0.validationLoss == nil })
        #expect(curve[2].trainLoss < curve[0].trainLoss, "\(curve)")
        #expect(head.weights != start.weights)
        let p = try head.probabilities(try tail.descriptors(rows).flatMap { $0 })
        #expect(p.map { $0[0] > $0[1] } == [true, false, true, false], "\(p)")

        let tuned = try tail.state(), tunedDescriptors = try tail.descriptors(rows)
        #expect(tuned != original)
        #expect(zip(tunedDescriptors, untouched).contains { cosine($0, $1) < 0.99999 })
        try tail.reset()
        #expect(try tail.state() == original)
        #expect(try tail.descriptors(rows) == untouched)
        try tail.setState(tuned)
        #expect(try tail.descriptors(rows) == tunedDescriptors)
        #expect(throws: TrainingError.self) { try tail.setState(Array(tuned.dropLast())) }
        #expect(try tail.state() == tuned, "a refused state changes nothing")
        // Rows, labels or a head that do not fit are refused before libtorch sees them.
        #expect(throws: TrainingError.self) {
            try tail.train(rows: [Array(rows[0].dropLast())] + rows.dropFirst(), labels: [0, 1, 0, 1], validationRows: [], validationLabels: [],
                           start: start,
                           classWeights: [1, 1], options: options, epochs: 1) { _ in }
        }
        #expect(throws: TrainingError.self) {
            try tail.train(rows: rows, labels: [0, 1, 0, 2], validationRows: [], validationLabels: [], start: start,
                           classWeights: [1, 1], options: options, epochs: 1) { _ in }
        }
        #expect(try tail.state() == tuned)
        try tail.reset()
    }

    @Test("a tuned tail's folded convolutions replace the backbone's in the export, and onnxruntime gives the hub's probabilities")
    func exportCarriesTheTunedTail() async throws {
        let onnx = try Data(contentsOf: TestModels.directory.appendingPathComponent("backbone.onnx"))
        // Untouched, the tail's folded convolutions are the ones the set-up's export holds: the names map.
        try tail.reset()
        let folded = try tail.foldedConvolutions()
        #expect(folded.map(\.module) == ["_blocks.15._expand_conv", "_blocks.15._depthwise_conv", "_blocks.15._project_conv", "_conv_head"])
        for c in folded {
            let stored = try ModelExport.convolution(onnx, module: c.module)
            #expect(stored.weight.count == c.weight.count && stored.bias.count == c.bias.count)
            let worst = zip(stored.weight + stored.bias, c.weight + c.bias).map { abs($0 - $1) }.max() ?? 1
            #expect(worst < 1e-4, "\(c.module): \(worst)")
        }

        let pixels = try inputs()
        let rows = try tail.frozen(pixels, count: 4)
        var options = TrainingOptions()
        options.fineTuneLearningRate = 1e-3
        options.fineTuneBatchSize = 4
        let start = LinearClassifier(labels: ["cat", "coffee"], dimensions: tail.dimensions,
                                     weights: [Float](repeating: 0, count: 2 * tail.dimensions), bias: [0, 0])
        let (head, _) = try tail.train(rows: rows, labels: [0, 1, 0, 1], validationRows: [], validationLabels: [], start: start,
                                       classWeights: [1, 1], options: options, epochs: 2) { _ in }
        defer { try? tail.reset() }
        let tuned = Dictionary(uniqueKeysWithValues: try tail.foldedConvolutions().map { ($0.module, (weight: $0.weight, bias: $0.bias)) })
        let spec = backbone.input
        let model = try ModelExport.classifier(backbone: onnx, labels: head.labels, weights: head.weights, bias: head.bias,
                                               mean: [Double](repeating: spec.mean, count: 3), std: [Double](repeating: spec.std, count: 3),
                                               inputSize: spec.size, resize: spec.resize, modelId: "tail-test", convolutions: tuned)
        for (module, values) in tuned {
            let stored = try ModelExport.convolution(model, module: module)
            #expect(stored.weight == values.weight && stored.bias == values.bias)
            #expect(try ModelExport.convolution(onnx, module: module).weight != values.weight, "\(module) was trained")
        }
        #expect(throws: ONNXExportError.self) {
            try ModelExport.classifier(backbone: onnx, labels: head.labels, weights: head.weights, bias: head.bias, mean: [0, 0, 0], std: [1, 1, 1],
                                       inputSize: spec.size, resize: spec.resize, modelId: "x", convolutions: ["_blocks.99._nothing": ([1], [1])])
        }

        // onnxruntime, an engine of its own, against the tail and head in libtorch; the untouched tail's
        // answers are far enough from the tuned one's that an export that kept it would be caught.
        let expected = try head.probabilities(try tail.descriptors(rows).flatMap { $0 }).flatMap { $0 }
        let tunedState = try tail.state()
        try tail.reset()
        let untuned = try head.probabilities(try tail.descriptors(rows).flatMap { $0 }).flatMap { $0 }
        try tail.setState(tunedState)
        let apart = zip(untuned, expected).map { abs($0 - $1) }.max() ?? 0
        print("tuned against untouched tail, most apart: \(apart)")
        #expect(apart > 1e-3)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tail-export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try model.write(to: dir.appendingPathComponent("model.onnx"))
        try pixels.withUnsafeBytes { try Data($0).write(to: dir.appendingPathComponent("inputs.f32")) }
        try expected.withUnsafeBytes { try Data($0).write(to: dir.appendingPathComponent("expected.f32")) }
        let (status, data) = try await runProgram(Self.root.appendingPathComponent(".venv/bin/python"), [
            Self.root.appendingPathComponent("scripts/onnx_check.py").path, dir.appendingPathComponent("model.onnx").path,
            dir.appendingPathComponent("inputs.f32").path, dir.appendingPathComponent("expected.f32").path, "4",
        ])
        #expect(status == 0, "\(String(decoding: data, as: UTF8.self))")
        let result = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(String(decoding: data, as: UTF8.self))")
        print("tuned export in onnxruntime: \(result)")
        #expect(result["top1_agree"] as? Int == 4)
        #expect((result["max_abs_diff"] as? Double ?? 1) < 1e-5)
    }

    @Test("without the set-up's features.pt a fine-tuning request is refused with 409 training.fine_tune_unavailable; a linear one is not")
    func fineTuningNeedsTheTorchScriptModel() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-no-tail-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let models = try TestModels.linked(in: root, except: "features.pt")
        var settings = HubSettings()
        settings.workers = 1
        let hub = try Hub(dataDirectory: root.appendingPathComponent("hub"), settings: settings,
                          backbone: try Backbone(directory: models, threads: 2))
        defer { hub.catalog.close() }
        let training = try #require(hub.training)
        for name in ["a", "b"] { try hub.catalog.createLabel(name: name) }
        let user = try hub.catalog.localUser().id!
        do {
            _ = try training.submit(TrainingRequest(labels: ["a", "b"], fineTune: true), requesterId: user)
            Issue.record("a fine-tuning request was queued without features.pt")
        } catch let error as HubError {
            #expect(error.status == 409 && error.code == "training.fine_tune_unavailable" && error.message.contains("make setup"), "\(error)")
        }
        // A linear request goes on to the label counts (409 for too few images, not for the missing model).
        do {
            _ = try training.submit(TrainingRequest(labels: ["a", "b"]), requesterId: user)
        } catch let error as HubError {
            #expect(error.code == "training.not_enough_images", "\(error)")
        }
    }
}
