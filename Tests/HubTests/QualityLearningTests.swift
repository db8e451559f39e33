import Catalog
import Foundation
import HubCore
import HubTesting
import Imaging
import Jobs
import Testing

/// Quality thresholds that learn per label: from the label's accepted images, moved by review decisions,
/// bounded by the global thresholds and the floor.
@Suite("Quality thresholds per label", .serialized)
struct QualityLearningTests {
    static func samples(brightness: [Double], reviewed: Bool = false) -> [QualitySample] {
        brightness.map { QualitySample(reasons: reviewed ? ["quality.too_dark", "review.accepted"] : [], sharpness: 300, brightness: $0, contrast: 40) }
    }

    func threshold(_ q: LabelQuality, _ metric: String, _ bound: String = "min") -> LabelQuality.Threshold {
        q.thresholds.first { $0.metric == metric && $0.bound == bound }!
    }

    @Test("the rule: global until enough images, the label's quantile within global and floor, held by a rejection")
    func rule() {
        var settings = HubSettings()
        settings.qualityLearnMinImages = 20
        let bright = Self.samples(brightness: (0..<30).map { 90 + Double($0) * 3 })
        // Too few images: the global thresholds, whatever they look like.
        let few = QualityLearning.learn(accepted: Array(Self.samples(brightness: (0..<19).map { 12 + Double($0) }, reviewed: true)), rejected: [], settings: settings)
        #expect(!few.learning && few.inForce == settings.globalQuality)
        // A label of bright photos is held to the global thresholds, never a stricter one.
        let normal = QualityLearning.learn(accepted: bright, rejected: [], settings: settings)
        #expect(normal.learning && normal.inForce == settings.globalQuality)
        #expect(threshold(normal, "brightness").source == "global")
        // Dark by nature (reviewers accepted its dark photos): the 5% quantile of its images.
        let dark = QualityLearning.learn(accepted: Self.samples(brightness: (0..<40).map { 14 + Double($0) * 0.5 }, reviewed: true),
                                         rejected: [], settings: settings)
        let b = threshold(dark, "brightness")
        #expect(b.source == "learned" && abs(b.value - (14 + 0.05 * 39 * 0.5)) < 1e-9, "\(b)")
        #expect(dark.reviewAccepted == 40 && dark.inForce.minSharpness == settings.minSharpness)
        // Never laxer than the floor.
        let black = QualityLearning.learn(accepted: Self.samples(brightness: [Double](repeating: 2, count: 25), reviewed: true), rejected: [], settings: settings)
        #expect(black.inForce.minBrightness == settings.qualityFloor.minBrightness)
        // A reviewer rejected a photo at 18 as too dark: the label's threshold stays just above it.
        let rejected = [QualitySample(reasons: ["quality.too_dark", "review.rejected"], sharpness: 300, brightness: 18, contrast: 40)]
        let held = QualityLearning.learn(accepted: Self.samples(brightness: (0..<40).map { 14 + Double($0) * 0.5 }, reviewed: true),
                                         rejected: rejected, settings: settings)
        #expect(threshold(held, "brightness").source == "review" && held.inForce.minBrightness > 18 && held.inForce.minBrightness < 18.001)
        // The bright side mirrors it: a label of bright photos learns a higher maximum, up to its floor.
        let snow = QualityLearning.learn(accepted: Self.samples(brightness: (0..<30).map { 230 + Double($0) * 0.8 }), rejected: [], settings: settings)
        #expect(snow.inForce.maxBrightness > settings.maxBrightness && snow.inForce.maxBrightness <= settings.qualityFloor.maxBrightness)
        settings.qualityLearnMinImages = 0
        #expect(QualityLearning.learn(accepted: Self.samples(brightness: [Double](repeating: 2, count: 25), reviewed: true), rejected: [],
                                      settings: settings).inForce == settings.globalQuality)
    }

    static func dark(_ seed: Int, _ factor: Double) throws -> Data {
        try Image.load(try Fixtures.image(seed: seed)).linear(factor, 0).encoded(as: .jpeg, quality: 92)
    }

    @Test("a dark-by-nature label stops being quarantined after reviews, another label's dark photos still are")
    func darkLabelLearns() async throws {
        let t = try TestHub(labels: ["Night", "Day"]) { $0.qualityLearnMinImages = 6 }
        defer { t.remove() }
        try await t.withClient { client in
            for seed in 0..<6 { _ = try await client.upload(try Fixtures.image(seed: 700 + seed), label: "Day", as: t.bearer(.supplier)) }
            var night: [String] = []
            for (i, factor) in [0.10, 0.115, 0.13, 0.145, 0.16, 0.175, 0.19, 0.205].enumerated() {
                night.append(try #require(try await client.upload(try Self.dark(720 + i, factor), label: "Night", as: t.bearer(.supplier)).json["id"] as? String))
            }
            await t.drain()
            // Before any review: the night photos are quarantined as too dark under the global threshold.
            for id in night {
                let image = try await client.get("/v1/images/\(id)", as: t.bearer(.admin)).json
                #expect(image["status"] as? String == "quarantined" && (image["reasons"] as? [String] ?? []).contains("quality.too_dark"), "\(image)")
                #expect(try await client.postJSON("/v1/images/\(id)/review", #"{"decision":"accept"}"#, as: t.bearer(.admin)).status == .ok)
            }
            try await t.hub.workers.maintainOnce()
            let quality = try await client.get("/v1/labels/Night/quality", as: t.bearer(.supplier)).json
            print("Night quality: \(quality)")
            #expect(quality["learning"] as? Bool == true && quality["review_accepted"] as? Int == 8)
            let thresholds = try #require(quality["thresholds"] as? [[String: Any]])
            let brightness = try #require(thresholds.first { $0["metric"] as? String == "brightness" && $0["bound"] as? String == "min" })
            #expect(brightness["source"] as? String == "learned" && (brightness["value"] as? Double ?? 99) < t.hub.settings.minBrightness)
            #expect((brightness["why"] as? String)?.contains("accepted images") == true)
            let inForce = try #require(quality["in_force"] as? [String: Any])
            #expect(inForce["min_brightness"] as? Double == brightness["value"] as? Double)

            // A new night photo passes; the same darkness under Day is still quarantined.
            let newNight = try #require(try await client.upload(try Self.dark(740, 0.19), label: "Night", as: t.bearer(.supplier)).json["id"] as? String)
            let darkDay = try #require(try await client.upload(try Self.dark(741, 0.19), label: "Day", as: t.bearer(.supplier)).json["id"] as? String)
            await t.drain()
            let n = try await client.get("/v1/images/\(newNight)", as: t.bearer(.admin)).json
            #expect(n["status"] as? String == "accepted", "\(n)")
            let d = try await client.get("/v1/images/\(darkDay)", as: t.bearer(.admin)).json
            #expect(d["status"] as? String == "quarantined" && (d["reasons"] as? [String] ?? []).contains("quality.too_dark"), "\(d)")
            let day = try await client.get("/v1/labels/Day/quality", as: t.bearer(.requester)).json
            #expect((day["in_force"] as? [String: Any])?["min_brightness"] as? Double == t.hub.settings.minBrightness, "\(day)")
            #expect(try await client.get("/v1/labels/Nowhere/quality", as: t.bearer(.requester)).status.code == 404)
            // The label's page shows the same, for people.
            let (cookie, _) = try await DashboardTests.signIn(client, key: t.keys[.requester]!)
            let (_, page) = try await DashboardTests.page(client, "/labels/Night", cookie: cookie)
            #expect(page.contains("Quality thresholds for this label") && page.contains("<td>brightness at least</td>") && page.contains("<td>learned</td>"))
        }
    }
}
