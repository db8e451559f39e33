import Catalog
import Embedding
import Foundation
import HubCore
import Training

/// One thing the hub asks phones to photograph next: which label, how many, why, and examples.
public struct Quest: Sendable, Codable, Equatable {
    public var label: String
    /// `model.low_recall`, `model.confused`, `cluster.sparse` or `watchlist.near`.
    public var reason: String
    /// Photos asked for.
    public var want: Int
    /// Higher first; the order of the list.
    public var priority: Double
    /// What to photograph, for a person holding the phone.
    public var message: String
    /// Image ids to show as examples (their thumbnails: `/v1/images/{id}/thumbnail`).
    public var examples: [String]
    public var modelId: String?
    public var recall: Double?
    public var confusedWith: String?
}

/// Collection quests: after each training run the hub knows where its model is weak — classes it finds
/// too few of, pairs it confuses — and its catalog knows which kinds of photo a label has few of (small
/// clusters) and which labels are close to a watch-list threshold. `GET /v1/quests` publishes that, per
/// label, so phones collect what the next model needs rather than more of what it already knows.
public struct Quests: Sendable {
    let catalog: Catalog
    /// A class the newest model covering it finds less often than this is asked for (`model.low_recall`).
    public var targetRecall = 0.9
    /// A label is asked for when its images mistaken for another are at least this share of its
    /// validation images (and at least 2) (`model.confused`).
    public var confusedShare = 0.15
    /// Clusters under this share of a label's images are sparse (`cluster.sparse`).
    public var sparseShare = 0.1
    /// Watches at least this far to their threshold are close (`watchlist.near`).
    public var nearWatch = 0.5

    public init(catalog: Catalog) { self.catalog = catalog }

    /// Every open quest, highest priority first. `mayRead` filters the example images (a supplier sees its
    /// own uploads only).
    public func list(mayRead: (ImageRecord) -> Bool = { _ in true }) throws -> [Quest] {
        var quests: [Quest] = []
        let labels = Dictionary(try catalog.labelsById().values.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let clusters = try catalog.allLabelClusters()
        // Each label's stored clusters, read once for the examples and the sparse-cluster quests.
        let groups = clusters.compactMapValues { try? JSONDecoder().decode([Clustering.Cluster].self, from: Data($0.clusters.utf8)) }

        func examples(_ label: LabelRecord, preferring ids: [String] = []) throws -> [String] {
            var pool = ids
            if pool.isEmpty, let found = groups[label.id!] {
                pool = found.flatMap { $0.representatives.prefix(2) }
            }
            if pool.isEmpty { pool = try catalog.newestAccepted(labelId: label.id!, limit: 8).map(\.id) }
            let readable = try catalog.images(ids: Array(pool.prefix(16))).filter(mayRead).map(\.id)
            return pool.filter { readable.contains($0) }.prefix(4).map { $0 }
        }

        // The newest model that covers each label speaks for it.
        var covered = Set<String>()
        for model in try catalog.models().sorted(by: { $0.createdAt > $1.createdAt }) {
            guard let report = try? TrainingReport(stored: model.report) else { continue }
            // Out-of-fold figures (every image, judged by a model that never saw it) when the report has
            // them; else the validation split's.
            let matrix = report.crossValidatedConfusion ?? report.confusion
            for (i, reported) in report.perClass.enumerated() where !covered.contains(reported.label) && i < matrix.count {
                guard let label = labels[reported.label] else { continue }
                let support = matrix[i].reduce(0, +)
                let c = (label: reported.label, support: support, trainImages: reported.trainImages,
                         recall: support > 0 && i < matrix[i].count ? Double(matrix[i][i]) / Double(support) : reported.recall)
                if c.support > 0, c.recall < targetRecall {
                    let want = min(200, max(5, Int((Double(c.trainImages) * (targetRecall - c.recall) * 2 - 1e-9).rounded(.up))))
                    quests.append(Quest(label: c.label, reason: "model.low_recall", want: want, priority: 1 + targetRecall - c.recall,
                                        message: "More photos of \(c.label): the model finds \(Int((c.recall * 100).rounded()))% of them.",
                                        examples: try examples(label), modelId: model.id, recall: c.recall, confusedWith: nil))
                }
                if c.support > 0 {
                    for (j, n) in matrix[i].enumerated() where j != i && j < report.labels.count {
                        let share = Double(n) / Double(c.support)
                        guard n >= 2, share >= confusedShare else { continue }
                        let other = report.labels[j]
                        quests.append(Quest(label: c.label, reason: "model.confused", want: max(5, 2 * n), priority: 0.5 + share,
                                            message: "Photos of \(c.label) that show what tells it from \(other): the model took \(n) of \(c.support) for \(other).",
                                            examples: try examples(label), modelId: model.id, recall: c.recall, confusedWith: other))
                    }
                }
            }
            covered.formUnion(report.labels)
        }

        // Kinds of photo a label has few of: its small clusters, with their representatives as examples.
        for label in labels.values {
            guard let record = clusters[label.id!], record.imageCount > 0, let found = groups[label.id!], found.count >= 2 else { continue }
            let typical = found.map(\.members.count).sorted()[found.count / 2]
            for cluster in found where Double(cluster.members.count) < sparseShare * Double(record.imageCount) {
                quests.append(Quest(label: label.name, reason: "cluster.sparse", want: max(3, typical - cluster.members.count),
                                    priority: 0.3 + (1 - Double(cluster.members.count) / Double(max(1, typical))) * 0.2,
                                    message: "More photos of \(label.name) like these: the hub has \(cluster.members.count) of this kind, \(typical) of a typical one.",
                                    examples: try examples(label, preferring: cluster.representatives), modelId: nil, recall: nil, confusedWith: nil))
            }
        }

        // Labels close to a watch-list threshold: someone is waiting for them.
        let names = Dictionary(labels.values.map { ($0.id!, $0) }, uniquingKeysWith: { a, _ in a })
        var watched = Set<Int64>()
        for (watch, accepted) in try catalog.openWatches() where !watched.contains(watch.labelId) {
            guard let label = names[watch.labelId], accepted < watch.threshold,
                  Double(accepted) >= nearWatch * Double(watch.threshold) else { continue }
            watched.insert(watch.labelId)
            quests.append(Quest(label: label.name, reason: "watchlist.near", want: watch.threshold - accepted,
                                priority: 0.4 + Double(accepted) / Double(watch.threshold) * 0.2,
                                message: "\(watch.threshold - accepted) more accepted photos of \(label.name) reach a watch-list threshold of \(watch.threshold).",
                                examples: try examples(label), modelId: nil, recall: nil, confusedWith: nil))
        }
        return quests.sorted { $0.priority != $1.priority ? $0.priority > $1.priority : ($0.label, $0.reason) < ($1.label, $1.reason) }
    }
}
