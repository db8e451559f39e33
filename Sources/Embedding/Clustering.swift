import Foundation
import HubCore

/// A label's images grouped by k-means on their embeddings, with outliers.
public struct Clustering: Sendable {
    public struct Cluster: Sendable, Codable, Equatable {
        public let members: [String]
        /// The members nearest the centroid, best first.
        public let representatives: [String]
    }
    public struct Outlier: Sendable, Codable, Equatable {
        public let imageId: String
        /// Cosine distance to the nearest centroid.
        public let distance: Float
    }
    public let k: Int
    /// Mean silhouette of the chosen k (cosine distance); 0 when k = 1.
    public let silhouette: Float
    public let clusters: [Cluster]
    public let outliers: [Outlier]
}

/// Spherical k-means (unit vectors, cosine) with k-means++ seeding from a fixed seed: the same input
/// gives the same clusters. k is chosen by the best mean silhouette over `kRange`; below
/// `minSilhouette` the label is one group. Outliers lie beyond Q3 + 1.5·IQR of the distances to the
/// nearest centroid.
public enum KMeans {
    /// A k whose smallest cluster has fewer than `minClusterSize` members is not considered: a lone odd
    /// image is an outlier, not a sub-group.
    public static func cluster(_ items: [(imageId: String, vector: [Float])], kRange: ClosedRange<Int> = 2...8,
                               minSilhouette: Float = 0.1, minClusterSize: Int = 3, seed: UInt64 = 42,
                               representatives: Int = 3) -> Clustering {
        let vectors = items.map(\.vector)
        let n = vectors.count
        var best: (k: Int, assign: [Int], centroids: [[Float]], silhouette: Float)?
        if n >= 4 {
            // The silhouette of every k compares the same pairs: their distances are computed once.
            let pairs = SilhouettePairs(vectors)
            for k in kRange where k < n {
                let (assign, centroids) = fit(vectors, k: k, seed: seed &+ UInt64(k))
                let sizes = (0..<k).map { c in assign.count { $0 == c } }
                if sizes.min()! < minClusterSize { continue }
                let s = pairs.silhouette(assign, k: k)
                if best == nil || s > best!.silhouette + 1e-6 { best = (k, assign, centroids, s) }
            }
        }
        if best == nil || best!.silhouette < minSilhouette {
            let (assign, centroids) = fit(vectors, k: 1, seed: seed)
            best = (1, assign, centroids, 0)
        }
        let chosen = best!
        var distance = [Float](repeating: 0, count: n)
        for i in 0..<n { distance[i] = 1 - chosen.centroids.map { Vectors.dot(vectors[i], $0) }.max()! }
        var clusters: [Clustering.Cluster] = []
        for c in 0..<chosen.k {
            let members = (0..<n).filter { chosen.assign[$0] == c }.sorted { distance[$0] < distance[$1] }
            guard !members.isEmpty else { continue }
            clusters.append(.init(members: members.map { items[$0].imageId }.sorted(),
                                  representatives: members.prefix(representatives).map { items[$0].imageId }))
        }
        clusters.sort { $0.members.count != $1.members.count ? $0.members.count > $1.members.count : $0.members[0] < $1.members[0] }
        let sorted = distance.sorted()
        var outliers: [Clustering.Outlier] = []
        if n >= 8 {
            let q1 = sorted[n / 4], q3 = sorted[(3 * n) / 4]
            let fence = q3 + 1.5 * (q3 - q1)
            outliers = (0..<n).filter { distance[$0] > fence }
                .map { Clustering.Outlier(imageId: items[$0].imageId, distance: distance[$0]) }
                .sorted { $0.distance > $1.distance }
        }
        return Clustering(k: chosen.k, silhouette: chosen.silhouette, clusters: clusters, outliers: outliers)
    }

    /// Lloyd iterations from k-means++ seeds; centroids are kept unit length.
    static func fit(_ v: [[Float]], k: Int, seed: UInt64, iterations: Int = 50) -> ([Int], [[Float]]) {
        var rng = SeededRandom(seed: seed)
        let n = v.count
        var centroids = [v[Int(rng.next() % UInt64(n))]]
        var nearest = v.map { 1 - Vectors.dot($0, centroids[0]) }
        while centroids.count < k {
            let total = nearest.reduce(0) { $0 + Double(max(0, $1) * max(0, $1)) }
            var target = Double(rng.next() % 1_000_000) / 1_000_000 * total
            var pick = n - 1
            for i in 0..<n {
                target -= Double(max(0, nearest[i]) * max(0, nearest[i]))
                if target <= 0 { pick = i; break }
            }
            centroids.append(v[pick])
            for i in 0..<n { nearest[i] = min(nearest[i], 1 - Vectors.dot(v[i], v[pick])) }
        }
        var assign = [Int](repeating: -1, count: n)
        for _ in 0..<iterations {
            var changed = false
            for i in 0..<n {
                var bestC = 0, bestS = -Float.infinity
                for c in 0..<k {
                    let s = Vectors.dot(v[i], centroids[c])
                    if s > bestS { bestS = s; bestC = c }
                }
                if assign[i] != bestC { assign[i] = bestC; changed = true }
            }
            if !changed { break }
            // Each centroid the sum of its members, added in member order, then made unit length.
            let d = v[0].count
            var sums = [Float](repeating: 0, count: k * d)
            sums.withUnsafeMutableBufferPointer { sums in
                for i in 0..<n {
                    let row = sums.baseAddress! + assign[i] * d
                    v[i].withUnsafeBufferPointer { x in for j in 0..<d { row[j] += x[j] } }
                }
            }
            for c in 0..<k {
                var sum = Array(sums[c * d..<(c + 1) * d])
                Vectors.normalize(&sum)
                if sum.contains(where: { $0 != 0 }) { centroids[c] = sum }
            }
        }
        return (assign, centroids)
    }

}

/// Mean silhouettes with cosine distance, over at most 400 evenly spaced points: the distances between
/// them are computed once for every k tried.
struct SilhouettePairs {
    let sample: [Int]
    /// `distance[a * sample.count + b]`: the distance between `sample[a]` and `sample[b]`.
    let distance: [Float]

    init(_ v: [[Float]]) {
        let n = v.count
        let step = max(1, n / 400)
        let sample = Array(stride(from: 0, to: n, by: step))
        let m = sample.count
        var distance = [Float](repeating: 0, count: m * m)
        distance.withUnsafeMutableBufferPointer { out in
            for a in 0..<m {
                for b in (a + 1)..<max(a + 1, m) {
                    let d = 1 - Vectors.dot(v[sample[a]], v[sample[b]])
                    out[a * m + b] = d
                    out[b * m + a] = d
                }
            }
        }
        self.sample = sample
        self.distance = distance
    }

    /// Mean silhouette of the assignment `assign` (of every point) into `k` clusters.
    func silhouette(_ assign: [Int], k: Int) -> Float {
        let m = sample.count
        var total: Float = 0
        var sum = [Float](repeating: 0, count: k), count = [Int](repeating: 0, count: k)
        for a in 0..<m {
            for c in 0..<k { sum[c] = 0; count[c] = 0 }
            for b in 0..<m where b != a {
                let c = assign[sample[b]]
                sum[c] += distance[a * m + b]
                count[c] += 1
            }
            let own = assign[sample[a]]
            guard count[own] > 0 else { continue }  // a singleton's silhouette is 0
            let within = sum[own] / Float(count[own])
            var nearest: Float?
            for c in 0..<k where c != own && count[c] > 0 {
                let mean = sum[c] / Float(count[c])
                nearest = nearest.map { min($0, mean) } ?? mean
            }
            let b = nearest ?? within
            total += (b - within) / max(within, b, 1e-9)
        }
        return total / Float(m)
    }
}
