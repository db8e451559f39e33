import Foundation
import Histogram
import HubCore

/// What a simulation saw, for people (`table`) and machines (JSON, snake_case keys).
public struct SimulationReport: Codable, Sendable {
    /// Latency percentiles in milliseconds, from an HdrHistogram (3 significant digits).
    public struct Latency: Codable, Sendable, Equatable {
        public var count: Int
        public var p50: Double
        public var p90: Double
        public var p99: Double
        public var p999: Double
        public var max: Double

        init(_ h: Histogram<UInt64>) {
            func ms(_ us: UInt64) -> Double { (Double(us) / 1000 * 10).rounded() / 10 }
            count = Int(h.totalCount)
            p50 = count == 0 ? 0 : ms(h.valueAtPercentile(50))
            p90 = count == 0 ? 0 : ms(h.valueAtPercentile(90))
            p99 = count == 0 ? 0 : ms(h.valueAtPercentile(99))
            p999 = count == 0 ? 0 : ms(h.valueAtPercentile(99.9))
            max = count == 0 ? 0 : ms(h.max)
        }
    }

    public var target: String
    public var transport: String
    public var devices: Int
    /// `closed loop` or `open loop, R/s (Poisson)`.
    public var arrivals: String
    /// Fraction of uploads whose first connection is cut mid-body.
    public var flaky: Double
    /// Seconds the phones were uploading, then seconds spent waiting for the last final statuses.
    public var loadSeconds: Double
    public var settleSeconds: Double
    /// Uploads started (each photo once, however many attempts it took).
    public var sent: Int
    /// Uploads the hub acknowledged (202 new, 200 already there, or a finished tus upload).
    public var acknowledged: Int
    /// Acknowledgements that named an image the hub already had (same bytes, same label).
    public var acknowledgedExisting: Int
    /// Uploads refused synchronously, by reason code (4xx).
    public var refused: [String: Int]
    /// Uploads the phone gave up on after its attempts ran out (never acknowledged, so not lost).
    public var gaveUp: Int
    /// Distinct acknowledged images by final status and reason (`accepted`, `quarantined duplicate.near`, …).
    public var outcomes: [String: Int]
    /// Acknowledged images that reached a final status.
    public var final: Int
    /// Acknowledged images that never reached a final status (still pending, or unknown to the hub).
    public var lost: Int
    /// Up to 20 of the lost image ids.
    public var lostIds: [String]
    /// Connections cut mid-body on purpose (`--flaky`).
    public var cuts: Int
    /// tus uploads continued from the server's offset after a cut, and the bytes that were not sent again.
    public var resumes: Int
    public var bytesKept: Int
    /// Retries after a 503 `Retry-After` (backpressure), after transport errors, and HTTP requests in all
    /// (uploads, resumes, batches, labels and the status polls).
    public var backpressureWaits: Int
    public var transportErrors: Int
    public var requests: Int
    /// Upload bytes of the photos acknowledged.
    public var bytesAcknowledged: Int
    /// Acknowledged uploads per second of the load phase, and final statuses per second overall.
    public var acknowledgedPerSecond: Double
    public var finalPerSecond: Double
    /// From the upload's start (its scheduled start, open loop) to the acknowledgement, retries included.
    public var acknowledgementLatency: Latency
    /// From the upload's start to the first time the simulator saw its final status (polling resolution
    /// `pollMilliseconds`).
    public var finalStatusLatency: Latency
    /// With `--wait`: uploads whose answer carried their final verdict (the rest were followed by polling).
    public var answeredWithVerdict: Int?
    /// With `--follow-quests`: uploads sent for a quest, per label.
    public var questUploads: [String: Int]? = nil
    public var pollMilliseconds: Int

    /// The summary as text tables.
    public var table: String {
        var out = "simulate: \(devices) devices, \(transport), \(arrivals), flaky \(Int((flaky * 100).rounded()))%, target \(target)\n"
        out += String(format: "load %.1f s, then %.1f s waiting for final statuses\n\n", loadSeconds, settleSeconds)
        var rows: [(String, String)] = [
            ("sent", "\(sent)"),
            ("acknowledged", "\(acknowledged)" + (acknowledgedExisting > 0 ? " (\(acknowledgedExisting) already on the hub)" : "")),
        ]
        rows += refused.sorted { $0.key < $1.key }.map { ("refused \($0.key)", "\($0.value)") }
        rows.append(("gave up (never acknowledged)", "\(gaveUp)"))
        rows += outcomes.sorted { $0.key < $1.key }.map { ("  \($0.key)", "\($0.value)") }
        rows.append(("final status", "\(final)"))
        if let answeredWithVerdict {
            rows.append(("answered with the verdict (Prefer: wait)", "\(answeredWithVerdict) (\(acknowledged > 0 ? 100 * answeredWithVerdict / acknowledged : 0)% of acknowledged)"))
        }
        if let questUploads {
            rows.append(("sent for collection quests", "\(questUploads.values.reduce(0, +))" + (questUploads.isEmpty ? "" : " ("
                + questUploads.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")")))
        }
        rows.append(("lost (acknowledged, never final)", "\(lost)"))
        rows.append(("connections cut mid-body", "\(cuts)"))
        if transport == "tus" { rows.append(("tus resumes (bytes not sent again)", "\(resumes) (\(Self.megabytes(bytesKept)) MB)")) }
        rows.append(("waits on 503 Retry-After", "\(backpressureWaits)"))
        rows.append(("transport errors retried", "\(transportErrors)"))
        rows.append(("HTTP requests", "\(requests)"))
        rows.append(("acknowledged / s", String(format: "%.1f", acknowledgedPerSecond)))
        rows.append(("final statuses / s", String(format: "%.1f", finalPerSecond)))
        rows.append(("MB acknowledged", Self.megabytes(bytesAcknowledged)))
        let width = rows.map(\.0.count).max() ?? 0
        out += rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
        out += "\n\n"
        let latencies = [("acknowledgement", acknowledgementLatency), ("upload → final status", finalStatusLatency)].map { name, l in
            [name, "\(l.count)"] + [l.p50, l.p90, l.p99, l.p999, l.max].map { String(format: "%.1f", $0) }
        }
        out += Table(headers: ["latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max"], rows: latencies).text
        out += "\n(final-status times are seen by polling every \(pollMilliseconds) ms\(answeredWithVerdict == nil ? "" : ", or in the upload's answer"))\n"
        return out
    }

    /// The report as JSON.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    static func megabytes(_ bytes: Int) -> String { String(format: "%.1f", Double(bytes) / 1_048_576) }
}
