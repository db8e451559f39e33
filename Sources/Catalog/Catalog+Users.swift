import Crypto
import Foundation
import GRDB
import HubCore

extension Catalog {
    /// Creates a user with a new random API key; the key is returned once and stored only hashed.
    public func createUser(name: String, role: Role) throws -> (user: UserRecord, key: String) {
        let key = "ihk_" + (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let user = try write { db in
            var user = UserRecord(id: nil, name: name, role: role, keyHash: Catalog.hash(key: key), createdAt: Date())
            try user.insert(db)
            return user
        }
        return (user, key)
    }

    /// The user holding `key`, or nil.
    public func user(forKey key: String) throws -> UserRecord? {
        let hash = Catalog.hash(key: key)
        return try read { db in try UserRecord.filter(Column("keyHash") == hash).fetchOne(db) }
    }

    /// Number of users holding `role`.
    public func userCount(role: Role) throws -> Int {
        try read { db in try UserRecord.filter(Column("role") == role.rawValue).fetchCount(db) }
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
        if let user = try read({ db in try UserRecord.filter(Column("name") == name && Column("role") == Role.admin.rawValue).fetchOne(db) }) {
            return user
        }
        return try createUser(name: name, role: .admin).user
    }
}
