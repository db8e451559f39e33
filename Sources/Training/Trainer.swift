import Foundation
import HubCore
import TorchBridge

/// One training example: an image's cached embedding and its label's index.
public struct Example: Sendable {
    public let imageId: String
    public let label: Int
    public var vector: [Float]
    /// What joins an image to its near duplicates and bursts (`LeakProofSplit`): its perceptual hash, the
    /// device that took it and when.
    public var phash: Int64?
    public var device: String?
    public var capturedAt: Date?
    /// The image the hub found this one a near duplicate of (a copy a reviewer accepted anyway).
    public var duplicateOf: String?

    public init(imageId: String, label: Int, vector: [Float], phash: Int64? = nil, device: String? = nil, capturedAt: Date? = nil,
                duplicateOf: String? = nil) {
        self.duplicateOf = duplicateOf
        self.imageId = imageId
        self.label = label
        self.vector = vector
        self.phash = phash
        self.device = device
        self.capturedAt = capturedAt
    }
}

public struct TrainingOptions: Sendable, Codable {
    public var validationFraction = 0.2
    public var seed: UInt64 = 1
    public var maxEpochs = 200
    public var patience = 10
    /// Mini-batch size; 0 picks about twenty batches an epoch (at least 32).
    public var batchSize = 0
    public var learningRate: Float = 0.02
    public var weightDecay: Float = 1e-4
    /// Folds of the cross-validation that finds likely label errors; 0 picks 5, or 3 from 5,000 images on.
    public var folds = 0
    /// Most epochs a cross-validation fold trains for.
    public var maxFoldEpochs = 30
    /// Whether the delivered model is trained again on every image (training and validation) for the best
    /// epoch count the validation found. The report's figures stay those of the validation run; the model
    /// has a quarter more images to learn from (on five look-alike flower classes, 35 photos each: held-out
    /// accuracy 0.872 → 0.885, five seeds).
    public var refitOnAllImages = true
    /// `grouped`: near duplicates and bursts stay on one side of the split and of the cross-validation
    /// folds (`LeakProofSplit`); `random`: each image on its own (stratified all the same).
    public var split = "grouped"
    /// The links that group images: the hub's near-duplicate thresholds and its burst window.
    public var nearDuplicateCosine = 0.92
    public var nearDuplicateHamming = 6
    public var burstSeconds = 3.0
    /// Whether the backbone's last block and head convolution train with the head (`Trainer.fineTune`),
    /// rather than a linear head alone on the frozen backbone's cached embeddings.
    public var fineTune = false
    /// Fine-tuning: passes over the images (the epoch of least validation loss is kept), mini-batch size,
    /// AdamW's learning rates for the tail and the head, and the loss's label smoothing.
    public var fineTuneEpochs = 10
    public var fineTuneBatchSize = 32
    public var fineTuneLearningRate: Float = 1e-4
    public var fineTuneHeadLearningRate: Float = 1e-3
    public var fineTuneLabelSmoothing: Float = 0.1

    public init() {}

    /// Options stored with a model's report: a key an older report lacks takes its default.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TrainingOptions()
        func value<T: Decodable>(_ key: CodingKeys, _ absent: T) throws -> T { try c.decodeIfPresent(T.self, forKey: key) ?? absent }
        validationFraction = try value(.validationFraction, d.validationFraction)
        seed = try value(.seed, d.seed)
        maxEpochs = try value(.maxEpochs, d.maxEpochs)
        patience = try value(.patience, d.patience)
        batchSize = try value(.batchSize, d.batchSize)
        learningRate = try value(.learningRate, d.learningRate)
        weightDecay = try value(.weightDecay, d.weightDecay)
        folds = try value(.folds, d.folds)
        maxFoldEpochs = try value(.maxFoldEpochs, d.maxFoldEpochs)
        // Reports made before the refit existed describe models trained on the training split only.
        refitOnAllImages = try value(.refitOnAllImages, false)
        // Reports made before grouped splits were split at random.
        split = try value(.split, "random")
        nearDuplicateCosine = try value(.nearDuplicateCosine, d.nearDuplicateCosine)
        nearDuplicateHamming = try value(.nearDuplicateHamming, d.nearDuplicateHamming)
        burstSeconds = try value(.burstSeconds, d.burstSeconds)
        fineTune = try value(.fineTune, d.fineTune)
        fineTuneEpochs = try value(.fineTuneEpochs, d.fineTuneEpochs)
        fineTuneBatchSize = try value(.fineTuneBatchSize, d.fineTuneBatchSize)
        fineTuneLearningRate = try value(.fineTuneLearningRate, d.fineTuneLearningRate)
        fineTuneHeadLearningRate = try value(.fineTuneHeadLearningRate, d.fineTuneHeadLearningRate)
        fineTuneLabelSmoothing = try value(.fineTuneLabelSmoothing, d.fineTuneLabelSmoothing)
    }
}

/// One epoch of the learning curves.
public struct EpochMetrics: Sendable, Codable, Equatable {
    public let epoch: Int
    public let trainLoss: Double
    public let trainAccuracy: Double
    public let validationLoss: Double?
    public let validationAccuracy: Double?
}

/// Everything a person needs to judge a trained model.
public struct TrainingReport: Sendable, Codable {
    public struct ClassMetrics: Sendable, Codable {
        public let label: String
        public let precision: Double
        public let recall: Double
        public let f1: Double
        public let support: Int
        public let trainImages: Int
    }
    public struct LabelError: Sendable, Codable {
        public let imageId: String
        public let givenLabel: String
        public let suggestedLabel: String
        /// Out-of-fold probability of the suggested label, and of the given one.
        public let confidence: Double
        public let givenProbability: Double
    }
    public let labels: [String]
    public var accuracy: Double
    public var macroF1: Double
    public var perClass: [ClassMetrics]
    /// Rows: true label; columns: predicted label (validation set).
    public var confusion: [[Int]]
    public let history: [EpochMetrics]
    public let bestEpoch: Int
    public let epochsRun: Int
    public let trainImages: Int
    public let validationImages: Int
    /// Images the delivered model was trained on: every one when it was refitted after the validation
    /// (`TrainingOptions.refitOnAllImages`), else the training split (absent in reports made before it).
    public var deliveredModelImages: Int?
    public var trainingSeconds: Double
    public let likelyLabelErrors: [LabelError]
    public let options: TrainingOptions
    /// The immutable dataset version trained on (set by the hub).
    public var datasetVersion: String?
    /// How the split kept near duplicates apart (absent in reports made before it).
    public var split: SplitSummary?
    /// Rows: true label; columns: the label predicted out of fold by the cross-validation that looks for
    /// label errors — every image judged by a model that never saw it (or its near duplicates). Steadier
    /// per-class figures than the validation split's few images (collection quests read it).
    public var crossValidatedConfusion: [[Int]]?
    /// How the backbone's last block was fine-tuned (absent for a linear head on the frozen backbone).
    public var fineTuning: FineTuningSummary?

    /// What the split did about leaks: the linked pairs it found, how many of them cross the split (0 for a
    /// grouped split), and what a plain random split of the same seed would have had and claimed.
    public struct SplitSummary: Sendable, Codable {
        public let rule: String
        /// Groups of two or more images, and the images in them.
        public let groups: Int
        public let groupedImages: Int
        public let nearDuplicatePairs: Int
        public let burstPairs: Int
        /// Linked pairs with one image in training and one in validation.
        public let crossingPairs: Int
        public let randomSplitCrossingPairs: Int
        /// The validation accuracy a random split would have reported (only when it would have leaked).
        public let randomSplitAccuracy: Double?
    }
}

extension TrainingReport {
    /// A report as the model registry stores it (JSON, keys in snake case).
    public init(stored json: String) throws {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        self = try decoder.decode(TrainingReport.self, from: Data(json.utf8))
    }
}

/// Trains a linear head on cached embeddings with libtorch (the bridge's training entry point): a
/// stratified, seeded split, inverse-frequency class weights, early stopping on validation loss; then an
/// evaluation and a k-fold cross-validation whose out-of-fold predictions reveal likely label errors
/// (confident learning: an image is listed when the most probable class above its per-class threshold —
/// the mean self-confidence of that class — is not its given label, or when the prediction disagrees and
/// the given label gets less than half its class's threshold).
public enum Trainer {
    /// `onSplit` hears the ids of the validation images once the split is made.
    public static func train(_ examples: [Example], labels: [String], options: TrainingOptions,
                             onSplit: ([String]) throws -> Void = { _ in },
                             onEpoch: @escaping (EpochMetrics) -> Void = { _ in }) throws -> (LinearClassifier, TrainingReport) {
        let linear = try trainLinear(examples, labels: labels, options: options, onSplit: onSplit, onEpoch: onEpoch)
        return (linear.delivered, linear.report)
    }

    /// A linear training's results: the delivered head, the head evaluated on the validation split (trained
    /// without it), the validation images and the class weights of the training split and of all images.
    struct LinearRun {
        let delivered: LinearClassifier
        let evaluated: LinearClassifier
        let report: TrainingReport
        let validation: [Example]
        let classWeights: [Float]
        let allClassWeights: [Float]
    }

    static func trainLinear(_ examples: [Example], labels: [String], options: TrainingOptions, onSplit: ([String]) throws -> Void,
                            onEpoch: @escaping (EpochMetrics) -> Void) throws -> LinearRun {
        let started = ContinuousClock.now
        let classes = labels.count
        guard classes >= 2 else { throw TrainingError("training needs at least two labels") }
        var options = options
        if options.batchSize <= 0 { options.batchSize = max(32, examples.count / 20) }
        if options.folds <= 0 { options.folds = examples.count >= 5000 ? 3 : 5 }
        guard let dims = examples.first?.vector.count else { throw TrainingError("no training images") }
        // Stratified split; grouped, near duplicates and bursts stay on one side (LeakProofSplit).
        let links = LeakProofSplit.links(examples, cosine: options.nearDuplicateCosine, hamming: options.nearDuplicateHamming,
                                         burstSeconds: options.burstSeconds)
        let linked = links.all
        let grouped = options.split != "random"
        let groups = grouped ? LeakProofSplit.groups(count: examples.count, links: linked) : Array(examples.indices)
        var rng = SeededRandom(seed: options.seed)
        let held = LeakProofSplit.split(examples, classes: classes, fraction: options.validationFraction, groups: groups, rng: &rng)
        var randomRng = SeededRandom(seed: options.seed)
        let randomHeld = grouped
            ? LeakProofSplit.split(examples, classes: classes, fraction: options.validationFraction, groups: Array(examples.indices), rng: &randomRng)
            : held
        let train = examples.indices.filter { !held[$0] }.map { examples[$0] }
        let validation = examples.indices.filter { held[$0] }.map { examples[$0] }
        try onSplit(validation.map(\.imageId))
        let trainCounts = (0..<classes).map { c in train.count { $0.label == c } }
        guard trainCounts.allSatisfy({ $0 > 0 }) else { throw TrainingError("every label needs training images") }
        let weights = trainCounts.map { Float(train.count) / Float(classes * $0) }
        let randomCrossing = LeakProofSplit.crossing(linked, validation: randomHeld)

        var history: [EpochMetrics] = []
        let fit = try fitLinear(train, validation, dims: dims, classes: classes, classWeights: weights, options: options,
                                epochs: options.maxEpochs, patience: options.patience) { m in
            history.append(m)
            onEpoch(m)
        }
        let evaluated = LinearClassifier(labels: labels, dimensions: dims, weights: fit.weights, bias: fit.bias)
        var classifier = evaluated
        let allWeights = (0..<classes).map { c in Float(examples.count) / Float(classes * examples.count { $0.label == c }) }
        if options.refitOnAllImages, !validation.isEmpty {
            let refit = try fitLinear(examples, [], dims: dims, classes: classes, classWeights: allWeights, options: options,
                                      epochs: max(1, fit.bestEpoch), patience: 0) { _ in }
            classifier = LinearClassifier(labels: labels, dimensions: dims, weights: refit.weights, bias: refit.bias)
        }

        // Evaluation on the validation set (of the model trained without it).
        let probabilities = try evaluated.probabilities(validation.flatMap(\.vector))
        let scored = evaluate(zip(validation, probabilities).map { ($0.label, $1) }, labels: labels, trainCounts: trainCounts)

        // The folds train for the main run's best epoch count, capped: out-of-fold predictions need a good
        // model, not a perfectly converged one, and the cap bounds the cost of large datasets.
        let (errors, cvConfusion) = try likelyLabelErrors(examples, labels: labels, dims: dims, classWeights: weights, options: options,
                                                          epochs: min(max(1, fit.bestEpoch), options.maxFoldEpochs), groups: groups)

        // What a random split would have claimed, where it would have put linked pairs on both sides.
        var randomAccuracy: Double?
        if grouped, randomCrossing > 0 {
            let rTrain = examples.indices.filter { !randomHeld[$0] }.map { examples[$0] }
            let rValidation = examples.indices.filter { randomHeld[$0] }.map { examples[$0] }
            let rCounts = (0..<classes).map { c in rTrain.count { $0.label == c } }
            if !rValidation.isEmpty, rCounts.allSatisfy({ $0 > 0 }) {
                let rFit = try fitLinear(rTrain, rValidation, dims: dims, classes: classes,
                                         classWeights: rCounts.map { Float(rTrain.count) / Float(classes * $0) }, options: options,
                                         epochs: options.maxEpochs, patience: options.patience) { _ in }
                let head = LinearClassifier(labels: labels, dimensions: dims, weights: rFit.weights, bias: rFit.bias)
                let p = try head.probabilities(rValidation.flatMap(\.vector))
                randomAccuracy = Double(zip(rValidation, p).count { $0.label == argmax($1) }) / Double(rValidation.count)
            }
        }
        let sizes = Dictionary(grouping: groups, by: { $0 }).values.map(\.count).filter { $0 >= 2 }
        let summary = TrainingReport.SplitSummary(
            rule: grouped ? "grouped" : "random", groups: sizes.count, groupedImages: sizes.reduce(0, +),
            nearDuplicatePairs: links.nearDuplicates.count, burstPairs: links.bursts.count,
            crossingPairs: LeakProofSplit.crossing(linked, validation: held), randomSplitCrossingPairs: randomCrossing,
            randomSplitAccuracy: randomAccuracy)
        let report = TrainingReport(
            labels: labels, accuracy: scored.accuracy, macroF1: scored.macroF1, perClass: scored.perClass, confusion: scored.confusion,
            history: history, bestEpoch: fit.bestEpoch, epochsRun: fit.epochsRun, trainImages: train.count,
            validationImages: validation.count,
            deliveredModelImages: options.refitOnAllImages && !validation.isEmpty ? examples.count : train.count, trainingSeconds: (ContinuousClock.now - started).seconds,
            likelyLabelErrors: errors, options: options, datasetVersion: nil, split: summary,
            crossValidatedConfusion: cvConfusion)
        return LinearRun(delivered: classifier, evaluated: evaluated, report: report, validation: validation, classWeights: weights,
                         allClassWeights: allWeights)
    }

    /// Accuracy, per-class precision, recall and F1, and the confusion matrix (rows: true label) of
    /// predictions given as each image's true label and class probabilities.
    static func evaluate(_ predictions: [(label: Int, probabilities: [Float])], labels: [String], trainCounts: [Int])
        -> (accuracy: Double, macroF1: Double, perClass: [TrainingReport.ClassMetrics], confusion: [[Int]]) {
        let classes = labels.count
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        for (label, p) in predictions { confusion[label][argmax(p)] += 1 }
        let correct = (0..<classes).reduce(0) { $0 + confusion[$1][$1] }
        let perClass = (0..<classes).map { c -> TrainingReport.ClassMetrics in
            let tp = Double(confusion[c][c])
            let predicted = Double((0..<classes).reduce(0) { $0 + confusion[$1][c] })
            let actual = Double(confusion[c].reduce(0, +))
            let precision = predicted > 0 ? tp / predicted : 0, recall = actual > 0 ? tp / actual : 0
            let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
            return .init(label: labels[c], precision: precision, recall: recall, f1: f1, support: Int(actual), trainImages: trainCounts[c])
        }
        return (predictions.isEmpty ? 0 : Double(correct) / Double(predictions.count), perClass.map(\.f1).reduce(0, +) / Double(classes),
                perClass, confusion)
    }

    /// Out-of-fold predictions over stratified folds, then confident learning.
    static func likelyLabelErrors(_ examples: [Example], labels: [String], dims: Int, classWeights: [Float],
                                  options: TrainingOptions, epochs: Int, groups: [Int]) throws -> ([TrainingReport.LabelError], [[Int]]?) {
        let classes = labels.count
        let folds = min(options.folds, examples.count)
        guard folds >= 2 else { return ([], nil) }
        var rng = SeededRandom(seed: options.seed &+ 17)
        // Folds by group, per class (a group goes with its first member's label): an image's near
        // duplicate never sits in the folds that predict it.
        var fold = [String: Int]()
        let members = Dictionary(grouping: examples.indices, by: { groups[$0] })
            .mapValues { $0.sorted { examples[$0].imageId < examples[$1].imageId } }
        for c in 0..<classes {
            let own = members.values.filter { examples[$0[0]].label == c }
                .sorted { examples[$0[0]].imageId < examples[$1[0]].imageId }.shuffled(using: &rng)
            for (i, group) in own.enumerated() { for e in group { fold[examples[e].imageId] = i % folds } }
        }
        var outOfFold = [String: [Float]]()
        for f in 0..<folds {
            let train = examples.filter { fold[$0.imageId] != f }, held = examples.filter { fold[$0.imageId] == f }
            guard !held.isEmpty, Set(train.map(\.label)).count == classes else { continue }
            let fit = try fitLinear(train, [], dims: dims, classes: classes, classWeights: classWeights, options: options,
                                    epochs: epochs, patience: 0) { _ in }
            let head = LinearClassifier(labels: labels, dimensions: dims, weights: fit.weights, bias: fit.bias)
            for (e, p) in zip(held, try head.probabilities(held.flatMap(\.vector))) { outOfFold[e.imageId] = p }
        }
        // Per-class threshold: the mean probability the model gives a class on images labelled with it.
        var thresholds = [Double](repeating: 1, count: classes)
        for c in 0..<classes {
            let own = examples.filter { $0.label == c }.compactMap { outOfFold[$0.imageId]?[c] }
            if !own.isEmpty { thresholds[c] = Double(own.reduce(0, +)) / Double(own.count) }
        }
        var errors: [TrainingReport.LabelError] = []
        for e in examples {
            guard let p = outOfFold[e.imageId] else { continue }
            // The confident joint's off-diagonal: the most probable class above its own threshold is another
            // label; or the prediction disagrees while the given label gets under half its class's threshold.
            let confident = (0..<classes).filter { Double(p[$0]) >= thresholds[$0] }
            let predicted = argmax(p)
            let k: Int
            if let c = confident.max(by: { p[$0] < p[$1] }), c != e.label {
                k = c
            } else if predicted != e.label, Double(p[e.label]) < thresholds[e.label] / 2 {
                k = predicted
            } else {
                continue
            }
            errors.append(.init(imageId: e.imageId, givenLabel: labels[e.label], suggestedLabel: labels[k],
                                confidence: Double(p[k]), givenProbability: Double(p[e.label])))
        }
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        for e in examples { if let p = outOfFold[e.imageId] { confusion[e.label][argmax(p)] += 1 } }
        return (errors.sorted { ($0.confidence - $0.givenProbability) > ($1.confidence - $1.givenProbability) }, confusion)
    }

    struct Fit { let weights: [Float]; let bias: [Float]; let epochsRun: Int; let bestEpoch: Int }

    final class EpochSink {
        let body: (EpochMetrics) -> Void
        init(_ body: @escaping (EpochMetrics) -> Void) { self.body = body }
    }

    /// The bridge's epoch callback: its context is an `EpochSink`.
    static let epochCallback: dih_epoch_callback = { context, epoch, metrics in
        guard let context, let metrics else { return }
        let sink = Unmanaged<EpochSink>.fromOpaque(context).takeUnretainedValue()
        sink.body(EpochMetrics(epoch: Int(epoch), trainLoss: Double(metrics[0]), trainAccuracy: Double(metrics[1]),
                               validationLoss: metrics[2].isNaN ? nil : Double(metrics[2]),
                               validationAccuracy: metrics[3].isNaN ? nil : Double(metrics[3])))
    }

    static func fitLinear(_ train: [Example], _ validation: [Example], dims: Int, classes: Int, classWeights: [Float],
                          options: TrainingOptions, epochs: Int, patience: Int, onEpoch: @escaping (EpochMetrics) -> Void) throws -> Fit {
        let tx = train.flatMap(\.vector), ty = train.map { Int32($0.label) }
        let vx = validation.flatMap(\.vector), vy = validation.map { Int32($0.label) }
        var weights = [Float](repeating: 0, count: classes * dims), bias = [Float](repeating: 0, count: classes)
        var history = [Float](repeating: 0, count: epochs * 4)
        var run: Int32 = 0, best: Int32 = 0
        var error: UnsafeMutablePointer<CChar>?
        let o = dih_train_options(max_epochs: Int32(epochs), patience: Int32(patience), batch_size: Int32(options.batchSize),
                                  learning_rate: options.learningRate, weight_decay: options.weightDecay, seed: options.seed)
        let sink = Unmanaged.passRetained(EpochSink(onEpoch))
        defer { sink.release() }
        let status = dih_train_linear(tx, ty, Int32(train.count), vx.isEmpty ? nil : vx, vy.isEmpty ? nil : vy, Int32(validation.count),
                                      Int32(dims), Int32(classes), classWeights, o, epochCallback, sink.toOpaque(), &weights, &bias, &history,
                                      &run, &best, &error)
        guard status == 0 else { throw TrainingError("training: \(takeError(error))") }
        return Fit(weights: weights, bias: bias, epochsRun: Int(run), bestEpoch: Int(best))
    }

    static func argmax(_ p: [Float]) -> Int { p.indices.max { p[$0] < p[$1] } ?? 0 }
}

