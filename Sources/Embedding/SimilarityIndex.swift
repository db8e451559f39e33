import Foundation
import Synchronization

/// One stored embedding as the catalog hands it over: `accepted` false removes the image from the index.
public struct IndexRow: Sendable {
    /// The catalog's sequence number of the row (grows with every write).
    public let seq: Int64
    public let imageId: String
    public let labelId: Int64
    public let accepted: Bool
    public let vector: [Float]

    public init(seq: Int64, imageId: String, labelId: Int64, accepted: Bool, vector: [Float]) {
        self.seq = seq
        self.imageId = imageId
        self.labelId = labelId
        self.accepted = accepted
        self.vector = vector
    }
}

/// A neighbour found in the index.
public struct Neighbour: Sendable, Equatable {
    public let imageId: String
    public let labelId: Int64
    public let similarity: Float
}

/// How much an embedding looks like one label's images: the mean cosine similarity of its `k` nearest
/// accepted images in that label.
public struct LabelScore: Sendable, Equatable {
    public let labelId: Int64
    public let score: Float
    public let count: Int
}

/// The accepted images' embeddings in memory, searched exactly (brute force over unit vectors: a few
/// milliseconds for tens of thousands of images). The catalog is the truth: the index follows it through
/// `apply` with rows newer than `watermark`, so every process (API node or worker) can catch up.
public final class SimilarityIndex: Sendable {
    private struct State {
        var ids: [String] = []
        var labels: [Int64] = []
        var matrix: [Float] = []
        var position: [String: Int] = [:]
        var perLabel: [Int64: Int] = [:]
        var watermark: Int64 = 0
    }
    public let dimensions: Int
    private let state = Mutex(State())

    public init(dimensions: Int) { self.dimensions = dimensions }

    /// The newest catalog sequence number applied.
    public var watermark: Int64 { state.withLock { $0.watermark } }
    public var count: Int { state.withLock { $0.ids.count } }
    public func count(label: Int64) -> Int { state.withLock { $0.perLabel[label] ?? 0 } }
    /// Labels with at least one indexed image.
    public func labels() -> [Int64] { state.withLock { s in s.perLabel.keys.sorted() } }

    /// Applies catalog rows in sequence order (a later row for an image replaces the earlier one). Rows at
    /// or below the watermark are skipped, so overlapping catch-ups applied in any order give the same index.
    public func apply(_ rows: [IndexRow]) {
        state.withLock { s in
            for row in rows.sorted(by: { $0.seq < $1.seq }) where row.seq > s.watermark {
                s.watermark = row.seq
                Self.remove(row.imageId, from: &s, dimensions: dimensions)
                guard row.accepted, row.vector.count == dimensions else { continue }
                s.position[row.imageId] = s.ids.count
                s.ids.append(row.imageId)
                s.labels.append(row.labelId)
                s.matrix.append(contentsOf: row.vector)
                s.perLabel[row.labelId, default: 0] += 1
            }
        }
    }

    private static func remove(_ id: String, from s: inout State, dimensions d: Int) {
        guard let at = s.position.removeValue(forKey: id) else { return }
        let last = s.ids.count - 1
        let label = s.labels[at]
        // A label with no rows left leaves the count too, so `labels()` lists only labels with rows.
        if let n = s.perLabel[label], n > 1 { s.perLabel[label] = n - 1 } else { s.perLabel[label] = nil }
        if at != last {
            s.ids[at] = s.ids[last]
            s.labels[at] = s.labels[last]
            s.matrix.replaceSubrange(at * d..<(at + 1) * d, with: s.matrix[last * d..<(last + 1) * d])
            s.position[s.ids[at]] = at
        }
        s.ids.removeLast()
        s.labels.removeLast()
        s.matrix.removeLast(d)
    }

    /// Similarity of `query` to every indexed image (optionally one label's), skipping `excluding`.
    private func scan(_ query: [Float], label: Int64?, excluding: String?) -> [Neighbour] {
        precondition(query.count == dimensions)
        return state.withLock { s in
            var out: [Neighbour] = []
            out.reserveCapacity(label.map { s.perLabel[$0] ?? 0 } ?? s.ids.count)
            s.matrix.withUnsafeBufferPointer { m in
                query.withUnsafeBufferPointer { q in
                    for i in s.ids.indices where (label == nil || s.labels[i] == label) && s.ids[i] != excluding {
                        let sim = Vectors.dot(q.baseAddress!, m.baseAddress! + i * dimensions, dimensions)
                        out.append(Neighbour(imageId: s.ids[i], labelId: s.labels[i], similarity: sim))
                    }
                }
            }
            return out
        }
    }

    /// The `k` most similar accepted images, best first.
    public func nearest(to query: [Float], k: Int, label: Int64? = nil, excluding: String? = nil) -> [Neighbour] {
        Array(scan(query, label: label, excluding: excluding)
            .sorted { $0.similarity != $1.similarity ? $0.similarity > $1.similarity : $0.imageId < $1.imageId }
            .prefix(k))
    }

    /// Every label's score for `query` (mean similarity of its `k` nearest members), best first.
    public func labelScores(for query: [Float], k: Int, excluding: String? = nil) -> [LabelScore] {
        var byLabel: [Int64: [Float]] = [:]
        for n in scan(query, label: nil, excluding: excluding) { byLabel[n.labelId, default: []].append(n.similarity) }
        return byLabel.map { label, sims in
            let top = sims.sorted(by: >).prefix(k)
            return LabelScore(labelId: label, score: top.reduce(0, +) / Float(top.count), count: sims.count)
        }.sorted { $0.score != $1.score ? $0.score > $1.score : $0.labelId < $1.labelId }
    }

    /// One label's members and their vectors, ordered by image id (clustering input).
    public func members(label: Int64) -> [(imageId: String, vector: [Float])] {
        state.withLock { s in
            s.ids.indices.filter { s.labels[$0] == label }
                .map { (s.ids[$0], Array(s.matrix[$0 * dimensions..<($0 + 1) * dimensions])) }
        }.sorted { $0.imageId < $1.imageId }
    }

    /// The vector of an indexed image.
    public func vector(of imageId: String) -> [Float]? {
        state.withLock { s in s.position[imageId].map { Array(s.matrix[$0 * dimensions..<($0 + 1) * dimensions]) } }
    }
}
