import Catalog
import Embedding
import Foundation
import HubCore
import Logging

/// The embed stage and everything that uses the embeddings: semantic near duplicates and label checks
/// at commit time, background re-checks of images accepted before their label could be judged,
/// per-label clusters and outliers, and similarity search.
public final class EmbedStage: Sendable {
    public let backbone: Backbone
    public let embedder: Embedder
    public let index: SimilarityIndex
    public let policy: LabelCheckPolicy
    let catalog: Catalog
    let settings: HubSettings
    let logger: Logger

    public init(backbone: Backbone, catalog: Catalog, settings: HubSettings, logger: Logger = Logger(label: "imagehub.embed")) {
        self.backbone = backbone
        self.embedder = Embedder(backbone: backbone, batchSize: settings.embeddingBatchSize,
                                 maxWait: .milliseconds(settings.embeddingMaxWaitMs))
        self.index = SimilarityIndex(dimensions: backbone.dimensions)
        self.policy = LabelCheckPolicy(minImages: settings.verifyMinImages, neighbours: settings.verifyNeighbours,
                                       margin: Float(settings.verifyMargin))
        self.catalog = catalog
        self.settings = settings
        self.logger = logger
    }

    /// Brings the in-memory index up to date with the catalog.
    public func sync() throws {
        index.apply(try catalog.embeddingRows(after: index.watermark).map(Self.indexRow))
    }

    static func indexRow(_ row: EmbeddingRow) -> IndexRow {
        IndexRow(seq: row.seq, imageId: row.imageId, labelId: row.labelId, accepted: row.status == .accepted,
                 vector: Vectors.decode(row.vector))
    }

    /// Embeds one model input and records it in the verdict; returns the vector for `decide`.
    func embed(_ input: [Float], into verdict: inout Verdict) async throws -> [Float] {
        let embedding = try await embedder.embed(input)
        verdict.embedding = Vectors.encode(embedding.vector)
        verdict.embeddingModel = backbone.id
        verdict.tags = String(decoding: try JSONEncoder().encode(embedding.tags), as: UTF8.self)
        return embedding.vector
    }

    /// Runs inside the commit transaction: semantic near duplicate against accepted images of the same
    /// label, then the label check. Either moves an otherwise accepted image to quarantine.
    func decide(_ v: inout Verdict, _ context: CommitContext, vector: [Float]) {
        index.apply(context.newRows.map(Self.indexRow))
        let image = context.image
        if v.status == .accepted, v.duplicateOf == nil,
           let nearest = index.nearest(to: vector, k: 1, label: image.labelId, excluding: image.id).first,
           Double(nearest.similarity) >= settings.nearDuplicateCosine {
            v.status = .quarantined
            v.reasons.append("duplicate.near")
            v.duplicateOf = nearest.imageId
        }
        let check = policy.check(vector, label: image.labelId, imageId: image.id, in: index, related: context.relatedLabels)
        v.labelCheck = check.state.rawValue
        v.labelScore = check.score.map(Double.init)
        v.suggestedLabelId = check.suggestedLabel
        v.suggestedScore = check.suggestedScore.map(Double.init)
        if check.state == .mismatch, v.status == .accepted {
            v.status = .quarantined
            v.reasons.append("label.mismatch")
        }
    }

    /// One background pass: re-check unverified images of labels that can now be judged, and recompute
    /// the clusters of labels that changed. Safe to run on several nodes at once (both are idempotent).
    public func maintain() throws {
        try sync()
        try recheckLabels()
        try refreshClusters()
    }

    /// This node's share of maintenance when another node holds the pass: its index follows the catalog.
    public func follow() throws {
        try sync()
    }

    /// Images accepted as `unverified` are checked once their label has enough accepted images.
    func recheckLabels() throws {
        let labels = try catalog.labelsWithUnverifiedImages().filter { $0.accepted >= policy.minImages }
        guard !labels.isEmpty else { return }
        for (labelId, _) in labels {
            let related = try catalog.relatedLabelIds(labelId)
            for image in try catalog.unverifiedImages(labelId: labelId) {
                guard let vector = index.vector(of: image.id) else { continue }
                let check = policy.check(vector, label: labelId, imageId: image.id, in: index, related: related)
                guard check.state != .unverified else { continue }
                try catalog.applyLabelCheck(imageId: image.id, state: check.state.rawValue, score: check.score.map(Double.init),
                                            suggestedLabelId: check.suggestedLabel, suggestedScore: check.suggestedScore.map(Double.init))
                if check.state == .mismatch { logger.info("image \(image.id) re-checked: label.mismatch") }
            }
        }
        try sync()
    }

    /// Recomputes clusters of labels whose accepted, embedded image count moved by more than the configured fraction.
    func refreshClusters() throws {
        let stored = try catalog.allLabelClusters()
        for labelId in index.labels() where index.count(label: labelId) >= settings.clusterMinImages && !isFresh(stored[labelId]) {
            _ = try computeClusters(labelId: labelId)
        }
    }

    /// The label's clusters: the stored ones while fresh, else computed now (and stored).
    public func clusters(labelId: Int64) throws -> LabelClustersRecord? {
        try sync()
        if let old = try catalog.labelClusters(labelId: labelId), isFresh(old) { return old }
        return try computeClusters(labelId: labelId)
    }

    /// Stored clusters stay while this backbone made them and their label has not moved by more than
    /// `clusters.recomputeFraction`.
    func isFresh(_ stored: LabelClustersRecord?) -> Bool {
        guard let stored, stored.model == backbone.id else { return false }
        let count = index.count(label: stored.labelId)
        return Double(abs(count - stored.imageCount)) <= settings.clusterRecomputeFraction * Double(stored.imageCount)
    }

    func computeClusters(labelId: Int64) throws -> LabelClustersRecord? {
        let members = index.members(label: labelId)
        guard members.count >= settings.clusterMinImages else { return nil }
        let result = KMeans.cluster(members, kRange: 2...settings.clusterMaxK)
        let encoder = JSONEncoder()
        let record = LabelClustersRecord(
            labelId: labelId, imageCount: members.count, k: result.k, silhouette: Double(result.silhouette),
            clusters: String(decoding: try encoder.encode(result.clusters), as: UTF8.self),
            outliers: String(decoding: try encoder.encode(result.outliers), as: UTF8.self),
            model: backbone.id, computedAt: Date())
        try catalog.saveLabelClusters(record)
        return record
    }

    /// The accepted images most similar to `imageId` (any label).
    public func similar(to imageId: String, k: Int) throws -> [Neighbour]? {
        try sync()
        let vector: [Float]
        if let indexed = index.vector(of: imageId) {
            vector = indexed
        } else if let stored = try catalog.embedding(imageId: imageId) {
            vector = Vectors.decode(stored.vector)
        } else {
            return nil
        }
        return index.nearest(to: vector, k: k, excluding: imageId)
    }
}
