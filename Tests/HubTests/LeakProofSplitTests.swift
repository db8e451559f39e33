import Foundation
import HubCore
import Testing
import Training

/// Splits that cannot leak: planted near copies (by embedding and by perceptual hash) and bursts are found,
/// and no split, whatever its seed, puts two linked images on different sides.
@Suite("Leak-proof splits")
struct LeakProofSplitTests {
    static let dims = 64

    static func unit(_ rng: inout SeededRandom) -> [Float] {
        var v = (0..<dims).map { _ in Float(rng.gaussian()) }
        let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        for i in v.indices { v[i] /= n }
        return v
    }

    /// Two classes of 40 distinct images, plus per class: 4 near copies (cosine ≈ 0.99), 2 images sharing
    /// another's perceptual hash but not its look, a copy the hub named (`duplicateOf`), one burst of 4 from one device within 2.5 s, and a fifth
    /// photo from that device a minute later (no burst).
    static func planted() -> (examples: [Example], copies: Set<[Int]>, hashes: Set<[Int]>, bursts: Set<[Int]>) {
        var rng = SeededRandom(seed: 7)
        var examples: [Example] = []
        var copies = Set<[Int]>(), hashes = Set<[Int]>(), bursts = Set<[Int]>()
        let start = Date(timeIntervalSince1970: 1_780_000_000)
        for label in 0..<2 {
            let first = examples.count
            for i in 0..<40 {
                examples.append(Example(imageId: String(format: "img-%d-%02d", label, i), label: label, vector: unit(&rng),
                                        phash: Int64(bitPattern: rng.next())))
            }
            for k in 0..<4 {
                let original = examples[first + k * 3]
                var v = original.vector
                for i in v.indices { v[i] += Float(rng.gaussian()) * 0.012 }
                examples.append(Example(imageId: "copy-\(label)-\(k)", label: label, vector: v, phash: Int64(bitPattern: rng.next())))
                copies.insert([first + k * 3, examples.count - 1])
            }
            for k in 0..<2 {
                let original = examples[first + 20 + k]
                // Three bits away from the original's hash: within duplicates.maxHamming (6).
                examples.append(Example(imageId: "hash-\(label)-\(k)", label: label, vector: unit(&rng), phash: original.phash! ^ 0b1011))
                hashes.insert([first + 20 + k, examples.count - 1])
            }
            // A copy a reviewer accepted: it names its original, however different its vector and hash.
            examples.append(Example(imageId: "reviewed-\(label)", label: label, vector: unit(&rng), phash: Int64(bitPattern: rng.next()),
                                    duplicateOf: examples[first + 30].imageId))
            copies.insert([first + 30, examples.count - 1])
            let burst = examples.count
            for (k, offset) in [0, 1, 2, 2.5].enumerated() {
                examples.append(Example(imageId: "burst-\(label)-\(k)", label: label, vector: unit(&rng), phash: Int64(bitPattern: rng.next()),
                                        device: "phone-\(label)", capturedAt: start.addingTimeInterval(offset)))
            }
            for a in burst..<burst + 4 { for b in a + 1..<burst + 4 { bursts.insert([a, b]) } }
            examples.append(Example(imageId: "later-\(label)", label: label, vector: unit(&rng), phash: Int64(bitPattern: rng.next()),
                                    device: "phone-\(label)", capturedAt: start.addingTimeInterval(60)))
        }
        return (examples, copies, hashes, bursts)
    }

    @Test("near copies, hash twins and bursts are linked, nothing else is")
    func links() {
        let p = Self.planted()
        let links = LeakProofSplit.links(p.examples, cosine: 0.9, hamming: 6, burstSeconds: 3)
        #expect(Set(links.nearDuplicates.map { [$0.0, $0.1] }) == p.copies.union(p.hashes))
        #expect(Set(links.bursts.map { [$0.0, $0.1] }) == p.bursts)
        // A 1 s window links only neighbours 1 s apart or less: 0–1, 1–2, 2–2.5 (still one chain, one group).
        let tight = LeakProofSplit.links(p.examples, cosine: 0.9, hamming: 6, burstSeconds: 1)
        #expect(tight.bursts.count == 2 * 3)
    }

    @Test("no seed puts two linked images on different sides; a random split does, and keeps every class trainable")
    func noCrossing() {
        let p = Self.planted()
        let links = LeakProofSplit.links(p.examples, cosine: 0.9, hamming: 6, burstSeconds: 3).all
        let groups = LeakProofSplit.groups(count: p.examples.count, links: links)
        #expect(Set(groups).count == p.examples.count - p.copies.count - p.hashes.count - 2 * 3)
        var randomCrossings = 0
        for seed in UInt64(1)...30 {
            var rng = SeededRandom(seed: seed)
            let held = LeakProofSplit.split(p.examples, classes: 2, fraction: 0.25, groups: groups, rng: &rng)
            #expect(LeakProofSplit.crossing(links, validation: held) == 0, "seed \(seed)")
            for c in 0..<2 {
                let members = p.examples.indices.filter { p.examples[$0].label == c }
                let validation = members.count { held[$0] }
                // 52 images a class, a quarter is 13: whole groups land within a group's size of it.
                #expect(validation >= 9 && validation <= 13 && members.count - validation > 0, "seed \(seed), class \(c): \(validation)")
            }
            var again = SeededRandom(seed: seed)
            #expect(LeakProofSplit.split(p.examples, classes: 2, fraction: 0.25, groups: groups, rng: &again) == held)
            var plain = SeededRandom(seed: seed)
            let random = LeakProofSplit.split(p.examples, classes: 2, fraction: 0.25, groups: Array(p.examples.indices), rng: &plain)
            randomCrossings += LeakProofSplit.crossing(links, validation: random)
        }
        #expect(randomCrossings > 0)
    }

    @Test("a class that is one big group keeps it for training instead of failing")
    func oneGroupClass() {
        var rng = SeededRandom(seed: 3)
        let base = Self.unit(&rng)
        let examples = (0..<6).map { Example(imageId: "a\($0)", label: 0, vector: base) }
            + (0..<6).map { Example(imageId: "b\($0)", label: 1, vector: Self.unit(&rng)) }
        let links = LeakProofSplit.links(examples, cosine: 0.9, hamming: 6, burstSeconds: 3).all
        let groups = LeakProofSplit.groups(count: examples.count, links: links)
        let held = LeakProofSplit.split(examples, classes: 2, fraction: 0.3, groups: groups, rng: &rng)
        #expect(held[0..<6].allSatisfy { !$0 })
        #expect(held[6...].count { $0 } == 2)
    }
}
