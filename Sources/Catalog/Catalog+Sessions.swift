import Foundation
import HubCore

/// A dashboard sign-in: the browser holds the token (a cookie), the catalog its hash.
public struct SessionRecord: Codable, Sendable, CatalogRecord {
    static let table = "sessions"
    public var tokenHash: String
    public var userId: Int64
    /// The token every state-changing form and request of this session must carry (CSRF).
    public var csrf: String
    public var expiresAt: Date
    public var createdAt: Date
}

extension Catalog {
    /// Signs `user` in for `lifetime` seconds: the new session's token (for the cookie, shown once) and
    /// its record. Expired sessions are cleared on the way.
    public func createSession(for user: UserRecord, lifetime: TimeInterval, now: Date = Date()) throws -> (token: String, session: SessionRecord) {
        guard let userId = user.id else { throw HubError(400, "auth.invalid", "the user has no id") }
        let token = Catalog.randomToken(), csrf = Catalog.randomToken()
        let session = SessionRecord(tokenHash: Catalog.hash(key: token), userId: userId, csrf: csrf,
                                    expiresAt: now.addingTimeInterval(lifetime), createdAt: now)
        try write { db in
            try db.execute("DELETE FROM sessions WHERE expiresAt < ?", [now])
            try db.insert(session)
        }
        return (token, session)
    }

    /// The unexpired session whose cookie holds `token`, with its user; nil otherwise.
    public func session(token: String, now: Date = Date()) throws -> (session: SessionRecord, user: UserRecord)? {
        try read { db in
            guard let session = try db.find(SessionRecord.self, Catalog.hash(key: token), column: "tokenHash"), session.expiresAt > now,
                  let user = try db.find(UserRecord.self, session.userId) else { return nil }
            return (session, user)
        }
    }

    /// Signs the session out (nothing happens for an unknown token).
    public func deleteSession(token: String) throws {
        try write { db in try db.execute("DELETE FROM sessions WHERE tokenHash = ?", [Catalog.hash(key: token)]) }
    }

    static func randomToken() -> String {
        (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }
}
