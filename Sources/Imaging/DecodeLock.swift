#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Lets decodes run in parallel (shared) while a failed decode is diagnosed alone (exclusive), so the
/// message it reads from libvips's process-global error buffer is its own.
final class DecodeLock: @unchecked Sendable {
    static let shared = DecodeLock()
    private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)

    private init() { pthread_rwlock_init(lock, nil) }

    func reading<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    func writing<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}
