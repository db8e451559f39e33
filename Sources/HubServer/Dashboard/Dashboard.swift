import Catalog
import Foundation
import HTTPTypes
import HubCore
import Hummingbird
import Mustache
import NIOCore

/// The web dashboard the hub serves at `/` (the JSON API stays under `/v1`): server-rendered HTML from
/// Mustache templates, our own CSS and a little plain JavaScript, no build step and nothing fetched from
/// elsewhere. People sign in with an API key; the browser then holds a session cookie (`HttpOnly`,
/// `SameSite=Strict`, `Secure` behind TLS) and every state-changing request carries the session's CSRF
/// token. The session stands for the key's user everywhere, the JSON API included, so the dashboard is
/// allowed exactly what the API allows that user: one rule, not two.
enum Dashboard {
    /// The reason codes a stored image can carry, for filtering a label's images.
    static let reasonCodes = ["size.too_large", "size.too_small", "decode.truncated", "decode.corrupt", "decode.warning",
                              "quality.blurry", "quality.too_dark", "quality.overexposed", "quality.low_contrast",
                              "duplicate.near", "label.mismatch", "internal.failed",
                              "review.accepted", "review.rejected", "review.relabelled"]

    /// The session cookie's name.
    static let cookie = "imagehub_session"
    /// How long a sign-in lasts.
    static let lifetime: TimeInterval = 12 * 3600
    /// The header a script sends the session's CSRF token in (forms send the `csrf` field).
    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!

    /// Whether `path` is one of the dashboard's pages or assets (everything else is the API).
    static func isPage(_ path: String) -> Bool {
        path == "/" || path == "/login" || path == "/logout" || path == "/labels" || path.hasPrefix("/labels/")
            || path == "/review" || path.hasPrefix("/review/") || path.hasPrefix("/images/") || path == "/upload" || path == "/batches" || path == "/training" || path.hasPrefix("/training/")
            || path == "/models" || path == "/quests" || path.hasPrefix("/assets/")
    }

    /// The session token the request's cookie holds, if any.
    static func token(_ request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let pair = part.trimmingCharacters(in: .whitespaces)
                if pair.hasPrefix("\(cookie)=") { return String(pair.dropFirst(cookie.count + 1)) }
            }
        }
        return nil
    }

    /// Sent with every dashboard answer: nothing runs or loads unless it comes from the hub itself.
    static let securityHeaders: [(HTTPField.Name, String)] = [
        (HTTPField.Name("Content-Security-Policy")!, "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
        (HTTPField.Name("X-Content-Type-Options")!, "nosniff"),
        (HTTPField.Name("Referrer-Policy")!, "same-origin"),
    ]

    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in DashboardTemplates.all {
            // The templates are ours and fixed: a parse error is a bug caught by the tests.
            try! library.register(text, named: name)
        }
        return library
    }()

    /// An HTML page from `template` with `values`, inside the layout.
    static func page(_ template: String, title: String, user: UserRecord?, session: SessionRecord?, status: HTTPResponse.Status = .ok,
                     _ values: [String: Any] = [:]) -> Response {
        var context = values
        context["title"] = title
        if let user {
            context["user"] = ["name": user.name, "role": user.role.rawValue]
            context["nav"] = navigation(for: user, current: template)
        }
        if let session { context["csrf"] = session.csrf }
        context["body"] = library.render(context, withTemplate: template) ?? ""
        let html = library.render(context, withTemplate: "layout") ?? ""
        return Response(status: status, headers: headers(type: "text/html; charset=utf-8", cache: "no-store"),
                        body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func headers(type: String, cache: String) -> HTTPFields {
        var fields = HTTPFields()
        fields[.contentType] = type
        fields[.cacheControl] = cache
        for (name, value) in securityHeaders { fields[name] = value }
        return fields
    }

    /// The pages a user's role may open.
    static func navigation(for user: UserRecord, current: String) -> [[String: Any]] {
        // Review decides quarantined images: admins only, as `POST /v1/images/{id}/review`.
        let pages = [("Overview", "/", "overview"), ("Labels", "/labels", "labels")]
            + (user.role == .admin ? [("Review", "/review", "review")] : [])
            + ([.admin, .supplier].contains(user.role) ? [("Upload", "/upload", "upload")] : [])
            + [("Batches", "/batches", "batches"), ("Quests", "/quests", "quests")]
            + ([.admin, .trainer].contains(user.role) ? [("Training", "/training", "training")] : [])
            + ([.admin, .trainer, .requester].contains(user.role) ? [("Models", "/models", "models")] : [])
        return pages.map { name, href, template in
            ["name": name, "href": href, "current": template == current || (template == "labels" && ["label", "image"].contains(current))
                || (template == "training" && current == "trainingJob")]
        }
    }

    /// A redirect (303: the browser follows with GET).
    static func redirect(_ location: String, setCookie: String? = nil) -> Response {
        var fields = headers(type: "text/plain; charset=utf-8", cache: "no-store")
        fields[.location] = location
        if let setCookie { fields[.setCookie] = setCookie }
        return Response(status: .seeOther, headers: fields)
    }

    /// The cookie that holds a new session's token (`Secure` when the request came over TLS, directly or
    /// through a proxy that says so).
    static func sessionCookie(_ token: String, request: Request) -> String {
        let secure = request.uri.scheme == .https || request.headers[HTTPField.Name("X-Forwarded-Proto")!] == "https"
        return "\(cookie)=\(token); Path=/; Max-Age=\(Int(lifetime)); HttpOnly; SameSite=Strict\(secure ? "; Secure" : "")"
    }

    static let clearedCookie = "\(cookie)=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"

    /// An `application/x-www-form-urlencoded` body, field by field in order (a field may repeat).
    struct Form {
        let items: [URLQueryItem]
        /// The first value of `name`.
        subscript(name: String) -> String? { items.first { $0.name == name }.map { $0.value ?? "" } }
        /// Every value of `name` (ticked checkboxes).
        func all(_ name: String) -> [String] { items.filter { $0.name == name }.map { $0.value ?? "" } }
    }

    static func form(_ request: Request) async throws -> Form {
        let body = try await request.body.collect(upTo: 64 * 1024)
        var components = URLComponents()
        components.percentEncodedQuery = String(buffer: body).replacingOccurrences(of: "+", with: "%20")
        return Form(items: components.queryItems ?? [])
    }

    /// Where photos were taken, as the points of an SVG scatter (no map tiles): longitude and latitude
    /// scaled to fit a 640 × 360 box with a margin (equirectangular, the degrees' aspect kept), and the box's
    /// bounds for the axis labels.
    static func scatter(_ places: [(lat: Double, lon: Double, status: ImageStatus)]) -> [String: Any] {
        let width = 640.0, height = 360.0, margin = 24.0
        let lats = places.map(\.lat), lons = places.map(\.lon)
        let (south, north, west, east) = (lats.min()!, lats.max()!, lons.min()!, lons.max()!)
        let span = max(north - south, east - west, 0.01)
        let scale = min((width - 2 * margin) / max(east - west, span / 4), (height - 2 * margin) / max(north - south, span / 4))
        let cx = (west + east) / 2, cy = (south + north) / 2
        let points: [[String: Any]] = places.map { p in
            ["x": String(format: "%.1f", width / 2 + (p.lon - cx) * scale), "y": String(format: "%.1f", height / 2 - (p.lat - cy) * scale),
             "status": p.status.rawValue, "title": String(format: "%.5f, %.5f (%@)", p.lat, p.lon, p.status.rawValue)]
        }
        return ["points": points, "count": places.count,
                "bounds": String(format: "%.4f–%.4f N, %.4f–%.4f E", south, north, west, east)]
    }

    /// A path segment for a label's page.
    static func labelHref(_ name: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/?#")
        return "/labels/" + (name.addingPercentEncoding(withAllowedCharacters: allowed) ?? name)
    }
}
