import Foundation
import Synchronization

/// Users found by their key's hash, each remembered for `lifetime` seconds. Only found users are kept, so
/// a key made a moment ago works at once; a bounded number, so a flood of bad keys costs no memory.
final class KeyCache: Sendable {
    private let entries = Mutex<[String: (user: UserRecord, until: Date)]>([:])
    let lifetime: TimeInterval = 30
    let capacity = 10_000

    func user(_ hash: String, now: Date = Date()) -> UserRecord? {
        entries.withLock { entries in
            guard let entry = entries[hash], entry.until > now else { return nil }
            return entry.user
        }
    }

    func remember(_ user: UserRecord, hash: String, now: Date = Date()) {
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[hash] = (user, now.addingTimeInterval(lifetime))
        }
    }
}
