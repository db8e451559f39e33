import AsyncHTTPClient
import Catalog
import Foundation
import HubCore
import Logging
import NIOCore

/// Watch-list notifications: fires watches whose label reached its threshold and delivers their webhooks
/// (JSON POST, retried with exponential backoff, every attempt recorded). Targets must pass `check`.
public struct Webhooks: Sendable {
    let catalog: Catalog
    let settings: HubSettings
    let logger: Logger

    public init(catalog: Catalog, settings: HubSettings, logger: Logger = Logger(label: "imagehub.webhooks")) {
        self.catalog = catalog
        self.settings = settings
        self.logger = logger
    }

    /// Refuses URLs that are not http(s) or whose host is not allowed: a host must be named in
    /// `webhooks.allowedHosts`, or the list must hold `*` and the host must resolve to public addresses
    /// only (no loopback, private, link-local or unique-local ranges: no relay into private networks).
    public func check(_ raw: String) throws -> URL {
        guard let url = URL(string: raw), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = url.host?.lowercased(), !host.isEmpty else {
            throw HubError(400, "webhook.invalid_url", "webhook_url must be an absolute http(s) URL")
        }
        let allowed = settings.webhookAllowedHosts.map { $0.lowercased() }
        if allowed.contains(host) { return url }
        guard allowed.contains("*") else {
            throw HubError(400, "webhook.host_not_allowed", "host '\(host)' is not in webhooks.allowedHosts")
        }
        let addresses = Self.resolve(host)
        guard !addresses.isEmpty, addresses.allSatisfy(Self.isPublic) else {
            throw HubError(400, "webhook.host_not_allowed", "host '\(host)' does not resolve to public addresses only")
        }
        return url
    }

    /// One pass: fire due watches, then attempt due deliveries.
    public func run() async throws {
        try catalog.fireWatches { watch, label, count in
            struct Notice: Encodable { let event: String; let label: String; let threshold: Int; let accepted: Int; let watchId: Int64 }
            let e = JSONEncoder()
            e.keyEncodingStrategy = .convertToSnakeCase
            e.outputFormatting = .sortedKeys
            let notice = Notice(event: "label.threshold_reached", label: label, threshold: watch.threshold, accepted: count, watchId: watch.id!)
            return String(decoding: (try? e.encode(notice)) ?? Data(), as: UTF8.self)
        }
        for (delivery, target) in try catalog.dueDeliveries() {
            var status: Int?
            var failure: String?
            do {
                let url = try check(target)  // the policy may have changed since the watch was made
                var request = HTTPClientRequest(url: url.absoluteString)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.headers.add(name: "User-Agent", value: "deep-images-hub")
                request.body = .bytes(ByteBuffer(string: delivery.payload))
                // The whole exchange within webhooks.timeoutSeconds: a receiver that never answers is a failed attempt.
                let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(Int64(settings.webhookTimeoutSeconds * 1000)))
                _ = try? await response.body.collect(upTo: 1 << 16)
                status = Int(response.status.code)
                if let s = status, !(200..<300).contains(s) { failure = "HTTP \(s)" }
            } catch {
                failure = "\(error)"
            }
            let delay = settings.backoffSeconds * pow(2, Double(delivery.attempts))
            try catalog.recordDelivery(id: delivery.id!, status: status, error: failure, retryAfter: delay, maxAttempts: settings.webhookMaxAttempts)
            if let failure { logger.warning("webhook \(delivery.id!) to \(target): \(failure)") }
        }
    }

    static func resolve(_ host: String) -> [[UInt8]] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0 else { return [] }
        defer { freeaddrinfo(result) }
        var out: [[UInt8]] = []
        var p = result
        while let info = p {
            if info.pointee.ai_family == AF_INET, let sa = info.pointee.ai_addr {
                sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    out.append(withUnsafeBytes(of: sin.pointee.sin_addr) { Array($0) })
                }
            } else if info.pointee.ai_family == AF_INET6, let sa = info.pointee.ai_addr {
                sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin in
                    out.append(withUnsafeBytes(of: sin.pointee.sin6_addr) { Array($0) })
                }
            }
            p = info.pointee.ai_next
        }
        return out
    }

    /// Whether an IPv4 or IPv6 address is globally routable (not loopback, private, link-local, CGNAT,
    /// unspecified or unique-local; IPv4-mapped IPv6 judged as IPv4).
    static func isPublic(_ a: [UInt8]) -> Bool {
        if a.count == 16 {
            if a[0..<10].allSatisfy({ $0 == 0 }) && a[10] == 0xff && a[11] == 0xff { return isPublic(Array(a[12..<16])) }
            if a.allSatisfy({ $0 == 0 }) || (a[0..<15].allSatisfy({ $0 == 0 }) && a[15] == 1) { return false }
            if a[0] & 0xfe == 0xfc { return false }               // fc00::/7
            if a[0] == 0xfe && a[1] & 0xc0 == 0x80 { return false } // fe80::/10
            return true
        }
        guard a.count == 4 else { return false }
        switch (a[0], a[1]) {
        case (0, _), (10, _), (127, _), (169, 254), (192, 168): return false
        case (172, 16...31), (100, 64...127): return false
        default: return a[0] < 224
        }
    }
}
