import Embedding
import Foundation
import HubCore

/// A calibrated, per-label check of "does this picture show its label": softmax regression on the cached
/// embeddings of every label with enough accepted images, refitted in the background as labels grow.
///
/// Fitting runs a stratified k-fold cross-validation first. Its out-of-fold probabilities give, per label,
/// - a confident-learning threshold: the mean probability the model gives the label on images carrying it
///   (an upload "plausibly shows" label j when p(j) reaches half of j's threshold: by construction about
///   half of j's own images stay under the threshold itself), and
/// - a cut-off on the evidence against the label, log p(other) − log p(own): the value that all but
///   `flagRate` of the label's own accepted images stay under, and never below 0 (the other label at least
///   as probable as the given one).
///
/// An upload is a mismatch only when both hold: the best unrelated label is plausibly its label, and the
/// evidence for it passes the given label's cut-off. Labels that look alike get a high cut-off (their own
/// images already look like each other), distinct ones a low one. Related labels (ancestors, descendants)
/// count as the given label: a dog labelled "animal" is not a mismatch.
public struct LabelModel: Sendable {
    /// Label ids in output order.
    public let labelIds: [Int64]
    let classifier: LinearClassifier
    /// Per label: the confident-learning threshold, and the evidence cut-off.
    public let thresholds: [Float]
    public let cutoffs: [Float]
    /// Accepted images it was fitted on, per label (after the per-label cap).
    public let counts: [Int64: Int]
    /// Out-of-fold accuracy of the cross-validation (how separable the labels are).
    public let outOfFoldAccuracy: Double
    public let seconds: Double

    /// Images per label a fit uses at most (a seeded sample): the cost of a refit stays bounded.
    public static let maxPerLabel = 400

    /// Fits a model on `members` (label id → its accepted images' unit vectors); labels with fewer than
    /// `minImages` are left out. Nil when fewer than two labels qualify. `related` gives each label's
    /// ancestors and descendants.
    public static func fit(_ members: [Int64: [(imageId: String, vector: [Float])]], minImages: Int,
                           related: [Int64: Set<Int64>], flagRate: Double = 0.02, seed: UInt64 = 1,
                           folds: Int = 5) throws -> LabelModel? {
        let started = ContinuousClock.now
        let labelIds = members.filter { $0.value.count >= max(2, minImages) }.keys.sorted()
        guard labelIds.count >= 2 else { return nil }
        var rng = SeededRandom(seed: seed)
        var examples: [Example] = []
        var counts: [Int64: Int] = [:]
        for (c, id) in labelIds.enumerated() {
            let chosen = members[id]!.sorted { $0.imageId < $1.imageId }.shuffled(using: &rng).prefix(maxPerLabel)
            counts[id] = chosen.count
            examples += chosen.map { Example(imageId: $0.imageId, label: c, vector: $0.vector) }
        }
        guard let dims = examples.first?.vector.count else { return nil }
        let classes = labelIds.count
        let perClass = (0..<classes).map { c in examples.count { $0.label == c } }
        let weights = perClass.map { Float(examples.count) / Float(classes * $0) }
        var options = TrainingOptions()
        options.seed = seed
        options.batchSize = max(32, examples.count / 10)
        options.learningRate = 0.02
        let epochs = 60
        let names = labelIds.map(String.init)

        // Out-of-fold probabilities over stratified folds.
        let k = max(2, min(folds, perClass.min() ?? 2))
        var fold: [String: Int] = [:]
        for c in 0..<classes {
            for (i, e) in examples.filter({ $0.label == c }).enumerated() { fold[e.imageId] = i % k }
        }
        var outOfFold: [String: [Float]] = [:]
        for f in 0..<k {
            let train = examples.filter { fold[$0.imageId] != f }, held = examples.filter { fold[$0.imageId] == f }
            guard !held.isEmpty else { continue }
            let fit = try Trainer.fitLinear(train, [], dims: dims, classes: classes, classWeights: weights, options: options,
                                            epochs: epochs, patience: 0) { _ in }
            let head = LinearClassifier(labels: names, dimensions: dims, weights: fit.weights, bias: fit.bias)
            for (e, p) in zip(held, try head.probabilities(held.flatMap(\.vector))) { outOfFold[e.imageId] = p }
        }
        let relatedIndices = labelIds.map { id in Set(labelIds.indices.filter { related[id]?.contains(labelIds[$0]) == true }) }
        var thresholds = [Float](repeating: 1, count: classes)
        var evidence = [[Float]](repeating: [], count: classes)
        var correct = 0
        for e in examples {
            guard let p = outOfFold[e.imageId] else { continue }
            if Trainer.argmax(p) == e.label || relatedIndices[e.label].contains(Trainer.argmax(p)) { correct += 1 }
            evidence[e.label].append(Self.evidence(p, label: e.label, related: relatedIndices[e.label]).value)
        }
        for c in 0..<classes {
            let own = examples.filter { $0.label == c }.compactMap { outOfFold[$0.imageId]?[c] }
            if !own.isEmpty { thresholds[c] = own.reduce(0, +) / Float(own.count) }
        }
        let cutoffs = evidence.map { values -> Float in
            let sorted = values.sorted()
            guard !sorted.isEmpty else { return 0 }
            let rank = min(sorted.count - 1, Int((Double(sorted.count) * (1 - flagRate)).rounded(.up)) - 1)
            return max(0, sorted[max(0, rank)])
        }
        let final = try Trainer.fitLinear(examples, [], dims: dims, classes: classes, classWeights: weights, options: options,
                                          epochs: epochs, patience: 0) { _ in }
        return LabelModel(labelIds: labelIds, classifier: LinearClassifier(labels: names, dimensions: dims, weights: final.weights, bias: final.bias),
                          thresholds: thresholds, cutoffs: cutoffs, counts: counts,
                          outOfFoldAccuracy: outOfFold.isEmpty ? 0 : Double(correct) / Double(outOfFold.count),
                          seconds: (ContinuousClock.now - started).seconds)
    }

    /// The best unrelated label for probabilities `p` of an image labelled `label` and the evidence for it:
    /// log p(other) − log p(own), own counting the related labels too.
    static func evidence(_ p: [Float], label: Int, related: Set<Int>) -> (other: Int?, value: Float, own: Float) {
        var own = p[label]
        for r in related where r != label { own += p[r] }
        var other: Int?
        for j in p.indices where j != label && !related.contains(j) {
            if other.map({ p[j] > p[$0] }) ?? true { other = j }
        }
        guard let other else { return (nil, -.infinity, own) }
        let tiny: Float = 1e-12
        return (other, logf(max(p[other], tiny)) - logf(max(own, tiny)), own)
    }

    /// Whether an image with this unit vector looks like `label` (`verified` or `mismatch`); `related` holds
    /// the label's ancestors and descendants. Nil when the label is not one the model was fitted on.
    public func judge(_ vector: [Float], label: Int64, related: Set<Int64>) -> LabelCheck? {
        guard let c = labelIds.firstIndex(of: label), let p = try? classifier.probabilities(vector).first else { return nil }
        let relatedIndices = Set(labelIds.indices.filter { related.contains(labelIds[$0]) })
        let e = Self.evidence(p, label: c, related: relatedIndices)
        guard let other = e.other else { return LabelCheck(state: .verified, score: e.own) }
        let mismatch = p[other] >= thresholds[other] / 2 && e.value > cutoffs[c]
        return LabelCheck(state: mismatch ? .mismatch : .verified, score: e.own, suggestedLabel: labelIds[other], suggestedScore: p[other])
    }
}
