import Dispatch

/// Runs blocking work (libvips, SQLite, fsync) off Swift's cooperative pool, whose few threads
/// must stay free for request handling.
public func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}
