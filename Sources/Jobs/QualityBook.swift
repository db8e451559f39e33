import Catalog
import Foundation
import HubCore
import Synchronization

/// One label's quality thresholds in force and why (`GET /v1/labels/{name}/quality`).
public struct LabelQuality: Sendable, Codable, Equatable {
    public struct Threshold: Sendable, Codable, Equatable {
        /// `sharpness`, `brightness` or `contrast`; `min` or `max`; the reason code it decides.
        public var metric: String
        public var bound: String
        public var reason: String
        /// The value in force, the global one (the strictest) and the floor (the loosest).
        public var value: Double
        public var global: Double
        public var floor: Double
        /// `global` (not learnt, or the label is no laxer than the hub), `learned` (the label's own images),
        /// or `review` (held where a reviewer rejected a photo for this reason).
        public var source: String
        public var why: String
    }
    /// Accepted images learnt from (the newest, at most 5,000), those of them accepted by a reviewer after a
    /// quality quarantine, and photos a reviewer rejected after one.
    public var acceptedImages: Int
    public var reviewAccepted: Int
    public var reviewRejected: Int
    /// Whether the label has enough accepted images to learn (`quality.learn.minImages`).
    public var learning: Bool
    public var thresholds: [Threshold]
    public var computedAt: Date

    public var inForce: QualityThresholds {
        func value(_ metric: String, _ bound: String, _ fallback: Double) -> Double {
            thresholds.first { $0.metric == metric && $0.bound == bound }?.value ?? fallback
        }
        return QualityThresholds(minSharpness: value("sharpness", "min", 0), minBrightness: value("brightness", "min", 0),
                                 maxBrightness: value("brightness", "max", 255), minContrast: value("contrast", "min", 0))
    }
}

/// Quality thresholds that learn per label. A night-sky label is dark by nature, a macro label soft by
/// nature: one global threshold quarantines their every photo. A label with enough accepted images
/// (`quality.learn.minImages`) holds each minimum at the `quality.learn.quantile` quantile of its accepted
/// images (each maximum at the opposite one) — so photos a reviewer accepted out of a quality quarantine
/// relax the label once they are that share of it — but never stricter than the global threshold nor
/// laxer than the floor (`quality.floor.*`); and never so lax that a photo a reviewer rejected for that
/// reason would now pass.
public enum QualityLearning {
    struct Spec {
        let metric: String, bound: String, reason: String
        let value: @Sendable (QualitySample) -> Double
        let global: Double, floor: Double
    }

    public static func learn(accepted: [QualitySample], rejected: [QualitySample], settings: HubSettings, now: Date = Date()) -> LabelQuality {
        let g = settings.globalQuality, f = settings.qualityFloor
        let specs = [
            Spec(metric: "sharpness", bound: "min", reason: "quality.blurry", value: { $0.sharpness }, global: g.minSharpness, floor: f.minSharpness),
            Spec(metric: "brightness", bound: "min", reason: "quality.too_dark", value: { $0.brightness }, global: g.minBrightness, floor: f.minBrightness),
            Spec(metric: "brightness", bound: "max", reason: "quality.overexposed", value: { $0.brightness }, global: g.maxBrightness, floor: f.maxBrightness),
            Spec(metric: "contrast", bound: "min", reason: "quality.low_contrast", value: { $0.contrast }, global: g.minContrast, floor: f.minContrast),
        ]
        let minimum = settings.qualityLearnMinImages
        let learning = minimum > 0 && accepted.count >= minimum
        let p = settings.qualityLearnQuantile
        let thresholds = specs.map { spec -> LabelQuality.Threshold in
            let isMin = spec.bound == "min"
            var t = LabelQuality.Threshold(metric: spec.metric, bound: spec.bound, reason: spec.reason, value: spec.global,
                                           global: spec.global, floor: spec.floor, source: "global", why: "")
            guard learning else {
                t.why = minimum == 0 ? "learning is off (quality.learn.minImages = 0)"
                    : "\(accepted.count) accepted images; the label learns its own from \(minimum)"
                return t
            }
            let q = quantile(accepted.map(spec.value), isMin ? p : 1 - p)
            let learned = isMin ? max(spec.floor, min(spec.global, q)) : min(spec.floor, max(spec.global, q))
            let share = Int((p * 100).rounded())
            let figure = String(format: "%.1f", q)
            if learned != spec.global {
                t.value = learned
                t.source = "learned"
                t.why = "\(100 - share)% of the label's \(accepted.count) newest accepted images have \(spec.metric) \(isMin ? "≥" : "≤") \(figure)"
                    + (learned != q ? " (held at the floor, quality.floor)" : "")
            } else {
                t.why = "\(100 - share)% of the label's \(accepted.count) newest accepted images have \(spec.metric) \(isMin ? "≥" : "≤") \(figure): no laxer than the global threshold"
            }
            // A reviewer's rejection for this reason holds the line just past the rejected photo.
            let refused = rejected.filter { $0.reasons.contains(spec.reason) }.map(spec.value)
            if let line = isMin ? refused.max() : refused.min(), isMin ? line >= t.value : line <= t.value {
                t.value = isMin ? min(spec.global, line.nextUp) : max(spec.global, line.nextDown)
                t.source = t.value == spec.global ? "global" : "review"
                t.why = "a reviewer rejected a photo of this label with \(spec.metric) \(String(format: "%.1f", line)) as \(spec.reason)"
            }
            return t
        }
        let reviewAccepted = accepted.count { $0.reasons.contains("review.accepted") && $0.reasons.contains { $0.hasPrefix("quality.") } }
        return LabelQuality(acceptedImages: accepted.count, reviewAccepted: reviewAccepted, reviewRejected: rejected.count,
                            learning: learning, thresholds: thresholds, computedAt: now)
    }

    /// The `p` quantile (linear interpolation between order statistics).
    static func quantile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        let position = p * Double(sorted.count - 1)
        let low = Int(position.rounded(.down)), high = min(sorted.count - 1, low + 1)
        return sorted[low] + (sorted[high] - sorted[low]) * (position - Double(low))
    }
}

/// Every label's quality thresholds in force, in memory on each node: the maintenance pass (one node at a
/// time) learns the labels whose images changed and stores them in the catalog; every node reloads them.
public final class QualityBook: Sendable {
    let catalog: Catalog
    let settings: HubSettings
    private let inForce = Mutex<[Int64: QualityThresholds]>([:])
    /// The newest image write already learnt from (catalog time).
    private let watermark = Mutex<Date?>(nil)
    /// Labels learnt per pass at most (the rest wait for the next pass).
    static let labelsPerPass = 200

    public init(catalog: Catalog, settings: HubSettings) {
        self.catalog = catalog
        self.settings = settings
        try? reload()
    }

    /// The thresholds an image of `labelId` is held to now.
    public func thresholds(for labelId: Int64) -> QualityThresholds {
        inForce.withLock { $0[labelId] } ?? settings.globalQuality
    }

    /// Reads every label's stored thresholds into memory.
    public func reload() throws {
        let stored = try catalog.labelQualities().compactMapValues { Self.decode($0)?.inForce }
        inForce.withLock { $0 = stored }
    }

    /// The maintenance pass: labels with images written since the last pass learn again (with 30 s of slack
    /// for transactions that commit after others written later), then every node's copy is refreshed.
    public func learn() throws {
        let since = (watermark.withLock { $0 } ?? Date(timeIntervalSince1970: 0)).addingTimeInterval(-30)
        let changed = try catalog.labelsChanged(since: since, limit: Self.labelsPerPass)
        for (label, _) in changed {
            try store(try explain(labelId: label), labelId: label)
        }
        if let last = changed.last?.last { watermark.withLock { $0 = max($0 ?? last, last) } }
        try reload()
    }

    /// A label's thresholds learnt from the catalog as it is now.
    public func explain(labelId: Int64) throws -> LabelQuality {
        let evidence = try catalog.qualityEvidence(labelId: labelId)
        return QualityLearning.learn(accepted: evidence.accepted, rejected: evidence.rejected, settings: settings)
    }

    /// The thresholds in force for a label and why: as the last pass stored them, or the global ones.
    public func inForce(labelId: Int64) throws -> LabelQuality {
        if let json = try catalog.labelQuality(labelId: labelId), let stored = Self.decode(json) { return stored }
        var fresh = QualityLearning.learn(accepted: [], rejected: [], settings: settings)
        fresh.thresholds = fresh.thresholds.map { var t = $0; t.why = "not learnt yet: the global threshold"; return t }
        return fresh
    }

    func store(_ quality: LabelQuality, labelId: Int64) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        try catalog.storeLabelQuality(labelId: labelId, json: String(decoding: try encoder.encode(quality), as: UTF8.self))
    }

    /// A stored `LabelQuality` (as `store` wrote it), or nil when it cannot be read.
    static func decode(_ json: String) -> LabelQuality? {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(LabelQuality.self, from: Data(json.utf8))
    }
}
