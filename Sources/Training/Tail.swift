import Foundation
import Synchronization
import TorchBridge

/// The backbone's last block and head convolution, trainable (libtorch through TorchBridge's `dih_tail`),
/// on top of a frozen rest: the set-up's TorchScript descriptor (`features.pt`) split where the last block
/// begins. The frozen part runs once per image and gives a *frozen row* (the last block's input and the
/// pooled output of the stage before it); the tail turns rows into the hub's descriptor, so a fine-tuning
/// epoch costs the last block alone. Opening it checks that the split reproduces the file's descriptor.
public final class Tail: @unchecked Sendable {
    let pointer: OpaquePointer
    /// Floats in a frozen row, in a descriptor, and in the tuned state (`state`).
    public let frozenWidth: Int
    public let dimensions: Int
    public let stateCount: Int
    public let inputSize: Int

    public init(path: String, inputSize: Int) throws {
        var error: UnsafeMutablePointer<CChar>?
        guard let tail = dih_tail_open(path, Int32(inputSize), &error) else {
            throw TrainingError("fine-tuning: \(path): \(takeError(error))")
        }
        pointer = tail
        frozenWidth = Int(dih_tail_frozen_width(tail))
        dimensions = Int(dih_tail_dimensions(tail))
        stateCount = Int(dih_tail_state_count(tail))
        self.inputSize = inputSize
    }

    deinit { dih_tail_free(pointer) }

    /// The frozen rows (`frozenWidth` floats each) of `count` images given as model input (NHWC floats).
    public func frozen(_ pixels: [Float], count: Int) throws -> [[Float]] {
        guard count > 0, pixels.count == count * inputSize * inputSize * 3 else {
            throw TrainingError("fine-tuning: \(pixels.count) input floats are not \(count) images of \(inputSize)×\(inputSize)×3")
        }
        var rows = [Float](repeating: 0, count: count * frozenWidth)
        var error: UnsafeMutablePointer<CChar>?
        guard dih_tail_frozen(pointer, pixels, Int32(count), &rows, &error) == 0 else { throw TrainingError("fine-tuning: \(takeError(error))") }
        return Self.split(rows, count, frozenWidth)
    }

    /// The descriptors of frozen rows through the tail as it stands.
    public func descriptors(_ rows: [[Float]]) throws -> [[Float]] {
        guard !rows.isEmpty else { return [] }
        try check(rows)
        var out = [Float](repeating: 0, count: rows.count * dimensions)
        var error: UnsafeMutablePointer<CChar>?
        guard dih_tail_descriptors(pointer, rows.flatMap { $0 }, Int32(rows.count), &out, &error) == 0 else {
            throw TrainingError("fine-tuning: \(takeError(error))")
        }
        return Self.split(out, rows.count, dimensions)
    }

    /// `count` rows of `width` floats, from one array.
    static func split(_ flat: [Float], _ count: Int, _ width: Int) -> [[Float]] {
        (0..<count).map { Array(flat[$0 * width..<($0 + 1) * width]) }
    }

    func check(_ rows: [[Float]]) throws {
        guard rows.allSatisfy({ $0.count == frozenWidth }) else {
            throw TrainingError("fine-tuning: frozen rows of this tail have \(frozenWidth) floats")
        }
    }

    /// The tuned weights (`stateCount` floats), and back.
    public func state() throws -> [Float] {
        var out = [Float](repeating: 0, count: stateCount)
        var error: UnsafeMutablePointer<CChar>?
        guard dih_tail_state(pointer, &out, &error) == 0 else { throw TrainingError("fine-tuning: \(takeError(error))") }
        return out
    }

    public func setState(_ state: [Float]) throws {
        var error: UnsafeMutablePointer<CChar>?
        guard dih_tail_set_state(pointer, state, Int32(state.count), &error) == 0 else { throw TrainingError("fine-tuning: \(takeError(error))") }
    }

    /// Back to the file's weights.
    public func reset() throws {
        var error: UnsafeMutablePointer<CChar>?
        guard dih_tail_reset(pointer, &error) == 0 else { throw TrainingError("fine-tuning: \(takeError(error))") }
    }

    /// The tail's convolutions with their batch norms folded in, as an ONNX export holds them: the module's
    /// path in the TorchScript model (`_blocks.15._expand_conv`, `_conv_head`), weights and biases.
    public func foldedConvolutions() throws -> [(module: String, weight: [Float], bias: [Float])] {
        try (0..<Int(dih_tail_convolutions(pointer))).map { index in
            var module: UnsafePointer<CChar>?
            var weights: Int32 = 0, biases: Int32 = 0
            var error: UnsafeMutablePointer<CChar>?
            guard dih_tail_folded(pointer, Int32(index), &module, &weights, &biases, nil, nil, &error) == 0 else {
                throw TrainingError("fine-tuning: \(takeError(error))")
            }
            var weight = [Float](repeating: 0, count: Int(weights)), bias = [Float](repeating: 0, count: Int(biases))
            guard dih_tail_folded(pointer, Int32(index), &module, &weights, &biases, &weight, &bias, &error) == 0, let module else {
                throw TrainingError("fine-tuning: \(takeError(error))")
            }
            return (String(cString: module), weight, bias)
        }
    }

    /// Trains the tail and a linear head from `start` on frozen rows; keeps the epoch of least validation
    /// loss when there are validation rows (0: the start), else the last. Returns the head and the epoch kept.
    public func train(rows: [[Float]], labels: [Int32], validationRows: [[Float]], validationLabels: [Int32], start: LinearClassifier,
                      classWeights: [Float], options: TrainingOptions, epochs: Int,
                      onEpoch: @escaping (EpochMetrics) -> Void) throws -> (head: LinearClassifier, bestEpoch: Int) {
        let classes = start.labels.count
        try check(rows + validationRows)
        guard !labels.isEmpty, rows.count == labels.count, validationRows.count == validationLabels.count,
              start.dimensions == dimensions, classWeights.count == classes, epochs > 0,
              (labels + validationLabels).allSatisfy({ (0..<Int32(classes)).contains($0) }) else {
            throw TrainingError("fine-tuning: the rows, labels, class weights or head do not fit this tail (\(frozenWidth) floats a row, \(dimensions) dimensions)")
        }
        var weights = start.weights, bias = start.bias
        var history = [Float](repeating: 0, count: epochs * 4)
        var best: Int32 = 0
        var error: UnsafeMutablePointer<CChar>?
        let o = dih_tune_options(epochs: Int32(epochs), batch_size: Int32(options.fineTuneBatchSize),
                                 learning_rate: options.fineTuneLearningRate, head_learning_rate: options.fineTuneHeadLearningRate,
                                 weight_decay: options.weightDecay, label_smoothing: options.fineTuneLabelSmoothing, seed: options.seed)
        let sink = Unmanaged.passRetained(Trainer.EpochSink(onEpoch))
        defer { sink.release() }
        let status = dih_tail_train(pointer, rows.flatMap { $0 }, labels, Int32(labels.count),
                                    validationRows.isEmpty ? nil : validationRows.flatMap { $0 },
                                    validationLabels.isEmpty ? nil : validationLabels, Int32(validationLabels.count), Int32(classes),
                                    classWeights, o, Trainer.epochCallback, sink.toOpaque(), &weights, &bias, &history, &best, &error)
        guard status == 0 else { throw TrainingError("fine-tuning: \(takeError(error))") }
        return (LinearClassifier(labels: start.labels, dimensions: start.dimensions, weights: weights, bias: bias), Int(best))
    }
}

/// What the report says about a fine-tuned model.
public struct FineTuningSummary: Sendable, Codable {
    /// Validation accuracy of the linear head on the untouched backbone (the same split): what the
    /// fine-tuning is measured against.
    public let linearAccuracy: Double
    public let epochs: Int
    /// The epoch kept: the one of least validation loss, or 0 when none beat the linear head's.
    public let bestEpoch: Int
    /// The fine-tuning's learning curves (the report's `history` is the linear head's); its losses, the
    /// validation's included, are the label-smoothed loss it trains and chooses its epoch on.
    public let history: [EpochMetrics]
    /// Seconds spent running the frozen part over the images, and training the tail.
    public var frozenSeconds: Double
    public let tuningSeconds: Double
    /// The tuned weights' blob (little-endian float32), which predictions and exports of this model load.
    public var tail: String?
}

extension Trainer {
    /// Fine-tunes the backbone's last block with a linear head, on the linear training's split: `train`
    /// first (its split, curves, cross-validation and label errors, on `examples`, whose vectors are the
    /// tail's untouched descriptors of `rows`), then the tail and the head from the linear head's weights,
    /// early-stopped on the validation loss; the delivered model is trained again on every image for the
    /// epochs the validation chose, when `refitOnAllImages`. When no epoch beats the linear head's
    /// validation loss (best epoch 0), the tail stays as it came and the model is the linear head. The
    /// report's accuracy, per-class figures and confusion are the fine-tuned model's; `fineTuning` keeps
    /// the linear head's accuracy beside them. `rows[i]` is `examples[i]`'s frozen row. Returns the head;
    /// the tail holds the tuned weights. `keepAlive` is called where no epoch is reported for a while (the
    /// refit's epochs, the evaluation).
    public static func fineTune(_ examples: [Example], rows: [[Float]], tail: Tail, labels: [String], options: TrainingOptions,
                                onSplit: ([String]) throws -> Void = { _ in },
                                onEpoch: @escaping (EpochMetrics) -> Void = { _ in },
                                keepAlive: @escaping () -> Void = {}) throws -> (LinearClassifier, TrainingReport) {
        guard rows.count == examples.count else { throw TrainingError("fine-tuning: one frozen row per image is needed") }
        try tail.reset()
        let linear = try trainLinear(examples, labels: labels, options: options, onSplit: onSplit, onEpoch: onEpoch)
        let started = ContinuousClock.now
        let held = Set(linear.validation.map(\.imageId))
        let train = examples.indices.filter { !held.contains(examples[$0].imageId) }
        let validation = examples.indices.filter { held.contains(examples[$0].imageId) }
        let epochs = max(1, linear.report.options.fineTuneEpochs)
        var curves: [EpochMetrics] = []
        let tuned = try tail.train(rows: train.map { rows[$0] }, labels: train.map { Int32(examples[$0].label) },
                                   validationRows: validation.map { rows[$0] }, validationLabels: validation.map { Int32(examples[$0].label) },
                                   start: linear.evaluated, classWeights: linear.classWeights, options: linear.report.options, epochs: epochs) {
            curves.append($0)
            onEpoch(EpochMetrics(epoch: linear.report.epochsRun + $0.epoch, trainLoss: $0.trainLoss, trainAccuracy: $0.trainAccuracy,
                                 validationLoss: $0.validationLoss, validationAccuracy: $0.validationAccuracy))
        }
        keepAlive()
        var report = linear.report
        if !validation.isEmpty {
            let p = try tuned.head.probabilities(try tail.descriptors(validation.map { rows[$0] }).flatMap { $0 })
            let scored = evaluate(zip(validation, p).map { (examples[$0].label, $1) }, labels: labels, trainCounts: report.perClass.map(\.trainImages))
            report.accuracy = scored.accuracy
            report.macroF1 = scored.macroF1
            report.perClass = scored.perClass
            report.confusion = scored.confusion
        }
        // No epoch beat the start on validation: the model is the linear head on the untouched backbone.
        var delivered = tuned.bestEpoch == 0 ? linear.delivered : tuned.head
        if tuned.bestEpoch == 0 {
            try tail.reset()
        } else if report.options.refitOnAllImages, !validation.isEmpty {
            try tail.reset()
            delivered = try tail.train(rows: rows, labels: examples.map { Int32($0.label) }, validationRows: [],
                                       validationLabels: [], start: linear.delivered, classWeights: linear.allClassWeights,
                                       options: report.options, epochs: max(1, tuned.bestEpoch)) { _ in keepAlive() }.head
        }
        report.fineTuning = FineTuningSummary(linearAccuracy: linear.report.accuracy, epochs: epochs, bestEpoch: tuned.bestEpoch, history: curves,
                                              frozenSeconds: 0, tuningSeconds: (ContinuousClock.now - started).seconds, tail: nil)
        report.trainingSeconds += (ContinuousClock.now - started).seconds
        return (delivered, report)
    }
}
