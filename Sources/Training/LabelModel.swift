import Embedding
import Foundation
import HubCore

/// A calibrated, per-label check of "does this picture show its label": softmax regression on the cached
/// embeddings of every label with enough accepted images, refitted in the background as labels grow.
///
/// Fitting runs a stratified k-fold cross-validation first. Its out-of-fold probabilities calibrate the
/// model: one temperature *T* for all labels, the one that makes those probabilities most likely (least
/// negative log-likelihood of the true labels), so that a probability of 0.9 is right about nine times in
/// ten on images the fit did not see. Labels that look alike come out with spread-out probabilities, so
/// their own images rarely look strongly like another label; distinct labels with sharp ones.
///
/// An upload is judged by Bayes' rule: before looking, a share `wrongPrior` of uploads carry a wrong label,
/// spread evenly over the unrelated labels; after looking, the calibrated probabilities of the classes
/// give the odds. It is a mismatch only when a wrong label is then more likely than not:
/// (1 − q)·π/m > q·(1 − π), q the calibrated probability of the given label (its ancestors and descendants
/// included), π the prior, m the number of unrelated labels. Related labels (ancestors, descendants) count
/// as the given label: a dog labelled "animal" is not a mismatch.
public struct LabelModel: Sendable {
    /// Label ids in output order.
    public let labelIds: [Int64]
    let classifier: LinearClassifier
    /// The calibration temperature (probabilities are softmax(log p / T)).
    public let temperature: Float
    /// The share of uploads expected to carry a wrong label, before any is looked at.
    public let wrongPrior: Float
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
                           related: [Int64: Set<Int64>], wrongPrior: Double = 0.1, seed: UInt64 = 1,
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
        var correct = 0
        var held: [(p: [Float], label: Int)] = []
        for e in examples {
            guard let p = outOfFold[e.imageId] else { continue }
            if Trainer.argmax(p) == e.label || relatedIndices[e.label].contains(Trainer.argmax(p)) { correct += 1 }
            held.append((p, e.label))
        }
        let final = try Trainer.fitLinear(examples, [], dims: dims, classes: classes, classWeights: weights, options: options,
                                          epochs: epochs, patience: 0) { _ in }
        return LabelModel(labelIds: labelIds, classifier: LinearClassifier(labels: names, dimensions: dims, weights: final.weights, bias: final.bias),
                          temperature: temperature(held), wrongPrior: Float(min(0.5, max(0.001, wrongPrior))), counts: counts,
                          outOfFoldAccuracy: outOfFold.isEmpty ? 0 : Double(correct) / Double(outOfFold.count),
                          seconds: (ContinuousClock.now - started).seconds)
    }

    /// The temperature that makes held-out probabilities most likely: golden-section search on log T in
    /// [1/8, 8] (the negative log-likelihood is unimodal in it). 1 when nothing was held out.
    public static func temperature(_ held: [(p: [Float], label: Int)]) -> Float {
        guard !held.isEmpty else { return 1 }
        let logs = held.map { h in (h.p.map { logf(max($0, 1e-12)) }, h.label) }
        func loss(_ logT: Double) -> Double {
            let inverse = Float(exp(-logT))
            var total = 0.0
            for (l, label) in logs {
                let top = l.max()! * inverse
                var sum: Float = 0
                for v in l { sum += expf(v * inverse - top) }
                total += Double(top + logf(sum) - l[label] * inverse)
            }
            return total
        }
        let golden = (sqrt(5.0) - 1) / 2
        var a = log(1.0 / 8), b = log(8.0)
        var c = b - golden * (b - a), d = a + golden * (b - a)
        var fc = loss(c), fd = loss(d)
        for _ in 0..<30 {
            if fc < fd { b = d; d = c; fd = fc; c = b - golden * (b - a); fc = loss(c) }
            else { a = c; c = d; fc = fd; d = a + golden * (b - a); fd = loss(d) }
        }
        return Float(exp((a + b) / 2))
    }

    /// `p` sharpened or softened by the temperature.
    func calibrated(_ p: [Float]) -> [Float] {
        let inverse = 1 / temperature
        let l = p.map { logf(max($0, 1e-12)) * inverse }
        let top = l.max() ?? 0
        let e = l.map { expf($0 - top) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }

    /// For probabilities `p` of an image labelled `label`: the probability of its own label, the related
    /// labels counted in, and the most probable unrelated label (nil when every label is related).
    static func ownAndRival(_ p: [Float], label: Int, related: Set<Int>) -> (own: Float, rival: Int?) {
        var own = p[label]
        for r in related where r != label { own += p[r] }
        var rival: Int?
        for j in p.indices where j != label && !related.contains(j) {
            if rival.map({ p[j] > p[$0] }) ?? true { rival = j }
        }
        return (own, rival)
    }

    /// Whether an image with this unit vector looks like `label` (`verified` or `mismatch`); `related` holds
    /// the label's ancestors and descendants. Nil when the label is not one the model was fitted on.
    public func judge(_ vector: [Float], label: Int64, related: Set<Int64>) -> LabelCheck? {
        guard let c = labelIds.firstIndex(of: label), let raw = try? classifier.probabilities(vector).first else { return nil }
        let p = calibrated(raw)
        let relatedIndices = Set(labelIds.indices.filter { related.contains(labelIds[$0]) && $0 != c })
        let (own, rival) = Self.ownAndRival(p, label: c, related: relatedIndices)
        guard let rival else { return LabelCheck(state: .verified, score: own) }
        let alternatives = Float(labelIds.count - 1 - relatedIndices.count)
        let mismatch = wrongProbability(own: own, alternatives: alternatives) > 0.5
        return LabelCheck(state: mismatch ? .mismatch : .verified, score: own, suggestedLabel: labelIds[rival], suggestedScore: p[rival])
    }

    /// The probability that the given label is wrong, by Bayes' rule, when the calibrated probability of
    /// the given label (and its relatives) is `own` and `alternatives` unrelated labels could be right.
    public func wrongProbability(own: Float, alternatives: Float) -> Float {
        guard alternatives > 0 else { return 0 }
        let wrong = (1 - own) * wrongPrior / alternatives, right = own * (1 - wrongPrior)
        return wrong / max(wrong + right, 1e-30)
    }
}
