import BlobStore
import Catalog
import Embedding
import Foundation
import HubCore
import Imaging
import Logging
import Synchronization
import Training

/// The embed stage and everything that uses the embeddings: semantic near duplicates and label checks
/// at commit time, background re-checks of images accepted before their label could be judged,
/// per-label clusters and outliers, and similarity search.
public final class EmbedStage: Sendable {
    public let backbone: Backbone
    public let embedder: Embedder
    public let index: SimilarityIndex
    /// The calibrated label check, refitted in the background (nil until two labels have enough images).
    let labelModel = Mutex<LabelModel?>(nil)
    /// The share of wrong labels recent judgements point to (`labels.wrongPriorHalfLife`).
    let streamPrior: Mutex<StreamPrior>
    let catalog: Catalog
    let blobs: any BlobStore
    let settings: HubSettings
    /// Keypoints at each scale of the images that came up as candidates lately, and of recent uploads.
    let featureCache = Mutex(FeatureCache(capacity: 1024))
    /// The sequence number up to which `reembedStale` has looked.
    let reembedCursor = Mutex<Int64>(0)
    /// When the index last caught up with every row in the catalog (a `sync`, or a commit's rows).
    let caughtUp = Mutex<ContinuousClock.Instant?>(nil)
    let logger: Logger

    public init(backbone: Backbone, catalog: Catalog, blobs: any BlobStore, settings: HubSettings, logger: Logger = Logger(label: "imagehub.embed")) {
        self.backbone = backbone
        self.embedder = Embedder(backbone: backbone, batchSize: settings.embeddingBatchSize,
                                 maxWait: .milliseconds(settings.embeddingMaxWaitMs))
        self.index = SimilarityIndex(dimensions: backbone.dimensions)
        self.catalog = catalog
        self.blobs = blobs
        self.settings = settings
        self.logger = logger
        self.streamPrior = Mutex(StreamPrior(halfLife: settings.labelWrongPriorHalfLife, floor: Float(settings.labelWrongPrior)))
    }

    /// Brings the in-memory index up to date with the catalog.
    public func sync() throws {
        let start = ContinuousClock.now
        index.apply(try catalog.embeddingRows(after: index.watermark).map(indexRow))
        caughtUp.withLock { $0 = start }
    }

    /// How old a catch-up may be when a near-duplicate check begins. The index learns this process's own
    /// commits as they happen (`learn`, and each commit's catch-up); this bounds how late it learns other
    /// processes' commits before the check by local features (later ones are judged by cosine at the commit).
    static let catchUpEvery: Duration = .milliseconds(200)

    /// `sync`, unless the index caught up less than `catchUpEvery` ago.
    func syncIfStale() throws {
        if let last = caughtUp.withLock({ $0 }), ContinuousClock.now - last < Self.catchUpEvery { return }
        try sync()
    }

    /// An embedding this process has just committed: the index takes it at once.
    public func learn(_ row: EmbeddingRow) {
        index.apply([indexRow(row)])
    }

    /// A catalog row as the index takes it: a vector another backbone made is never compared with this one's
    /// (the row takes the image out of the index until it is embedded again, see `reembedStale`).
    func indexRow(_ row: EmbeddingRow) -> IndexRow {
        IndexRow(seq: row.seq, imageId: row.imageId, labelId: row.labelId,
                 accepted: row.status == .accepted && row.model == backbone.id, vector: Vectors.decode(row.vector))
    }

    /// Embeds one model input and records it in the verdict; returns the vector for `decide`.
    func embed(_ input: [Float], into verdict: inout Verdict) async throws -> [Float] {
        let embedding = try await embedder.embed(input)
        verdict.embedding = Vectors.encode(embedding.vector)
        verdict.embeddingModel = backbone.id
        verdict.tags = String(decoding: try JSONEncoder().encode(embedding.tags), as: UTF8.self)
        return embedding.vector
    }

    /// What the geometric check found before the commit: the candidates it looked at, and the one it
    /// found to be the original, if any.
    public struct NearDuplicateCheck: Sendable {
        public var examined: Set<String> = []
        public var original: String?
    }

    /// The near-duplicate candidates of an upload: accepted images of its label whose cosine to it is at
    /// least `duplicates.candidateCosine`, nearest first, at most `duplicates.maxCandidates`. Each is
    /// checked by local features (ORB keypoints, and one similarity transform explaining enough of their
    /// matches: a crop, resize or re-encoding passes, another photo of the same scene does not; a glance at a
    /// smaller size sets most other photos aside before the full-size keypoints are found); where either
    /// side has too few keypoints (a flat picture) or the candidate's rendition cannot be read, the cosine
    /// rule (`duplicates.minCosine`) decides.
    func checkNearDuplicates(_ image: ImageRecord, verdict: Verdict, vector: [Float], pixels: KeptPixels?) throws -> NearDuplicateCheck {
        var result = NearDuplicateCheck()
        guard verdict.status == .accepted, verdict.duplicateOf == nil, let pixels else { return result }
        // The index learns this process's commits as they happen and other processes' rows at each commit and
        // in the background pass: catch up unless that was a moment ago, so that what was committed lately is a
        // candidate here rather than judged by cosine at the commit.
        try syncIfStale()
        let candidates = index.nearest(to: vector, k: settings.nearDuplicateMaxCandidates, label: image.labelId, excluding: image.id)
            .filter { Double($0.similarity) >= settings.nearDuplicateCandidateCosine }
        guard !candidates.isEmpty else { return result }
        // A glance first (keypoints of a smaller picture): a candidate whose quick look there keeps a handful of
        // inliers is another photo, set aside without the full detection; a copy keeps dozens. Where either
        // glance has too few keypoints to tell, the full match decides, as it does every candidate that passes.
        let glance = try LocalFeatures(glancesAtThumbnails ? pixels.thumbnail : pixels.upright, scale: .glance)
        // If this upload is accepted it will be a candidate itself: its keypoints are at hand now, and the
        // first upload that needs them is spared decoding its rendition.
        featureCache.withLock { $0.put(.init(image.id, .glance), glance) }
        var full: LocalFeatures?
        func mine() throws -> LocalFeatures {
            if let full { return full }
            let made = try LocalFeatures(pixels.upright)
            featureCache.withLock { $0.put(.init(image.id, .full), made) }
            full = made
            return made
        }
        let settledBelow = max(4, settings.nearDuplicateMinInliers / 5)
        for candidate in candidates {
            result.examined.insert(candidate.imageId)
            if let theirs = try? features(of: candidate.imageId, at: .glance),
               min(glance.count, theirs.count) >= 2 * settings.nearDuplicateMinInliers {
                let look = try glance.match(theirs, strongest: LocalFeatures.quickLook)
                if look.inliers < settledBelow {
                    logger.debug("near-duplicate candidate \(candidate.imageId) of \(image.id): cosine \(candidate.similarity), set aside at a glance (\(look.matches) matches, \(look.inliers) inliers)")
                    continue
                }
            }
            // Without a readable rendition, or without texture enough for keypoints, the cosine rule decides.
            guard let theirs = try? features(of: candidate.imageId),
                  min(try mine().count, theirs.count) >= 2 * settings.nearDuplicateMinInliers else {
                if Double(candidate.similarity) >= settings.nearDuplicateCosine { result.original = candidate.imageId; break }
                continue
            }
            let match = try mine().match(theirs)
            logger.debug("near-duplicate candidate \(candidate.imageId) of \(image.id): cosine \(candidate.similarity), \(match.matches) matches, \(match.inliers) inliers, scale \(match.scale), overlapping \(match.overlapping)")
            if match.isCopy(minInliers: settings.nearDuplicateMinInliers) {
                result.original = candidate.imageId
                break
            }
        }
        return result
    }

    /// Whether glances are taken from thumbnails (an upload's in memory, a candidate's stored one): where
    /// thumbnails are at least the glance's size, as they are by default (256 pixels). A thumbnail is made
    /// anyway and small to decode; the canonical rendition is the rest of the time.
    public var glancesAtThumbnails: Bool { settings.thumbnailSide >= LocalFeatures.Scale.glance.side }

    /// The local features of an accepted image at `scale`: from its canonical rendition, or for a glance
    /// from its thumbnail (`glancesAtThumbnails`) (kept in the cache: the images that keep coming up as
    /// candidates, and recent uploads' own).
    func features(of imageId: String, at scale: LocalFeatures.Scale = .full) throws -> LocalFeatures {
        let cacheKey = FeatureCache.Key(imageId, scale)
        if let cached = featureCache.withLock({ $0.get(cacheKey) }) { return cached }
        let fromThumbnail = scale == .glance && glancesAtThumbnails
        guard let record = try catalog.image(id: imageId), let key = fromThumbnail ? record.thumbnailKey : record.canonicalKey else {
            throw BackboneError(description: "image \(imageId) has no \(fromThumbnail ? "thumbnail" : "canonical rendition")")
        }
        let bytes = try blobs.read(key)
        let features = try LocalFeatures(try Image.decode(bytes, longSide: scale.side, strictness: .error) { $0 }, scale: scale)
        featureCache.withLock { $0.put(cacheKey, features) }
        return features
    }

    /// Runs inside the commit transaction: semantic near duplicate against accepted images of the same
    /// label, then the label check. Either moves an otherwise accepted image to quarantine. `checked` is
    /// what the geometric check decided before the commit; neighbours it did not see (committed since, on
    /// any node) are judged by cosine alone, so that two copies committed at the same moment are never both
    /// accepted.
    func decide(_ v: inout Verdict, _ context: CommitContext, vector: [Float], checked: NearDuplicateCheck = .init()) {
        let start = ContinuousClock.now
        index.apply(context.newRows.map(indexRow))
        // Inside the transaction that holds the commit lock, these are all rows committed so far.
        caughtUp.withLock { $0 = start }
        let image = context.image
        if v.status == .accepted, v.duplicateOf == nil, let original = nearDuplicate(of: image, vector: vector, checked: checked) {
            v.status = .quarantined
            v.reasons.append("duplicate.near")
            v.duplicateOf = original
        }
        let check = labelCheck(vector, label: image.labelId, related: context.relatedLabels, arriving: image.id)
        v.labelCheck = check.state.rawValue
        v.labelScore = check.score.map(Double.init)
        v.suggestedLabelId = check.suggestedLabel
        v.suggestedScore = check.suggestedScore.map(Double.init)
        // An image quarantined for another reason too (its quality, a decoder warning, a near duplicate) carries
        // this one as well: the reviewer sees every reason, and the label it seems to show.
        if check.state == .mismatch, v.status == .accepted || v.status == .quarantined {
            v.status = .quarantined
            v.reasons.append("label.mismatch")
        }
    }

    /// One background pass: re-check unverified images of labels that can now be judged, and recompute
    /// the clusters of labels that changed. Safe to run on several nodes at once (both are idempotent).
    public func maintain() throws {
        try sync()
        try reembedStale()
        // The label model's refit and its re-checks, and the clusters, need nothing of each other: they run
        // side by side (an import's last pass ran them one after the other, one core idle, for a tenth of the
        // import of 300 small photos). The clusters are made from the index as the pass finds it: an image
        // this pass's re-checks quarantine leaves them at their next recompute, as one a later pass
        // quarantines always did.
        try sideBySide({
            try refreshLabelModel()
            try recheckLabels()
            try recheckStream()
        }, { [self] in try refreshClusters() })
    }

    /// Images embedded by another backbone (the hub was moved to other weights, or another engine precision)
    /// are embedded again from their canonical renditions, `batch` a pass, oldest first, while the hub keeps
    /// serving; until then the index leaves them out. Images whose rendition cannot be read are passed over
    /// until the next start. Returns how many were embedded.
    @discardableResult
    public func reembedStale(batch: Int = 32) throws -> Int {
        let after = reembedCursor.withLock { $0 }
        let stale = try catalog.staleEmbeddings(model: backbone.id, after: after, limit: batch)
        guard let last = stale.last else { return 0 }
        reembedCursor.withLock { $0 = last.seq }
        var inputs: [Float] = [], ids: [String] = []
        for image in stale {
            do {
                guard let key = image.canonicalKey else { throw BackboneError(description: "no canonical rendition") }
                inputs += try Image.modelInput(try blobs.read(key), spec: backbone.input)
                ids.append(image.imageId)
            } catch {
                logger.warning("image \(image.imageId) embedded by \(image.model) cannot be embedded again: \(error)")
            }
        }
        guard !ids.isEmpty else { return 0 }
        let embeddings = try backbone.embed(inputs, count: ids.count)
        for (id, embedding) in zip(ids, embeddings) {
            try catalog.replaceEmbedding(imageId: id, model: backbone.id, vector: Vectors.encode(embedding.vector))
        }
        try sync()
        logger.info("embedded \(ids.count) images again with \(backbone.id)")
        return ids.count
    }

    /// This node's share of maintenance when another node holds the pass: its index follows the catalog.
    public func follow() throws {
        try sync()
        try refreshLabelModel()
    }

    /// The original of a near duplicate at commit time: the one the local features confirmed, if still
    /// accepted; else the nearest neighbour the check never saw, if its cosine reaches `duplicates.minCosine`.
    func nearDuplicate(of image: ImageRecord, vector: [Float], checked: NearDuplicateCheck) -> String? {
        if let original = checked.original, index.vector(of: original) != nil { return original }
        let unseen = index.nearest(to: vector, k: checked.examined.count + 1, label: image.labelId, excluding: image.id)
            .first { !checked.examined.contains($0.imageId) }
        guard let unseen, Double(unseen.similarity) >= settings.nearDuplicateCosine else { return nil }
        return unseen.imageId
    }

    /// Whether a picture with this vector shows `label` (`related`: the label's ancestors and descendants).
    /// Unverified while the label has fewer than `labels.verifyMinImages` accepted images, or while the
    /// label model predates it (the background re-check judges it once the model is refitted). An image the
    /// model was fitted on (`imageId`) is judged by the fold that did not see it.
    /// `arriving`: the id of an upload judged as it is committed; its evidence joins the stream's estimate of
    /// how many labels are wrong (re-checks of images already in the catalog, a label's first ones mostly, do
    /// not), and if it passes, it may be judged again should that estimate rise (`recheckStream`).
    public func labelCheck(_ vector: [Float], label: Int64, related: Set<Int64>, imageId: String? = nil, arriving: String? = nil) -> LabelCheck {
        labelCheck(vector, label: label, related: related, imageId: imageId, model: labelModel.withLock { $0 }, arriving: arriving)
    }

    /// `labelCheck` by `model` (a pass that looks at many images judges them all by one model).
    func labelCheck(_ vector: [Float], label: Int64, related: Set<Int64>, imageId: String?, model: LabelModel?,
                    arriving: String? = nil) -> LabelCheck {
        guard index.count(label: label) >= settings.verifyMinImages else { return LabelCheck(state: .unverified) }
        if let judged = model?.judge(vector, label: label, related: related, imageId: imageId, prior: wrongLabelPrior) {
            if let arriving, let evidence = judged.evidence { streamPrior.withLock { $0.record(evidence, imageId: arriving) } }
            return judged
        }
        // No other label to tell it from: nothing speaks against it (verified without a score; once a model
        // knows the label, the background re-check judges it).
        let others = index.labels().filter { $0 != label && !related.contains($0) && index.count(label: $0) >= settings.verifyMinImages }
        return LabelCheck(state: others.isEmpty ? .verified : .unverified)
    }

    /// The label model as last fitted (nil before two labels have enough images).
    public var currentLabelModel: LabelModel? { labelModel.withLock { $0 } }

    /// The share of wrong labels the next upload is judged by: the configured prior, or the stream's
    /// estimate where it is higher (`StreamPrior`).
    public var wrongLabelPrior: Float { streamPrior.withLock { $0.prior } }

    /// Refits the label model when the labels it can judge changed, or one of them grew or shrank by more
    /// than a tenth since the last fit (a fit takes about a second per thousand images).
    func refreshLabelModel() throws {
        let minImages = settings.verifyMinImages
        let eligible = index.labels().filter { index.count(label: $0) >= minImages }
        let current = labelModel.withLock { $0 }
        if let current, Set(current.labelIds) == Set(eligible), eligible.allSatisfy({ label in
            let now = min(index.count(label: label), LabelModel.maxPerLabel), then = current.counts[label] ?? 0
            return Double(abs(now - then)) <= 0.1 * Double(then)
        }) { return }
        if current == nil, eligible.count < 2 { return }
        var members: [Int64: [(imageId: String, vector: [Float])]] = [:]
        var related: [Int64: Set<Int64>] = [:]
        for label in eligible {
            members[label] = index.members(label: label)
            related[label] = try catalog.relatedLabelIds(label)
        }
        let model = try LabelModel.fit(members, minImages: minImages, related: related, wrongPrior: settings.labelWrongPrior)
        labelModel.withLock { $0 = model }
        if let model {
            let figures = "out-of-fold accuracy \(String(format: "%.3f", model.outOfFoldAccuracy)), temperature \(String(format: "%.2f", model.temperature)), "
                + "wrong labels among them about \(String(format: "%.0f", 100 * model.labelNoise))%"
            logger.info("label model refitted: \(model.labelIds.count) labels, \(model.counts.values.reduce(0, +)) images, \(figures), \(String(format: "%.2f", model.seconds)) s")
        }
    }

    /// An image's vector from this backbone: from the index, which holds accepted images, else (an image in
    /// quarantine) from the catalog. Nil where this backbone has not embedded it yet.
    private func vector(of image: ImageRecord) throws -> [Float]? {
        if let vector = index.vector(of: image.id) { return vector }
        guard image.status != .accepted, let row = try catalog.embedding(imageId: image.id), row.model == backbone.id else { return nil }
        let vector = Vectors.decode(row.vector)
        return vector.count == backbone.dimensions ? vector : nil
    }

    /// Images accepted as `unverified` (or quarantined for another reason before their label could be
    /// judged) are checked once their label has enough accepted images; those passed as `verified` without a
    /// score (no other label could be told from theirs then, e.g. the first labels of a bulk import) once the
    /// label model knows their label.
    func recheckLabels() throws {
        let model = labelModel.withLock { $0 }
        let labels = try catalog.labelsWithUnverifiedImages(includingUnscored: model != nil).filter { $0.accepted >= settings.verifyMinImages }
        guard !labels.isEmpty else { return }
        for (labelId, _) in labels {
            let related = try catalog.relatedLabelIds(labelId)
            let judgedByModel = model?.labelIds.contains(labelId) == true
            var results: [Catalog.LabelCheckResult] = []
            for image in try catalog.unverifiedImages(labelId: labelId, includingUnscored: judgedByModel) {
                guard let vector = try vector(of: image) else { continue }
                let check = labelCheck(vector, label: labelId, related: related, imageId: image.id, model: model)
                // Unverified still, or verified again without a model's score: nothing to store.
                guard check.state != .unverified, image.labelCheck == "unverified" || check.score != nil else { continue }
                results.append(.init(imageId: image.id, check))
                if check.state == .mismatch { logger.info("image \(image.id) re-checked: label.mismatch") }
            }
            // One transaction a label: a commit each was most of a re-check of a whole import.
            try catalog.applyLabelChecks(results)
        }
        try sync()
    }

    /// Once the stream's prior has risen to twice the configured one, the recent uploads that passed at a
    /// lower prior and that the current one would call wrong (`StreamPrior.doubtful`) are judged again by the
    /// current model at the current prior; a mismatch moves one to quarantine (`label.mismatch`) unless it was
    /// quarantined or reviewed meanwhile. A phone that starts filing a class under another has its first
    /// swaps, judged while the prior was still low, looked at again.
    func recheckStream() throws {
        let ids = streamPrior.withLock { $0.doubtful() }
        guard !ids.isEmpty, let model = labelModel.withLock({ $0 }) else { return }
        var results: [Catalog.LabelCheckResult] = []
        for id in ids {
            guard let image = try catalog.image(id: id), image.reconsiderable, let vector = index.vector(of: id) else { continue }
            let check = labelCheck(vector, label: image.labelId, related: try catalog.relatedLabelIds(image.labelId), imageId: id, model: model)
            guard check.state == .mismatch else { continue }
            results.append(.init(imageId: id, check))
            logger.info("image \(id) judged again at the stream's prior \(String(format: "%.2f", wrongLabelPrior)): label.mismatch")
        }
        guard try catalog.applyLabelChecks(results, reconsideringVerified: true) > 0 else { return }
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
        } else if let stored = try catalog.embedding(imageId: imageId), stored.model == backbone.id {
            vector = Vectors.decode(stored.vector)
        } else {
            return nil
        }
        return index.nearest(to: vector, k: k, excluding: imageId)
    }
}

/// The local features of the images that came up as candidates most recently, at each scale (least recently
/// used out).
struct FeatureCache: ~Copyable {
    struct Key: Hashable {
        let imageId: String
        let scale: LocalFeatures.Scale
        init(_ imageId: String, _ scale: LocalFeatures.Scale) { (self.imageId, self.scale) = (imageId, scale) }
    }

    let capacity: Int
    private var entries: [Key: (features: LocalFeatures, used: UInt64)] = [:]
    private var clock: UInt64 = 0

    init(capacity: Int) { self.capacity = capacity }

    mutating func get(_ id: Key) -> LocalFeatures? {
        guard let entry = entries[id] else { return nil }
        clock += 1
        entries[id] = (entry.features, clock)
        return entry.features
    }

    mutating func put(_ id: Key, _ features: LocalFeatures) {
        clock += 1
        entries[id] = (features, clock)
        if entries.count > capacity, let oldest = entries.min(by: { $0.value.used < $1.value.used })?.key {
            entries[oldest] = nil
        }
    }
}

extension Catalog.LabelCheckResult {
    /// A judgement to store (`Catalog.applyLabelChecks`).
    init(imageId: String, _ check: LabelCheck) {
        self.init(imageId: imageId, state: check.state.rawValue, score: check.score.map(Double.init),
                  suggestedLabelId: check.suggestedLabel, suggestedScore: check.suggestedScore.map(Double.init))
    }
}
