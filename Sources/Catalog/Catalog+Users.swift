import Crypto
import Foundation
import HubCore

extension Catalog {
    /// Creates a user with a new random API key; the key is returned once and stored only hashed.
    public func createUser(name: String, role: Role) throws -> (user: UserRecord, key: String) {
        let key = "ihk_" + (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let user = try write { db in
            var user = UserRecord(id: nil, name: name, role: role, keyHash: Catalog.hash(key: key), createdAt: Date())
            user.id = try db.insert(user)
            return user
        }
        return (user, key)
    }

    /// The user holding `key`, or nil. Users found are remembered for a while (`keys.remember`): every
    /// request names its key, and keys do not change once made.
    public func user(forKey key: String) throws -> UserRecord? {
        let hash = Catalog.hash(key: key)
        if let user = keys.user(hash) { return user }
        let user = try read { db in try db.find(UserRecord.self, hash, column: "keyHash") }
        if let user { keys.remember(user, hash: hash) }
        return user
    }

    /// The user holding `key` if it was looked up lately, without asking the engine (nil otherwise).
    public func rememberedUser(forKey key: String) -> UserRecord? {
        keys.user(Catalog.hash(key: key))
    }

    /// Number of users holding `role`.
    public func userCount(role: Role) throws -> Int {
        try read { db in Int(try db.int("SELECT COUNT(*) FROM users WHERE role = ?", [role.rawValue]) ?? 0) }
    }

    static func hash(key: String) -> String {
        SHA256.hash(data: Data(key.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

extension Catalog {
    /// The admin user that local CLI commands (bulk ingest, benchmarks) act as; created on first use
    /// with a random key nobody sees.
    public func localUser() throws -> UserRecord {
        let name = "local-cli"
        if let user = try read({ db in
            try db.one(UserRecord.self, "SELECT * FROM users WHERE name = ? AND role = ? ORDER BY id LIMIT 1", [name, Role.admin.rawValue])
        }) {
            return user
        }
        return try createUser(name: name, role: .admin).user
    }
}
