import Foundation
import NIOPosix

/// The threads blocking work runs on. Not `DispatchQueue.global()`: on Linux that runs about one block
/// per core, so four pipeline workers on two cores ran two jobs at a time, and a core sat idle whenever a
/// job waited on an fsync, a SQLite lock or a libvips worker thread (`bench ingest`: 42 img/s with the
/// global queue; see the README for the figure with this pool). The pool is wider than any worker count
/// we configure; how much runs at once is bounded by the callers (pipeline workers, requests in flight).
private let blockingPool: NIOThreadPool = {
    let pool = NIOThreadPool(numberOfThreads: max(16, 4 * ProcessInfo.processInfo.activeProcessorCount))
    pool.start()
    return pool
}()

/// Runs blocking work (libvips, SQLite, fsync) off Swift's cooperative pool, whose few threads
/// must stay free for request handling.
public func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        // The pool is never shut down, so every item runs (`state` is always `.active`).
        blockingPool.submit { _ in continuation.resume(with: Result { try body() }) }
    }
}
