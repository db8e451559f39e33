import Embedding
import Foundation
import HubCore
import Testing
import Training

/// The calibrated label check on vectors with a known structure (no photos needed): clusters around
/// random unit directions in 64 dimensions, one per label, with noise.
@Suite("Label model")
struct LabelModelTests {
    static let dims = 64

    static func unit(_ v: [Float]) -> [Float] {
        let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return v.map { $0 / n }
    }

    static func gaussian(_ rng: inout SeededRandom) -> Float {
        let u = max(1e-9, Double(rng.next() % 1_000_000) / 1_000_000), v = Double(rng.next() % 1_000_000) / 1_000_000
        return Float((-2 * log(u)).squareRoot() * cos(2 * .pi * v))
    }

    /// `count` vectors per label near the label's centre; `spread` is the noise per dimension.
    static func clusters(_ labels: [Int64], count: Int, spread: Float, seed: UInt64)
        -> (centres: [Int64: [Float]], members: [Int64: [(imageId: String, vector: [Float])]], sample: (Int64, inout SeededRandom) -> [Float]) {
        var rng = SeededRandom(seed: seed)
        var centres: [Int64: [Float]] = [:]
        for label in labels { centres[label] = unit((0..<dims).map { _ in gaussian(&rng) }) }
        let sample: (Int64, inout SeededRandom) -> [Float] = { label, rng in
            unit(zip(centres[label]!, (0..<dims).map { _ in gaussian(&rng) * spread }).map { $0 + $1 })
        }
        var members: [Int64: [(imageId: String, vector: [Float])]] = [:]
        for label in labels {
            members[label] = (0..<count).map { i in ("\(label)-\(i)", sample(label, &rng)) }
        }
        return (centres, members, sample)
    }

    @Test("a vector of another label's cluster is a mismatch with that label suggested; its own label's is verified")
    func judges() throws {
        let data = Self.clusters([1, 2, 3], count: 40, spread: 0.08, seed: 3)
        let model = try #require(try LabelModel.fit(data.members, minImages: 20, related: [:]))
        #expect(model.labelIds == [1, 2, 3])
        #expect(model.outOfFoldAccuracy > 0.95)
        var rng = SeededRandom(seed: 99)
        var wrong = 0, honestFlagged = 0
        for _ in 0..<30 {
            let fromTwo = data.sample(2, &rng)
            let asOne = model.judge(fromTwo, label: 1, related: [])
            if asOne?.state == .mismatch, asOne?.suggestedLabel == 2 { wrong += 1 }
            if model.judge(fromTwo, label: 2, related: [])?.state == .mismatch { honestFlagged += 1 }
        }
        #expect(wrong == 30)
        #expect(honestFlagged == 0)
        let judged = try #require(model.judge(data.sample(3, &rng), label: 3, related: []))
        #expect(judged.state == .verified && judged.score! > 0.5 && judged.suggestedScore! < judged.score!)
    }

    @Test("a parent or child label is never a mismatch: related labels count as the given one")
    func hierarchy() throws {
        let data = Self.clusters([10, 11, 12], count: 30, spread: 0.08, seed: 5)
        // 11 is a child of 10 (say "dog" under "animal"); 12 is unrelated.
        let related: [Int64: Set<Int64>] = [10: [11], 11: [10], 12: []]
        let model = try #require(try LabelModel.fit(data.members, minImages: 20, related: related))
        var rng = SeededRandom(seed: 7)
        let dog = data.sample(11, &rng)
        let asAnimal = try #require(model.judge(dog, label: 10, related: [11]))
        #expect(asAnimal.state == .verified, "\(asAnimal)")
        #expect(asAnimal.score! > 0.9, "the child's probability counts for the parent")
        #expect(model.judge(dog, label: 12, related: [])?.state == .mismatch)
    }

    @Test("an image the model was fitted on is judged by the fold that did not see it: mislabelled photos inside the fit are still caught")
    func judgesItsOwnImagesOutOfFold() throws {
        var data = Self.clusters([1, 2, 3], count: 30, spread: 0.08, seed: 41)
        var rng = SeededRandom(seed: 43)
        // Three photos of label 2 filed under label 1, as an import with a few wrong labels would be.
        let swapped = (0..<3).map { i in ("swapped-\(i)", data.sample(2, &rng)) }
        data.members[1]! += swapped
        let model = try #require(try LabelModel.fit(data.members, minImages: 20, related: [:]))
        // Each is judged by a fit that saw the other two (a little of label 1 near label 2), so the evidence is
        // not always strong enough for Bayes' rule; most are caught, each with label 2 suggested.
        let judged = try swapped.map { try #require(model.judge($0.1, label: 1, related: [], imageId: $0.0)) }
        #expect(judged.count { $0.state == .mismatch } >= 2, "\(judged)")
        #expect(judged.allSatisfy { $0.suggestedLabel == 2 && ($0.score ?? 1) < 0.1 }, "\(judged)")
        // The final fit, which learnt those labels, vouches for every one: why its own images are judged out of fold.
        #expect(swapped.allSatisfy { model.judge($0.1, label: 1, related: [])?.state == .verified })
        // Honest images inside the fit stay verified.
        let honest = data.members[3]!.prefix(10)
        #expect(honest.allSatisfy { model.judge($0.vector, label: 3, related: [], imageId: $0.imageId)?.state == .verified })
    }

    @Test("labels below the minimum are left out (judged unknown); fewer than two labels make no model")
    func minimums() throws {
        var data = Self.clusters([1, 2, 3], count: 30, spread: 0.08, seed: 11).members
        data[3] = Array(data[3]!.prefix(5))
        let model = try #require(try LabelModel.fit(data, minImages: 20, related: [:]))
        #expect(model.labelIds == [1, 2])
        #expect(model.judge(data[3]![0].vector, label: 3, related: []) == nil, "a label the model does not know")
        data[2] = Array(data[2]!.prefix(5))
        #expect(try LabelModel.fit(data, minImages: 20, related: [:]) == nil)
    }

    @Test("calibrated on held-out images: overlapping labels flag few honest images, distinct ones catch swaps; the prior sets how sure")
    func calibration() throws {
        // Labels 1 and 2 overlap heavily (look-alikes); 3 is far from both.
        var data = Self.clusters([1, 2, 3], count: 60, spread: 0.2, seed: 17)
        var rng = SeededRandom(seed: 23)
        let near = Self.unit(zip(data.centres[1]!, (0..<Self.dims).map { _ in Self.gaussian(&rng) * 0.15 }).map { $0 + $1 })
        data.centres[2] = near
        data.members[2] = (0..<60).map { i in ("2-\(i)", Self.unit(zip(near, (0..<Self.dims).map { _ in Self.gaussian(&rng) * 0.2 }).map { $0 + $1 })) }
        func flags(_ model: LabelModel) -> (honest: Int, flagged: Int, caught: Int) {
            var honest = 0, flagged = 0, caught = 0
            for label: Int64 in [1, 2] {
                for v in data.members[label]!.map(\.vector) {
                    honest += 1
                    if model.judge(v, label: label, related: [])?.state == .mismatch { flagged += 1 }
                }
            }
            for v in data.members[3]!.prefix(20).map(\.vector) where model.judge(v, label: 1, related: [])?.state == .mismatch { caught += 1 }
            return (honest, flagged, caught)
        }
        let model = try #require(try LabelModel.fit(data.members, minImages: 20, related: [:], wrongPrior: 0.1))
        #expect(model.temperature > 0 && model.temperature.isFinite && model.wrongPrior == 0.1)
        // Honest uploads of the look-alike labels: few flagged; a photo of the distinct label 3 uploaded as 1 is caught.
        let usual = flags(model)
        #expect(Double(usual.flagged) / Double(usual.honest) <= 0.05, "\(usual.flagged) of \(usual.honest)")
        #expect(usual.caught == 20)
        // Bayes' rule: a wrong label must be more likely than not; a larger prior needs less evidence.
        #expect(model.wrongProbability(own: 0.5, alternatives: 2) < 0.1)
        #expect(model.wrongProbability(own: 0.001, alternatives: 2) > 0.9)
        #expect(model.wrongProbability(own: 0.9, alternatives: 0) == 0, "no unrelated label: never a mismatch")
        let suspicious = try #require(try LabelModel.fit(data.members, minImages: 20, related: [:], wrongPrior: 0.5))
        #expect(suspicious.wrongProbability(own: 0.2, alternatives: 2) > model.wrongProbability(own: 0.2, alternatives: 2))
        #expect(flags(suspicious).flagged >= usual.flagged)
    }

    @Test("a stream's share of wrong labels: half swapped raises the prior towards a half, also after an honest run; a clean stream or a few judgements barely move it; old ones are forgotten")
    func streamPrior() throws {
        let wrong: Float = 50, right: Float = 0.02  // likelihood ratios of a clear swap and of an honest upload
        var clean = StreamPrior(halfLife: 25, floor: 0.1)
        for _ in 0..<100 { clean.record(right) }
        #expect(clean.prior == 0.1, "never below the configured prior")
        var swapped = StreamPrior(halfLife: 25, floor: 0.1)
        for i in 0..<40 { swapped.record(i % 2 == 0 ? wrong : right) }
        let half = swapped.prior
        #expect(half > 0.33 && half <= 0.5, "\(half)")
        // After 40 honest uploads, 20 of which half are swapped: the recent ones weigh more (a plain mean over
        // the 60 would say 0.16).
        var late = StreamPrior(halfLife: 25, floor: 0.1)
        for _ in 0..<40 { late.record(right) }
        for i in 0..<20 { late.record(i % 2 == 0 ? wrong : right) }
        #expect(late.prior > 0.19, "\(late.prior)")
        var few = StreamPrior(halfLife: 25, floor: 0.1)
        few.record(wrong)
        few.record(wrong)
        #expect(few.prior < 0.3, "two judgements against the prior's ten")
        var forgetting = StreamPrior(halfLife: 25, floor: 0.1)
        for _ in 0..<20 { forgetting.record(wrong) }
        #expect(forgetting.prior == 0.5, "at most a half")
        for _ in 0..<100 { forgetting.record(right) }
        #expect(forgetting.prior == 0.1, "four half-lives later the swaps hardly count")
        var off = StreamPrior(halfLife: 0, floor: 0.1)
        off.record(wrong)
        #expect(off.prior == 0.1)

        // Uploads that passed while the prior was low are handed back for a second look once it has doubled:
        // those the current prior would call wrong, each once. A ratio of 4 passes at 0.1 (4·0.1 < 0.9) and is
        // wrong from 0.2 on; 0.02 stays right at any prior up to a half.
        var turning = StreamPrior(halfLife: 25, floor: 0.1)
        for i in 0..<20 { turning.record(right, imageId: "honest \(i)") }
        turning.record(4, imageId: "doubtful")
        #expect(turning.doubtful().isEmpty, "at the configured prior nothing is looked at again")
        for i in 0..<20 { turning.record(i % 2 == 0 ? wrong : right, imageId: "late \(i)") }
        #expect(turning.prior > 0.2, "\(turning.prior)")
        #expect(turning.doubtful() == ["doubtful"], "the clear swaps were flagged on arrival, the honest ones stay right")
        #expect(turning.doubtful().isEmpty, "each once")
        var calm = StreamPrior(halfLife: 25, floor: 0.1)
        for i in 0..<40 { calm.record(i % 10 == 0 ? 4 : right, imageId: "\(i)") }
        #expect(calm.prior < 0.2 && calm.doubtful().isEmpty, "a stream at about the expected share is not looked at again: \(calm.prior)")

        // A judgement's evidence is the likelihood ratio its prior is weighed against: Bayes' rule by either.
        let data = Self.clusters([1, 2, 3], count: 60, spread: 0.25, seed: 41)
        let model = try #require(try LabelModel.fit(data.members, minImages: 20, related: [:], wrongPrior: 0.1))
        var rng = SeededRandom(seed: 42)
        for (label, from) in [(Int64(1), Int64(2)), (1, 1), (3, 2)] {
            let check = try #require(model.judge(data.sample(from, &rng), label: label, related: []))
            let own = try #require(check.score), r = try #require(check.evidence)
            for prior: Float in [0.1, 0.4] {
                let bayes = prior * r / (prior * r + 1 - prior)
                #expect(abs(model.wrongProbability(own: own, alternatives: 2, prior: prior) - bayes) < 1e-4)
            }
        }
        // The prior given to `judge` is the one it decides by: a picture between labels 1 and 2, labelled 1, with
        // evidence between 1 and 9 is a mismatch at a prior of a half and not at a tenth (which needs over 9).
        func towardsTwo(_ t: Float) -> [Float] { Self.unit(zip(data.centres[1]!, data.centres[2]!).map { (1 - t) * $0 + t * $1 }) }
        func evidence(_ t: Float) -> Float { model.judge(towardsTwo(t), label: 1, related: [])?.evidence ?? 0 }
        var (low, high): (Float, Float) = (0, 1)  // evidence rises from label 1's centre to label 2's
        #expect(evidence(low) < 3 && evidence(high) > 3)
        for _ in 0..<40 { let mid = (low + high) / 2; if evidence(mid) < 3 { low = mid } else { high = mid } }
        let between = towardsTwo(high)
        #expect((1.5...6).contains(evidence(high)), "\(evidence(high))")
        #expect(model.judge(between, label: 1, related: [], prior: 0.1)?.state == .verified)
        #expect(model.judge(between, label: 1, related: [], prior: 0.5)?.state == .mismatch)
    }

    @Test("the temperature softens over-confident held-out probabilities and sharpens timid ones")
    func temperature() {
        // Says 0.95 for its first choice but is right 70% of the time: softened (T > 1) towards 0.7.
        let overconfident = (0..<100).map { i in (p: [Float(0.95), 0.05], label: i % 10 < 7 ? 0 : 1) }
        // Says 0.6 and is always right: sharpened (T < 1).
        let timid = (0..<100).map { _ in (p: [Float(0.6), 0.4], label: 0) }
        let soft = LabelModel.calibration(overconfident, noise: 0).temperature, sharp = LabelModel.calibration(timid, noise: 0).temperature
        #expect(soft > 1.5 && sharp < 0.5, "\(soft), \(sharp)")
        // 0.95 at T: 1 / (1 + (0.05/0.95)^(1/T)) should come out near the 0.7 it earns.
        let calibrated = 1 / (1 + powf(0.05 / 0.95, 1 / soft))
        #expect(abs(calibrated - 0.7) < 0.02, "\(calibrated)")
        #expect(LabelModel.calibration([], noise: 0).temperature == 1)
    }

    @Test("the calibration tells wrong labels from soft probabilities: a few confident misses are label noise, steady doubt is temperature")
    func calibrationWithWrongLabels() {
        // 90 images the folds place firmly in their label, 10 firmly in another: a tenth filed under a wrong label.
        let flipped = (0..<100).map { i in (p: i < 90 ? [Float(0.98), 0.01, 0.01] : [0.01, 0.98, 0.01], label: 0) }
        let plain = LabelModel.calibration(flipped, noise: 0).temperature, joint = LabelModel.calibration(flipped)
        #expect(abs(joint.noise - 0.1) < 0.03, "\(joint)")
        #expect(plain > 1.3 * joint.temperature, "without ε the misses soften everything: \(plain) against \(joint.temperature)")
        // What that means for one of the ten: the probability of its given label, calibrated each way.
        func own(_ t: Float) -> Float { LabelModel.calibrated([0.01, 0.98, 0.01], temperature: t)[0] }
        #expect(own(joint.temperature) < 0.02 && own(plain) > 0.05, "\(own(joint.temperature)), \(own(plain))")
        // Probabilities that are right as often as they say (0.9 → 90%, 0.6 → 60%): no noise, no rescaling.
        let honest = (0..<200).map { i in
            i < 100 ? (p: [Float(0.9), 0.1], label: i % 10 < 9 ? 0 : 1) : (p: [Float(0.6), 0.4], label: i % 10 < 6 ? 0 : 1)
        }
        let clean = LabelModel.calibration(honest)
        #expect(clean.noise < 0.02 && abs(clean.temperature - 1) < 0.1, "\(clean)")
        let empty = LabelModel.calibration([])
        #expect(empty.temperature == 1 && empty.noise == 0)
    }

    @Test("the delivered model is trained again on every image, validation split included: it does better on unseen images")
    func refitOnAllImages() throws {
        let labels: [Int64] = Array(1...6)
        var better = 0, seeds = 0
        for seed in UInt64(1)...3 {
            let (_, members, sample) = LabelModelTests.clusters(labels, count: 10, spread: 0.22, seed: seed)
            let examples = labels.enumerated().flatMap { index, label in
                members[label]!.map { Example(imageId: $0.imageId, label: index, vector: $0.vector) }
            }
            var rng = SeededRandom(seed: seed &+ 100)
            let unseen = labels.enumerated().flatMap { index, label in (0..<200).map { _ in (index, sample(label, &rng)) } }
            func accuracy(refit: Bool) throws -> (Double, TrainingReport) {
                var options = TrainingOptions()
                options.seed = seed
                options.refitOnAllImages = refit
                let (model, report) = try Trainer.train(examples, labels: labels.map(String.init), options: options)
                let p = try model.probabilities(unseen.flatMap(\.1))
                let right = zip(unseen, p).count { truth, probabilities in probabilities.indices.max { probabilities[$0] < probabilities[$1] } == truth.0 }
                return (Double(right) / Double(unseen.count), report)
            }
            let (with, report) = try accuracy(refit: true)
            let (without, plain) = try accuracy(refit: false)
            #expect(report.deliveredModelImages == examples.count && plain.deliveredModelImages == plain.trainImages)
            #expect(report.accuracy == plain.accuracy, "the report's figures are the validation run's either way")
            print("refit on all images, seed \(seed): unseen accuracy \(without) → \(with)")
            if with > without { better += 1 }
            seeds += 1
        }
        #expect(better >= 2, "a quarter more images helps on most seeds (\(better) of \(seeds))")
    }

    @Test("a report stored before the refit existed still reads, as a model trained on its training split")
    func oldReportOptionsDecode() throws {
        let options = try JSONDecoder().decode(TrainingOptions.self, from: Data(#"{"seed": 7, "maxEpochs": 50}"#.utf8))
        #expect(options.seed == 7 && options.maxEpochs == 50 && options.patience == TrainingOptions().patience)
        #expect(!options.refitOnAllImages && TrainingOptions().refitOnAllImages)
    }
}

/// The label model's fit: softmax regression by L-BFGS on OpenBLAS (libFeatureKernels.so).
@Suite("Softmax regression")
struct SoftmaxRegressionTests {
    static func examples(seed: UInt64, perLabel: Int = 25, spread: Float = 0.3) -> [Example] {
        let labels: [Int64] = [1, 2, 3]
        let data = LabelModelTests.clusters(labels, count: perLabel, spread: spread, seed: seed)
        return labels.enumerated().flatMap { index, label in data.members[label]!.map { Example(imageId: $0.imageId, label: index, vector: $0.vector) } }
    }

    /// The gradient of the objective the fit minimises (class-weighted mean cross-entropy + decay·‖W‖²), in Swift.
    static func gradient(_ examples: [Example], weights: [Float], bias: [Float], classWeights: [Float], decay: Double) -> (w: [Double], b: [Double]) {
        let classes = bias.count, dims = weights.count / classes
        let total = examples.reduce(0.0) { $0 + Double(classWeights[$1.label]) }
        var gw = weights.map { 2 * decay * Double($0) }, gb = [Double](repeating: 0, count: classes)
        for e in examples {
            let z = (0..<classes).map { c in Double(bias[c]) + (0..<dims).reduce(0.0) { $0 + Double(weights[c * dims + $1]) * Double(e.vector[$1]) } }
            let top = z.max()!, sum = z.reduce(0) { $0 + exp($1 - top) }
            for c in 0..<classes {
                let g = Double(classWeights[e.label]) / total * (exp(z[c] - top) / sum - (c == e.label ? 1 : 0))
                gb[c] += g
                for d in 0..<dims { gw[c * dims + d] += g * Double(e.vector[d]) }
            }
        }
        return (gw, gb)
    }

    @Test("the fit is the objective's minimum: its gradient vanishes there; the same data give the same weights; more decay, smaller weights")
    func minimises() throws {
        let examples = Self.examples(seed: 31)
        let classWeights: [Float] = [1, 2, 0.5]
        let fit = try SoftmaxRegression.fit(examples, dims: LabelModelTests.dims, classes: 3, classWeights: classWeights, decay: 1e-3)
        #expect(fit.iterations > 0)
        let g = Self.gradient(examples, weights: fit.weights, bias: fit.bias, classWeights: classWeights, decay: 1e-3)
        let largest = (g.w + g.b).map(abs).max()!
        #expect(largest < 1e-3, "gradient at the fit: \(largest)")
        // Not a trivial minimum: the gradient at zero is far from vanishing, and the fit separates the clusters.
        let atZero = Self.gradient(examples, weights: [Float](repeating: 0, count: fit.weights.count), bias: [0, 0, 0], classWeights: classWeights, decay: 1e-3)
        #expect((atZero.w + atZero.b).map(abs).max()! > 0.01)
        let head = LinearClassifier(labels: ["1", "2", "3"], dimensions: LabelModelTests.dims, weights: fit.weights, bias: fit.bias)
        let p = try head.probabilities(examples.flatMap(\.vector))
        #expect(zip(examples, p).allSatisfy { e, p in p.indices.max { p[$0] < p[$1] } == e.label })
        #expect(p.allSatisfy { abs($0.reduce(0, +) - 1) < 1e-4 })
        let again = try SoftmaxRegression.fit(examples, dims: LabelModelTests.dims, classes: 3, classWeights: classWeights, decay: 1e-3)
        #expect(again.weights == fit.weights && again.bias == fit.bias, "deterministic")
        let firmer = try SoftmaxRegression.fit(examples, dims: LabelModelTests.dims, classes: 3, classWeights: classWeights, decay: 1e-1)
        func norm(_ w: [Float]) -> Float { w.reduce(0) { $0 + $1 * $1 } }
        #expect(norm(firmer.weights) < norm(fit.weights) / 4)
    }

    /// OpenBLAS's own pool spun on sched_yield beside the pipeline's workers while the label model refitted
    /// during an import (12% of its CPU): the products stay on the calling thread, even after a fit.
    @Test("OpenBLAS computes on the calling thread alone, before and after a fit")
    func blasOnOneThread() throws {
        #expect(SoftmaxRegression.blasThreads == 1)
        _ = try SoftmaxRegression.fit(Self.examples(seed: 34), dims: LabelModelTests.dims, classes: 3, classWeights: [1, 1, 1], decay: 1e-3)
        #expect(SoftmaxRegression.blasThreads == 1)
    }

    @Test("bad input is refused with a message, not a crash")
    func refusesBadInput() throws {
        var examples = Self.examples(seed: 32, perLabel: 3)
        examples[0] = Example(imageId: "x", label: 7, vector: examples[0].vector)
        let outOfRange = #expect(throws: TrainingError.self) {
            try SoftmaxRegression.fit(examples, dims: LabelModelTests.dims, classes: 3, classWeights: [1, 1, 1], decay: 1e-4)
        }
        #expect(outOfRange.map { "\($0)".contains("out of range") } == true, "\(String(describing: outOfRange))")
        #expect(throws: TrainingError.self) { try SoftmaxRegression.fit(Self.examples(seed: 33, perLabel: 3), dims: 10, classes: 3, classWeights: [1, 1, 1], decay: 1e-4) }
    }
}
