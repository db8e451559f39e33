import Embedding
import FeatureMatch
import Foundation
import HubCore
import Synchronization

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
///
/// An image the model was fitted on is judged by the fold that did not see it (its out-of-fold
/// probabilities, kept with the model): the final fit has learnt its label, right or wrong, so it would
/// vouch for a mislabelled photo it was trained on. This is what re-checks a whole import fairly.
public struct LabelModel: Sendable {
    /// Label ids in output order.
    public let labelIds: [Int64]
    let classifier: LinearClassifier
    /// The calibration temperature (probabilities are softmax(log p / T)).
    public let temperature: Float
    /// The share of its own images that the calibration found carrying a wrong label (see `calibration`).
    public let labelNoise: Float
    /// The share of uploads expected to carry a wrong label, before any is looked at.
    public let wrongPrior: Float
    /// Accepted images it was fitted on, per label (after the per-label cap).
    public let counts: [Int64: Int]
    /// Out-of-fold accuracy of the cross-validation (how separable the labels are).
    public let outOfFoldAccuracy: Double
    /// The out-of-fold probabilities of the images it was fitted on, by image id.
    let heldOut: [String: [Float]]
    public let seconds: Double

    /// Images per label a fit uses at most (a seeded sample): the cost of a refit stays bounded.
    public static let maxPerLabel = 400

    /// The fit's penalty on the squared weights (the trainer's weight decay).
    static let decay = 1e-4

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
        // Ordered by content before the seeded shuffle (image ids are random): the same images make the same
        // sample, the same folds and the same model in every run. The key rounds the vector's first components
        // to 1/256, so that the last bits an engine's batching can move do not reorder it.
        func key(_ vector: [Float]) -> UInt64 {
            vector.prefix(64).reduce(14_695_981_039_346_656_037 as UInt64) {
                ($0 ^ UInt64(bitPattern: Int64(($1 * 256).rounded()))) &* 1_099_511_628_211
            }
        }
        for (c, id) in labelIds.enumerated() {
            let chosen = members[id]!.map { (key: key($0.vector), member: $0) }
                .sorted { ($0.key, $0.member.imageId) < ($1.key, $1.member.imageId) }.map(\.member)
                .shuffled(using: &rng).prefix(maxPerLabel)
            counts[id] = chosen.count
            examples += chosen.map { Example(imageId: $0.imageId, label: c, vector: $0.vector) }
        }
        guard let dims = examples.first?.vector.count else { return nil }
        let classes = labelIds.count
        let perClass = (0..<classes).map { c in examples.count { $0.label == c } }
        let weights = perClass.map { Float(examples.count) / Float(classes * $0) }
        let names = labelIds.map(String.init)

        // Out-of-fold probabilities over stratified folds.
        let k = max(2, min(folds, perClass.min() ?? 2))
        let fold: [String: Int] = (0..<classes).reduce(into: [:]) { fold, c in
            for (i, e) in examples.filter({ $0.label == c }).enumerated() { fold[e.imageId] = i % k }
        }
        // The folds and the final fit on every image are independent fits: they run side by side (fit `k` is
        // the final one).
        let all = examples
        let fits = Mutex([Int: (weights: [Float], bias: [Float])]())
        let failure = Mutex<(any Error)?>(nil)
        DispatchQueue.concurrentPerform(iterations: k + 1) { f in
            // Every fold holds images of every label (k ≤ the smallest label's count).
            let train = f == k ? all : all.filter { fold[$0.imageId] != f }
            do {
                let fit = try SoftmaxRegression.fit(train, dims: dims, classes: classes, classWeights: weights, decay: decay)
                fits.withLock { $0[f] = (fit.weights, fit.bias) }
            } catch {
                failure.withLock { $0 = error }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        guard let final = fits.withLock({ $0.removeValue(forKey: k) }) else { return nil }
        var outOfFold: [String: [Float]] = [:]
        for (f, fit) in fits.withLock({ $0 }) {
            let held = examples.filter { fold[$0.imageId] == f }
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
        let calibrated = calibration(held)
        return LabelModel(labelIds: labelIds, classifier: LinearClassifier(labels: names, dimensions: dims, weights: final.weights, bias: final.bias),
                          temperature: calibrated.temperature, labelNoise: calibrated.noise, wrongPrior: Float(min(0.5, max(0.001, wrongPrior))), counts: counts,
                          outOfFoldAccuracy: outOfFold.isEmpty ? 0 : Double(correct) / Double(outOfFold.count), heldOut: outOfFold,
                          seconds: (ContinuousClock.now - started).seconds)
    }

    /// The temperature T and the share ε of wrongly labelled images that together make the held-out labels
    /// most likely, when an image's label is its true class with probability 1 − ε and otherwise any of the
    /// other classes alike: P(label | x) = (1 − ε)·q + ε·(1 − q)/(C − 1), q the probability at temperature T.
    /// Without ε the few photos filed under a wrong label in a label's own images (an import's, say) would be
    /// explained by softening every probability, and a soft model never has the evidence to flag them; with
    /// it they are explained as what they are. On clean labels ε comes out near 0 and T as without it.
    /// ε (or `noise` when given; 0 takes every label as right) is searched on a grid over [0, 0.5], then by
    /// golden section around the best point: the likelihood over ε can have two valleys, a soft model with
    /// every label right and a sharp one with a few wrong (on 47 photos with 3 misfiled the two were 0.4
    /// nats apart, and bf16's vectors against f32's, 0.999 apart, put either lower), which a search assuming
    /// one valley would settle in by chance. log T by golden section in [1/64, 8] for each ε (unimodal there).
    /// (1, 0) when nothing was held out.
    public static func calibration(_ held: [(p: [Float], label: Int)], noise: Float? = nil) -> (temperature: Float, noise: Float) {
        guard let classes = held.first?.p.count, classes > 1 else { return (1, 0) }
        // Every k-th image, at most 4,000: plenty to fit two numbers, and a large catalog's refit stays quick.
        let step = max(1, (held.count + 3_999) / 4_000)
        let logs = stride(from: 0, to: held.count, by: step).map { i in (held[i].p.map { logf(max($0, 1e-12)) }, held[i].label) }
        let others = Double(classes - 1)
        func loss(_ logT: Double, _ epsilon: Double) -> Double {
            let inverse = Float(exp(-logT))
            var total = 0.0
            for (l, label) in logs {
                let top = l.max()! * inverse
                var sum: Float = 0
                for v in l { sum += expf(v * inverse - top) }
                let q = Double(expf(l[label] * inverse - top) / sum)
                total -= epsilon == 0 ? Double(l[label] * inverse - top - logf(sum))
                                      : log(max((1 - epsilon) * q + epsilon * (1 - q) / others, 1e-300))
            }
            return total
        }
        func minimise(_ lower: Double, _ upper: Double, steps: Int, _ f: (Double) -> Double) -> (x: Double, value: Double) {
            let golden = (sqrt(5.0) - 1) / 2
            var a = lower, b = upper
            var c = b - golden * (b - a), d = a + golden * (b - a)
            var fc = f(c), fd = f(d)
            for _ in 0..<steps {
                if fc < fd { b = d; d = c; fd = fc; c = b - golden * (b - a); fc = f(c) }
                else { a = c; c = d; fc = fd; d = a + golden * (b - a); fd = f(d) }
            }
            let x = (a + b) / 2
            return (x, f(x))
        }
        var searched: [Double: (x: Double, value: Double)] = [:]
        func bestTemperature(_ epsilon: Double) -> (x: Double, value: Double) {
            if let known = searched[epsilon] { return known }
            let best = minimise(log(1.0 / 64), log(8.0), steps: 34) { loss($0, epsilon) }
            searched[epsilon] = best
            return best
        }
        let epsilon: Double
        if let noise {
            epsilon = Double(noise)
        } else {
            let grid = (0...10).map { Double($0) * 0.02 } + [0.25, 0.3, 0.4, 0.5]
            // Where the data cannot tell ε apart (a flat ridge: held-out probabilities of only a few distinct
            // values, which a softer model with fewer wrong labels explains as well, to 10⁻⁵ of the likelihood),
            // the larger ε: the confident misses are taken as the wrong labels they look like.
            let least = grid.map { bestTemperature($0).value }.min()!
            guard least.isFinite else { return (1, 0) }  // probabilities that are not numbers: no calibration
            let at = grid.lastIndex { bestTemperature($0).value <= least + 1e-5 * max(1, abs(least)) }!
            let coarse = grid[at]
            let found = minimise(grid[max(0, at - 1)], grid[min(grid.count - 1, at + 1)], steps: 12) { bestTemperature($0).value }.x
            // Grid points include the boundary: clean labels put the optimum at ε = 0, which a search only approaches.
            epsilon = bestTemperature(coarse).value <= bestTemperature(found).value ? coarse : found
        }
        return (Float(exp(bestTemperature(epsilon).x)), Float(epsilon))
    }

    /// `p` sharpened or softened by the temperature.
    func calibrated(_ p: [Float]) -> [Float] { Self.calibrated(p, temperature: temperature) }

    /// `p` sharpened (T < 1) or softened (T > 1): softmax(log p / T).
    public static func calibrated(_ p: [Float], temperature: Float) -> [Float] {
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
    /// the label's ancestors and descendants. Nil when the label is not one the model was fitted on. An image
    /// the model was fitted on (`imageId`) is judged by its out-of-fold probabilities.
    /// `prior` replaces the configured share of wrong labels (a stream's estimate, see `StreamPrior`).
    public func judge(_ vector: [Float], label: Int64, related: Set<Int64>, imageId: String? = nil, prior: Float? = nil) -> LabelCheck? {
        guard let c = labelIds.firstIndex(of: label),
              let raw = imageId.flatMap({ heldOut[$0] }) ?? (try? classifier.probabilities(vector).first) else { return nil }
        let p = calibrated(raw)
        let relatedIndices = Set(labelIds.indices.filter { related.contains(labelIds[$0]) && $0 != c })
        let (own, rival) = Self.ownAndRival(p, label: c, related: relatedIndices)
        guard let rival else { return LabelCheck(state: .verified, score: own) }
        let alternatives = Float(labelIds.count - 1 - relatedIndices.count)
        let evidence = (1 - own) / (alternatives * max(own, 1e-30))
        let mismatch = LabelCheck.wrongMoreLikely(evidence, prior: prior ?? wrongPrior)
        return LabelCheck(state: mismatch ? .mismatch : .verified, score: own, suggestedLabel: labelIds[rival], suggestedScore: p[rival],
                          evidence: evidence)
    }

    /// The probability that the given label is wrong, by Bayes' rule, when the calibrated probability of
    /// the given label (and its relatives) is `own` and `alternatives` unrelated labels could be right (over a
    /// half exactly where `LabelCheck.wrongMoreLikely` says so of the judgement's evidence).
    public func wrongProbability(own: Float, alternatives: Float, prior: Float? = nil) -> Float {
        guard alternatives > 0 else { return 0 }
        let share = prior ?? wrongPrior
        let wrong = (1 - own) * share / alternatives, right = own * (1 - share)
        return wrong / max(wrong + right, 1e-30)
    }
}
